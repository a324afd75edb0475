//! Learned noise: with calibration, some shadow jobs also send a second copy to the serving path
//! (control vs control). A path that differs about as often between two copies on the *same* path
//! as between the two paths is noise, not a difference of the new path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// When candidate-vs-control differences count as real.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseThresholds {
    /// The candidate rate must exceed the control rate by this factor (0.2 = 20 % more)...
    pub relative: f64,
    /// ...and by at least this absolute rate (0.0003 = 0.03 % of samples).
    pub absolute: f64,
}

impl Default for NoiseThresholds {
    fn default() -> Self {
        NoiseThresholds { relative: 0.2, absolute: 0.0003 }
    }
}

/// Per-path difference counts for one action.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NoiseModel {
    pub candidate_samples: u64,
    pub control_samples: u64,
    pub candidate: BTreeMap<String, u64>,
    pub control: BTreeMap<String, u64>,
}

impl NoiseModel {
    pub fn observe_candidate<'a>(&mut self, paths: impl Iterator<Item = &'a str>) {
        self.candidate_samples += 1;
        for p in paths {
            *self.candidate.entry(p.to_string()).or_default() += 1;
        }
    }

    pub fn observe_control<'a>(&mut self, paths: impl Iterator<Item = &'a str>) {
        self.control_samples += 1;
        for p in paths {
            *self.control.entry(p.to_string()).or_default() += 1;
        }
    }

    /// Whether differences at `path` are real. Without control samples there is nothing to learn
    /// from, and every difference counts.
    pub fn is_real(&self, path: &str, t: &NoiseThresholds) -> bool {
        if self.control_samples == 0 || self.candidate_samples == 0 {
            return true;
        }
        let cand = *self.candidate.get(path).unwrap_or(&0) as f64 / self.candidate_samples as f64;
        let ctrl = *self.control.get(path).unwrap_or(&0) as f64 / self.control_samples as f64;
        cand > ctrl * (1.0 + t.relative) && cand - ctrl > t.absolute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_differ_between_controls_are_noise() {
        let mut m = NoiseModel::default();
        for i in 0..100 {
            let mut paths = vec!["/response/result/now"];
            if i % 2 == 0 {
                paths.push("/response/result/total");
            }
            m.observe_candidate(paths.into_iter());
        }
        for _ in 0..20 {
            m.observe_control(["/response/result/now"].into_iter());
        }
        let t = NoiseThresholds::default();
        assert!(!m.is_real("/response/result/now", &t), "differs between controls too");
        assert!(m.is_real("/response/result/total", &t), "never differs between controls");
        assert!(NoiseModel::default().is_real("/x", &t), "no calibration: everything counts");
    }
}

//! Which actions are ready to move to the scheduler, which need a look, and which lack data: the
//! verdict the report leads with, and what `report --format rules` turns into overrides.

use serde::{Deserialize, Serialize};

/// When an action counts as ready (`report` flags; documented defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadinessRules {
    /// Compared samples (both answers compared) needed before any verdict but "not enough data".
    pub min_samples: u64,
    /// The scheduler's p50 latency may be at most legacy's times this.
    pub max_latency_factor: f64,
}

impl Default for ReadinessRules {
    fn default() -> Self {
        ReadinessRules { min_samples: 20, max_latency_factor: 1.5 }
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    strum::EnumIter,
    strum::EnumCount,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A real difference, a failure or timeout on the scheduler, or a slower scheduler.
    #[strum(serialize = "needs a look")]
    NeedsLook,
    /// Enough compared samples, no real difference, no scheduler failure, latency within bounds.
    #[strum(serialize = "ready")]
    Ready,
    #[strum(serialize = "not enough data")]
    NotEnoughData,
}

impl Verdict {
    /// The words the text report and the page use.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness {
    pub verdict: Verdict,
    /// Why, in a few words each (empty when ready).
    pub reasons: Vec<String>,
    /// How much it matters, for ordering: real mismatches (rate × samples) plus failures and
    /// timeouts on either path.
    pub weight: f64,
}

/// What the verdict is taken from (an action's report, in plain numbers).
pub struct Evidence<'a> {
    pub samples: u64,
    pub compared: u64,
    pub match_rate: Option<f64>,
    /// Real differences: path and count.
    pub real_differences: Vec<(&'a str, u64)>,
    /// Failures and timeouts: legacy, scheduler.
    pub failures: [u64; 2],
    /// p50 latency (ms): legacy, scheduler.
    pub p50_ms: [Option<f64>; 2],
}

impl ReadinessRules {
    pub fn assess(&self, a: &Evidence<'_>) -> Readiness {
        let mut reasons = Vec::new();
        for (path, count) in &a.real_differences {
            reasons.push(format!("{path} differs in {count} of {} compared", a.compared));
        }
        let [legacy_failed, scheduler_failed] = a.failures;
        if scheduler_failed > 0 {
            reasons.push(format!("{scheduler_failed} errors, timeouts or capacity drops on the scheduler"));
        }
        if let [Some(l), Some(s)] = a.p50_ms {
            if s > l * self.max_latency_factor {
                reasons.push(format!(
                    "scheduler p50 {s:.1} ms is over {:.1} × legacy's {l:.1} ms",
                    self.max_latency_factor
                ));
            }
        }
        let mismatch_rate = a.match_rate.map_or(0.0, |r| 1.0 - r);
        let weight = mismatch_rate * a.samples as f64 + (scheduler_failed + legacy_failed) as f64;
        let verdict = if !reasons.is_empty() {
            Verdict::NeedsLook
        } else if a.compared < self.min_samples {
            reasons.push(format!("{} of {} compared samples", a.compared, self.min_samples));
            Verdict::NotEnoughData
        } else {
            Verdict::Ready
        };
        Readiness { verdict, reasons, weight }
    }
}

/// The override that moves one ready action to the scheduler (share 100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyOverride {
    pub namespace: String,
    /// `""`: outside any package (matches only such actions).
    pub package: String,
    pub action: String,
}

impl ReadyOverride {
    /// From a report's action name (`ns/action` or `ns/pkg/action`); `None` for the report's own
    /// lines such as "(other actions)".
    pub fn for_action(name: &str) -> Option<ReadyOverride> {
        let parts: Vec<&str> = name.split('/').collect();
        let valid = |s: &str| !s.is_empty() && !s.contains(['*', '(', ')']);
        match parts.as_slice() {
            [ns, action] if valid(ns) && valid(action) => {
                Some(ReadyOverride { namespace: ns.to_string(), package: String::new(), action: action.to_string() })
            }
            [ns, pkg, action] if valid(ns) && valid(pkg) && valid(action) => {
                Some(ReadyOverride { namespace: ns.to_string(), package: pkg.to_string(), action: action.to_string() })
            }
            _ => None,
        }
    }

    pub fn name(&self) -> String {
        if self.package.is_empty() {
            format!("ready: {}/{}", self.namespace, self.action)
        } else {
            format!("ready: {}/{}/{}", self.namespace, self.package, self.action)
        }
    }

    /// As an override of the rules document (JSON form).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name(), "namespace": self.namespace, "package": self.package,
            "action": self.action, "share": 100})
    }

    /// As a TOML `[[overrides]]` table (JSON strings are valid TOML basic strings).
    pub fn to_toml(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        format!(
            "[[overrides]]\nname = {}\nnamespace = {}\npackage = {}\naction = {}\nshare = 100\n",
            q(&self.name()),
            q(&self.namespace),
            q(&self.package),
            q(&self.action)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(compared: u64, real: Vec<(&str, u64)>, failures: [u64; 2], p50: [f64; 2]) -> Evidence<'_> {
        Evidence {
            samples: compared,
            compared,
            match_rate: Some(if real.is_empty() { 1.0 } else { 0.5 }),
            real_differences: real,
            failures,
            p50_ms: [Some(p50[0]), Some(p50[1])],
        }
    }

    #[test]
    fn verdicts() {
        let rules = ReadinessRules::default();
        assert_eq!(rules.assess(&evidence(25, vec![], [0, 0], [40.0, 8.0])).verdict, Verdict::Ready);
        let few = rules.assess(&evidence(19, vec![], [0, 0], [40.0, 8.0]));
        assert_eq!((few.verdict, few.reasons[0].as_str()), (Verdict::NotEnoughData, "19 of 20 compared samples"));
        let diff = rules.assess(&evidence(3, vec![("/response/result/x", 2)], [0, 0], [40.0, 8.0]));
        assert_eq!(diff.verdict, Verdict::NeedsLook, "a real difference needs a look even with few samples");
        assert_eq!(rules.assess(&evidence(50, vec![], [0, 1], [40.0, 8.0])).verdict, Verdict::NeedsLook);
        assert_eq!(
            rules.assess(&evidence(50, vec![], [3, 0], [40.0, 8.0])).verdict,
            Verdict::Ready,
            "legacy's own failures"
        );
        let slow = rules.assess(&evidence(50, vec![], [0, 0], [10.0, 16.0]));
        assert_eq!(slow.verdict, Verdict::NeedsLook);
        assert!(slow.reasons[0].contains("over 1.5 × legacy's 10.0 ms"), "{:?}", slow.reasons);
    }

    #[test]
    fn overrides_for_ready_actions() {
        let o = ReadyOverride::for_action("guest/img/resize-2").unwrap();
        assert_eq!((o.package.as_str(), o.action.as_str()), ("img", "resize-2"));
        assert_eq!(ReadyOverride::for_action("guest/hello").unwrap().package, "");
        assert_eq!(ReadyOverride::for_action("(other actions)"), None);
        assert!(o.to_toml().contains("name = \"ready: guest/img/resize-2\"\nnamespace = \"guest\""));
    }
}

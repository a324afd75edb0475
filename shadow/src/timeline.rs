//! Outcomes over time, in a bounded number of buckets: when records span more buckets than the
//! limit, the bucket width doubles and neighbours merge, so a report over a week costs what one
//! over a minute does.

use std::collections::BTreeMap;

use serde::Serialize;

use strum::{EnumCount, IntoEnumIterator};

use crate::outcome::{Outcome, OutcomeKind};

pub const MAX_BUCKETS: usize = 120;
const KINDS: usize = OutcomeKind::COUNT;

#[derive(Debug, Clone)]
pub struct Timeline {
    width_ms: u64,
    buckets: BTreeMap<u64, [u64; KINDS]>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline { width_ms: 1000, buckets: BTreeMap::new() }
    }
}

/// One bucket: its start (unix ms), its width, and the records in it by outcome kind.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub start_ms: u64,
    pub width_ms: u64,
    /// By [`OutcomeKind`] name; kinds with no record are left out.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Matches among the compared records of the bucket (before learned noise is applied).
    pub match_rate: Option<f64>,
}

impl Timeline {
    pub fn add(&mut self, time_ms: u64, outcome: &Outcome) {
        let start = time_ms - time_ms % self.width_ms;
        self.buckets.entry(start).or_insert([0; KINDS])[outcome.kind_index()] += 1;
        while self.buckets.len() > MAX_BUCKETS {
            self.width_ms *= 2;
            let mut merged: BTreeMap<u64, [u64; KINDS]> = BTreeMap::new();
            for (start, counts) in std::mem::take(&mut self.buckets) {
                let slot = merged.entry(start - start % self.width_ms).or_insert([0; KINDS]);
                for (total, n) in slot.iter_mut().zip(counts) {
                    *total += n;
                }
            }
            self.buckets = merged;
        }
    }

    pub fn buckets(&self) -> Vec<Bucket> {
        let (m, mm) = (Outcome::Match.kind_index(), Outcome::Mismatch.kind_index());
        self.buckets
            .iter()
            .map(|(start, counts)| Bucket {
                start_ms: *start,
                width_ms: self.width_ms,
                outcomes: OutcomeKind::iter()
                    .zip(counts)
                    .filter(|(_, n)| **n > 0)
                    .map(|(k, n)| (k.as_str(), *n))
                    .collect(),
                match_rate: (counts[m] + counts[mm] > 0).then(|| counts[m] as f64 / (counts[m] + counts[mm]) as f64),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_stay_bounded_and_nothing_is_lost() {
        let mut t = Timeline::default();
        for i in 0..100_000u64 {
            let outcome = if i % 4 == 0 { Outcome::Mismatch } else { Outcome::Match };
            t.add(1_000_000 + i * 37, &outcome);
        }
        let b = t.buckets();
        assert!(b.len() <= MAX_BUCKETS, "{}", b.len());
        let total: u64 = b.iter().flat_map(|b| b.outcomes.values()).sum();
        assert_eq!(total, 100_000);
        assert!((b[10].match_rate.unwrap() - 0.75).abs() < 0.01);
    }
}

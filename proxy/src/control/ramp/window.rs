//! What the ramp's gates read: the proxy's own live counts of answers by pool and class, latencies
//! and shadow outcomes, and a sliding window over them; for the whole traffic and, apart, for each
//! override with a ramp of its own (its slot), so a namespace's gates read that namespace only.
//!
//! The data plane only adds to cumulative atomics (no lock, no allocation per request). The
//! control plane snapshots them on every tick and keeps the snapshots of the last window, so the
//! window's counts are the newest snapshot minus the oldest.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use strum::{EnumCount, IntoEnumIterator};
use switchyard_rules::{Pool, Ramp, RampScope, RuleSet, Signals};
use switchyard_shadow::{AnswerClass, ComparisonRecord, Outcome, ANNOTATIONS_PATH};

use crate::ops::metrics::LATENCY_BUCKETS;

const CLASSES: usize = AnswerClass::COUNT;
/// One counter per latency bucket, and one for everything above the last.
const LATENCY_SLOTS: usize = LATENCY_BUCKETS.len() + 1;

/// Cumulative counts since start, added to by the data plane and the shadow workers: for all
/// invocations, and for those of each ramped override (by its slot, `RuleSet::ramp_slot`).
#[derive(Default)]
pub struct LiveCounters {
    all: Counts,
    scoped: [Counts; Ramp::MAX_SCOPED],
}

#[derive(Default)]
struct Counts {
    answers: [[AtomicU64; CLASSES]; 2],
    latency: [[AtomicU64; LATENCY_SLOTS]; 2],
    compared: AtomicU64,
    mismatched: AtomicU64,
}

impl Counts {
    fn answer(&self, pool: Pool, class: AnswerClass, slot: usize) {
        self.answers[pool.index()][class.index()].fetch_add(1, Relaxed);
        self.latency[pool.index()][slot].fetch_add(1, Relaxed);
    }

    fn comparison(&self, real: bool) {
        self.compared.fetch_add(1, Relaxed);
        if real {
            self.mismatched.fetch_add(1, Relaxed);
        }
    }

    fn totals(&self) -> Totals {
        let read = |a: &AtomicU64| a.load(Relaxed);
        Totals {
            answers: self.answers.each_ref().map(|p| p.each_ref().map(read)),
            latency: self.latency.each_ref().map(|p| p.each_ref().map(read)),
            compared: read(&self.compared),
            mismatched: read(&self.mismatched),
        }
    }
}

impl LiveCounters {
    /// Counts one invocation's answer from `pool` and how long it took (`ramp_slot`: the ramped
    /// override that decided it, if one did).
    pub fn answer(&self, ramp_slot: Option<usize>, pool: Pool, class: AnswerClass, seconds: f64) {
        let slot = LATENCY_BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(LATENCY_BUCKETS.len());
        self.all.answer(pool, class, slot);
        if let Some(counts) = ramp_slot.and_then(|s| self.scoped.get(s)) {
            counts.answer(pool, class, slot);
        }
    }

    /// Counts one shadow comparison: compared, and whether it has a real difference (one that is
    /// neither an annotation difference nor seen between two copies on the same path).
    pub fn comparison(&self, ramp_slot: Option<usize>, record: &ComparisonRecord) {
        if !record.outcome.is_compared() {
            return;
        }
        let noise = record.control_differences.as_deref().unwrap_or_default();
        let real = record.outcome == Outcome::Mismatch
            && record.differences.iter().any(|d| !d.path.starts_with(ANNOTATIONS_PATH) && !noise.contains(&d.path));
        self.all.comparison(real);
        if let Some(counts) = ramp_slot.and_then(|s| self.scoped.get(s)) {
            counts.comparison(real);
        }
    }

    /// All invocations' counts.
    pub fn totals(&self) -> Totals {
        self.all.totals()
    }

    /// One ramped override's counts.
    pub fn scoped_totals(&self, ramp_slot: usize) -> Totals {
        self.scoped.get(ramp_slot).map(Counts::totals).unwrap_or_default()
    }

    /// The scheduler's invocations so far in a ramp's scope.
    pub fn seen(&self, rules: &RuleSet, scope: RampScope) -> u64 {
        match scope {
            RampScope::Global => self.totals().invocations(Pool::Scheduler),
            RampScope::Override(i) => {
                rules.ramp_slot(i).map_or(0, |slot| self.scoped_totals(slot).invocations(Pool::Scheduler))
            }
        }
    }
}

/// A snapshot of [`LiveCounters`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    answers: [[u64; CLASSES]; 2],
    latency: [[u64; LATENCY_SLOTS]; 2],
    compared: u64,
    mismatched: u64,
}

impl Totals {
    /// Invocations answered by `pool` so far.
    pub fn invocations(&self, pool: Pool) -> u64 {
        self.answers[pool.index()].iter().sum()
    }

    /// What happened between `older` and `self`, as the gates read it.
    pub fn since(&self, older: &Totals) -> Signals {
        let mut s = Signals::default();
        for pool in Pool::iter() {
            let p = pool.index();
            let delta =
                |class: AnswerClass| self.answers[p][class.index()].saturating_sub(older.answers[p][class.index()]);
            s.invocations[p] = AnswerClass::iter().map(delta).sum();
            s.platform_failures[p] = AnswerClass::iter().filter(|c| c.is_platform_failure()).map(delta).sum();
            s.throttled[p] = AnswerClass::iter().filter(|c| c.is_throttling()).map(delta).sum();
            s.queued[p] = delta(AnswerClass::Queued);
            let buckets: Vec<u64> =
                (0..LATENCY_SLOTS).map(|i| self.latency[p][i].saturating_sub(older.latency[p][i])).collect();
            let n: u64 = buckets.iter().sum();
            s.latency_samples[p] = n;
            s.p99_ms[p] = p99_ms(&buckets, n);
        }
        s.compared = self.compared.saturating_sub(older.compared);
        s.mismatched = self.mismatched.saturating_sub(older.mismatched);
        s
    }
}

/// The upper bound of the bucket holding the 99th percentile (bucket resolution; above the last
/// bucket, twice its bound).
fn p99_ms(buckets: &[u64], n: u64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let rank = (n as f64 * 0.99).ceil() as u64;
    let mut seen = 0;
    for (i, count) in buckets.iter().enumerate() {
        seen += count;
        if seen >= rank {
            let bound = LATENCY_BUCKETS.get(i).copied().unwrap_or(LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1] * 2.0);
            return Some(bound * 1000.0);
        }
    }
    None
}

/// What one ramp's gates read at a tick: the scheduler's invocations so far in its scope, and the
/// signals over its window.
#[derive(Debug, Clone, Default)]
pub struct ScopeSignals {
    pub seen: u64,
    pub signals: Signals,
}

/// Every ramp's window: the whole traffic's, and one per ramped override's slot. The slots' are
/// started afresh when the ramped overrides change (a slot may then count another override).
#[derive(Default)]
pub struct Windows {
    all: Window,
    slots: Vec<Window>,
    scopes: Vec<String>,
}

impl Windows {
    /// Takes this tick's snapshots; returns each ramp's signals (the rules' ramps, in order).
    pub fn push(&mut self, now_ms: u64, live: &LiveCounters, rules: &RuleSet) -> Vec<(RampScope, ScopeSignals)> {
        let scopes: Vec<String> = rules.ramps().into_iter().map(|(scope, _)| rules.scope_name(scope)).collect();
        if scopes != self.scopes {
            self.scopes = scopes;
            self.slots.clear();
        }
        let global_window = rules.ramp.as_ref().map_or(Ramp::DEFAULT_WINDOW_S, |r| r.window_s);
        let totals = live.totals();
        let all = ScopeSignals {
            seen: totals.invocations(Pool::Scheduler),
            signals: self.all.push(now_ms, totals, global_window),
        };
        let mut out = Vec::new();
        for (scope, ramp) in rules.ramps() {
            let signals = match scope {
                RampScope::Global => all.clone(),
                RampScope::Override(i) => {
                    let Some(slot) = rules.ramp_slot(i) else { continue };
                    if self.slots.len() <= slot {
                        self.slots.resize_with(slot + 1, Window::default);
                    }
                    let totals = live.scoped_totals(slot);
                    let seen = totals.invocations(Pool::Scheduler);
                    ScopeSignals { seen, signals: self.slots[slot].push(now_ms, totals, ramp.window_s) }
                }
            };
            out.push((scope, signals));
        }
        out
    }
}

/// Snapshots over the last window, oldest first.
#[derive(Default)]
pub struct Window {
    snapshots: VecDeque<(u64, Totals)>,
}

impl Window {
    /// Adds the snapshot taken at `now_ms` and returns the signals over the last `window_s`.
    pub fn push(&mut self, now_ms: u64, totals: Totals, window_s: u64) -> Signals {
        let horizon = now_ms.saturating_sub(window_s * 1000);
        // Keep one snapshot at or before the horizon: it is the window's start.
        while self.snapshots.len() >= 2 && self.snapshots[1].0 <= horizon {
            self.snapshots.pop_front();
        }
        let signals = match self.snapshots.front() {
            Some((_, oldest)) => totals.since(oldest),
            None => totals.since(&Totals::default()),
        };
        self.snapshots.push_back((now_ms, totals));
        signals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_counts_only_its_own_seconds() {
        let live = LiveCounters::default();
        let mut w = Window::default();
        for _ in 0..10 {
            live.answer(None, Pool::Scheduler, AnswerClass::PlatformFailure, 0.002);
        }
        let s = w.push(1_000, live.totals(), 2);
        assert_eq!((s.invocations[1], s.platform_failures[1]), (10, 10));
        for _ in 0..5 {
            live.answer(None, Pool::Scheduler, AnswerClass::Ok, 0.002);
            live.answer(None, Pool::Legacy, AnswerClass::CapacityDrop, 0.2);
        }
        let s = w.push(2_000, live.totals(), 2);
        assert_eq!((s.invocations[1], s.platform_failures[1]), (5, 0), "since the snapshot at 1 s");
        assert_eq!((s.platform_failures[0], s.throttled[0]), (5, 5), "a capacity drop is both");
        assert_eq!(s.p99_ms[0], Some(250.0));
        let s = w.push(5_000, live.totals(), 2);
        assert_eq!(s.invocations, [0, 0], "nothing new within the last 2 s");
    }
}

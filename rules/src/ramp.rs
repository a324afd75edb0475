//! A ramp: the global share raised step by step on a wall-clock schedule, held back by gates and
//! rolled back by them. Everything here is pure: the proxy feeds in the clock and what it measured
//! over the gates' window, and gets back the share to route by.
//!
//! Consistency across replicas without talking: the schedule starts at a wall-clock `start`, so
//! every replica with the same rules computes the same scheduled step (also after a restart). A step
//! may begin later than scheduled on a replica whose gates hold it (too few samples, or too few
//! invocations seen at the step); a rollback is that replica's own, until it is published.

use std::collections::BTreeSet;

use crate::gates::{Gates, Reading, Verdict};
use crate::share::Share;

/// Which share a ramp drives: the global `scheduler_share`, or one override's (`[[overrides]]
/// ... ramp = { ... }`: a namespace moving on its own schedule and gates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RampScope {
    Global,
    /// The override at this index of `RuleSet::overrides`.
    Override(usize),
}

/// One step of a ramp.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub share: Share,
    /// The step lasts at least this long before the next may begin.
    pub hold_s: u64,
    /// Invocations the scheduler must have answered during this step before the next may begin.
    pub min_invocations: u64,
    /// The ramp waits before this step until a person approves it.
    pub approve: bool,
}

/// A ramp as written in the rules (`[ramp]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Ramp {
    /// Unix time (ms) the first step begins.
    pub start_ms: u64,
    /// Non-empty, shares non-decreasing.
    pub steps: Vec<Step>,
    /// The gates' sliding window.
    pub window_s: u64,
    /// The global share after a rollback (0 by default: all legacy).
    pub rollback_share: Share,
    /// Set when a rollback was published for this ramp: every replica stays at `rollback_share`.
    pub rolled_back: Option<String>,
    pub gates: Gates,
}

impl Ramp {
    pub const DEFAULT_WINDOW_S: u64 = 60;
    pub const MAX_WINDOW_S: u64 = 3600;
    pub const MAX_STEPS: usize = 100;
    /// The most overrides with a ramp of their own in one rule set (each has its own counters).
    pub const MAX_SCOPED: usize = 16;
    /// The longest a step may be held: 366 days. A longer hold is a mistake (or a wish for a
    /// pause, which the ramp's `rolled_back` or a new version says better), and every time the
    /// ramp computes from it stays far from overflowing.
    pub const MAX_HOLD_S: u64 = 366 * 86_400;

    /// In a few words: its steps, its start, and whether it rolled back.
    pub fn summary(&self) -> String {
        let steps: Vec<String> = self.steps.iter().map(|s| s.share.to_string()).collect();
        let state = if self.rolled_back.is_some() { ", rolled back" } else { "" };
        format!("{} from {}{state}", steps.join(" → "), format_rfc3339(self.start_ms))
    }

    /// The step the schedule reaches at `now_ms` if no gate held any step back, and when that step
    /// began; `None` before `start`.
    pub fn scheduled(&self, now_ms: u64) -> Option<(usize, u64)> {
        if now_ms < self.start_ms {
            return None;
        }
        let mut began = self.start_ms;
        for (i, step) in self.steps.iter().enumerate() {
            let next = began.saturating_add(step.hold_s.saturating_mul(1000));
            if i + 1 == self.steps.len() || now_ms < next {
                return Some((i, began));
            }
            began = next;
        }
        None
    }
}

/// What people said about one replica's ramp (the admin API): the steps they approved, and a hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decisions {
    /// Indexes of the approval steps approved.
    pub approved: BTreeSet<usize>,
    /// While set, no step begins (a failing gate still rolls back).
    pub hold: Option<Hold>,
}

/// A pause an operator asked for, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub reason: String,
    pub by: String,
    pub since_ms: u64,
}

impl Decisions {
    /// Whether step `i` may begin as far as approvals go.
    fn allows(&self, ramp: &Ramp, i: usize) -> bool {
        !ramp.steps[i].approve || self.approved.contains(&i)
    }
}

/// Where one replica's ramp stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    /// Before `start`: the rules' own `scheduler_share` applies.
    NotStarted,
    /// At step `step` since `since_ms`; `seen_at_entry` is the scheduler's invocation count when
    /// the step began (so the step's own count is the difference).
    At { step: usize, since_ms: u64, seen_at_entry: u64 },
    /// Step `next` could begin but needs a person's approval, asked since `since_ms`. The share is
    /// the step before it (the rules' own share when `next` is the first).
    AwaitingApproval { next: usize, since_ms: u64 },
    /// Rolled back, with why.
    RolledBack { reason: String, at_ms: u64 },
}

/// What one evaluation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    None,
    Started {
        step: usize,
    },
    Advanced {
        from: usize,
        to: usize,
    },
    /// Step `step` waits for an approval.
    AwaitingApproval {
        step: usize,
    },
    RolledBack {
        reason: String,
    },
}

impl Position {
    /// Where a replica starts with these rules at `now_ms`: the scheduled step (a restart mid-ramp
    /// resumes where the schedule is) but never past an approval step not approved, or rolled
    /// back if the rules say so.
    pub fn initial(ramp: &Ramp, now_ms: u64, seen: u64, decisions: &Decisions) -> Position {
        if let Some(reason) = &ramp.rolled_back {
            return Position::RolledBack { reason: reason.clone(), at_ms: now_ms };
        }
        match ramp.scheduled(now_ms) {
            None => Position::NotStarted,
            Some((step, since_ms)) => Position::reach(ramp, step, since_ms, now_ms, seen, decisions),
        }
    }

    /// Step `step` as the schedule reaches it, held back at the first approval step on the way.
    fn reach(ramp: &Ramp, step: usize, since_ms: u64, now_ms: u64, seen: u64, decisions: &Decisions) -> Position {
        match (0..=step).find(|i| !decisions.allows(ramp, *i)) {
            None => Position::At { step, since_ms, seen_at_entry: seen },
            Some(0) => Position::AwaitingApproval { next: 0, since_ms: now_ms },
            // The step before the approval begins now: its hold and its invocations count from here.
            Some(next) => Position::At { step: next - 1, since_ms: now_ms, seen_at_entry: seen },
        }
    }

    /// The global share this position routes by (`before` is the rules' `scheduler_share`).
    pub fn share(&self, ramp: &Ramp, before: Share) -> Share {
        match self {
            Position::NotStarted | Position::AwaitingApproval { next: 0, .. } => before,
            Position::At { step, .. } => ramp.steps[*step].share,
            Position::AwaitingApproval { next, .. } => ramp.steps[next - 1].share,
            Position::RolledBack { .. } => ramp.rollback_share,
        }
    }

    /// One evaluation: a failing gate (not one that only observes) rolls back, latched; otherwise
    /// the next step begins when the hold has passed, the step has seen its invocations, every
    /// enforced gate passes, no operator holds the ramp, and, for an approval step, a person
    /// approved it. `seen` is the scheduler's invocation count so far; `readings` are the gates
    /// over the window.
    pub fn tick(
        &mut self,
        ramp: &Ramp,
        now_ms: u64,
        seen: u64,
        readings: &[Reading],
        decisions: &Decisions,
    ) -> Transition {
        let enforced = || readings.iter().filter(|r| !r.observe);
        let traffic = !matches!(self, Position::NotStarted | Position::AwaitingApproval { next: 0, .. });
        if let (true, Some(failed)) = (traffic, enforced().find(|r| r.verdict == Verdict::Fail)) {
            if !matches!(self, Position::RolledBack { .. }) {
                let reason = failed.describe(ramp.window_s);
                *self = Position::RolledBack { reason: reason.clone(), at_ms: now_ms };
                return Transition::RolledBack { reason };
            }
        }
        match self {
            Position::RolledBack { .. } => Transition::None,
            Position::NotStarted if decisions.hold.is_some() => Transition::None,
            Position::NotStarted => match ramp.scheduled(now_ms) {
                None => Transition::None,
                // Starting is the schedule's, not the gates' (there is no traffic to judge yet); a
                // replica that looks late (suspended, say) starts where the schedule is.
                Some((step, since_ms)) => {
                    *self = Position::reach(ramp, step, since_ms, now_ms, seen, decisions);
                    match self {
                        Position::AwaitingApproval { next, .. } => Transition::AwaitingApproval { step: *next },
                        Position::At { step, .. } => Transition::Started { step: *step },
                        _ => Transition::None,
                    }
                }
            },
            Position::AwaitingApproval { next, .. } => {
                let next = *next;
                if decisions.hold.is_some() || !decisions.allows(ramp, next) {
                    return Transition::None;
                }
                *self = Position::At { step: next, since_ms: now_ms, seen_at_entry: seen };
                match next {
                    0 => Transition::Started { step: 0 },
                    _ => Transition::Advanced { from: next - 1, to: next },
                }
            }
            Position::At { step, since_ms, seen_at_entry } => {
                let current = &ramp.steps[*step];
                let last = *step + 1 == ramp.steps.len();
                let held = now_ms.saturating_sub(*since_ms) >= current.hold_s.saturating_mul(1000);
                let seen_enough = seen.saturating_sub(*seen_at_entry) >= current.min_invocations;
                let all_pass = enforced().all(|r| r.verdict == Verdict::Pass);
                if last || !held || !seen_enough || !all_pass || decisions.hold.is_some() {
                    return Transition::None;
                }
                let from = *step;
                if !decisions.allows(ramp, from + 1) {
                    *self = Position::AwaitingApproval { next: from + 1, since_ms: now_ms };
                    return Transition::AwaitingApproval { step: from + 1 };
                }
                *self = Position::At { step: from + 1, since_ms: now_ms, seen_at_entry: seen };
                Transition::Advanced { from, to: from + 1 }
            }
        }
    }
}

/// The latest instant a ramp's start may name: the end of year 9999 (UTC), the last one its
/// canonical form (a four-digit year) can write back.
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;

/// Unix milliseconds of an RFC 3339 timestamp (`2026-11-30T10:00:00Z`, fractions and `±HH:MM`
/// offsets allowed). Only what the canonical form can write back is accepted: a date that exists,
/// an offset within ±23:59, and an instant from 1970 to the end of 9999 in UTC.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not an RFC 3339 time (like 2026-11-30T10:00:00Z) from 1970 to 9999");
    // A field of exactly `n` ASCII digits.
    let digits = |s: &str, n: usize| {
        (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<i64>().ok()).flatten().ok_or_else(bad)
    };
    let t = text.trim();
    let (date, rest) = t.split_once(['T', 't', ' ']).ok_or_else(bad)?;
    let mut d = date.splitn(3, '-');
    let y = digits(d.next().unwrap_or_default(), 4)?;
    let mo = digits(d.next().unwrap_or_default(), 2)?;
    let da = digits(d.next().unwrap_or_default(), 2)?;
    let (clock, offset_s) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = rest.rfind(['+', '-']).ok_or_else(bad)?;
        let (c, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':').ok_or_else(bad)?;
        let (h, m) = (digits(h, 2)?, digits(m, 2)?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        (c, sign * (h * 3600 + m * 60))
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut c = hms.splitn(3, ':');
    let h = digits(c.next().unwrap_or_default(), 2)?;
    let mi = digits(c.next().unwrap_or_default(), 2)?;
    let s = digits(c.next().unwrap_or_default(), 2)?;
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match mo {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let valid = (1..=12).contains(&mo)
        && (1..=month_days).contains(&da)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..=60).contains(&s)
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err(bad());
    }
    let millis = format!("{frac:0<3}")[..3].parse::<i64>().unwrap_or(0);
    // Days from the civil date (Howard Hinnant's algorithm).
    let (yy, mm) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_s;
    u64::try_from(secs * 1000 + millis).ok().filter(|ms| *ms <= MAX_TIME_MS).ok_or_else(bad)
}

/// RFC 3339 (UTC, milliseconds) of unix milliseconds: how a ramp's start is written back.
pub fn format_rfc3339(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let frac = ms % 1000;
    let time = format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{time}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{time}.{frac:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::Gate;

    /// No approval, no hold.
    #[allow(non_upper_case_globals)]
    const none: Decisions = Decisions { approved: BTreeSet::new(), hold: None };

    fn pct(p: u32) -> Share {
        Share::from_ppm(p * 10_000).unwrap()
    }

    fn ramp() -> Ramp {
        Ramp {
            start_ms: 1_000_000,
            steps: vec![
                Step { share: pct(5), hold_s: 10, min_invocations: 0, approve: false },
                Step { share: pct(25), hold_s: 10, min_invocations: 100, approve: false },
                Step { share: pct(100), hold_s: 0, min_invocations: 0, approve: false },
            ],
            window_s: 60,
            rollback_share: Share::ZERO,
            rolled_back: None,
            gates: Gates::default(),
        }
    }

    fn reading(verdict: Verdict) -> Reading {
        Reading {
            gate: Gate::PlatformFailure,
            verdict,
            value: Some(0.5),
            legacy: Some(0.0),
            threshold: Some(0.01),
            samples: 100,
            min_samples: 50,
            observe: false,
        }
    }

    #[test]
    fn the_schedule_is_a_function_of_the_clock() {
        let r = ramp();
        assert_eq!(r.scheduled(999_999), None);
        assert_eq!(r.scheduled(1_000_000), Some((0, 1_000_000)));
        assert_eq!(r.scheduled(1_009_999), Some((0, 1_000_000)));
        assert_eq!(r.scheduled(1_010_000), Some((1, 1_010_000)));
        assert_eq!(r.scheduled(5_000_000), Some((2, 1_020_000)));
        assert_eq!(
            Position::initial(&r, 1_015_000, 7, &none),
            Position::At { step: 1, since_ms: 1_010_000, seen_at_entry: 7 }
        );
    }

    #[test]
    fn steps_advance_on_hold_invocations_and_passing_gates() {
        let r = ramp();
        let mut p = Position::initial(&r, 900_000, 0, &none);
        assert_eq!(p.share(&r, pct(1)), pct(1), "before start: the rules' own share");
        assert_eq!(p.tick(&r, 1_000_000, 0, &[], &none), Transition::Started { step: 0 });
        let pass = [reading(Verdict::Pass)];
        let hold = [reading(Verdict::Hold)];
        assert_eq!(p.tick(&r, 1_005_000, 0, &pass, &none), Transition::None, "hold time not over");
        assert_eq!(p.tick(&r, 1_011_000, 0, &hold, &none), Transition::None, "a gate without samples holds");
        assert_eq!(p.tick(&r, 1_012_000, 10, &pass, &none), Transition::Advanced { from: 0, to: 1 });
        assert_eq!(p.share(&r, pct(1)), pct(25));
        assert_eq!(
            p.tick(&r, 1_030_000, 60, &pass, &none),
            Transition::None,
            "50 invocations at this step, 100 needed"
        );
        assert_eq!(p.tick(&r, 1_031_000, 110, &pass, &none), Transition::Advanced { from: 1, to: 2 });
        assert_eq!(p.tick(&r, 9_000_000, 500, &pass, &none), Transition::None, "the last step stays");
        let Transition::RolledBack { reason } = p.tick(&r, 9_000_001, 500, &[reading(Verdict::Fail)], &none) else {
            panic!("a failing gate rolls back")
        };
        assert!(reason.starts_with("gate platform_failure fail: scheduler 0.5000"), "{reason}");
        assert_eq!(p.share(&r, pct(1)), Share::ZERO);
        assert_eq!(p.tick(&r, 9_100_000, 900, &pass, &none), Transition::None, "latched");
    }

    #[test]
    fn an_approval_step_waits_for_a_person_and_a_hold_pauses_advancing() {
        let mut r = ramp();
        r.steps[1].approve = true;
        let pass = [reading(Verdict::Pass)];
        let mut p = Position::initial(&r, 1_000_000, 0, &none);
        assert_eq!(p, Position::At { step: 0, since_ms: 1_000_000, seen_at_entry: 0 });
        assert_eq!(p.tick(&r, 1_011_000, 10, &pass, &none), Transition::AwaitingApproval { step: 1 });
        assert_eq!(p.share(&r, pct(1)), pct(5), "waiting routes by the step before");
        assert_eq!(p.tick(&r, 1_500_000, 900, &pass, &none), Transition::None, "no approval, no step");
        let approved = Decisions { approved: BTreeSet::from([1]), hold: None };
        let hold = Hold { reason: "change freeze".into(), by: "admin API".into(), since_ms: 1_500_000 };
        let held = Decisions { hold: Some(hold), ..approved.clone() };
        assert_eq!(p.tick(&r, 1_500_100, 900, &pass, &held), Transition::None, "a hold keeps it waiting");
        assert_eq!(p.tick(&r, 1_500_200, 900, &pass, &approved), Transition::Advanced { from: 0, to: 1 });
        assert_eq!(p.tick(&r, 1_600_000, 2000, &pass, &held), Transition::None, "a hold pauses advancing");
        assert_eq!(p.tick(&r, 1_600_100, 2000, &pass, &approved), Transition::Advanced { from: 1, to: 2 });
        // While waiting, a failing gate still rolls back: traffic flows at the step before.
        let mut waiting = Position::AwaitingApproval { next: 1, since_ms: 0 };
        assert!(matches!(waiting.tick(&r, 1, 1, &[reading(Verdict::Fail)], &none), Transition::RolledBack { .. }));
    }

    #[test]
    fn a_restart_never_passes_an_approval_step_the_schedule_reached() {
        let mut r = ramp();
        r.steps[1].approve = true;
        assert_eq!(
            Position::initial(&r, 5_000_000, 7, &none),
            Position::At { step: 0, since_ms: 5_000_000, seen_at_entry: 7 },
            "the step before the approval, begun now"
        );
        r.steps[0].approve = true;
        let mut p = Position::initial(&r, 5_000_000, 7, &none);
        assert_eq!(p, Position::AwaitingApproval { next: 0, since_ms: 5_000_000 });
        assert_eq!(p.share(&r, pct(1)), pct(1), "nothing moved before the first approval");
        let first = Decisions { approved: BTreeSet::from([0]), hold: None };
        assert_eq!(p.tick(&r, 5_000_250, 7, &[], &first), Transition::Started { step: 0 });
    }

    #[test]
    fn a_gate_that_observes_neither_holds_nor_rolls_back() {
        let r = ramp();
        let observed = Reading { observe: true, ..reading(Verdict::Fail) };
        let mut p = Position::At { step: 0, since_ms: 1_000_000, seen_at_entry: 0 };
        assert_eq!(
            p.tick(&r, 1_011_000, 0, &[reading(Verdict::Pass), observed.clone()], &none),
            Transition::Advanced { from: 0, to: 1 }
        );
        assert!(
            observed.describe(60).starts_with("gate platform_failure (observe only) fail"),
            "{}",
            observed.describe(60)
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_rfc3339("2026-11-30T10:00:00Z").unwrap(), 1_796_032_800_000);
        assert_eq!(parse_rfc3339("2026-11-30T11:00:00.5+01:00").unwrap(), 1_796_032_800_500);
        for ms in [0, 1_796_032_800_000, 1_796_032_800_123, 951_782_400_000] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)).unwrap(), ms);
        }
        for bad in ["2026-13-01T00:00:00Z", "yesterday", "2026-11-30", "2026-11-30T25:00:00Z"] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_start_is_only_accepted_when_its_canonical_form_can_write_it_back() {
        for bad in [
            "9999-12-31T23:59:59-99:00",
            "2026-01-01T00:00:00+99999999999999:00",
            "2026-01-01T00:00:00+99:00",
            "2026-01-01T00:00:00-9999:00",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+01:60",
            "2026-02-31T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "9999-12-31T23:59:59-00:01",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",
            "+2026-01-01T00:00:00Z",
            "26-01-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z").unwrap(), 1_709_164_800_000);
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59.999Z").unwrap(), MAX_TIME_MS);
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59+23:59").unwrap(), MAX_TIME_MS - 999 - 86_340_000);
        // Whatever is accepted is written back as the same instant, and read again unchanged.
        for ok in ["2026-11-30T11:00:00.5+01:00", "9999-12-31T23:59:59.999Z", "2000-02-29T12:00:00-05:30"] {
            let ms = parse_rfc3339(ok).unwrap();
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)).unwrap(), ms, "{ok}");
        }
    }
}

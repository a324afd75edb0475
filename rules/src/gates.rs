//! The ramp's gates. Each kind of gate is one type with everything about it together: its
//! settings and defaults, its table in a rule document (read with every error, written back in
//! canonical form) and its evaluation over the window.
//!
//! Adding a gate: a variant of [`Gate`] (its label), a field of [`Gates`] and of [`GatesDocument`],
//! and its line in [`Gates::read`], `Gates::compile` and `Gates::document`, all in this file; a
//! new kind of gate is a type like the three below. What it reads goes in [`Signals`], which the
//! proxy's ramp window counts (`proxy/src/control/ramp/window.rs`).

use serde_json::Value;

use crate::error::Collector;
use crate::field::{document, parsed, text, Field, FieldType, Number};
use crate::pool::Pool;

/// Which gate (a label: metrics, the audit log, `GET /ramp`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
pub enum Gate {
    /// Platform failures: 5xx, system-written records, capacity drops, no answer.
    PlatformFailure,
    /// 429s and capacity drops.
    Throttled,
    /// Blocking calls answered 202 after the wait.
    Queued,
    /// Shadow comparisons with a real difference.
    Mismatch,
    /// The scheduler's p99 latency.
    Latency,
}

impl Gate {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a replica measured over the gates' window. Per-pool arrays are indexed by [`Pool::index`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    pub invocations: [u64; 2],
    pub platform_failures: [u64; 2],
    pub throttled: [u64; 2],
    pub queued: [u64; 2],
    /// Shadow comparisons of both answers, and those with a real difference.
    pub compared: u64,
    pub mismatched: u64,
    /// p99 latency (ms) and how many latencies it is taken from.
    pub p99_ms: [Option<f64>; 2],
    pub latency_samples: [u64; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Too few samples to say: the ramp neither advances nor rolls back on this gate.
    Hold,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Hold => "hold",
            Verdict::Fail => "fail",
        }
    }

    /// Hold below `min_samples`; otherwise fail when `value` is above `threshold`.
    fn of(samples: u64, min_samples: u64, value: f64, threshold: f64) -> Verdict {
        if samples < min_samples {
            Verdict::Hold
        } else if value > threshold {
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    }
}

/// Whether a gate acts on the ramp, or is only evaluated and shown ("would have rolled back"):
/// for tuning a threshold on real traffic before trusting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Enforce,
    Observe,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Observe => "observe",
        }
    }

    /// Written only when it observes: rules without the field keep their canonical form.
    fn document(self) -> Field<Mode> {
        if self == Mode::Observe {
            Field::Value(self)
        } else {
            Field::Absent
        }
    }
}

impl FieldType for Mode {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let m = match text(v, path, c)? {
            "enforce" => Ok(Mode::Enforce),
            "observe" => Ok(Mode::Observe),
            other => Err(format!("`{other}` is not a gate mode (expected enforce or observe)")),
        };
        parsed(m, path, c)
    }
    fn write(&self) -> Value {
        Value::String(self.as_str().to_string())
    }
}

/// One gate's reading over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub gate: Gate,
    pub verdict: Verdict,
    /// The scheduler's value (a ratio, a rate, or milliseconds for latency).
    pub value: Option<f64>,
    /// Legacy's value, where the gate compares against it.
    pub legacy: Option<f64>,
    pub threshold: Option<f64>,
    pub samples: u64,
    pub min_samples: u64,
    /// The gate only observes: a failure is reported, never acted on.
    pub observe: bool,
}

impl Reading {
    /// One line for logs and the audit trail.
    pub fn describe(&self, window_s: u64) -> String {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        format!(
            "gate {}{} {}: scheduler {} (legacy {}), threshold {}, {} samples over {window_s} s",
            self.gate.as_str(),
            if self.observe { " (observe only)" } else { "" },
            self.verdict.as_str(),
            f(self.value),
            f(self.legacy),
            f(self.threshold),
            self.samples
        )
    }
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// A number field: `None` when it did not read, else the value if written.
fn number(f: &Field<Number>) -> Option<Option<f64>> {
    match f {
        Field::Invalid => None,
        f => Some(f.value().map(|n| n.0)),
    }
}

/// `min_samples`: `None` when it did not read, else the value written or `default`.
fn samples(f: &Field<u64>, default: u64) -> Option<u64> {
    (!f.is_invalid()).then(|| f.value().copied().unwrap_or(default))
}

/// `mode`: `None` when it did not read, else the mode written or enforce.
fn mode(f: &Field<Mode>) -> Option<Mode> {
    (!f.is_invalid()).then(|| f.value().copied().unwrap_or_default())
}

fn written(v: Option<f64>) -> Field<Number> {
    v.map_or(Field::Absent, |v| Field::Value(Number(v)))
}

/// "The scheduler's ratio must stay at most `legacy ratio × factor + excess`", over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioGate {
    pub factor: f64,
    pub excess: f64,
    /// Scheduler invocations in the window before the gate may pass or fail.
    pub min_samples: u64,
    pub mode: Mode,
}

document! {
    /// A gate comparing the scheduler's ratio with legacy's: at most `legacy × factor + excess`.
    RatioGateDocument {
        factor: Number,
        excess: Number,
        min_samples: u64,
        mode: Mode,
    }
}

impl RatioGate {
    pub const PLATFORM_FAILURE: RatioGate =
        RatioGate { factor: 2.0, excess: 0.01, min_samples: 50, mode: Mode::Enforce };
    pub const THROTTLED: RatioGate = RatioGate { factor: 2.0, excess: 0.02, min_samples: 50, mode: Mode::Enforce };
    pub const QUEUED: RatioGate = RatioGate { factor: 2.0, excess: 0.02, min_samples: 50, mode: Mode::Enforce };

    /// Always on: a table left out is `default`, and so is each field left out.
    fn compile(f: &Field<RatioGateDocument>, default: RatioGate, path: &str, c: &mut Collector) -> Option<RatioGate> {
        let d = match f {
            Field::Absent => return Some(default),
            Field::Invalid => return None,
            Field::Value(d) => d,
        };
        let gate = RatioGate {
            factor: number(&d.factor)?.unwrap_or(default.factor),
            excess: number(&d.excess)?.unwrap_or(default.excess),
            min_samples: samples(&d.min_samples, default.min_samples)?,
            mode: mode(&d.mode)?,
        };
        if gate.excess > 1.0 {
            c.error(&format!("{path}.excess"), "a ratio: 0 to 1");
        }
        Some(gate)
    }

    fn document(&self) -> Field<RatioGateDocument> {
        Field::Value(RatioGateDocument {
            factor: written(Some(self.factor)),
            excess: written(Some(self.excess)),
            min_samples: Field::Value(self.min_samples),
            mode: self.mode.document(),
        })
    }

    fn read(&self, gate: Gate, counts: &[u64; 2], s: &Signals) -> Reading {
        let (l, sch) = (Pool::Legacy.index(), Pool::Scheduler.index());
        let samples = s.invocations[sch];
        let value = ratio(counts[sch], samples);
        let legacy = ratio(counts[l], s.invocations[l]);
        let threshold = legacy * self.factor + self.excess;
        Reading {
            gate,
            verdict: Verdict::of(samples, self.min_samples, value, threshold),
            value: Some(value),
            legacy: Some(legacy),
            threshold: Some(threshold),
            samples,
            min_samples: self.min_samples,
            observe: self.mode == Mode::Observe,
        }
    }
}

/// "The shadow mismatch rate (real differences only) must stay at most `max`".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateGate {
    pub max: f64,
    pub min_samples: u64,
    pub mode: Mode,
}

document! {
    /// A gate on the shadow mismatch rate.
    RateGateDocument {
        max: Number => required "the highest mismatch rate that passes (0 to 1)",
        min_samples: u64,
        mode: Mode,
    }
}

impl RateGate {
    /// Comparisons in the window before the gate may pass or fail.
    pub const DEFAULT_MIN_SAMPLES: u64 = 20;

    /// On when written.
    fn compile(f: &Field<RateGateDocument>, path: &str, c: &mut Collector) -> Option<Option<RateGate>> {
        let d = match f {
            Field::Absent => return Some(None),
            Field::Invalid => return None,
            Field::Value(d) => d,
        };
        let max = number(&d.max)?.unwrap_or(0.0);
        if max > 1.0 {
            c.error(&format!("{path}.max"), "a rate: 0 to 1");
        }
        let min_samples = samples(&d.min_samples, Self::DEFAULT_MIN_SAMPLES)?;
        Some(Some(RateGate { max, min_samples, mode: mode(&d.mode)? }))
    }

    fn document(&self) -> Field<RateGateDocument> {
        Field::Value(RateGateDocument {
            max: written(Some(self.max)),
            min_samples: Field::Value(self.min_samples),
            mode: self.mode.document(),
        })
    }

    fn read(&self, s: &Signals) -> Reading {
        let value = ratio(s.mismatched, s.compared);
        Reading {
            gate: Gate::Mismatch,
            verdict: Verdict::of(s.compared, self.min_samples, value, self.max),
            value: Some(value),
            legacy: None,
            threshold: Some(self.max),
            samples: s.compared,
            min_samples: self.min_samples,
            observe: self.mode == Mode::Observe,
        }
    }
}

/// "The scheduler's p99 must stay under `max_p99_ms`, and under legacy's p99 × `factor`".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyGate {
    pub max_p99_ms: Option<f64>,
    pub factor: Option<f64>,
    pub min_samples: u64,
    pub mode: Mode,
}

document! {
    /// A gate on the scheduler's p99 latency.
    LatencyGateDocument {
        max_p99_ms: Number,
        factor: Number,
        min_samples: u64,
        mode: Mode,
    }
}

impl LatencyGate {
    /// Latencies in the window (on each path) before the gate may pass or fail.
    pub const DEFAULT_MIN_SAMPLES: u64 = 50;

    /// On when written, with a bound or a factor or both.
    fn compile(f: &Field<LatencyGateDocument>, path: &str, c: &mut Collector) -> Option<Option<LatencyGate>> {
        let d = match f {
            Field::Absent => return Some(None),
            Field::Invalid => return None,
            Field::Value(d) => d,
        };
        let (max_p99_ms, factor) = (number(&d.max_p99_ms)?, number(&d.factor)?);
        if max_p99_ms.is_none() && factor.is_none() {
            c.error(path, "set max_p99_ms, factor (against legacy's p99), or both");
        }
        let min_samples = samples(&d.min_samples, Self::DEFAULT_MIN_SAMPLES)?;
        Some(Some(LatencyGate { max_p99_ms, factor, min_samples, mode: mode(&d.mode)? }))
    }

    fn document(&self) -> Field<LatencyGateDocument> {
        Field::Value(LatencyGateDocument {
            max_p99_ms: written(self.max_p99_ms),
            factor: written(self.factor),
            min_samples: Field::Value(self.min_samples),
            mode: self.mode.document(),
        })
    }

    fn read(&self, s: &Signals) -> Reading {
        let (l, sch) = (Pool::Legacy.index(), Pool::Scheduler.index());
        let legacy = s.p99_ms[l].filter(|_| s.latency_samples[l] >= self.min_samples);
        let relative = self.factor.zip(legacy).map(|(f, p)| f * p);
        let threshold = match (self.max_p99_ms, relative) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let samples = s.latency_samples[sch];
        let value = s.p99_ms[sch];
        let verdict = match (value, threshold) {
            (Some(v), Some(t)) => Verdict::of(samples, self.min_samples, v, t),
            _ => Verdict::Hold,
        };
        let (min_samples, observe) = (self.min_samples, self.mode == Mode::Observe);
        Reading { gate: Gate::Latency, verdict, value, legacy, threshold, samples, min_samples, observe }
    }
}

/// A ramp's gates. The three ratio gates are always on (with defaults); the others when written.
#[derive(Debug, Clone, PartialEq)]
pub struct Gates {
    pub platform_failure: RatioGate,
    pub throttled: RatioGate,
    pub queued: RatioGate,
    pub mismatch: Option<RateGate>,
    pub latency: Option<LatencyGate>,
}

document! {
    /// The gates (`ramp.gates`).
    GatesDocument {
        platform_failure: RatioGateDocument,
        throttled: RatioGateDocument,
        queued: RatioGateDocument,
        mismatch: RateGateDocument,
        latency: LatencyGateDocument,
    }
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            platform_failure: RatioGate::PLATFORM_FAILURE,
            throttled: RatioGate::THROTTLED,
            queued: RatioGate::QUEUED,
            mismatch: None,
            latency: None,
        }
    }
}

impl Gates {
    /// Every gate's reading, in declaration order (unset gates left out).
    pub fn read(&self, s: &Signals) -> Vec<Reading> {
        let mut out = vec![
            self.platform_failure.read(Gate::PlatformFailure, &s.platform_failures, s),
            self.throttled.read(Gate::Throttled, &s.throttled, s),
            self.queued.read(Gate::Queued, &s.queued, s),
        ];
        out.extend(self.mismatch.map(|g| g.read(s)));
        out.extend(self.latency.map(|g| g.read(s)));
        out
    }

    /// `<at>.gates` as written (left out: the defaults); every problem is collected under `at`
    /// (`ramp`, or `overrides[i].ramp`).
    pub(crate) fn compile(f: &Field<GatesDocument>, at: &str, c: &mut Collector) -> Option<Gates> {
        let g = match f {
            Field::Absent => return Some(Gates::default()),
            Field::Invalid => return None,
            Field::Value(g) => g,
        };
        let path = |gate: Gate| format!("{at}.gates.{}", gate.as_str());
        let platform_failure =
            RatioGate::compile(&g.platform_failure, RatioGate::PLATFORM_FAILURE, &path(Gate::PlatformFailure), c);
        let throttled = RatioGate::compile(&g.throttled, RatioGate::THROTTLED, &path(Gate::Throttled), c);
        let queued = RatioGate::compile(&g.queued, RatioGate::QUEUED, &path(Gate::Queued), c);
        let mismatch = RateGate::compile(&g.mismatch, &path(Gate::Mismatch), c);
        let latency = LatencyGate::compile(&g.latency, &path(Gate::Latency), c);
        Some(Gates {
            platform_failure: platform_failure?,
            throttled: throttled?,
            queued: queued?,
            mismatch: mismatch?,
            latency: latency?,
        })
    }

    /// The canonical table: every gate written, defaults included.
    pub(crate) fn document(&self) -> Field<GatesDocument> {
        Field::Value(GatesDocument {
            platform_failure: self.platform_failure.document(),
            throttled: self.throttled.document(),
            queued: self.queued.document(),
            mismatch: self.mismatch.map_or(Field::Absent, |g| g.document()),
            latency: self.latency.map_or(Field::Absent, |g| g.document()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_gates_compare_with_legacy_and_wait_for_samples() {
        let gates = Gates::default();
        let mut s = Signals { invocations: [1000, 40], platform_failures: [10, 20], ..Signals::default() };
        assert_eq!(gates.read(&s)[0].verdict, Verdict::Hold, "40 of 50 samples");
        s.invocations[1] = 100;
        let r = &gates.read(&s)[0];
        assert_eq!((r.verdict, r.threshold), (Verdict::Fail, Some(0.01 * 2.0 + 0.01)));
        s.platform_failures[1] = 3;
        assert_eq!(gates.read(&s)[0].verdict, Verdict::Pass, "3 % against legacy's 1 % × 2 + 1 %");
    }

    #[test]
    fn latency_and_mismatch_gates() {
        let gates = Gates {
            mismatch: Some(RateGate { max: 0.01, min_samples: 10, mode: Mode::Enforce }),
            latency: Some(LatencyGate {
                max_p99_ms: Some(500.0),
                factor: Some(1.5),
                min_samples: 10,
                mode: Mode::Enforce,
            }),
            ..Gates::default()
        };
        let s = Signals {
            invocations: [100, 100],
            compared: 20,
            mismatched: 1,
            p99_ms: [Some(100.0), Some(160.0)],
            latency_samples: [100, 100],
            ..Signals::default()
        };
        let r = gates.read(&s);
        assert_eq!((r[3].gate, r[3].verdict), (Gate::Mismatch, Verdict::Fail));
        assert_eq!((r[4].gate, r[4].verdict, r[4].threshold), (Gate::Latency, Verdict::Fail, Some(150.0)));
    }
}

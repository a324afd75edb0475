//! The ramp, run by this replica: where it stands for the accepted rules, the gates' readings, and
//! the task that evaluates them every tick. The schedule and the gate rules are the rules crate's
//! (`switchyard_rules::Ramp`, pure); the position lives in rule control beside the kill latch, so a
//! step change is one more snapshot swap and a request never sees a half-applied ramp.

pub mod driver;
pub mod window;

use std::time::SystemTime;

use serde_json::{json, Value};
use strum::IntoEnumIterator;
use switchyard_rules::{format_rfc3339, Gate, Position, Ramp, Reading, RuleSet, Share, Transition};

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// One replica's ramp for the accepted rules.
#[derive(Debug, Clone)]
pub struct RampTrack {
    pub position: Position,
    /// The gates over the last window, as read at the last tick.
    pub readings: Vec<Reading>,
    /// The scheduler's invocations so far, at the last tick.
    pub seen: u64,
}

impl RampTrack {
    pub fn new(ramp: &Ramp, now_ms: u64, seen: u64) -> RampTrack {
        RampTrack { position: Position::initial(ramp, now_ms, seen), readings: Vec::new(), seen }
    }

    /// The global share the data plane routes by while this track stands.
    pub fn share(&self, rules: &RuleSet) -> Option<Share> {
        rules.ramp.as_ref().map(|ramp| self.position.share(ramp, rules.scheduler_share))
    }

    pub fn step(&self) -> Option<usize> {
        match self.position {
            Position::At { step, .. } => Some(step),
            _ => None,
        }
    }

    /// The gate whose failure rolled the ramp back (from its reason text).
    pub fn failed_gate(reason: &str) -> Option<Gate> {
        Gate::iter().find(|g| reason.starts_with(&format!("gate {} ", g.as_str())))
    }

    /// `GET /ramp`.
    pub fn to_json(&self, ramp: &Ramp, rules: &RuleSet, now_ms: u64) -> Value {
        let (state, step, next_in_s, rollback) = match &self.position {
            Position::NotStarted => {
                ("not_started", None, Some(ramp.start_ms.saturating_sub(now_ms) as f64 / 1000.0), None)
            }
            Position::At { step, since_ms, seen_at_entry } => {
                let s = &ramp.steps[*step];
                let last = step + 1 == ramp.steps.len();
                let hold_left = (since_ms + s.hold_s * 1000).saturating_sub(now_ms) as f64 / 1000.0;
                let seen = self.seen.saturating_sub(*seen_at_entry);
                let state = if last { "complete" } else { "advancing" };
                let detail = json!({"index": step, "share": s.share.to_string(), "since": format_rfc3339(*since_ms),
                    "hold_s": s.hold_s, "invocations": seen, "min_invocations": s.min_invocations});
                (state, Some(detail), (!last).then_some(hold_left), None)
            }
            Position::RolledBack { reason, at_ms } => (
                "rolled_back",
                None,
                None,
                Some(json!({"reason": reason, "at": format_rfc3339(*at_ms),
                    "gate": RampTrack::failed_gate(reason).map(Gate::as_str),
                    "in_rules": ramp.rolled_back.is_some()})),
            ),
        };
        let gates: Vec<Value> = self
            .readings
            .iter()
            .map(|r| {
                json!({"gate": r.gate.as_str(), "verdict": r.verdict.as_str(), "scheduler": r.value, "legacy": r.legacy,
                    "threshold": r.threshold, "samples": r.samples, "min_samples": r.min_samples})
            })
            .collect();
        json!({
            "version": rules.version,
            "state": state,
            "share": self.share(rules).map(|s| s.to_string()),
            "start": format_rfc3339(ramp.start_ms),
            "steps": ramp.steps.iter().map(|s| json!({"share": s.share.to_string(), "hold_s": s.hold_s,
                "min_invocations": s.min_invocations})).collect::<Vec<_>>(),
            "step": step,
            "next_step_in_s": next_in_s,
            "window_s": ramp.window_s,
            "rollback_share": ramp.rollback_share.to_string(),
            "gates": gates,
            "rollback": rollback,
        })
    }
}

/// A transition as the audit log says it.
pub fn describe(t: &Transition, ramp: &Ramp) -> Option<String> {
    match t {
        Transition::None => None,
        Transition::Started { step } => Some(format!("ramp started at step {step} ({})", ramp.steps[*step].share)),
        Transition::Advanced { from, to } => Some(format!(
            "ramp advanced from step {from} ({}) to step {to} ({})",
            ramp.steps[*from].share, ramp.steps[*to].share
        )),
        Transition::RolledBack { reason } => {
            Some(format!("ramp rolled back to {} by this replica: {reason}", ramp.rollback_share))
        }
    }
}

//! The ramp, run by this replica: where it stands for the accepted rules, the gates' readings, and
//! the task that evaluates them every tick. The schedule and the gate rules are the rules crate's
//! (`switchyard_rules::Ramp`, pure); the position lives in rule control beside the kill latch, so a
//! step change is one more snapshot swap and a request never sees a half-applied ramp.

pub mod driver;
pub mod window;

use std::collections::VecDeque;

use serde_json::{json, Value};
use strum::IntoEnumIterator;
use switchyard_rules::{
    format_rfc3339, Decisions, Gate, Position, Ramp, RampScope, Reading, RuleSet, Share, Transition, Verdict,
};

use crate::ops::notify::{Event, EventKind};

/// One replica's ramp for the accepted rules.
#[derive(Debug, Clone)]
pub struct RampTrack {
    pub position: Position,
    /// The gates over the last window, as read at the last tick.
    pub readings: Vec<Reading>,
    /// The scheduler's invocations so far, at the last tick.
    pub seen: u64,
    /// What operators said: approvals and a hold (this replica's, for these rules).
    pub decisions: Decisions,
    /// The observe-only gates failing at the last tick ("would have rolled back"), so each
    /// failure is said once, when it begins.
    pub would_roll_back: Vec<Gate>,
    /// The last step whose gates were said to hold it.
    pub held_by_gates_said: Option<usize>,
    /// What happened to this ramp on this replica, oldest first: at most [`MAX_HISTORY`] events.
    pub history: VecDeque<Noted>,
    /// After an operator resumed it, the gates judge nothing until their window holds only what
    /// came after (the failures that rolled it back would roll it back again at once).
    pub quiet_until_ms: u64,
}

/// An operator's call on the ramp as the fleet shares it: a record on the rules topic, so an
/// approval or a hold given to one replica reaches every replica (and survives their restarts,
/// which read the topic again). It applies to the rules version it names only.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetCall {
    pub rules_version: String,
    pub call: Call,
    /// Who made it, on which replica.
    pub by: String,
    /// The replica that made it (a random id per start), which already applied it.
    pub origin: u64,
    /// Which ramp: an override's name (`RuleSet::scope_name`); absent for the global ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Call {
    Approve { step: usize },
    Hold { reason: String },
    Release,
}

/// The media type of a [`FleetCall`] record on the rules topic.
pub const FLEET_CALL_MEDIA: &str = "application/vnd.switchyard.ramp-call+json";

/// One event of a ramp's history.
#[derive(Debug, Clone)]
pub struct Noted {
    pub at_ms: u64,
    pub kind: EventKind,
    /// What the audit log said.
    pub said: String,
    /// A few words for a time axis ("step 2 (50%)", "rolled back").
    pub label: String,
}

/// The ramp events `GET /ramp` keeps; older ones are forgotten (the audit log has them all).
pub const MAX_HISTORY: usize = 100;

impl RampTrack {
    pub fn new(ramp: &Ramp, now_ms: u64, seen: u64) -> RampTrack {
        let decisions = Decisions::default();
        let position = Position::initial(ramp, now_ms, seen, &decisions);
        RampTrack {
            position,
            readings: Vec::new(),
            seen,
            decisions,
            would_roll_back: Vec::new(),
            held_by_gates_said: None,
            history: VecDeque::new(),
            quiet_until_ms: 0,
        }
    }

    /// The share the data plane routes this ramp's scope by while this track stands (`before`:
    /// the scope's share as the rules write it).
    pub fn share(&self, ramp: &Ramp, before: Share) -> Share {
        self.position.share(ramp, before)
    }

    pub fn step(&self) -> Option<usize> {
        match self.position {
            Position::At { step, .. } => Some(step),
            Position::AwaitingApproval { next, .. } => next.checked_sub(1),
            _ => None,
        }
    }

    /// Keeps `event` in the history.
    pub fn note(&mut self, event: &Event) {
        if self.history.len() == MAX_HISTORY {
            self.history.pop_front();
        }
        let step = |s: &Value| format!("step {} ({})", s["index"], s["share"].as_str().unwrap_or("?"));
        let label = match event.kind {
            EventKind::RampStarted | EventKind::Completed => step(&event.detail["step"]),
            EventKind::StepAdvanced => step(&event.detail["to"]),
            EventKind::AwaitingApproval => format!("awaiting approval of {}", step(&event.detail["step"])),
            other => other.as_str().trim_start_matches("ramp.").replace('_', " "),
        };
        self.history.push_back(Noted { at_ms: event.time_ms, kind: event.kind, said: event.summary.clone(), label });
    }

    /// The history as marks on a time axis (the report page), each label after `prefix`.
    pub fn marks(&self, prefix: &str) -> Vec<switchyard_shadow::Mark> {
        self.history
            .iter()
            .map(|n| switchyard_shadow::Mark { at_ms: n.at_ms, label: format!("{prefix}{}", n.label) })
            .collect()
    }

    /// The state `GET /ramp` names.
    pub fn state(&self) -> &'static str {
        match self.position {
            Position::NotStarted => "not_started",
            Position::At { .. } => "advancing",
            Position::AwaitingApproval { .. } => "awaiting_approval",
            Position::RolledBack { .. } => "rolled_back",
        }
    }

    /// When the step's hold has passed but a gate keeps the next step from beginning: the step and
    /// the gates that do not pass, once per step.
    pub fn newly_held_by_gates(&mut self, ramp: &Ramp, now_ms: u64) -> Option<(usize, Vec<Reading>)> {
        let Position::At { step, since_ms, .. } = self.position else { return None };
        let due = step + 1 < ramp.steps.len() && now_ms.saturating_sub(since_ms) >= ramp.steps[step].hold_s * 1000;
        let waiting: Vec<Reading> =
            self.readings.iter().filter(|r| !r.observe && r.verdict != Verdict::Pass).cloned().collect();
        if !due || waiting.is_empty() || self.held_by_gates_said == Some(step) {
            return None;
        }
        self.held_by_gates_said = Some(step);
        Some((step, waiting))
    }

    /// The observe-only gates that fail now and did not at the last tick; remembers them.
    pub fn newly_would_roll_back(&mut self) -> Vec<Reading> {
        let failing: Vec<&Reading> = self.readings.iter().filter(|r| r.observe && r.verdict == Verdict::Fail).collect();
        let new = failing.iter().filter(|r| !self.would_roll_back.contains(&r.gate)).map(|r| (*r).clone()).collect();
        self.would_roll_back = failing.iter().map(|r| r.gate).collect();
        new
    }

    /// The gate whose failure rolled the ramp back (from its reason text).
    pub fn failed_gate(reason: &str) -> Option<Gate> {
        Gate::iter().find(|g| reason.starts_with(&format!("gate {} ", g.as_str())))
    }

    /// One ramp of `GET /ramp` (`None` when the rules have no ramp in `scope`).
    pub fn to_json(&self, rules: &RuleSet, scope: RampScope, now_ms: u64) -> Option<Value> {
        let ramp = rules.ramp_of(scope)?;
        // The step it is at, the step it waits to begin, when the next may begin, the rollback.
        let (state, step, awaiting, next_in_s, rollback) = match &self.position {
            Position::NotStarted => {
                ("not_started", None, None, Some(ramp.start_ms.saturating_sub(now_ms) as f64 / 1000.0), None)
            }
            Position::At { step, since_ms, seen_at_entry } => {
                let s = &ramp.steps[*step];
                let last = step + 1 == ramp.steps.len();
                let hold_left = (since_ms + s.hold_s * 1000).saturating_sub(now_ms) as f64 / 1000.0;
                let seen = self.seen.saturating_sub(*seen_at_entry);
                let state = if last { "complete" } else { "advancing" };
                let detail = json!({"index": step, "share": s.share.to_string(), "since": format_rfc3339(*since_ms),
                    "hold_s": s.hold_s, "invocations": seen, "min_invocations": s.min_invocations});
                (state, Some(detail), None, (!last).then_some(hold_left), None)
            }
            Position::AwaitingApproval { next, since_ms } => {
                let detail = json!({"index": next, "share": ramp.steps[*next].share.to_string(),
                    "since": format_rfc3339(*since_ms), "waiting_s": now_ms.saturating_sub(*since_ms) as f64 / 1000.0});
                ("awaiting_approval", None, Some(detail), None, None)
            }
            Position::RolledBack { reason, at_ms } => (
                "rolled_back",
                None,
                None,
                None,
                Some(json!({"reason": reason, "at": format_rfc3339(*at_ms),
                    "gate": RampTrack::failed_gate(reason).map(Gate::as_str),
                    "in_rules": ramp.rolled_back.is_some()})),
            ),
        };
        let gates: Vec<Value> = self.readings.iter().map(reading_json).collect();
        Some(json!({
            "scope": rules.scope_name(scope),
            "version": rules.version,
            "state": state,
            "share": self.share(ramp, rules.share_before_ramp(scope)).to_string(),
            "start": format_rfc3339(ramp.start_ms),
            "steps": ramp.steps.iter().map(|s| json!({"share": s.share.to_string(), "hold_s": s.hold_s,
                "min_invocations": s.min_invocations, "approve": s.approve})).collect::<Vec<_>>(),
            "step": step,
            "awaiting_approval": awaiting,
            "approved": self.decisions.approved.iter().collect::<Vec<_>>(),
            "hold": self.decisions.hold.as_ref().map(|h| json!({"reason": h.reason, "by": h.by,
                "since": format_rfc3339(h.since_ms)})),
            "next_step_in_s": next_in_s,
            "window_s": ramp.window_s,
            "rollback_share": ramp.rollback_share.to_string(),
            "gates": gates,
            "rollback": rollback,
            "history": self.history.iter().map(|n| json!({"at": format_rfc3339(n.at_ms),
                "event": n.kind.as_str(), "said": n.said, "label": n.label})).collect::<Vec<_>>(),
        }))
    }
}

/// One gate's reading as `GET /ramp` and the notifications give it.
pub fn reading_json(r: &Reading) -> Value {
    json!({"gate": r.gate.as_str(), "verdict": r.verdict.as_str(), "scheduler": r.value, "legacy": r.legacy,
        "threshold": r.threshold, "samples": r.samples, "min_samples": r.min_samples,
        "mode": if r.observe { "observe" } else { "enforce" },
        "would_roll_back": r.observe && r.verdict == Verdict::Fail})
}

/// The notifications a transition makes: kind, the key that tells it apart under one rules
/// version (so every replica gives it the same id), and the detail.
pub fn events(t: &Transition, ramp: &Ramp, readings: &[Reading]) -> Vec<(EventKind, String, Value)> {
    let step = |i: usize| json!({"index": i, "share": ramp.steps[i].share.to_string()});
    match t {
        Transition::None => Vec::new(),
        Transition::Started { step: i } => vec![(EventKind::RampStarted, i.to_string(), json!({"step": step(*i)}))],
        Transition::Advanced { from, to } => {
            let mut out =
                vec![(EventKind::StepAdvanced, to.to_string(), json!({"from": step(*from), "to": step(*to)}))];
            if to + 1 == ramp.steps.len() {
                out.push((EventKind::Completed, String::new(), json!({"step": step(*to)})));
            }
            out
        }
        Transition::AwaitingApproval { step: i } => {
            vec![(EventKind::AwaitingApproval, i.to_string(), json!({"step": step(*i)}))]
        }
        Transition::RolledBack { reason } => {
            let gate = RampTrack::failed_gate(reason).map(Gate::as_str);
            let detail = json!({"reason": reason, "gate": gate, "rollback_share": ramp.rollback_share.to_string(),
                "gates": readings.iter().map(reading_json).collect::<Vec<_>>()});
            vec![(EventKind::RolledBack, String::new(), detail)]
        }
    }
}

/// A transition as the audit log says it (`scope`: an override's ramp, named in the approval hint).
pub fn describe(t: &Transition, ramp: &Ramp, scope: Option<&str>) -> Option<String> {
    match t {
        Transition::None => None,
        Transition::Started { step } => Some(format!("ramp started at step {step} ({})", ramp.steps[*step].share)),
        Transition::Advanced { from, to } => Some(format!(
            "ramp advanced from step {from} ({}) to step {to} ({})",
            ramp.steps[*from].share, ramp.steps[*to].share
        )),
        Transition::AwaitingApproval { step } => {
            let (query, flag) = match scope {
                Some(name) => (
                    format!("?scope={}", form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()),
                    format!(" --scope '{name}'"),
                ),
                None => (String::new(), String::new()),
            };
            Some(format!(
                "ramp waits for an approval before step {step} ({}): POST /ramp/approve{query} or `switchyard ramp approve{flag}`",
                ramp.steps[*step].share
            ))
        }
        Transition::RolledBack { reason } => {
            Some(format!("ramp rolled back to {} by this replica: {reason}", ramp.rollback_share))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_rules::{Gates, Step};

    #[test]
    fn the_history_marks_each_step_with_its_share() {
        let pct = |p: u32| Share::from_ppm(p * 10_000).unwrap();
        let step = |share| Step { share, hold_s: 1, min_invocations: 0, approve: false };
        let ramp = Ramp {
            start_ms: 0,
            steps: vec![step(pct(10)), step(pct(50))],
            window_s: 60,
            rollback_share: Share::ZERO,
            rolled_back: None,
            gates: Gates::default(),
        };
        let mut track = RampTrack::new(&ramp, 0, 0);
        for (kind, key, detail) in events(&Transition::Advanced { from: 0, to: 1 }, &ramp, &[]) {
            track.note(&Event::new(kind, "v", &key, "said".into(), detail));
        }
        track.note(&Event::new(EventKind::RolledBack, "v", "", "said".into(), Value::Null));
        let labels: Vec<String> = track.marks("").into_iter().map(|m| m.label).collect();
        assert_eq!(labels, ["step 1 (50%)", "step 1 (50%)", "rolled back"], "advanced, completed, rolled back");
    }
}

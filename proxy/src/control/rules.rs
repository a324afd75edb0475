//! Rule control: the one owner of the rules every request routes by.
//!
//! Every source (file watch, SIGHUP, admin API, Kafka topic) hands a candidate to [`RuleControl`]
//! through one method, [`RuleControl::offer`]: parse → validate → compile (done by the caller, off
//! the request path) → check the version → swap → audit → count. So sources behave the same and the
//! newest accepted change wins.
//!
//! The admin kill switch is a latch on top of the accepted rule set: while it is on, the effective
//! rules are the accepted ones with `kill_switch = true` (version `<version>+killed`), and rule
//! changes from any source are still accepted underneath; `unkill` releases it.
//!
//! Ramps are the other thing on top: the global one (`[ramp]`) sets the global share the effective
//! rules route by, an override's own (`ramp = {...}` on it) that override's share (same version);
//! each has its own position, gates, approvals and holds. Accepting a new rules version starts the
//! ramps afresh (a rollback published over the same rules keeps the other ramps where they stand)
//! from the schedule (so a new version is also how an operator resumes after a rollback).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::Serialize;
use serde_json::json;
use switchyard_rules::{
    escape_controls, format_rfc3339, Hold, Plan, Position, RampScope, RuleSet, RulesRejected, Transition,
};
use tokio::sync::mpsc;

use crate::control::ramp::window::{LiveCounters, ScopeSignals};
use crate::control::ramp::{self, Call, FleetCall, RampTrack};
use crate::control::source::{FileTrigger, ReloadResult, Reloads, RuleSource};
use crate::data::recent::RecentTraffic;
use crate::ops::clock::now_ms;
use crate::ops::metrics::Metrics;
use crate::ops::notify::{Event, EventKind, Notifier};
use crate::sync::lock;

/// A rule set with its provenance. Requests hold an `Arc` of it for their whole life, so a swap
/// never changes the rules under a request in flight.
pub struct ActiveRules {
    pub rules: RuleSet,
    pub source: RuleSource,
    pub loaded_at: SystemTime,
    /// The version as a header value, built once per rule set rather than per response.
    pub version_header: http::HeaderValue,
    /// Whether routing needs the Basic-auth subject (decoded per request only then).
    pub uses_subject: bool,
}

impl ActiveRules {
    pub fn new(rules: RuleSet, source: RuleSource) -> ActiveRules {
        let version_header = http::HeaderValue::from_str(&rules.version)
            .unwrap_or_else(|_| http::HeaderValue::from_static("unprintable"));
        let uses_subject = rules.uses_subject();
        ActiveRules { rules, source, loaded_at: SystemTime::now(), version_header, uses_subject }
    }

    /// The effective rules for an accepted set: with the kill switch forced on while latched, and
    /// each ramp's share where the ramp stands.
    fn effective(&self, latched: bool, ramps: &[(RampScope, RampTrack)]) -> ActiveRules {
        let mut rules = if latched { self.rules.with_kill_switch(true) } else { self.rules.clone() };
        for (scope, track) in ramps {
            if let Some(ramp) = self.rules.ramp_of(*scope) {
                rules.set_ramp_share(*scope, track.share(ramp, self.rules.share_before_ramp(*scope)));
            }
        }
        ActiveRules { loaded_at: self.loaded_at, ..ActiveRules::new(rules, self.source.clone()) }
    }
}

/// What happened to a candidate rule set that passed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Applied {
    Accepted {
        version: String,
        previous: String,
        summary: String,
        /// What moved, weighed by recent traffic ("moves 312 req/s of 41 actions to the scheduler; ...").
        moves: String,
    },
    /// Same version and same content as the active set: nothing to do.
    Unchanged { version: String },
}

/// The last rejected attempt, as `GET /rules/status` shows it (bounded: at most
/// `MAX_ERRORS` errors of bounded length are kept).
#[derive(Debug, Clone)]
pub struct Rejection {
    pub source: String,
    pub at: SystemTime,
    pub rejected: RulesRejected,
}

/// The admin kill latch: when it was set and by whom.
#[derive(Debug, Clone)]
pub struct KillLatch {
    pub since: SystemTime,
    pub by: String,
}

/// A consistent view of rule control, for `GET /rules/status`.
pub struct RulesStatus {
    pub effective: Arc<ActiveRules>,
    pub accepted: Arc<ActiveRules>,
    pub kill_latch: Option<KillLatch>,
    pub last_rejected: Option<Rejection>,
    /// `GET /ramp`'s view, when the accepted rules have a ramp.
    pub ramp: Option<serde_json::Value>,
}

struct ControlState {
    /// The last accepted rule set, before the kill latch.
    accepted: Arc<ActiveRules>,
    kill_latch: Option<KillLatch>,
    last_rejected: Option<Rejection>,
    /// Where each of the accepted rules' ramps stands on this replica (the global one first).
    ramps: Vec<(RampScope, RampTrack)>,
}

impl ControlState {
    fn effective(&self) -> ActiveRules {
        self.accepted.effective(self.kill_latch.is_some(), &self.ramps)
    }

    /// The ramp an operator's call names (`None`: the global ramp, or the only one there is).
    fn scope(&self, name: Option<&str>) -> Result<RampScope, RampCallError> {
        let rules = &self.accepted.rules;
        let names = || self.ramps.iter().map(|(s, _)| rules.scope_name(*s)).collect::<Vec<_>>().join(", ");
        match name {
            Some(name) => rules
                .scope_named(name)
                .ok_or_else(|| RampCallError::UnknownScope { name: name.to_string(), scopes: names() }),
            None if self.ramps.is_empty() => Err(RampCallError::NoRamp),
            None if self.ramps.len() == 1 || self.ramps[0].0 == RampScope::Global => Ok(self.ramps[0].0),
            None => Err(RampCallError::ScopeNeeded { scopes: names() }),
        }
    }

    fn track_mut(&mut self, scope: RampScope) -> Option<&mut RampTrack> {
        self.ramps.iter_mut().find(|(s, _)| *s == scope).map(|(_, t)| t)
    }
}

pub struct RuleControl {
    /// The effective rules every request routes by (the accepted set, with the kill latch applied).
    active: ArcSwap<ActiveRules>,
    /// Serialises rule changes from every source.
    state: Mutex<ControlState>,
    metrics: Arc<Metrics>,
    reloads: Reloads,
    /// The counts the ramp's gates read (and the scheduler's invocations a step has seen).
    live: Arc<LiveCounters>,
    /// Tells the webhooks what happened to the rules and the ramp.
    notifier: Arc<Notifier>,
    /// Where operators' ramp calls go so that every replica follows (the rules topic, when
    /// configured; set once by the server).
    fleet: OnceLock<mpsc::UnboundedSender<FleetCall>>,
    /// This replica's id in the calls it shares (it skips its own when they come back).
    origin: u64,
    /// Recent invocations: what a change is weighed with (its plan, the audit line).
    recent: Arc<RecentTraffic>,
}

/// Why an operator's call on the ramp (resume, approve, hold, release) was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum RampCallError {
    #[error("the active rules have no ramp")]
    NoRamp,
    #[error("version `{version}` says the ramp rolled back; publish a new version without `rolled_back` to resume")]
    RolledBackInRules { version: String },
    #[error("the ramp is not waiting for an approval (it is {state})")]
    NotAwaiting { state: &'static str },
    #[error("the ramp is not held")]
    NotHeld,
    #[error("a hold needs a reason: 1 to {MAX_HOLD_REASON} characters")]
    Reason,
    #[error("no ramp is named `{name}` (the ramps: {scopes})")]
    UnknownScope { name: String, scopes: String },
    #[error("the rules have several ramps: name one with `scope` (the ramps: {scopes})")]
    ScopeNeeded { scopes: String },
}

/// The longest reason a hold may give (it goes into logs, `GET /ramp` and notifications).
pub const MAX_HOLD_REASON: usize = 500;

impl RuleControl {
    /// Starts with the rules read at start (counted as an accepted change from `source`).
    pub fn new(
        rules: RuleSet,
        source: RuleSource,
        metrics: Arc<Metrics>,
        live: Arc<LiveCounters>,
        notifier: Arc<Notifier>,
        recent: Arc<RecentTraffic>,
    ) -> RuleControl {
        let ramps = ramp_tracks(&rules, None, &live);
        let accepted = Arc::new(ActiveRules::new(rules, source));
        let state = ControlState { accepted, kill_latch: None, last_rejected: None, ramps };
        let control = RuleControl {
            active: ArcSwap::new(Arc::new(state.effective())),
            state: Mutex::new(state),
            reloads: Reloads::new(&metrics),
            metrics,
            live,
            notifier,
            fleet: OnceLock::new(),
            origin: rand::random(),
            recent,
        };
        let active = control.active.load_full();
        control.publish(&active);
        control.reloads.count(active.source.label(), ReloadResult::Accepted);
        tracing::info!(version = %active.rules.version, source = %escape_controls(&active.source.to_string()), share = %active.rules.scheduler_share,
            overrides = active.rules.overrides.len(), kill_switch = active.rules.kill_switch, "rules loaded");
        control
    }

    /// The rules a request starting now routes by, for its whole life.
    pub fn snapshot(&self) -> Arc<ActiveRules> {
        self.active.load_full()
    }

    /// Offers a parsed candidate (or its parse errors) from `source`. On success the new rules
    /// route every request that starts after this returns.
    pub fn offer(
        &self,
        candidate: Result<RuleSet, RulesRejected>,
        source: RuleSource,
    ) -> Result<Applied, RulesRejected> {
        let mut state = lock(&self.state);
        let outcome = candidate.and_then(|next| check_version(&state.accepted.rules, next, &source));
        match outcome {
            Err(rejected) => {
                // Debug formatting escapes the error list's line breaks: one log line per rejection.
                tracing::warn!(source = ?source.to_string(), errors = ?rejected.to_string(), "rules rejected; the active rules keep serving");
                state.last_rejected =
                    Some(Rejection { source: source.to_string(), at: SystemTime::now(), rejected: rejected.clone() });
                self.reloads.count(source.label(), ReloadResult::Rejected);
                let first: Vec<String> = rejected.errors.iter().take(3).map(ToString::to_string).collect();
                let summary =
                    format!("rules from {source} rejected; the active rules keep serving: {}", first.join("; "));
                let detail = json!({"source": source.to_string(), "errors": first, "total": rejected.total()});
                let key = first.first().cloned().unwrap_or_default();
                self.notifier.emit(Event::new(
                    EventKind::RulesRejected,
                    &state.accepted.rules.version,
                    &key,
                    summary,
                    detail,
                ));
                Err(rejected)
            }
            Ok(None) => {
                self.reloads.count(source.label(), ReloadResult::Unchanged);
                Ok(Applied::Unchanged { version: state.accepted.rules.version.clone() })
            }
            Ok(Some(next)) => {
                let summary = next.diff_from(&state.accepted.rules).to_string();
                let moves = self.plan_against(&state, &next).summary;
                let previous = state.accepted.rules.version.clone();
                let version = next.version.clone();
                state.ramps = ramp_tracks(&next, Some((&state.accepted.rules, &state.ramps)), &self.live);
                state.accepted = Arc::new(ActiveRules::new(next, source.clone()));
                self.install(state.effective());
                tracing::info!(target: "switchyard::audit", old_version = %previous, new_version = %version,
                    source = %escape_controls(&source.to_string()), kill_latch = state.kill_latch.is_some(),
                    changes = %escape_controls(&summary), moves = %escape_controls(&moves), "rules changed");
                self.reloads.count(source.label(), ReloadResult::Accepted);
                let said = format!("rules {previous} → {version} from {source}: {summary}; {moves}");
                let detail =
                    json!({"previous": previous, "source": source.to_string(), "changes": summary, "moves": moves});
                self.notifier.emit(Event::new(EventKind::RulesAccepted, &version, "", said, detail));
                Ok(Applied::Accepted { version, previous, summary, moves })
            }
        }
    }

    /// What a candidate would do if it were offered now (`PUT /rules?dry_run=true`), checked as an
    /// offer checks it; nothing changes: no version, no count, no audit line.
    pub fn plan(&self, candidate: Result<RuleSet, RulesRejected>, source: RuleSource) -> Result<Plan, RulesRejected> {
        let state = lock(&self.state);
        let next = candidate.and_then(|next| {
            let unchanged = next.clone();
            Ok(check_version(&state.accepted.rules, next, &source)?.unwrap_or(unchanged))
        })?;
        Ok(self.plan_against(&state, &next))
    }

    /// The plan of `next` against the rules routing now, weighed by the recent traffic.
    fn plan_against(&self, state: &ControlState, next: &RuleSet) -> Plan {
        let now = now_ms();
        let current = self.active.load();
        next.plan_from(&current.rules, &self.recent.traffic(now), now, state.kill_latch.is_some())
    }

    /// Re-reads the rules file and offers it (file watch, SIGHUP).
    pub fn reload_file(&self, path: &std::path::Path, trigger: FileTrigger) -> Result<Applied, RulesRejected> {
        let candidate = switchyard_rules::load_rules_file(path);
        self.offer(candidate, RuleSource::File { path: path.to_path_buf(), trigger })
    }

    /// Sets or releases the admin kill latch. Returns the effective version.
    pub fn set_kill_latch(&self, on: bool, by: &str) -> String {
        let mut state = lock(&self.state);
        let was = state.kill_latch.is_some();
        if was != on {
            state.kill_latch = on.then(|| KillLatch { since: SystemTime::now(), by: by.to_string() });
        }
        let next = state.effective();
        let version = next.rules.version.clone();
        if was != on {
            let old = self.active.load().rules.version.clone();
            self.install(next);
            let said = if on { "kill switch latched on: everything to legacy" } else { "kill switch latch released" };
            tracing::info!(target: "switchyard::audit", old_version = %old, new_version = %version, source = by,
                changes = said, "rules changed");
            let kind = if on { EventKind::KillSwitchOn } else { EventKind::KillSwitchOff };
            self.notifier.emit(Event::new(kind, &old, "", format!("{said} (by {by})"), json!({"by": by})));
        }
        let result = if was != on { ReloadResult::Accepted } else { ReloadResult::Unchanged };
        self.reloads.count(RuleSource::AdminApi.label(), result);
        version
    }

    /// One evaluation of every ramp with its gates' signals over its window. A step change or a
    /// rollback swaps in the new shares at once. After rollbacks, returns the rules to publish so
    /// that every replica follows (every ramp that rolled back at this tick marked in them).
    pub fn ramp_tick(&self, now_ms: u64, signals: &[(RampScope, ScopeSignals)]) -> Option<RuleSet> {
        let mut state = lock(&self.state);
        let accepted = Arc::clone(&state.accepted);
        let rules = &accepted.rules;
        if rules.ramp.is_none() {
            self.metrics.ramp_position(None, false);
            self.metrics.ramp_people(false, false);
        }
        let (mut changed, mut rollback): (bool, Option<RuleSet>) = (false, None);
        for (scope, track) in state.ramps.iter_mut() {
            let (Some(ramp), Some((_, s))) = (rules.ramp_of(*scope), signals.iter().find(|(sc, _)| sc == scope)) else {
                continue;
            };
            track.readings = ramp.gates.read(&s.signals);
            track.seen = s.seen;
            if now_ms < track.quiet_until_ms {
                continue;
            }
            let transition = track.position.tick(ramp, now_ms, s.seen, &track.readings, &track.decisions);
            if *scope == RampScope::Global {
                self.metrics.ramp_readings(&track.readings);
                self.metrics.ramp_position(track.step(), matches!(track.position, Position::RolledBack { .. }));
                let awaiting = matches!(track.position, Position::AwaitingApproval { .. });
                self.metrics.ramp_people(awaiting, track.decisions.hold.is_some());
            }
            let said_of = ScopeWords::new(rules, *scope);
            for would in track.newly_would_roll_back() {
                let said = said_of.say(format!(
                    "an observe-only gate would have rolled the ramp back: {}",
                    would.describe(ramp.window_s)
                ));
                tracing::info!(target: "switchyard::audit", version = %rules.version, change = %escape_controls(&said), "ramp");
                let event =
                    said_of.event(EventKind::WouldRollBack, would.gate.as_str(), said, ramp::reading_json(&would));
                self.ramp_event(track, event);
            }
            if let Some((step, waiting)) = track.newly_held_by_gates(ramp, now_ms) {
                let gates: Vec<String> = waiting.iter().map(|r| r.describe(ramp.window_s)).collect();
                let said = said_of.say(format!(
                    "step {step} has passed its hold; the gates keep the next from beginning: {}",
                    gates.join("; ")
                ));
                let detail = json!({"step": step, "gates": waiting.iter().map(ramp::reading_json).collect::<Vec<_>>()});
                self.ramp_event(track, said_of.event(EventKind::HeldByGate, &step.to_string(), said, detail));
            }
            let Some(said) = ramp::describe(&transition, ramp, said_of.name.as_deref()).map(|said| said_of.say(said))
            else {
                continue;
            };
            for (kind, key, detail) in ramp::events(&transition, ramp, &track.readings) {
                self.ramp_event(track, said_of.event(kind, &key, said.clone(), detail));
            }
            changed = true;
            tracing::info!(target: "switchyard::audit", version = %rules.version, change = %escape_controls(&said), "ramp");
            if let Transition::RolledBack { reason } = transition {
                if let Some(gate) = RampTrack::failed_gate(&reason) {
                    self.metrics.ramp_rollback(gate);
                }
                let base = rollback.as_ref().unwrap_or(rules);
                rollback = base.with_rollback(*scope, &reason).or(rollback);
            }
        }
        if changed {
            self.install(state.effective());
        }
        rollback
    }

    /// The ramp's history as marks for the report page's time axis (none without a ramp).
    pub fn ramp_marks(&self) -> Vec<switchyard_shadow::Mark> {
        let state = lock(&self.state);
        let rules = &state.accepted.rules;
        state.ramps.iter().flat_map(|(scope, track)| track.marks(&ScopeWords::new(rules, *scope).prefix)).collect()
    }

    /// `GET /ramp`: the accepted rules' ramp as this replica runs it.
    pub fn ramp_status(&self, now_ms: u64) -> Option<serde_json::Value> {
        ramp_view(&lock(&self.state), now_ms)
    }

    /// Clears this replica's own rollback: the ramp resumes where the schedule stands. Refused when
    /// the rules themselves say rolled back (publish a new version to resume every replica).
    pub fn resume_ramp(&self, scope: Option<&str>, by: &str) -> Result<String, RampCallError> {
        let mut state = lock(&self.state);
        let accepted = Arc::clone(&state.accepted);
        let scope = state.scope(scope)?;
        let rules = &accepted.rules;
        let Some(ramp) = rules.ramp_of(scope) else {
            return Err(RampCallError::NoRamp);
        };
        if ramp.rolled_back.is_some() {
            return Err(RampCallError::RolledBackInRules { version: rules.version.clone() });
        }
        let now = now_ms();
        let mut track = RampTrack::new(ramp, now, self.live.seen(rules, scope));
        track.quiet_until_ms = now + ramp.window_s * 1000;
        let share = track.share(ramp, rules.share_before_ramp(scope)).to_string();
        let said_of = ScopeWords::new(rules, scope);
        let said = said_of.say(format!("ramp resumed by {by} at {share}"));
        let detail = json!({"by": by, "share": share});
        self.ramp_event(&mut track, said_of.event(EventKind::Resumed, "", said.clone(), detail));
        if let Some(slot) = state.track_mut(scope) {
            *slot = track;
        }
        self.install(state.effective());
        tracing::info!(target: "switchyard::audit", version = %rules.version, by, share = %share, change = %escape_controls(&said), "ramp resumed");
        Ok(share)
    }

    /// Sends operators' ramp calls to `fleet` from now on, so that every replica follows them.
    pub fn share_calls_with(&self, fleet: mpsc::UnboundedSender<FleetCall>) {
        let _ = self.fleet.set(fleet);
    }

    /// Approves the step the ramp waits for; it begins at the next tick (unless held). Returns
    /// the step approved.
    pub fn approve_ramp(&self, scope: Option<&str>, by: &str) -> Result<usize, RampCallError> {
        self.on_ramp(scope, by, |track| match track.position {
            Position::AwaitingApproval { next, .. } => Ok((next, Call::Approve { step: next })),
            _ => Err(RampCallError::NotAwaiting { state: track.state() }),
        })
    }

    /// A ramp call another replica shared (`source`: where it was read). Applies to the rules
    /// version it names only; an approval of a step this replica has not reached yet is kept
    /// for when it does.
    pub fn apply_fleet_call(&self, call: FleetCall, source: &str) {
        if call.origin == self.origin {
            return;
        }
        let version = lock(&self.state).accepted.rules.version.clone();
        if call.rules_version != version {
            tracing::info!(source, call_version = %escape_controls(&call.rules_version), version = %version, "a ramp call for other rules; ignored");
            return;
        }
        let by = format!("{} (from {source})", call.by);
        let applied = self.on_ramp_local(call.scope.as_deref(), &by, |_| Ok(((), call.call.clone())));
        if let Err(e) = applied {
            tracing::info!(source, error = %e, "a shared ramp call did not apply");
        }
    }

    /// Pauses the ramp where it stands: no step begins until released (a failing gate still rolls
    /// back). A second hold replaces the first's reason.
    pub fn hold_ramp(&self, scope: Option<&str>, reason: &str, by: &str) -> Result<(), RampCallError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_HOLD_REASON {
            return Err(RampCallError::Reason);
        }
        self.on_ramp(scope, by, |_| Ok(((), Call::Hold { reason: reason.to_string() })))
    }

    /// Lifts a hold.
    pub fn release_ramp(&self, scope: Option<&str>, by: &str) -> Result<(), RampCallError> {
        self.on_ramp(scope, by, |track| match track.decisions.hold {
            Some(_) => Ok(((), Call::Release)),
            None => Err(RampCallError::NotHeld),
        })
    }

    /// Says a ramp event: in the ramp's history (`GET /ramp`, `switchyard ramp`) and to the webhooks.
    fn ramp_event(&self, track: &mut RampTrack, event: Event) {
        track.note(&event);
        self.notifier.emit(event);
    }

    /// Runs an operator's call on this replica's ramp (`check` refuses it or says which call it
    /// is), then shares it with the fleet when there is one.
    fn on_ramp<T>(
        &self,
        scope: Option<&str>,
        by: &str,
        check: impl FnOnce(&RampTrack) -> Result<(T, Call), RampCallError>,
    ) -> Result<T, RampCallError> {
        let (out, call, version, scope) = self.on_ramp_local(scope, by, check)?;
        if let Some(fleet) = self.fleet.get() {
            // A publisher gone (the runtime stopping) leaves the call on this replica.
            let by = by.to_string();
            let _ = fleet.send(FleetCall { rules_version: version, call, by, origin: self.origin, scope });
        }
        Ok(out)
    }

    /// Applies a ramp call to this replica's ramp: the decision, the audit log, the history and
    /// the webhooks. Returns what `check` gave, the call, the rules version, and the scope's name
    /// (`None` for the global ramp) as calls shared with the fleet name it.
    fn on_ramp_local<T>(
        &self,
        scope: Option<&str>,
        by: &str,
        check: impl FnOnce(&RampTrack) -> Result<(T, Call), RampCallError>,
    ) -> Result<(T, Call, String, Option<String>), RampCallError> {
        let mut state = lock(&self.state);
        let accepted = Arc::clone(&state.accepted);
        let version = accepted.rules.version.clone();
        let scope = state.scope(scope)?;
        let said_of = ScopeWords::new(&accepted.rules, scope);
        let track = state.track_mut(scope).ok_or(RampCallError::NoRamp)?;
        let (out, call) = check(track)?;
        let (kind, key, said) = match &call {
            Call::Approve { step } => {
                track.decisions.approved.insert(*step);
                (EventKind::Approved, step.to_string(), format!("step {step} approved"))
            }
            Call::Hold { reason } => {
                track.decisions.hold = Some(Hold { reason: reason.clone(), by: by.to_string(), since_ms: now_ms() });
                (EventKind::Held, reason.clone(), format!("held: {reason}"))
            }
            Call::Release => match track.decisions.hold.take() {
                Some(hold) => {
                    let said = format!("released (held since {} for: {})", format_rfc3339(hold.since_ms), hold.reason);
                    (EventKind::Released, hold.reason, said)
                }
                None => return Err(RampCallError::NotHeld),
            },
        };
        let said = said_of.say(format!("ramp {said} (by {by})"));
        self.ramp_event(track, said_of.event(kind, &key, said.clone(), json!({"by": by})));
        if scope == RampScope::Global {
            let awaiting = matches!(track.position, Position::AwaitingApproval { .. });
            self.metrics.ramp_people(awaiting, track.decisions.hold.is_some());
        }
        tracing::info!(target: "switchyard::audit", version = %version, by, change = %escape_controls(&said), "ramp");
        Ok((out, call, version, said_of.name))
    }

    pub fn status(&self) -> RulesStatus {
        let state = lock(&self.state);
        RulesStatus {
            effective: self.active.load_full(),
            accepted: Arc::clone(&state.accepted),
            kill_latch: state.kill_latch.clone(),
            last_rejected: state.last_rejected.clone(),
            ramp: ramp_view(&state, now_ms()),
        }
    }

    /// Makes a rule set the effective one and updates the gauges that describe it.
    fn install(&self, next: ActiveRules) {
        self.publish(&next);
        self.active.store(Arc::new(next));
    }

    fn publish(&self, active: &ActiveRules) {
        let r = &active.rules;
        let m = &self.metrics;
        m.scheduler_share.set(if r.kill_switch { 0.0 } else { r.global_share().as_fraction() });
        m.kill_switch.set(if r.kill_switch { 1.0 } else { 0.0 });
        m.rules_loaded_at.set(crate::ops::metrics::unix_seconds(active.loaded_at));
        m.rules_version(&r.version);
    }
}

/// `GET /ramp`: the global ramp's view at the top (as before scoped ramps), and every ramp, the
/// global one included, under `ramps`; `None` without any ramp.
fn ramp_view(state: &ControlState, now_ms: u64) -> Option<serde_json::Value> {
    let rules = &state.accepted.rules;
    if state.ramps.is_empty() {
        return None;
    }
    let views: Vec<serde_json::Value> =
        state.ramps.iter().filter_map(|(scope, track)| track.to_json(rules, *scope, now_ms)).collect();
    let mut top = match state.ramps[0].0 {
        RampScope::Global => views[0].clone(),
        RampScope::Override(_) => json!({"version": rules.version}),
    };
    top["ramps"] = serde_json::Value::Array(views);
    Some(top)
}

/// Where each ramp of newly accepted rules stands: where its schedule is now. A rollback published
/// over the same rules (`previous`, derived from the same version) keeps every other ramp where it
/// stood: its position, approvals, hold and history.
fn ramp_tracks(
    next: &RuleSet,
    previous: Option<(&RuleSet, &[(RampScope, RampTrack)])>,
    live: &LiveCounters,
) -> Vec<(RampScope, RampTrack)> {
    let base = |r: &RuleSet| r.rollback_base().unwrap_or(&r.version).to_string();
    let same_rules = previous.filter(|(prev, _)| next.rollback_base().is_some() && base(prev) == base(next));
    next.ramps()
        .into_iter()
        .map(|(scope, ramp)| {
            let kept = same_rules
                .filter(|(prev, _)| prev.ramp_of(scope) == Some(ramp))
                .and_then(|(_, tracks)| tracks.iter().find(|(s, _)| *s == scope))
                .map(|(_, track)| track.clone());
            (scope, kept.unwrap_or_else(|| RampTrack::new(ramp, now_ms(), live.seen(next, scope))))
        })
        .collect()
}

/// How one ramp's events are told: the global ramp as before, an override's with its name in
/// what is said, in the event's key (so every replica gives it the same id) and in its detail.
struct ScopeWords {
    /// `None` for the global ramp.
    name: Option<String>,
    /// Before a time-axis label (`team-a: `), empty for the global ramp.
    prefix: String,
    version: String,
}

impl ScopeWords {
    fn new(rules: &RuleSet, scope: RampScope) -> ScopeWords {
        let name = (scope != RampScope::Global).then(|| rules.scope_name(scope));
        let prefix = name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default();
        ScopeWords { name, prefix, version: rules.version.clone() }
    }

    fn say(&self, said: String) -> String {
        match &self.name {
            Some(name) => format!("[{name}] {said}"),
            None => said,
        }
    }

    fn event(&self, kind: EventKind, key: &str, said: String, mut detail: serde_json::Value) -> Event {
        let Some(name) = &self.name else { return Event::new(kind, &self.version, key, said, detail) };
        match detail.as_object_mut() {
            Some(map) => {
                map.insert("scope".into(), json!(name));
            }
            None => detail = json!({"scope": name, "detail": detail}),
        }
        Event::new(kind, &self.version, &format!("{name}:{key}"), said, detail)
    }
}

/// Versions must identify content: a different content under the active version is rejected.
/// `Ok(None)` means the candidate is the active set again.
/// The rules a rollback was published over, offered again (a SIGHUP or a file reload of the same
/// file), are not a new version: the rollback stays until an operator publishes a new one.
fn check_version(active: &RuleSet, next: RuleSet, source: &RuleSource) -> Result<Option<RuleSet>, RulesRejected> {
    if active.rollback_base() == Some(next.version.as_str()) {
        return Ok(None);
    }
    if next.version != active.version {
        return Ok(Some(next));
    }
    if next.fingerprint == active.fingerprint {
        return Ok(None);
    }
    Err(RulesRejected::single(
        &source.error_name(),
        "version",
        format!(
            "version `{}` is already active with different content; give the new content a new version",
            next.version
        ),
    ))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use switchyard_rules::{parse_rules, Invocation, Pool, RulesFormat, Signals};

    use super::*;

    fn quiet() -> Arc<Notifier> {
        Arc::new(Notifier::none(&Metrics::new()))
    }

    /// One thing that can happen to rule control while requests hold snapshots.
    #[derive(Debug, Clone)]
    enum Change {
        Offer { version: u8, share: u8, valid: bool },
        Kill(bool),
        RampTick { ms: u64, failures: u64 },
        Snapshot,
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            (0u8..6, 0u8..=100, any::<bool>()).prop_map(|(version, share, valid)| Change::Offer {
                version,
                share,
                valid
            }),
            any::<bool>().prop_map(Change::Kill),
            (0u64..30_000, 0u64..200).prop_map(|(ms, failures)| Change::RampTick { ms, failures }),
            Just(Change::Snapshot),
        ]
    }

    fn rules(version: u8, share: u8, with_ramp: bool) -> RuleSet {
        let ramp = if with_ramp {
            "[ramp]\nstart = 1800000000\nsteps = [{ share = 10, hold_s = 5 }, { share = 60, hold_s = 0 }]\n"
        } else {
            ""
        };
        let doc = format!(
            "version = \"v{version}-{share}\"\nscheduler_share = {}\n{ramp}",
            if with_ramp { 0 } else { share }
        );
        parse_rules(doc.as_bytes(), RulesFormat::Toml, "prop").unwrap()
    }

    /// What a request routed by a snapshot sees: its version, fingerprint and decisions.
    type Seen = (String, u64, Vec<Pool>);

    fn seen(active: &ActiveRules) -> Seen {
        let decisions = (0..50)
            .map(|i| {
                let action = format!("a{i}");
                active.rules.decide(&Invocation { namespace: "guest", action: &action, ..Invocation::default() }).pool
            })
            .collect();
        (active.rules.version.clone(), active.rules.fingerprint, decisions)
    }

    /// A published rollback is not undone by the rules it was derived from coming back (a SIGHUP
    /// or a file reload): only a new version resumes.
    #[test]
    fn the_rules_before_a_rollback_do_not_resume_it() {
        let live = Arc::new(LiveCounters::default());
        let ramped = rules(1, 0, true);
        let control = RuleControl::new(
            ramped.clone(),
            RuleSource::AdminApi,
            Arc::new(Metrics::new()),
            live,
            quiet(),
            Arc::new(RecentTraffic::new(0)),
        );
        let rollback = ramped.with_rollback(RampScope::Global, "gate platform_failure fail: test").unwrap();
        assert!(matches!(control.offer(Ok(rollback), RuleSource::AdminApi), Ok(Applied::Accepted { .. })));
        assert_eq!(
            control.offer(Ok(ramped), RuleSource::AdminApi),
            Ok(Applied::Unchanged { version: "v1-0+rollback".into() })
        );
        assert_eq!(control.ramp_status(1_800_000_000_000).unwrap()["state"], "rolled_back");
        assert!(matches!(control.offer(Ok(rules(2, 0, true)), RuleSource::AdminApi), Ok(Applied::Accepted { .. })));
        // A new version starts the ramp again from its schedule (which, by the real clock, has not begun).
        assert_eq!(control.ramp_status(1_800_000_000_000).unwrap()["state"], "not_started", "a new version resumes");
    }

    /// A rollback of one namespace's ramp, published and accepted (as every replica does over
    /// Kafka), leaves the other namespace's ramp where it stood: its step and its approvals.
    #[test]
    fn a_rollback_of_one_namespace_ramp_keeps_the_other_where_it_stood() {
        let scoped = |ns: &str, approve: bool| {
            format!(
                "[[overrides]]\nnamespace = \"{ns}\"\nshare = 0\nramp = {{ start = 1000, window_s = 2, \
                 steps = [{{ share = 10, hold_s = 0 }}, {{ share = 50, hold_s = 0, approve = {approve} }}], \
                 gates = {{ platform_failure = {{ min_samples = 10 }} }} }}\n"
            )
        };
        let text = format!("version = \"two\"\n{}{}", scoped("team-a", true), scoped("team-b", false));
        let rules = parse_rules(text.as_bytes(), RulesFormat::Toml, "t").unwrap();
        let live = Arc::new(LiveCounters::default());
        let control = RuleControl::new(
            rules,
            RuleSource::AdminApi,
            Arc::new(Metrics::new()),
            live,
            quiet(),
            Arc::new(RecentTraffic::new(0)),
        );
        let healthy = Signals { invocations: [100, 100], ..Signals::default() };
        let failing = Signals { invocations: [100, 100], platform_failures: [0, 100], ..Signals::default() };
        let tick = |b: &Signals| {
            let signals = [
                (RampScope::Override(0), ScopeSignals { seen: 100, signals: healthy.clone() }),
                (RampScope::Override(1), ScopeSignals { seen: 100, signals: b.clone() }),
            ];
            control.ramp_tick(2_000_000, &signals)
        };
        assert!(tick(&healthy).is_none(), "team-a waits for its approval; team-b goes on");
        let needed = RampCallError::ScopeNeeded { scopes: "team-a/*/*, team-b/*/*".into() };
        assert_eq!(control.approve_ramp(None, "t"), Err(needed));
        assert!(matches!(control.approve_ramp(Some("team-c"), "t"), Err(RampCallError::UnknownScope { .. })));
        assert!(matches!(control.approve_ramp(Some("team-b/*/*"), "t"), Err(RampCallError::NotAwaiting { .. })));
        assert_eq!(control.approve_ramp(Some("team-a/*/*"), "t"), Ok(1));
        let published = tick(&failing).expect("team-b rolled back");
        assert_eq!(published.version, "two+rollback-o1");
        let share_of = |ns: &str| {
            let active = control.snapshot();
            active.rules.decide(&Invocation { namespace: ns, action: "a", ..Invocation::default() }).share.to_string()
        };
        assert_eq!((share_of("team-a"), share_of("team-b")), ("50%".to_string(), "0%".to_string()));
        assert!(matches!(control.offer(Ok(published), RuleSource::AdminApi), Ok(Applied::Accepted { .. })));
        let status = control.ramp_status(2_000_000).unwrap();
        let ramps = status["ramps"].as_array().unwrap();
        assert_eq!(
            (ramps[0]["state"].as_str(), ramps[0]["approved"].clone()),
            (Some("complete"), serde_json::json!([1]))
        );
        assert_eq!(ramps[1]["state"], "rolled_back");
        assert_eq!(ramps[1]["rollback"]["in_rules"], true);
        assert_eq!((share_of("team-a"), share_of("team-b")), ("50%".to_string(), "0%".to_string()));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever happens (accepted and rejected offers, the kill latch, ramp steps and
        /// rollbacks), a snapshot a request took keeps routing exactly as it did when it was taken.
        #[test]
        fn a_swap_never_changes_the_rules_under_a_request_in_flight(changes in prop::collection::vec(change(), 1..40)) {
            let live = Arc::new(LiveCounters::default());
            let control = RuleControl::new(rules(0, 0, true), RuleSource::AdminApi, Arc::new(Metrics::new()), live, quiet(), Arc::new(RecentTraffic::new(0)));
            let mut held: Vec<(Arc<ActiveRules>, Seen)> = Vec::new();
            for c in changes {
                match c {
                    Change::Offer { version, share, valid } => {
                        let candidate = if valid {
                            Ok(rules(version, share, share % 2 == 0))
                        } else {
                            Err(RulesRejected::single("prop", "scheduler_share", "out of range"))
                        };
                        let _ = control.offer(candidate, RuleSource::AdminApi);
                    }
                    Change::Kill(on) => {
                        control.set_kill_latch(on, "prop");
                    }
                    Change::RampTick { ms, failures } => {
                        let signals = Signals {
                            invocations: [100, 100],
                            platform_failures: [0, failures.min(100)],
                            ..Signals::default()
                        };
                        let signals = [(RampScope::Global, ScopeSignals { seen: 1000, signals })];
                        control.ramp_tick(1_800_000_000_000 + ms, &signals);
                    }
                    Change::Snapshot => {
                        let s = control.snapshot();
                        let view = seen(&s);
                        held.push((s, view));
                    }
                }
                for (snapshot, view) in &held {
                    prop_assert_eq!(&seen(snapshot), view);
                }
            }
        }
    }
}

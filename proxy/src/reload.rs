//! One path for every rule change: parse → validate → compile (done by the caller, off the
//! request path) → check against the active set → swap → audit. Sources (file watch, SIGHUP,
//! admin API) all end here, so they behave the same and the newest accepted change wins.
//!
//! The admin kill switch is a latch on top of the accepted rule set: while it is on, the effective
//! rules are the accepted ones with `kill_switch = true` (version `<version>+killed`), and rule
//! changes from any source are still accepted underneath; `unkill` releases it.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{json, Value};
use switchyard_rules::{RuleError, RuleSet, RulesRejected};

use crate::state::{unix_seconds, ActiveRules, RuleSource, Shared};

/// What happened to a candidate rule set that passed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Applied {
    Accepted {
        version: String,
        previous: String,
        summary: String,
    },
    /// Same version and same content as the active set: nothing to do.
    Unchanged {
        version: String,
    },
}

#[derive(Debug, Clone, Serialize)]
struct Rejection {
    source: String,
    at: f64,
    errors: Vec<RuleError>,
}

struct ManagerState {
    /// The last accepted rule set, before the kill latch.
    accepted: Arc<ActiveRules>,
    kill_latch: Option<(SystemTime, String)>,
    last_rejected: Option<Rejection>,
}

pub struct RulesManager {
    state: Mutex<ManagerState>,
}

impl RulesManager {
    pub fn new(initial: ActiveRules) -> RulesManager {
        RulesManager {
            state: Mutex::new(ManagerState { accepted: Arc::new(initial), kill_latch: None, last_rejected: None }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManagerState> {
        // A panic while holding it cannot leave the state half-written (fields are replaced whole).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The accepted rule set (without the kill latch).
    pub fn accepted(&self) -> Arc<ActiveRules> {
        Arc::clone(&self.lock().accepted)
    }
}

fn effective(accepted: &ActiveRules, latched: bool) -> ActiveRules {
    if latched {
        ActiveRules::new(accepted.rules.with_kill_switch(true), accepted.source.clone())
    } else {
        ActiveRules::new(accepted.rules.clone(), accepted.source.clone())
    }
}

impl Shared {
    /// Offers a parsed candidate (or its parse errors) from `source`. On success the new rules
    /// route every request that starts after this returns.
    pub fn offer_rules(
        &self,
        candidate: Result<RuleSet, RulesRejected>,
        source: RuleSource,
    ) -> Result<Applied, RulesRejected> {
        let mut state = self.reloads.lock();
        let outcome = candidate.and_then(|next| check_version(&state.accepted.rules, next, &source));
        match outcome {
            Err(rejected) => {
                tracing::warn!(source = %source, errors = %rejected, "rules rejected; the active rules keep serving");
                state.last_rejected = Some(Rejection {
                    source: source.to_string(),
                    at: unix_seconds(SystemTime::now()),
                    errors: rejected.errors.clone(),
                });
                self.metrics.reload(source.label(), "rejected");
                Err(rejected)
            }
            Ok(None) => {
                self.metrics.reload(source.label(), "unchanged");
                Ok(Applied::Unchanged { version: state.accepted.rules.version.clone() })
            }
            Ok(Some(next)) => {
                let summary = next.diff_from(&state.accepted.rules).to_string();
                let previous = state.accepted.rules.version.clone();
                let version = next.version.clone();
                let accepted = ActiveRules::new(next, source.clone());
                self.install_rules(effective(&accepted, state.kill_latch.is_some()));
                state.accepted = Arc::new(accepted);
                tracing::info!(target: "switchyard::audit", old_version = %previous, new_version = %version, source = %source,
                    kill_latch = state.kill_latch.is_some(), changes = %summary, "rules changed");
                self.metrics.reload(source.label(), "accepted");
                Ok(Applied::Accepted { version, previous, summary })
            }
        }
    }

    /// Re-reads the rules file and offers it (file watch, SIGHUP, start).
    pub fn reload_file(
        &self,
        path: &std::path::Path,
        trigger: crate::state::FileTrigger,
    ) -> Result<Applied, RulesRejected> {
        let candidate = switchyard_rules::load_rules_file(path);
        self.offer_rules(candidate, RuleSource::File { path: path.to_path_buf(), trigger })
    }

    /// Sets or releases the admin kill latch. Returns the effective version.
    pub fn set_kill_latch(&self, on: bool, by: &str) -> String {
        let mut state = self.reloads.lock();
        let was = state.kill_latch.is_some();
        state.kill_latch = on.then(|| (SystemTime::now(), by.to_string()));
        let next = effective(&state.accepted, on);
        let version = next.rules.version.clone();
        if was != on {
            let old = self.rules.load().rules.version.clone();
            self.install_rules(next);
            tracing::info!(target: "switchyard::audit", old_version = %old, new_version = %version, source = by,
                changes = if on { "kill switch latched on: everything to legacy" } else { "kill switch latch released" }, "rules changed");
        }
        self.metrics.reload("admin", if was != on { "accepted" } else { "unchanged" });
        version
    }

    /// `GET /rules/status`: the active version and its provenance, the kill latch, the last rejection.
    pub fn rules_status(&self) -> Value {
        let state = self.reloads.lock();
        let effective = self.rules.load();
        json!({
            "active": {
                "version": effective.rules.version,
                "accepted_version": state.accepted.rules.version,
                "source": state.accepted.source.to_string(),
                "loaded_at": unix_seconds(state.accepted.loaded_at),
                "kill_switch": effective.rules.kill_switch,
            },
            "kill_latch": state.kill_latch.as_ref().map(|(at, by)| json!({"since": unix_seconds(*at), "by": by})),
            "last_rejected": state.last_rejected,
        })
    }
}

/// Versions must identify content: a different content under the active version is rejected.
/// `Ok(None)` means the candidate is the active set again.
fn check_version(active: &RuleSet, next: RuleSet, source: &RuleSource) -> Result<Option<RuleSet>, RulesRejected> {
    if next.version != active.version {
        return Ok(Some(next));
    }
    if next.fingerprint == active.fingerprint {
        return Ok(None);
    }
    Err(RulesRejected {
        errors: vec![RuleError {
            source: source.error_name(),
            path: "version".into(),
            reason: format!(
                "version `{}` is already active with different content; give the new content a new version",
                next.version
            ),
        }],
    })
}

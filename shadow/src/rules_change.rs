//! The report's conclusion as a rules change: the base rules plus an override moving each ready
//! action to the scheduler, validated as `switchyard check` validates a file.

use serde_json::Value;
use switchyard_rules::{RuleSet, RulesFormat, RulesRejected, MAX_VERSION_BYTES};

use crate::readiness::{ReadyOverride, Verdict};
use crate::report::Report;

/// Why the next rules change could not be written.
#[derive(Debug, thiserror::Error)]
pub enum NextRulesError {
    #[error("the base rules have no overrides list")]
    NoOverrides,
    /// The generated rules did not pass the check every rules file passes (a bug if it happens).
    #[error("the generated rules are invalid: {0}")]
    Invalid(RulesRejected),
    #[error("cannot write the rules: {0}")]
    Write(String),
}

/// The next rules change: the base rules plus an override per ready action (share 100; an
/// existing override of exactly that action gets share 100 instead), under a new version,
/// validated exactly like `switchyard check --rules` before it is written. TOML.
pub fn next_rules(report: &Report, base: &RuleSet, base_name: &str) -> Result<String, NextRulesError> {
    let ready: Vec<ReadyOverride> = report
        .actions_by_verdict()
        .iter()
        .filter(|a| a.readiness.verdict == Verdict::Ready)
        .filter_map(|a| ReadyOverride::for_action(&a.action))
        .collect();
    let mut doc = base.to_document();
    let overrides = doc["overrides"].as_array_mut().ok_or(NextRulesError::NoOverrides)?;
    let mut moved = 0;
    for o in &ready {
        let same = |x: &Value| {
            x["namespace"] == o.namespace.as_str()
                && x["package"] == o.package.as_str()
                && x["action"] == o.action.as_str()
        };
        match overrides.iter_mut().find(|x| same(x)) {
            Some(existing) if existing["share"] == "100%" => continue,
            Some(existing) => existing["share"] = Value::from(100),
            None => overrides.push(o.to_json()),
        }
        moved += 1;
    }
    // The base's version with the suffix, cut so that the whole stays within the version limit.
    let suffix = format!("+ready-{moved}");
    let stem = base.version.split("+ready-").next().unwrap_or(&base.version);
    let mut end = stem.len().min(MAX_VERSION_BYTES - suffix.len());
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    let version = format!("{}{suffix}", &stem[..end]);
    doc["version"] = Value::from(version);
    // Validated as `check` validates a file, then written in the format operators edit.
    let json = serde_json::to_vec(&doc).map_err(|e| NextRulesError::Write(e.to_string()))?;
    switchyard_rules::parse_rules(&json, RulesFormat::Json, "the generated rules").map_err(NextRulesError::Invalid)?;
    let header = format!(
        "# {} plus {moved} action{} ready to move to the scheduler (switchyard report --format rules).\n",
        base_name,
        if moved == 1 { "" } else { "s" }
    );
    toml::to_string(&doc).map(|t| header + &t).map_err(|e| NextRulesError::Write(format!("as TOML: {e}")))
}

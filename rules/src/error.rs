use std::fmt;

/// One problem found in a rule set: where it came from, which field, and why it is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleError {
    /// Where the rule set came from: a file path, `admin API`, a Kafka topic and offset.
    pub source: String,
    /// The field path inside the document, e.g. `overrides[2].share`; empty for the whole document.
    pub path: String,
    pub reason: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.source, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.source, self.path, self.reason)
        }
    }
}

/// A rule set that did not validate, with every error found (not just the first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("rule set rejected ({} error{}):\n{}", .errors.len(), if .errors.len() == 1 { "" } else { "s" }, render(.errors))]
pub struct RulesRejected {
    pub errors: Vec<RuleError>,
}

fn render(errors: &[RuleError]) -> String {
    errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n")
}

impl RulesRejected {
    pub(crate) fn single(source: &str, path: &str, reason: impl Into<String>) -> Self {
        RulesRejected {
            errors: vec![RuleError { source: source.to_string(), path: path.to_string(), reason: reason.into() }],
        }
    }
}

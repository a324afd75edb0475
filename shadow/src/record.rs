//! The comparison record: one request compared on both paths. Versioned JSON, one object per
//! line in files and one Kafka value per record; readers skip records of unknown versions.

use serde::{Deserialize, Serialize};

use crate::compare::Comparison;
use crate::diff::Difference;
use crate::outcome::{Outcome, SideReport};
use crate::redact::{Redactor, REDACTED};

/// Bumped on any incompatible change of [`ComparisonRecord`].
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRecord {
    pub schema: u32,
    /// Unix time in milliseconds.
    pub time_ms: u64,
    /// The switchyard replica that mirrored the request.
    pub instance: String,
    pub request_id: String,
    /// `namespace/action` or `namespace/package/action`.
    pub action: String,
    /// The pool whose answer the client got.
    pub served_by: String,
    pub outcome: Outcome,
    /// Always the legacy path's side, whichever served the client.
    pub legacy: SideReport,
    pub scheduler: SideReport,
    /// Oriented legacy → scheduler; values are redacted and truncated.
    #[serde(default)]
    pub differences: Vec<Difference>,
    /// Differences left out beyond the per-record limit.
    #[serde(default)]
    pub differences_truncated: usize,
    /// With calibration: the paths that differed between two copies sent to the *same* path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_differences: Option<Vec<String>>,
}

/// The longest latency a record may carry: one day. OpenWhisk's blocking wait is 60 s and an
/// action's limit minutes; a record saying more (or a negative or non-finite time) was not written
/// by switchyard and would only distort the latency figures.
pub const MAX_LATENCY_MS: f64 = 86_400_000.0;

impl ComparisonRecord {
    /// Reads one record (a line of a record file, a message of the records topic). `None` for what
    /// is not a record this reader can use: not JSON of the record's shape, or a latency that
    /// cannot be (negative, not finite, over [`MAX_LATENCY_MS`]).
    pub fn parse(bytes: &[u8]) -> Option<ComparisonRecord> {
        let record: ComparisonRecord = serde_json::from_slice(bytes).ok()?;
        let plausible = |ms: f64| ms.is_finite() && (0.0..=MAX_LATENCY_MS).contains(&ms);
        (plausible(record.legacy.latency_ms) && plausible(record.scheduler.latency_ms)).then_some(record)
    }
}

/// Per-record bounds, so one odd response cannot make a huge record.
pub const MAX_DIFFERENCES: usize = 50;
pub const MAX_EXAMPLE_CHARS: usize = 256;

/// Shortens an example value: long strings are cut, large arrays and objects summarised.
pub fn bound_example(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) if s.chars().count() > MAX_EXAMPLE_CHARS => Value::String(format!(
            "{}… ({} chars)",
            s.chars().take(MAX_EXAMPLE_CHARS).collect::<String>(),
            s.chars().count()
        )),
        Value::Array(_) | Value::Object(_) => {
            let text = value.to_string();
            if text.len() > MAX_EXAMPLE_CHARS {
                Value::String(format!(
                    "{}… ({} bytes of JSON)",
                    text.chars().take(MAX_EXAMPLE_CHARS).collect::<String>(),
                    text.len()
                ))
            } else {
                value.clone()
            }
        }
        _ => value.clone(),
    }
}

/// Shortens a difference path (object keys come from the answers, so a path can be as long as
/// an answer) to [`MAX_EXAMPLE_CHARS`] characters.
pub fn bound_path(path: String) -> String {
    if path.chars().count() <= MAX_EXAMPLE_CHARS {
        return path;
    }
    format!("{}…", path.chars().take(MAX_EXAMPLE_CHARS).collect::<String>())
}

/// Who and what a record is about.
#[derive(Debug, Clone)]
pub struct RecordContext<'a> {
    pub instance: &'a str,
    pub request_id: &'a str,
    pub action: &'a str,
    pub served_by: &'a str,
    pub time_ms: u64,
}

impl ComparisonRecord {
    /// Builds a record from a comparison: differences bounded in number and size, and redacted
    /// before the record exists (`secrets` are values that must never appear, like the caller's key).
    pub fn from_comparison(
        ctx: &RecordContext<'_>,
        comparison: Comparison,
        control_differences: Option<Vec<String>>,
        redactor: &Redactor,
        secrets: &[&str],
    ) -> ComparisonRecord {
        let total = comparison.differences.len();
        let differences = comparison
            .differences
            .into_iter()
            .take(MAX_DIFFERENCES)
            .map(|mut d| {
                for value in [&mut d.legacy, &mut d.scheduler].into_iter().flatten() {
                    if redactor.covers(&d.path) {
                        *value = serde_json::Value::String(REDACTED.into());
                    } else {
                        redactor.redact(value, &d.path, secrets);
                        *value = bound_example(value);
                    }
                }
                d.path = bound_path(d.path);
                d
            })
            .collect();
        ComparisonRecord {
            schema: SCHEMA_VERSION,
            time_ms: ctx.time_ms,
            instance: ctx.instance.to_string(),
            request_id: ctx.request_id.to_string(),
            action: ctx.action.to_string(),
            served_by: ctx.served_by.to_string(),
            outcome: comparison.outcome,
            legacy: comparison.legacy,
            scheduler: comparison.scheduler,
            differences,
            differences_truncated: total.saturating_sub(MAX_DIFFERENCES),
            control_differences: control_differences
                .map(|paths| paths.into_iter().take(MAX_DIFFERENCES).map(bound_path).collect()),
        }
    }
}

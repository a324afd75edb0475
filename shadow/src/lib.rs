//! Shadow comparison for switchyard: does the new scheduler path return what the legacy path
//! returns? This crate holds everything that does not touch the network (no async runtime, no
//! Kafka): OpenWhisk-aware normalisation, the structural JSON diff, learned noise, redaction, the
//! versioned comparison record, aggregation into reports (text, JSON, HTML) and the JSON-lines
//! record file. Mirroring and the Kafka transport live in the proxy.
#![forbid(unsafe_code)]

mod answer;
mod compare;
mod diff;
pub mod html;
mod noise;
mod normalize;
mod outcome;
mod readiness;
mod record;
mod redact;
mod report;
mod rules_change;
mod sink;
mod svg;
mod timeline;

pub use answer::{system_written, AnswerClass, CLASSIFY_PREFIX_BYTES, THROTTLE_DROP_MESSAGE};
pub use compare::{compare, Comparison, Observed, ANNOTATIONS_PATH};
pub use diff::{diff_json, DiffKind, Difference};
pub use noise::{NoiseModel, NoiseThresholds};
pub use normalize::{normalize, Normalized, PER_CALL_ANNOTATIONS};
pub use outcome::{Outcome, OutcomeKind, SideReport, SkipReason};
pub use readiness::{Readiness, ReadinessRules, ReadyOverride, Verdict};
pub use record::{ComparisonRecord, RecordContext, SCHEMA_VERSION};
pub use redact::{Redactor, SECRET_FIELDS};
pub use report::{ActionReport, Report, ReportLimits, Summary, OTHER_ACTIONS, OTHER_PATHS};
pub use rules_change::{next_rules, NextRulesError};
pub use sink::{for_each_record, read_records, JsonLinesFile, SinkError, WriteError, MAX_RECORD_LINE};
pub use svg::Mark;

//! Shadow comparison for switchyard: does the new scheduler path return what the legacy path
//! returns? This crate holds everything that does not touch the network: OpenWhisk-aware
//! normalisation, the structural JSON diff, learned noise, redaction, the versioned comparison
//! record, aggregation into reports (text, JSON, HTML) and the JSON-lines record file.
#![forbid(unsafe_code)]

mod compare;
mod diff;
mod kafka;
mod noise;
mod normalize;
mod record;
mod redact;
mod report;
mod sink;

pub use compare::{compare, Comparison, Observed};
pub use diff::{diff_json, DiffKind, Difference};
pub use kafka::{
    read_records_from_topic, read_to_end, Delivery, DeliveryCallback, KafkaConfig, KafkaSink, TopicMessage,
    TopicReadError,
};
pub use noise::{NoiseModel, NoiseThresholds};
pub use normalize::{normalize, Normalized, PER_CALL_ANNOTATIONS};
pub use record::{ComparisonRecord, Outcome, RecordContext, SideReport, SCHEMA_VERSION};
pub use redact::Redactor;
pub use report::{ActionReport, Report};
pub use sink::{read_records, JsonLinesFile, SinkError};

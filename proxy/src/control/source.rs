//! Where a rule change comes from, and the labels a change is counted under.

use std::fmt;
use std::path::PathBuf;

use strum::IntoEnumIterator;

use crate::ops::metrics::{Counters, LabelEnum, Metrics, RULES_RELOADS};

/// What made switchyard read the rules file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileTrigger {
    Start,
    /// The file watcher saw the file (or its directory) change.
    Watch,
    Sighup,
}

/// Where a rule set came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSource {
    File {
        path: PathBuf,
        trigger: FileTrigger,
    },
    /// `PUT /rules`, or the kill latch set with `POST /rules/kill|unkill`; kept in memory only.
    AdminApi,
    /// A record on the rules topic.
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
}

impl RuleSource {
    pub fn label(&self) -> ReloadSource {
        match self {
            RuleSource::File { trigger: FileTrigger::Start, .. } => ReloadSource::Start,
            RuleSource::File { trigger: FileTrigger::Watch, .. } => ReloadSource::File,
            RuleSource::File { trigger: FileTrigger::Sighup, .. } => ReloadSource::Sighup,
            RuleSource::AdminApi => ReloadSource::Admin,
            RuleSource::Kafka { .. } => ReloadSource::Kafka,
        }
    }

    /// The name used in validation errors.
    pub fn error_name(&self) -> String {
        match self {
            RuleSource::File { path, .. } => path.display().to_string(),
            RuleSource::AdminApi => "admin API".to_string(),
            RuleSource::Kafka { topic, partition, offset } => {
                format!("kafka topic {topic} partition {partition} offset {offset}")
            }
        }
    }
}

impl fmt::Display for RuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleSource::File { path, trigger } => {
                let how = match trigger {
                    FileTrigger::Start => "at start",
                    FileTrigger::Watch => "file change",
                    FileTrigger::Sighup => "SIGHUP",
                };
                write!(f, "file {} ({how})", path.display())
            }
            RuleSource::AdminApi => f.write_str("admin API (in memory; a later file change replaces it)"),
            RuleSource::Kafka { topic, partition, offset } => {
                write!(f, "kafka topic {topic} (partition {partition}, offset {offset})")
            }
        }
    }
}

/// The `source` label of `switchyard_rules_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ReloadSource {
    Start,
    File,
    Sighup,
    Admin,
    Kafka,
}

impl ReloadSource {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The `result` label of `switchyard_rules_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ReloadResult {
    Accepted,
    Rejected,
    /// The same content under the same version: nothing to do.
    Unchanged,
}

impl ReloadResult {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// `switchyard_rules_reloads_total{source, result}`.
pub struct Reloads(Vec<Counters<ReloadResult>>);

impl Reloads {
    pub fn new(metrics: &Metrics) -> Reloads {
        Reloads(
            ReloadSource::iter()
                .map(|s| Counters::new(metrics, RULES_RELOADS, &[("source", s.as_str())], "result"))
                .collect(),
        )
    }

    pub fn count(&self, source: ReloadSource, result: ReloadResult) {
        self.0[source.position()].count(result);
    }
}

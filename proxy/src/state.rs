//! What the data plane and the control plane share: the active rules, the pools, the metrics.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde_json::{json, Value};
use switchyard_rules::RuleSet;

use crate::metrics::Metrics;
use crate::pools::Pools;

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
    /// `PUT /rules`, kept in memory only.
    AdminApi,
    /// A record on the rules topic.
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
}

impl RuleSource {
    /// The `source` label of `switchyard_rules_reloads_total`.
    pub fn label(&self) -> &'static str {
        match self {
            RuleSource::File { trigger: FileTrigger::Start, .. } => "start",
            RuleSource::File { trigger: FileTrigger::Watch, .. } => "file",
            RuleSource::File { trigger: FileTrigger::Sighup, .. } => "sighup",
            RuleSource::AdminApi => "admin",
            RuleSource::Kafka { .. } => "kafka",
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

impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

    pub fn describe(&self) -> Value {
        json!({
            "version": self.rules.version,
            "source": self.source.to_string(),
            "loaded_at": unix_seconds(self.loaded_at),
            "kill_switch": self.rules.kill_switch,
            "rules": self.rules.to_document(),
        })
    }
}

pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

pub struct Shared {
    /// The effective rules every request routes by (the accepted set, with the kill latch applied).
    pub rules: ArcSwap<ActiveRules>,
    /// Serialises rule changes from every source and remembers what was accepted and rejected.
    pub reloads: crate::reload::RulesManager,
    pub pools: Pools,
    pub metrics: Arc<Metrics>,
    pub pool_header: bool,
    /// Set once at start (the workers need `Shared` themselves).
    pub shadow: std::sync::OnceLock<Arc<crate::shadow::ShadowState>>,
    /// Health of the Kafka parts, for `/readyz` details (never for readiness itself).
    pub kafka: KafkaHealth,
}

/// What `/readyz` says about Kafka: counts of records by result, and the rules topic's last error.
#[derive(Default)]
pub struct KafkaHealth {
    pub records_delivered: std::sync::atomic::AtomicU64,
    pub records_failed: std::sync::atomic::AtomicU64,
    pub records_dropped: std::sync::atomic::AtomicU64,
    /// The last record's result was a delivery (or nothing was sent yet).
    pub records_healthy: std::sync::atomic::AtomicBool,
    pub rules_error: std::sync::Mutex<Option<String>>,
}

impl Shared {
    /// Remembers whether the rules topic could be read (`None`: it could).
    pub fn kafka_rules_status(&self, error: Option<String>) {
        *self.kafka.rules_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    /// Makes a rule set the effective one and updates the gauges that describe it.
    pub fn install_rules(&self, next: ActiveRules) {
        let old = self.rules.load().rules.version.clone();
        self.publish_gauges(&next, Some(&old));
        self.rules.store(Arc::new(next));
    }

    pub fn publish_gauges(&self, active: &ActiveRules, old_version: Option<&str>) {
        let r = &active.rules;
        let share = if r.kill_switch { 0.0 } else { r.scheduler_share.as_fraction() };
        self.metrics.scheduler_share.set(share);
        self.metrics.kill_switch.set(if r.kill_switch { 1.0 } else { 0.0 });
        self.metrics.rules_loaded_at.set(unix_seconds(active.loaded_at));
        self.metrics.rules_version(old_version, &r.version);
    }
}

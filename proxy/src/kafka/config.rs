//! The static `[kafka]` settings and the librdkafka clients built from them.

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use serde::{Deserialize, Serialize};

/// Producer settings shared by the record sink and the rules publisher.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `host:port,host:port`; empty turns Kafka off.
    pub brokers: String,
    /// Topic for comparison records; empty: no Kafka record sink.
    pub records_topic: String,
    /// Topic whose newest valid record is the fleet's rule set; empty: rules do not come from Kafka.
    pub rules_topic: String,
    /// `all`, `1` or `0`.
    pub acks: String,
    /// `none`, `gzip`, `snappy`, `lz4` (zstd is not built in).
    pub compression: String,
    /// How long librdkafka retries a record before it counts as failed.
    pub message_timeout_ms: u64,
    /// The local queue: records waiting for the broker; past it new records are dropped.
    pub queue_max_messages: u32,
    /// Passed to librdkafka by name (e.g. `security.protocol`, `sasl.mechanism`, `client.id`).
    pub properties: BTreeMap<String, String>,
    /// ed25519 public keys (standard base64); when set, only rule records signed by one of them
    /// are applied.
    pub rules_verify_keys: Vec<String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: String::new(),
            records_topic: String::new(),
            rules_topic: String::new(),
            acks: "all".into(),
            compression: "lz4".into(),
            message_timeout_ms: 30_000,
            queue_max_messages: 10_000,
            properties: BTreeMap::new(),
            rules_verify_keys: Vec::new(),
        }
    }
}

impl KafkaConfig {
    pub fn enabled(&self) -> bool {
        !self.brokers.trim().is_empty()
    }

    /// A librdkafka client config with the brokers and the pass-through properties.
    pub fn client_config(&self) -> ClientConfig {
        self.with_properties(ClientConfig::new())
    }

    /// A producer with switchyard's settings; `properties` are applied last, so an operator can
    /// override any of them by librdkafka name.
    pub fn producer(&self) -> Result<FutureProducer, KafkaError> {
        let mut c = ClientConfig::new();
        c.set("acks", &self.acks)
            .set("compression.type", &self.compression)
            .set("message.timeout.ms", self.message_timeout_ms.to_string())
            .set("queue.buffering.max.messages", self.queue_max_messages.to_string());
        self.with_properties(c).create()
    }

    fn with_properties(&self, mut c: ClientConfig) -> ClientConfig {
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}

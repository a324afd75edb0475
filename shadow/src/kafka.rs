//! Comparison records on a Kafka topic, so that one report covers every replica. Records are JSON
//! values keyed by action (one action's records stay ordered in one partition), with headers for
//! the schema version and the replica. Sending never waits: the producer's local queue is bounded,
//! a full queue drops the record, and every record ends counted as delivered, failed or dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::record::{ComparisonRecord, SCHEMA_VERSION};

/// What became of one record sent to Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// The broker did not take it within the message timeout, or refused it.
    Failed,
    /// The local queue was full: never sent.
    Dropped,
}

impl Delivery {
    pub fn label(self) -> &'static str {
        match self {
            Delivery::Delivered => "delivered",
            Delivery::Failed => "failed",
            Delivery::Dropped => "dropped",
        }
    }
}

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
        }
    }
}

impl KafkaConfig {
    pub fn enabled(&self) -> bool {
        !self.brokers.trim().is_empty()
    }

    /// A librdkafka client config with the brokers and the pass-through properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    pub fn producer(&self) -> Result<FutureProducer, KafkaError> {
        let mut c = self.client_config();
        c.set("acks", &self.acks)
            .set("compression.type", &self.compression)
            .set("message.timeout.ms", self.message_timeout_ms.to_string())
            .set("queue.buffering.max.messages", self.queue_max_messages.to_string());
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c.create()
    }
}

pub type DeliveryCallback = Arc<dyn Fn(Delivery) + Send + Sync>;

pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    instance: String,
    on_result: DeliveryCallback,
}

impl KafkaSink {
    /// The producer connects lazily: an unreachable broker does not stop the start.
    pub fn new(config: &KafkaConfig, instance: &str, on_result: DeliveryCallback) -> Result<KafkaSink, KafkaError> {
        Ok(KafkaSink {
            producer: config.producer()?,
            topic: config.records_topic.clone(),
            instance: instance.to_string(),
            on_result,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Enqueues a record without waiting. Must run inside a tokio runtime (delivery is awaited on a
    /// task of its own).
    pub fn send(&self, record: &ComparisonRecord) {
        let payload = serde_json::to_vec(record).unwrap_or_default();
        let schema = SCHEMA_VERSION.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "schema", value: Some(schema.as_str()) })
            .insert(Header { key: "instance", value: Some(self.instance.as_str()) })
            .insert(Header { key: "content-type", value: Some("application/json") });
        let message = FutureRecord::to(&self.topic).key(record.action.as_str()).payload(&payload).headers(headers);
        match self.producer.send_result(message) {
            Ok(delivery) => {
                let on_result = Arc::clone(&self.on_result);
                tokio::spawn(async move {
                    let outcome = match delivery.await {
                        Ok(Ok(_)) => Delivery::Delivered,
                        _ => Delivery::Failed,
                    };
                    on_result(outcome);
                });
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => (self.on_result)(Delivery::Dropped),
            Err(_) => (self.on_result)(Delivery::Failed),
        }
    }

    /// Waits up to `timeout` for records in the local queue (at shutdown).
    pub fn flush(&self, timeout: Duration) {
        let _ = self.producer.flush(timeout);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TopicReadError {
    #[error("{0}")]
    Kafka(#[from] KafkaError),
    #[error("topic `{0}` does not exist (or the broker does not list it)")]
    NoTopic(String),
    #[error("no progress for {0:?} reading `{1}`: is the broker reachable?")]
    Stalled(Duration, String),
}

/// One message read from a topic.
#[derive(Debug, Clone)]
pub struct TopicMessage {
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
    pub partition: i32,
    pub offset: i64,
}

/// Reads a topic from the beginning to its current end (the high watermarks when reading
/// starts), in order within each partition. `progress(read, total)` is called as it goes.
/// Returns each message with its headers as a map.
pub fn read_to_end(
    config: &ClientConfig,
    topic: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<TopicMessage>, TopicReadError> {
    let timeout = Duration::from_secs(10);
    let mut config = config.clone();
    config
        .set("group.id", format!("switchyard-reader-{}-{}", std::process::id(), rand_suffix()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = config.create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let Some(t) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
    else {
        return Err(TopicReadError::NoTopic(topic.to_string()));
    };
    let mut ends = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    let mut total = 0u64;
    for p in t.partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
        if high > low {
            ends.insert(p.id(), high);
            total += (high - low) as u64;
            assignment.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer.assign(&assignment)?;
    let stall = Duration::from_secs(30);
    let mut last_progress = Instant::now();
    while !ends.is_empty() {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .filter_map(|h| Some((h.key.to_string(), String::from_utf8_lossy(h.value?).into_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(TopicMessage {
                    payload: m.payload().unwrap_or_default().to_vec(),
                    headers,
                    partition: m.partition(),
                    offset: m.offset(),
                });
                if ends.get(&m.partition()).is_some_and(|end| m.offset() + 1 >= *end) {
                    ends.remove(&m.partition());
                }
                progress(out.len() as u64, total);
            }
            Some(Err(e)) => return Err(e.into()),
            None if last_progress.elapsed() > stall => return Err(TopicReadError::Stalled(stall, topic.to_string())),
            None => {}
        }
    }
    Ok(out)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Every comparison record on a topic (all replicas), optionally only those at or after
/// `since_ms`. Returns the records and the number of messages that were not records.
pub fn read_records_from_topic(
    config: &ClientConfig,
    topic: &str,
    since_ms: Option<u64>,
    progress: impl FnMut(u64, u64),
) -> Result<(Vec<ComparisonRecord>, usize), TopicReadError> {
    let mut records = Vec::new();
    let mut bad = 0;
    for message in read_to_end(config, topic, progress)? {
        match serde_json::from_slice::<ComparisonRecord>(&message.payload) {
            Ok(r) if since_ms.is_none_or(|s| r.time_ms >= s) => records.push(r),
            Ok(_) => {}
            Err(_) => bad += 1,
        }
    }
    Ok((records, bad))
}

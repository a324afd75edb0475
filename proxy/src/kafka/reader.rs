//! Reading a topic to its end: the fleet-wide report (`switchyard report --from kafka://...`) and
//! the rules follower's catch-up.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_shadow::ComparisonRecord;

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

impl TopicMessage {
    /// Copies a message out of the consumer (headers as text).
    pub fn from_message(m: &impl Message) -> TopicMessage {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .filter_map(|h| Some((h.key.to_string(), String::from_utf8_lossy(h.value?).into_owned())))
                    .collect()
            })
            .unwrap_or_default();
        TopicMessage {
            payload: m.payload().unwrap_or_default().to_vec(),
            headers,
            partition: m.partition(),
            offset: m.offset(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Reads a topic from the beginning to its current end, in order within each partition.
/// `progress(read, total)` is called as it goes (`total` from the offsets queried at the start, at
/// least what was read). Returns each message with its headers as a map.
///
/// A partition ends where a fetch finds nothing more (the consumer's end-of-partition event, from
/// the high watermark the fetch answer carries), not at the offset queried at the start: a broker
/// may answer that query with less than the end (tansu gives the first offset of the last batch,
/// plus one), and stopping there would lose the rest of that batch.
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
        .set("enable.partition.eof", "true");
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
    let mut reading = HashSet::new();
    let mut assignment = TopicPartitionList::new();
    let mut total = 0u64;
    for p in t.partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
        if high > low {
            reading.insert(p.id());
            total += (high - low) as u64;
            assignment.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
    }
    let mut out = Vec::new();
    if reading.is_empty() {
        return Ok(out);
    }
    consumer.assign(&assignment)?;
    let stall = Duration::from_secs(30);
    let mut last_progress = Instant::now();
    while !reading.is_empty() {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                out.push(TopicMessage::from_message(&m));
                progress(out.len() as u64, total.max(out.len() as u64));
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                reading.remove(&partition);
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
        match ComparisonRecord::parse(&message.payload) {
            Some(r) if since_ms.is_none_or(|s| r.time_ms >= s) => records.push(r),
            Some(_) => {}
            None => bad += 1,
        }
    }
    Ok((records, bad))
}

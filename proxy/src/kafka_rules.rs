//! Rules from a Kafka topic: the newest *valid* record is the fleet's rule set. Every replica
//! reads the topic, validates each record itself, and treats an invalid one exactly like an
//! invalid file (rejected, counted, shown at `/rules/status`, the old rules keep serving).
//! Records say their format in a `content-type` header (TOML when absent).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_rules::{RulesFormat, RulesRejected};
use switchyard_shadow::KafkaConfig;

use crate::state::{RuleSource, Shared};

fn format_of(content_type: Option<&str>) -> RulesFormat {
    content_type.and_then(RulesFormat::from_media_type).unwrap_or(RulesFormat::Toml)
}

fn offer(
    shared: &Shared,
    topic: &str,
    partition: i32,
    offset: i64,
    payload: &[u8],
    content_type: Option<&str>,
) -> bool {
    let source = RuleSource::Kafka { topic: topic.to_string(), partition, offset };
    let candidate = switchyard_rules::parse_rules(payload, format_of(content_type), &source.error_name());
    shared.offer_rules(candidate, source).is_ok()
}

/// Follows the rules topic forever: first catches up (applying the newest valid record, and
/// rejecting any invalid one after it), then offers each new record as it arrives. A broker that
/// is down is retried; the proxy keeps serving its current rules meanwhile.
pub async fn follow(shared: Arc<Shared>, config: KafkaConfig) {
    let topic = config.rules_topic.clone();
    let mut backoff = Duration::from_secs(1);
    loop {
        let catch_up = {
            let client = config.client_config();
            let topic = topic.clone();
            tokio::task::spawn_blocking(move || switchyard_shadow::read_to_end(&client, &topic, |_, _| {})).await
        };
        let records = match catch_up {
            Ok(Ok(records)) => records,
            Ok(Err(e)) => {
                tracing::warn!(topic = %topic, error = %e, retry_in = ?backoff, "cannot read the rules topic; keeping the current rules");
                shared.kafka_rules_status(Some(e.to_string()));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
            Err(_) => return,
        };
        shared.kafka_rules_status(None);
        // Newest valid record wins; records after it (invalid) are offered so they are reported.
        // The rules topic has one partition; with more, offsets order each partition only.
        let mut ordered: Vec<_> = records.iter().collect();
        ordered.sort_by_key(|m| (m.offset, m.partition));
        let content_type = |m: &switchyard_shadow::TopicMessage| m.headers.get("content-type").cloned();
        let newest_valid = ordered.iter().rposition(|m| {
            switchyard_rules::parse_rules(&m.payload, format_of(content_type(m).as_deref()), "probe").is_ok()
        });
        for m in &ordered[newest_valid.unwrap_or(0)..] {
            offer(&shared, &topic, m.partition, m.offset, &m.payload, content_type(m).as_deref());
        }
        let mut next: std::collections::HashMap<i32, i64> = Default::default();
        for m in &ordered {
            let e = next.entry(m.partition).or_insert(0);
            *e = (*e).max(m.offset + 1);
        }
        if let Err(e) = stream(&shared, &config, &topic, next).await {
            tracing::warn!(topic = %topic, error = %e, "lost the rules topic; reconnecting");
            shared.kafka_rules_status(Some(e.to_string()));
            tokio::time::sleep(backoff).await;
        }
    }
}

/// Offers every record after the given offsets (partitions not listed start at the beginning).
async fn stream(
    shared: &Shared,
    config: &KafkaConfig,
    topic: &str,
    next: std::collections::HashMap<i32, i64>,
) -> Result<(), rdkafka::error::KafkaError> {
    let mut client = config.client_config();
    client
        .set("group.id", format!("switchyard-rules-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let consumer: StreamConsumer = client.create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            let offset = next.get(&p.id()).map_or(Offset::Beginning, |o| Offset::Offset(*o));
            assignment.add_partition_offset(topic, p.id(), offset)?;
        }
    }
    consumer.assign(&assignment)?;
    loop {
        let m = consumer.recv().await?;
        let content_type = m.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == "content-type")
                .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
        });
        let payload = m.payload().unwrap_or_default().to_vec();
        let (partition, offset) = (m.partition(), m.offset());
        offer(shared, topic, partition, offset, &payload, content_type.as_deref());
    }
}

/// `switchyard rules publish`: validates, then sends the rule set to the topic and waits for the
/// broker's acknowledgement.
pub async fn publish(config: &KafkaConfig, path: &std::path::Path) -> Result<String, String> {
    let rules = switchyard_rules::load_rules_file(path).map_err(|e: RulesRejected| format!("not published: {e}"))?;
    let format = RulesFormat::from_path(path).unwrap_or(RulesFormat::Toml);
    let media = match format {
        RulesFormat::Toml => "application/toml",
        RulesFormat::Yaml => "application/yaml",
        RulesFormat::Json => "application/json",
    };
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let producer = config.producer().map_err(|e| e.to_string())?;
    let headers = rdkafka::message::OwnedHeaders::new()
        .insert(rdkafka::message::Header { key: "content-type", value: Some(media) })
        .insert(rdkafka::message::Header { key: "version", value: Some(rules.version.as_str()) });
    let record = rdkafka::producer::FutureRecord::to(&config.rules_topic).key("rules").payload(&bytes).headers(headers);
    let delivered = producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| format!("the broker did not take the rule set: {e}"))?;
    Ok(format!(
        "published version {} to {} (partition {}, offset {})",
        rules.version, config.rules_topic, delivered.partition, delivered.offset
    ))
}

//! Rules from a Kafka topic: the newest *valid* record is the fleet's rule set, and the operators'
//! ramp calls after it (approvals, holds: [`FleetCall`] records) apply to it. Every replica
//! reads the topic, validates each record itself, and treats an invalid one exactly like an
//! invalid file (rejected, counted, shown at `/rules/status`, the old rules keep serving).
//! Records say their format in a `content-type` header (TOML when absent). With verify keys
//! configured, only records signed by one of them, after the signed rules applied last, count
//! (see `signing`).

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use switchyard_rules::{RuleSet, RulesFormat, RulesRejected};

use crate::control::ramp::{FleetCall, FLEET_CALL_MEDIA};
use crate::control::rules::RuleControl;
use crate::control::source::RuleSource;
use crate::kafka::health::KafkaHealth;
use crate::kafka::reader::{read_to_end, TopicMessage};
use crate::kafka::signing::{self, SIGNATURE_HEADER, SIGNED_AT_HEADER};
use crate::ops::config::kafka::KafkaConfig;

/// The header that says a record's format.
const CONTENT_TYPE: &str = "content-type";

/// Reads rule records for one replica: checks signatures when verify keys are configured (and
/// that a record was signed after the signed rules applied last, so an old record produced again
/// cannot roll the fleet back), then parses.
struct Follower {
    rules: Arc<RuleControl>,
    topic: String,
    keys: Vec<VerifyingKey>,
    /// `signed-at` of the last signed record applied.
    newest_signed: u64,
}

impl Follower {
    /// Whether a record is a ramp call rather than a rule set.
    fn is_call(m: &TopicMessage) -> bool {
        m.header(CONTENT_TYPE) == Some(FLEET_CALL_MEDIA)
    }

    /// A candidate rule set from a record: its signature checked, then parsed in the format its
    /// `content-type` header says (TOML when absent). `Ok` carries the signing time (0 unsigned).
    fn candidate(&self, m: &TopicMessage, source_name: &str) -> Result<(RuleSet, u64), RulesRejected> {
        let signed_at = self.verified(m).map_err(|why| RulesRejected::single(source_name, "signature", why))?;
        let format = m.header(CONTENT_TYPE).and_then(RulesFormat::from_media_type).unwrap_or(RulesFormat::Toml);
        Ok((switchyard_rules::parse_rules(&m.payload, format, source_name)?, signed_at))
    }

    /// The record's signing time (0 when replicas do not verify), or why it is refused: no valid
    /// signature, or signed before the signed record applied last (a replay).
    fn verified(&self, m: &TopicMessage) -> Result<u64, String> {
        let content_type = m.header(CONTENT_TYPE);
        let signed_at = if self.keys.is_empty() {
            0
        } else {
            let at = signing::verify(
                &self.keys,
                m.header(SIGNATURE_HEADER),
                m.header(SIGNED_AT_HEADER),
                content_type.unwrap_or(""),
                &m.payload,
            )
            .map_err(|e| e.to_string())?;
            if at <= self.newest_signed {
                return Err(format!(
                    "replayed: signed at {at} ms, not after the signed record applied last ({} ms)",
                    self.newest_signed
                ));
            }
            at
        };
        Ok(signed_at)
    }

    /// A ramp call another replica shared: applied when signed as rule records must be.
    fn call(&mut self, m: &TopicMessage, source: &str) {
        let signed_at = match self.verified(m) {
            Ok(at) => at,
            Err(why) => return tracing::warn!(source, error = %why, "a ramp call refused"),
        };
        match serde_json::from_slice::<FleetCall>(&m.payload) {
            Ok(call) => {
                self.rules.apply_fleet_call(call, source);
                self.newest_signed = self.newest_signed.max(signed_at);
            }
            Err(e) => tracing::warn!(source, error = %e, "a ramp call that does not read; ignored"),
        }
    }

    fn offer(&mut self, m: &TopicMessage) {
        let source = RuleSource::Kafka { topic: self.topic.clone(), partition: m.partition, offset: m.offset };
        if Follower::is_call(m) {
            return self.call(m, &source.error_name());
        }
        let candidate = self.candidate(m, &source.error_name());
        let signed_at = candidate.as_ref().map_or(0, |(_, at)| *at);
        // The outcome is logged, counted and shown at `/rules/status` by rule control.
        if self.rules.offer(candidate.map(|(r, _)| r), source).is_ok() {
            self.newest_signed = self.newest_signed.max(signed_at);
        }
    }
}

/// Follows the rules topic forever: first catches up (applying the newest valid record, and
/// rejecting any invalid one after it), then offers each new record as it arrives. A broker that
/// is down is retried; the proxy keeps serving its current rules meanwhile.
pub async fn follow(rules: Arc<RuleControl>, health: Arc<KafkaHealth>, config: KafkaConfig) {
    let topic = config.rules_topic.clone();
    let keys = config.verify_keys();
    let mut follower = Follower { rules, topic: topic.clone(), keys, newest_signed: 0 };
    let mut backoff = Duration::from_secs(1);
    loop {
        let catch_up = {
            let client = config.client_config();
            let topic = topic.clone();
            tokio::task::spawn_blocking(move || read_to_end(&client, &topic, |_, _| {})).await
        };
        let records = match catch_up {
            Ok(Ok(records)) => records,
            Ok(Err(e)) => {
                tracing::warn!(topic = %topic, error = %e, retry_in = ?backoff, "cannot read the rules topic; keeping the current rules");
                health.set_rules_error(Some(e.to_string()));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
            Err(_) => return,
        };
        health.set_rules_error(None);
        // Newest valid record wins; records after it (invalid) are offered so they are reported.
        // The rules topic has one partition; with more, offsets order each partition only.
        let mut ordered: Vec<_> = records.iter().collect();
        ordered.sort_by_key(|m| (m.offset, m.partition));
        let newest_valid =
            ordered.iter().rposition(|m| !Follower::is_call(m) && follower.candidate(m, "probe").is_ok());
        for m in &ordered[newest_valid.unwrap_or(0)..] {
            follower.offer(m);
        }
        let mut next: std::collections::HashMap<i32, i64> = Default::default();
        for m in &ordered {
            let e = next.entry(m.partition).or_insert(0);
            *e = (*e).max(m.offset + 1);
        }
        if let Err(e) = stream(&mut follower, &config, next).await {
            tracing::warn!(topic = %topic, error = %e, "lost the rules topic; reconnecting");
            health.set_rules_error(Some(e.to_string()));
            tokio::time::sleep(backoff).await;
        }
    }
}

/// Offers every record after the given offsets (partitions not listed start at the beginning).
async fn stream(
    follower: &mut Follower,
    config: &KafkaConfig,
    next: std::collections::HashMap<i32, i64>,
) -> Result<(), rdkafka::error::KafkaError> {
    let topic = config.rules_topic.as_str();
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
        follower.offer(&TopicMessage::from_message(&m));
    }
}

/// Why a rule set was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("not published: {0}")]
    Rejected(#[from] RulesRejected),
    #[error("{}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: switchyard_rules::FileError,
    },
    #[error("cannot encode the rule set: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("cannot set up the Kafka producer: {0}")]
    Producer(#[source] rdkafka::error::KafkaError),
    #[error(transparent)]
    Signing(#[from] signing::SigningError),
    #[error("the broker did not take the rule set: {0}")]
    NotTaken(#[source] rdkafka::error::KafkaError),
}

/// `switchyard rules publish`: validates, signs when given a key, then sends the rule set to the
/// topic and waits for the broker's acknowledgement.
pub async fn publish(
    config: &KafkaConfig,
    path: &std::path::Path,
    sign_key: Option<&std::path::Path>,
) -> Result<String, PublishError> {
    let rules = switchyard_rules::load_rules_file(path)?;
    let media = RulesFormat::from_path(path).unwrap_or(RulesFormat::Toml).media_type();
    let bytes = switchyard_rules::read_capped(path, switchyard_rules::MAX_RULES_BYTES)
        .map_err(|source| PublishError::Read { path: path.to_path_buf(), source })?;
    send(config, &rules.version, media, &bytes, sign_key).await
}

/// Publishes each rollback the ramp driver hands over, in turn.
pub async fn publish_rollbacks(config: KafkaConfig, mut rollbacks: tokio::sync::mpsc::UnboundedReceiver<RuleSet>) {
    while let Some(next) = rollbacks.recv().await {
        match publish_rule_set(&config, &next).await {
            Ok(done) => tracing::info!(target: "switchyard::audit", %done, "ramp rollback published"),
            Err(e) => {
                tracing::warn!(error = %e, "the ramp rollback could not be published; this replica stays rolled back")
            }
        }
    }
}

/// Shares each ramp call made on this replica with the fleet, in turn.
pub async fn publish_calls(config: KafkaConfig, mut calls: tokio::sync::mpsc::UnboundedReceiver<FleetCall>) {
    while let Some(call) = calls.recv().await {
        let sent = match serde_json::to_vec(&call) {
            Ok(bytes) => {
                send(&config, &call.rules_version, FLEET_CALL_MEDIA, &bytes, config.rules_sign_key.as_deref()).await
            }
            Err(e) => Err(PublishError::Encode(e)),
        };
        match sent {
            Ok(done) => tracing::info!(target: "switchyard::audit", %done, "ramp call shared with the fleet"),
            Err(e) => tracing::warn!(error = %e, "a ramp call could not be shared; it holds on this replica only"),
        }
    }
}

/// Publishes a rule set this replica derived (a ramp rollback), in its canonical JSON form, signed
/// with `kafka.rules_sign_key` when that is set.
pub async fn publish_rule_set(config: &KafkaConfig, rules: &RuleSet) -> Result<String, PublishError> {
    let bytes = serde_json::to_vec(&rules.to_document())?;
    send(config, &rules.version, RulesFormat::Json.media_type(), &bytes, config.rules_sign_key.as_deref()).await
}

async fn send(
    config: &KafkaConfig,
    version: &str,
    media: &str,
    bytes: &[u8],
    sign_key: Option<&std::path::Path>,
) -> Result<String, PublishError> {
    let producer = config.producer().map_err(PublishError::Producer)?;
    let mut headers = rdkafka::message::OwnedHeaders::new()
        .insert(rdkafka::message::Header { key: CONTENT_TYPE, value: Some(media) })
        .insert(rdkafka::message::Header { key: "version", value: Some(version) });
    if let Some(key_path) = sign_key {
        let key = signing::read_signing_key(key_path)?;
        let signed_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let signature = signing::sign(&key, signed_at, media, bytes);
        let signed_at = signed_at.to_string();
        headers = headers
            .insert(rdkafka::message::Header { key: SIGNED_AT_HEADER, value: Some(signed_at.as_str()) })
            .insert(rdkafka::message::Header { key: SIGNATURE_HEADER, value: Some(signature.as_str()) });
    }
    let record = FutureRecord::to(&config.rules_topic).key("rules").payload(bytes).headers(headers);
    let delivered = producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| PublishError::NotTaken(e))?;
    Ok(format!(
        "published version {version} to {} (partition {}, offset {})",
        config.rules_topic, delivered.partition, delivered.offset
    ))
}

//! Comparison records on a Kafka topic, so that one report covers every replica. Records are JSON
//! values keyed by action (one action's records stay ordered in one partition), with headers for
//! the schema version and the replica. Sending never waits: the producer's local queue is bounded,
//! a full queue drops the record, and every record ends counted as delivered, failed or dropped.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use switchyard_shadow::{ComparisonRecord, SCHEMA_VERSION};

use crate::ops::config::kafka::KafkaConfig;
use crate::ops::delivery::Delivery;

pub type DeliveryCallback = Arc<dyn Fn(Delivery) + Send + Sync>;

#[derive(Clone)]
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

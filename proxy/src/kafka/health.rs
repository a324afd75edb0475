//! What `/readyz` says about Kafka (never part of readiness itself: Kafka being down must not
//! take traffic away): the record sink's counts by result, and the rules topic's last error.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::kafka::sink::DeliveryCallback;
use crate::ops::delivery::Delivery;
use crate::ops::metrics::{Counters, LabelEnum};
use crate::sync::lock;

#[derive(Default)]
pub struct KafkaHealth {
    /// Records by [`Delivery`] index.
    records: [AtomicU64; 3],
    /// The last record's result was a delivery (or nothing was sent yet).
    records_healthy: AtomicBool,
    rules_error: Mutex<Option<String>>,
}

/// A copy of [`KafkaHealth`] at one moment.
pub struct KafkaHealthView {
    pub records_healthy: bool,
    pub delivered: u64,
    pub failed: u64,
    pub dropped: u64,
    pub rules_topic_error: Option<String>,
}

impl KafkaHealth {
    /// Counts each record's fate here and in `counters` (the metric's handles).
    pub fn delivery_callback(self: &Arc<Self>, counters: Counters<Delivery>) -> DeliveryCallback {
        self.records_healthy.store(true, Relaxed);
        let health = Arc::clone(self);
        Arc::new(move |d: Delivery| {
            counters.count(d);
            health.records[d.position()].fetch_add(1, Relaxed);
            health.records_healthy.store(d == Delivery::Delivered, Relaxed);
        })
    }

    /// Remembers whether the rules topic could be read (`None`: it could).
    pub fn set_rules_error(&self, error: Option<String>) {
        *lock(&self.rules_error) = error;
    }

    pub fn view(&self) -> KafkaHealthView {
        let count = |d: Delivery| self.records[d.position()].load(Relaxed);
        KafkaHealthView {
            records_healthy: self.records_healthy.load(Relaxed),
            delivered: count(Delivery::Delivered),
            failed: count(Delivery::Failed),
            dropped: count(Delivery::Dropped),
            rules_topic_error: lock(&self.rules_error).clone(),
        }
    }
}

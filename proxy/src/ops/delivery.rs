//! What became of one message the proxy sends out on its own: a comparison record to Kafka, a
//! notification to a webhook. The `result` label of `switchyard_kafka_records_total` and
//! `switchyard_notifications_total`.

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Delivery {
    Delivered,
    /// Not taken: refused, timed out, answered with an error (after every retry, where there are).
    Failed,
    /// The local queue was full: never sent.
    Dropped,
}

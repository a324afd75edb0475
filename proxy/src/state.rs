//! What the data plane and the admin API share. Plain data: each part has its own owner module.

use std::sync::Arc;

use crate::control::ramp::window::LiveCounters;
use crate::control::rules::RuleControl;
use crate::data::namespaces::NamespaceResolver;
use crate::data::pools::Pools;
use crate::data::recent::RecentTraffic;
use crate::kafka::health::KafkaHealth;
use crate::lifecycle::Lifecycle;
use crate::ops::metrics::Metrics;
use crate::shadow::pipeline::ShadowState;

pub struct Shared {
    /// The active rules and every change to them.
    pub rules: Arc<RuleControl>,
    pub pools: Arc<Pools>,
    /// Resolves `_` to the caller's namespace.
    pub namespaces: Arc<NamespaceResolver>,
    pub metrics: Arc<Metrics>,
    /// Answers and comparisons as the ramp's gates read them.
    pub live: Arc<LiveCounters>,
    /// Recent invocations by action (bounded), for rule plans.
    pub recent: Arc<RecentTraffic>,
    /// Add `x-switchyard-pool` and `x-switchyard-rules-version` to responses.
    pub pool_header: bool,
    /// The mirror queue and the live report.
    pub shadow: Arc<ShadowState>,
    /// For `/readyz` details (never for readiness itself).
    pub kafka: Arc<KafkaHealth>,
    /// Draining (readiness 503) and the requests in flight.
    pub lifecycle: Arc<Lifecycle>,
}

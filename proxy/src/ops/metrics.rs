//! The metrics catalogue: every metric switchyard exports is named here, with its help text and
//! buckets. Handles are registered once at start, so the request path only bumps atomics: no name
//! formatting, no label allocation, no registry lookup. A metric whose labels are the types of a
//! module above this one (a request kind, a reload source) is registered by that module, through
//! [`Metrics::counter`] or [`Counters`]: arrows between the floors point down only.

use std::fmt::Write;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use strum::IntoEnumIterator;
use switchyard_rules::{DecisionReason, Gate, Pool, Reading};
use switchyard_shadow::{Outcome, OutcomeKind};

pub const REQUESTS_TOTAL: &str = "switchyard_requests_total";
pub const INVOCATIONS_TOTAL: &str = "switchyard_invocations_total";
pub const REQUEST_DURATION: &str = "switchyard_request_duration_seconds";
pub const DECISIONS_TOTAL: &str = "switchyard_decisions_total";
pub const FALLBACKS_TOTAL: &str = "switchyard_fallbacks_total";
pub const POOL_MEMBERS: &str = "switchyard_pool_members";
pub const POOL_HEALTHY_MEMBERS: &str = "switchyard_pool_healthy_members";
pub const SCHEDULER_SHARE: &str = "switchyard_scheduler_share_ratio";
pub const KILL_SWITCH: &str = "switchyard_kill_switch";
pub const RULES_INFO: &str = "switchyard_rules_info";
pub const RULES_LOADED_AT: &str = "switchyard_rules_loaded_timestamp_seconds";
pub const RULES_RELOADS: &str = "switchyard_rules_reloads_total";
pub const SHADOW_COMPARISONS: &str = "switchyard_shadow_comparisons_total";
pub const SHADOW_DROPPED: &str = "switchyard_shadow_dropped_total";
pub const SHADOW_IN_FLIGHT: &str = "switchyard_shadow_in_flight";
pub const SHADOW_QUEUED: &str = "switchyard_shadow_queued";
pub const SHADOW_RECORD_ERRORS: &str = "switchyard_shadow_record_write_errors_total";
pub const CLIENT_CONNECTIONS: &str = "switchyard_client_connections";
pub const CLIENT_CONNECTIONS_REFUSED: &str = "switchyard_client_connections_refused_total";
pub const KAFKA_RECORDS: &str = "switchyard_kafka_records_total";
pub const NAMESPACE_LOOKUPS: &str = "switchyard_namespace_lookups_total";
pub const UPSTREAM_RETRIES: &str = "switchyard_upstream_retries_total";
pub const DNS_RESOLUTIONS: &str = "switchyard_dns_resolutions_total";
pub const NOTIFICATIONS: &str = "switchyard_notifications_total";
pub const RAMP_STEP: &str = "switchyard_ramp_step";
pub const RAMP_ROLLED_BACK: &str = "switchyard_ramp_rolled_back";
pub const RAMP_ROLLBACKS: &str = "switchyard_ramp_rollbacks_total";
pub const RAMP_AWAITING_APPROVAL: &str = "switchyard_ramp_awaiting_approval";
pub const RAMP_HELD: &str = "switchyard_ramp_held";
pub const RAMP_GATE_VALUE: &str = "switchyard_ramp_gate_value";
pub const RAMP_GATE_THRESHOLD: &str = "switchyard_ramp_gate_threshold";
pub const RAMP_GATE_SAMPLES: &str = "switchyard_ramp_gate_samples";

/// From a fast proxy hop (sub-millisecond) to the controller's 60 s blocking limit.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// Status classes as labels; index 0 is "no response was written". `502` stands alone because it
/// is usually the action's own failure; what an answer says about its path is the `class` of
/// `switchyard_invocations_total` (see [`AnswerClass`]), which also reads a 502's record.
pub const STATUS_CLASSES: [&str; 7] = ["none", "1xx", "2xx", "3xx", "4xx", "502", "5xx"];

pub fn status_class_index(status: Option<u16>) -> usize {
    match status {
        Some(502) => 5,
        Some(500..=599) => 6,
        Some(s @ 100..=499) => usize::from(s / 100),
        _ => 0,
    }
}

/// A label whose values are the variants of an enum. The modules that produce a label own its
/// enum and its handles ([`Counters`]); this module only registers them, so it imports nothing
/// from the floors above it.
pub trait LabelEnum: Copy + PartialEq + IntoEnumIterator + Into<&'static str> {
    /// The value's position in declaration order: the index of its handle.
    fn position(self) -> usize {
        Self::iter().position(|v| v == self).expect("a variant is among its enum's variants")
    }
}

impl<T: Copy + PartialEq + IntoEnumIterator + Into<&'static str>> LabelEnum for T {}

/// One counter per value of the label `L`, registered at start (each series reads 0 before its
/// first event), picked by the value's position.
pub struct Counters<L> {
    handles: Vec<Counter>,
    label: std::marker::PhantomData<fn(L)>,
}

impl<L: LabelEnum> Counters<L> {
    /// `name{fixed.., label=<each value of L>}`.
    pub fn new(metrics: &Metrics, name: &'static str, fixed: &[(&'static str, &str)], label: &'static str) -> Self {
        let handles = L::iter()
            .map(|v| {
                let labels = fixed.iter().map(|(k, v)| Label::new(*k, v.to_string()));
                let key = Key::from_parts(name, labels.chain([Label::new(label, v.into())]).collect::<Vec<_>>());
                metrics.recorder.register_counter(&key, &meta())
            })
            .collect();
        Counters { handles, label: std::marker::PhantomData }
    }

    pub fn count(&self, value: L) {
        self.handles[value.position()].increment(1);
    }
}

pub fn unix_seconds(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Registered handles, indexed by dense label positions.
pub struct Metrics {
    handle: PrometheusHandle,
    /// [pool][decision reason]
    decisions: Vec<Vec<Counter>>,
    pool_members: Vec<Gauge>,
    pool_healthy: Vec<Gauge>,
    pub scheduler_share: Gauge,
    pub kill_switch: Gauge,
    pub rules_loaded_at: Gauge,
    shadow_outcomes: Vec<Counter>,
    pub shadow_dropped_queue_full: Counter,
    pub shadow_dropped_shutdown: Counter,
    pub shadow_in_flight: Gauge,
    pub shadow_queued: Gauge,
    pub shadow_record_errors: Counter,
    pub client_connections: Gauge,
    pub ramp_step: Gauge,
    pub ramp_rolled_back: Gauge,
    ramp_awaiting_approval: Gauge,
    ramp_held: Gauge,
    /// [`Gate`] as index
    ramp_rollbacks: Vec<Counter>,
    /// [`Gate`] as index: value, threshold, samples
    ramp_gates: Vec<[Gauge; 3]>,
    /// The active rules version, for `switchyard_rules_info`.
    rules_version: std::sync::Mutex<String>,
    recorder: PrometheusRecorder,
}

/// Escapes a label value for the text exposition format (backslash, quote, line feed).
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn meta() -> Metadata<'static> {
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()))
}

fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    Key::from_parts(name, labels.iter().map(|(k, v)| Label::new(*k, *v)).collect::<Vec<_>>())
}

impl Metrics {
    /// Builds a recorder of its own (not the global one), so several proxies in one process, as in
    /// tests, keep separate counts.
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_string()), LATENCY_BUCKETS)
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        describe(&recorder);
        let counter =
            |name, labels: &[(&'static str, &'static str)]| recorder.register_counter(&key(name, labels), &meta());
        let gauge =
            |name, labels: &[(&'static str, &'static str)]| recorder.register_gauge(&key(name, labels), &meta());
        let decisions = Pool::iter()
            .map(|p| {
                DecisionReason::iter()
                    .map(|r| counter(DECISIONS_TOTAL, &[("pool", p.as_str()), ("reason", r.as_str())]))
                    .collect()
            })
            .collect();
        let pool_members = Pool::iter().map(|p| gauge(POOL_MEMBERS, &[("pool", p.as_str())])).collect();
        let pool_healthy = Pool::iter().map(|p| gauge(POOL_HEALTHY_MEMBERS, &[("pool", p.as_str())])).collect();
        let shadow_outcomes =
            OutcomeKind::iter().map(|o| counter(SHADOW_COMPARISONS, &[("outcome", o.as_str())])).collect();
        Metrics {
            shadow_outcomes,
            shadow_dropped_queue_full: counter(SHADOW_DROPPED, &[("reason", "queue_full")]),
            shadow_dropped_shutdown: counter(SHADOW_DROPPED, &[("reason", "shutdown")]),
            shadow_in_flight: gauge(SHADOW_IN_FLIGHT, &[]),
            shadow_queued: gauge(SHADOW_QUEUED, &[]),
            shadow_record_errors: counter(SHADOW_RECORD_ERRORS, &[]),
            client_connections: gauge(CLIENT_CONNECTIONS, &[]),
            decisions,
            pool_members,
            pool_healthy,
            scheduler_share: gauge(SCHEDULER_SHARE, &[]),
            kill_switch: gauge(KILL_SWITCH, &[]),
            rules_loaded_at: gauge(RULES_LOADED_AT, &[]),
            rules_version: Default::default(),
            ramp_step: gauge(RAMP_STEP, &[]),
            ramp_rolled_back: gauge(RAMP_ROLLED_BACK, &[]),
            ramp_awaiting_approval: gauge(RAMP_AWAITING_APPROVAL, &[]),
            ramp_held: gauge(RAMP_HELD, &[]),
            ramp_rollbacks: Gate::iter().map(|g| counter(RAMP_ROLLBACKS, &[("gate", g.as_str())])).collect(),
            ramp_gates: Gate::iter()
                .map(|g| {
                    [RAMP_GATE_VALUE, RAMP_GATE_THRESHOLD, RAMP_GATE_SAMPLES]
                        .map(|name| gauge(name, &[("gate", g.as_str())]))
                })
                .collect(),
            handle,
            recorder,
        }
    }

    /// Registers `name{labels}`; for the modules that own a metric's labels.
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> Counter {
        self.recorder.register_counter(&key(name, labels), &meta())
    }

    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> Histogram {
        self.recorder.register_histogram(&key(name, labels), &meta())
    }

    pub fn decision(&self, pool: Pool, reason: DecisionReason) {
        self.decisions[pool.index()][reason.index()].increment(1);
    }

    /// Counts one finished shadow comparison by outcome kind (a skip counts as `skipped`).
    pub fn shadow_outcome(&self, outcome: &Outcome) {
        self.shadow_outcomes[outcome.kind_index()].increment(1);
    }

    /// The ramp's step (-1 without one or before it starts) and whether it rolled back.
    pub fn ramp_position(&self, step: Option<usize>, rolled_back: bool) {
        self.ramp_step.set(step.map_or(-1.0, |s| s as f64));
        self.ramp_rolled_back.set(if rolled_back { 1.0 } else { 0.0 });
    }

    /// Whether the ramp waits for a person's approval, and whether an operator holds it.
    pub fn ramp_people(&self, awaiting_approval: bool, held: bool) {
        self.ramp_awaiting_approval.set(if awaiting_approval { 1.0 } else { 0.0 });
        self.ramp_held.set(if held { 1.0 } else { 0.0 });
    }

    pub fn ramp_readings(&self, readings: &[Reading]) {
        for r in readings {
            let [value, threshold, samples] = &self.ramp_gates[r.gate.index()];
            value.set(r.value.unwrap_or(f64::NAN));
            threshold.set(r.threshold.unwrap_or(f64::NAN));
            samples.set(r.samples as f64);
        }
    }

    pub fn ramp_rollback(&self, gate: Gate) {
        self.ramp_rollbacks[gate.index()].increment(1);
    }

    pub fn pool_health(&self, pool: Pool, members: usize, healthy: usize) {
        self.pool_members[pool.index()].set(members as f64);
        self.pool_healthy[pool.index()].set(healthy as f64);
    }

    /// Sets the active rules version. Only the active one is exported: a series per version
    /// ever seen would grow with every rule change.
    pub fn rules_version(&self, version: &str) {
        *crate::sync::lock(&self.rules_version) = version.to_string();
    }

    /// The Prometheus text exposition of everything above, and the process metrics.
    pub fn render(&self) -> String {
        let mut text = self.handle.render();
        let version = crate::sync::lock(&self.rules_version).clone();
        let _ = writeln!(
            text,
            "# HELP {RULES_INFO} 1 for the active rules version.\n# TYPE {RULES_INFO} gauge\n{RULES_INFO}{{version=\"{}\"}} 1",
            label_value(&version)
        );
        text.push_str(&crate::ops::process::render());
        text
    }

    /// Drains histogram samples into their buckets; called periodically so memory stays flat.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn describe(r: &PrometheusRecorder) {
    let c = |name: &'static str, unit: Option<Unit>, help: &'static str| {
        r.describe_counter(KeyName::from_const_str(name), unit, SharedString::const_str(help))
    };
    c(REQUESTS_TOTAL, None, "Requests answered, by the pool that served them, request kind and status class.");
    c(
        INVOCATIONS_TOTAL,
        None,
        "Invocations answered, by pool, kind and what the answer says about the path: ok, queued (a blocking call \
         answered 202), throttled (429), action_failure (the action's 502), capacity_drop (the scheduler's 502 \
         throttle record), platform_failure (5xx, system-written records, no answer), refused (other 4xx).",
    );
    c(DECISIONS_TOTAL, None, "Routing decisions for invocations and API calls, by chosen pool and why.");
    c(FALLBACKS_TOTAL, None, "Requests sent to the other pool than the rules chose, and why.");
    c(RULES_RELOADS, None, "Rule change attempts by source and result (accepted, rejected, unchanged).");
    c(SHADOW_COMPARISONS, None, "Shadow comparisons finished, by outcome.");
    c(SHADOW_DROPPED, None, "Shadow jobs dropped before running, and why (the client was never delayed).");
    c(SHADOW_RECORD_ERRORS, None, "Comparison records that could not be written to the record file.");
    c(
        CLIENT_CONNECTIONS_REFUSED,
        None,
        "Client connections closed at once, by reason: `max_client_connections` were open (total), or `max_client_connections_per_ip` from the same address (per_ip).",
    );
    c(KAFKA_RECORDS, None, "Comparison records sent to Kafka, by result (delivered, failed, dropped).");
    c(RAMP_ROLLBACKS, None, "Ramp rollbacks this replica decided, by the gate that failed.");
    c(NAMESPACE_LOOKUPS, None, "Resolutions of the `_` namespace to the caller's own, by result.");
    c(
        UPSTREAM_RETRIES,
        None,
        "Requests sent again on another connection, by reason; only ever when none of the request had reached a controller.",
    );
    c(
        NOTIFICATIONS,
        None,
        "Notifications ([[notify]]) by result: delivered, failed after every retry, or dropped with the receiver's queue full.",
    );
    c(
        DNS_RESOLUTIONS,
        None,
        "Resolutions of pool members given as names, by pool and result (ok; empty or failed keep the last addresses).",
    );
    r.describe_histogram(
        KeyName::from_const_str(REQUEST_DURATION),
        Some(Unit::Seconds),
        SharedString::const_str("Time from request arrival to the end of the response, by pool and request kind."),
    );
    let g = |name: &'static str, help: &'static str| {
        r.describe_gauge(KeyName::from_const_str(name), None, SharedString::const_str(help))
    };
    g(POOL_MEMBERS, "Controllers in each pool now (names count as the addresses they resolve to).");
    g(SHADOW_IN_FLIGHT, "Shadow copies being sent or compared now.");
    g(SHADOW_QUEUED, "Shadow jobs waiting for a slot.");
    g(CLIENT_CONNECTIONS, "Client connections open on the proxy port.");
    g(POOL_HEALTHY_MEMBERS, "Controllers in each pool that pass their health check.");
    g(
        SCHEDULER_SHARE,
        "The active global share of invocations sent to the scheduler (0 to 1; 0 under the kill switch).",
    );
    g(KILL_SWITCH, "1 when the kill switch sends every request to legacy.");
    g(RAMP_STEP, "The ramp's current step (0 is the first); -1 without a ramp or before it starts.");
    g(RAMP_ROLLED_BACK, "1 when the ramp rolled back (the global share is the ramp's rollback_share).");
    g(RAMP_AWAITING_APPROVAL, "1 while the ramp waits for a person to approve its next step (POST /ramp/approve).");
    g(RAMP_HELD, "1 while an operator holds the ramp (POST /ramp/hold); released with POST /ramp/release.");
    g(RAMP_GATE_VALUE, "Each ramp gate's scheduler value over its window (a ratio, a rate, or ms for latency).");
    g(RAMP_GATE_THRESHOLD, "Each ramp gate's threshold over its window.");
    g(RAMP_GATE_SAMPLES, "Samples each ramp gate read over its window.");
    g(RULES_LOADED_AT, "Unix time the active rules were loaded.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::EnumCount;

    use switchyard_shadow::AnswerClass;

    use crate::control::source::{ReloadResult, ReloadSource};
    use crate::data::classify::RequestKind;
    use crate::data::idle::Refusal;
    use crate::data::namespaces::NamespaceLookup;
    use crate::data::traffic::FallbackReason;
    use crate::data::upstream::RetryReason;
    use crate::ops::delivery::Delivery;

    /// Every label enum sizes a metric's handles by its variants (in declaration order) and picks
    /// one by its index: the two must agree, and no two variants may share a label.
    #[test]
    fn label_enums_index_their_variants_in_declaration_order() {
        fn check<E: IntoEnumIterator + EnumCount + Copy + std::fmt::Debug>(
            index: impl Fn(E) -> usize,
            label: impl Fn(E) -> &'static str,
        ) {
            assert_eq!(E::iter().count(), E::COUNT);
            for (i, e) in E::iter().enumerate() {
                assert_eq!(index(e), i, "{e:?}");
            }
            let mut labels: Vec<&str> = E::iter().map(label).collect();
            labels.sort_unstable();
            labels.dedup();
            assert_eq!(labels.len(), E::COUNT, "{labels:?}");
        }
        check(Pool::index, Pool::as_str);
        check(RequestKind::index, RequestKind::as_str);
        check(AnswerClass::index, AnswerClass::as_str);
        check(DecisionReason::index, DecisionReason::as_str);
        check(Gate::index, Gate::as_str);
        check(OutcomeKind::index, OutcomeKind::as_str);
        check(|v: switchyard_shadow::Verdict| v as usize, switchyard_shadow::Verdict::as_str);
        // The labels whose handles are [`Counters`], picked by position.
        check(ReloadSource::position, ReloadSource::into);
        check(ReloadResult::position, ReloadResult::into);
        check(Delivery::position, Delivery::into);
        check(FallbackReason::position, FallbackReason::into);
        check(Refusal::position, Refusal::into);
        check(NamespaceLookup::position, NamespaceLookup::into);
        check(RetryReason::position, RetryReason::into);
        // The invocations metric keeps only the kinds that run an action: they come first.
        let invocations = RequestKind::iter().filter(|k| k.is_invocation()).count();
        assert!(RequestKind::iter().take(invocations).all(RequestKind::is_invocation));
    }

    #[test]
    fn status_classes_keep_action_errors_apart() {
        let class = |s| STATUS_CLASSES[status_class_index(s)];
        assert_eq!(class(Some(200)), "2xx");
        assert_eq!(class(Some(202)), "2xx");
        assert_eq!(class(Some(429)), "4xx");
        assert_eq!(class(Some(502)), "502");
        assert_eq!(class(Some(503)), "5xx");
        assert_eq!(class(Some(500)), "5xx");
        assert_eq!(class(None), "none");
        assert_eq!(class(Some(99)), "none");
    }

    #[test]
    fn only_the_active_version_is_exported() {
        let m = Metrics::new();
        for v in ["v1", "v2", "say \"hi\""] {
            m.rules_version(v);
        }
        let text = m.render();
        let info: Vec<&str> = text.lines().filter(|l| l.starts_with(RULES_INFO)).collect();
        assert_eq!(info, vec![r#"switchyard_rules_info{version="say \"hi\""} 1"#]);
    }
}

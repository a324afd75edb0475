//! The metrics catalogue: every metric switchyard exports is defined here, with its help text,
//! labels and buckets. Handles are registered once at start, so the request path only bumps
//! atomics: no name formatting, no label allocation, no registry lookup.

use std::fmt::Write;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use strum::IntoEnumIterator;
use switchyard_rules::{DecisionReason, Gate, Pool, Reading};
use switchyard_shadow::{AnswerClass, Outcome, OutcomeKind};

use crate::control::source::{ReloadResult, ReloadSource};
use crate::data::classify::RequestKind;
use crate::kafka::sink::Delivery;

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
pub const RAMP_STEP: &str = "switchyard_ramp_step";
pub const RAMP_ROLLED_BACK: &str = "switchyard_ramp_rolled_back";
pub const RAMP_ROLLBACKS: &str = "switchyard_ramp_rollbacks_total";
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

/// Why a request went to the other pool than the rules chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum FallbackReason {
    /// The chosen pool had no healthy member when the request arrived.
    NoHealthyMember,
    /// Connecting to the chosen pool failed; the request had not been delivered.
    ConnectFailed,
}

impl FallbackReason {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a client connection was closed at once (the `reason` label of
/// `switchyard_client_connections_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Refusal {
    /// `max_client_connections` were open.
    Total,
    /// `max_client_connections_per_ip` were open from the same address.
    PerIp,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a request went again on another connection (the `reason` label of
/// `switchyard_upstream_retries_total`). Both mean none of it had reached the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum RetryReason {
    /// A kept connection turned out closed; hyper handed the request back unwritten.
    KeptConnectionClosed,
    /// Connecting to a controller failed; the next attempt goes to another one.
    ConnectFailed,
}

impl RetryReason {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How resolving `_` for a request went (the `result` label of `switchyard_namespace_lookups_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum NamespaceLookup {
    /// Answered from the cache (no request to a controller).
    Cached,
    /// Looked up (or joined a lookup in flight) and resolved.
    Resolved,
    /// The controller refused the credential; routed to legacy, not cached.
    Unauthorized,
    /// No usable answer; routed to legacy.
    Failed,
    /// Not answered within `namespaces.wait_ms`; routed to legacy (the lookup goes on).
    Timeout,
    /// No credential to resolve with; routed to legacy.
    Anonymous,
    /// `namespaces.max_in_flight` lookups were already in flight; routed to legacy, not looked up.
    Busy,
}

impl NamespaceLookup {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

pub fn unix_seconds(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Registered handles, indexed by dense label positions.
pub struct Metrics {
    handle: PrometheusHandle,
    /// [pool][kind][status class]
    requests: Vec<Vec<Vec<Counter>>>,
    /// [pool][invocation kind][answer class]
    invocations: Vec<Vec<Vec<Counter>>>,
    /// [pool][kind]
    durations: Vec<Vec<Histogram>>,
    /// [pool][decision reason]
    decisions: Vec<Vec<Counter>>,
    /// [from pool][reason]
    fallbacks: Vec<Vec<Counter>>,
    pool_members: Vec<Gauge>,
    pool_healthy: Vec<Gauge>,
    pub scheduler_share: Gauge,
    pub kill_switch: Gauge,
    pub rules_loaded_at: Gauge,
    /// [source][result]
    reloads: Vec<Vec<Counter>>,
    shadow_outcomes: Vec<Counter>,
    pub shadow_dropped_queue_full: Counter,
    pub shadow_dropped_shutdown: Counter,
    pub shadow_in_flight: Gauge,
    pub shadow_queued: Gauge,
    pub shadow_record_errors: Counter,
    pub client_connections: Gauge,
    /// [`Refusal`] as index
    client_connections_refused: Vec<Counter>,
    /// [`NamespaceLookup`] as index
    namespace_lookups: Vec<Counter>,
    /// [`RetryReason`] as index
    upstream_retries: Vec<Counter>,
    pub ramp_step: Gauge,
    pub ramp_rolled_back: Gauge,
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
        let requests = Pool::iter()
            .map(|p| {
                RequestKind::iter()
                    .map(|k| {
                        STATUS_CLASSES
                            .iter()
                            .map(|c| {
                                counter(
                                    REQUESTS_TOTAL,
                                    &[("pool", p.as_str()), ("kind", k.as_str()), ("status_class", c)],
                                )
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let invocations = Pool::iter()
            .map(|p| {
                RequestKind::iter()
                    .filter(|k| k.is_invocation())
                    .map(|k| {
                        AnswerClass::iter()
                            .map(|c| {
                                counter(
                                    INVOCATIONS_TOTAL,
                                    &[("pool", p.as_str()), ("kind", k.as_str()), ("class", c.as_str())],
                                )
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let durations = Pool::iter()
            .map(|p| {
                RequestKind::iter()
                    .map(|k| {
                        recorder.register_histogram(
                            &key(REQUEST_DURATION, &[("pool", p.as_str()), ("kind", k.as_str())]),
                            &meta(),
                        )
                    })
                    .collect()
            })
            .collect();
        let decisions = Pool::iter()
            .map(|p| {
                DecisionReason::iter()
                    .map(|r| counter(DECISIONS_TOTAL, &[("pool", p.as_str()), ("reason", r.as_str())]))
                    .collect()
            })
            .collect();
        let fallbacks = Pool::iter()
            .map(|from| {
                FallbackReason::iter()
                    .map(|r| {
                        counter(
                            FALLBACKS_TOTAL,
                            &[("from", from.as_str()), ("to", from.other().as_str()), ("reason", r.as_str())],
                        )
                    })
                    .collect()
            })
            .collect();
        let pool_members = Pool::iter().map(|p| gauge(POOL_MEMBERS, &[("pool", p.as_str())])).collect();
        let pool_healthy = Pool::iter().map(|p| gauge(POOL_HEALTHY_MEMBERS, &[("pool", p.as_str())])).collect();
        let reloads = ReloadSource::iter()
            .map(|s| {
                ReloadResult::iter()
                    .map(|r| counter(RULES_RELOADS, &[("source", s.as_str()), ("result", r.as_str())]))
                    .collect()
            })
            .collect();
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
            client_connections_refused: Refusal::iter()
                .map(|r| counter(CLIENT_CONNECTIONS_REFUSED, &[("reason", r.as_str())]))
                .collect(),
            reloads,
            requests,
            invocations,
            durations,
            decisions,
            fallbacks,
            pool_members,
            pool_healthy,
            scheduler_share: gauge(SCHEDULER_SHARE, &[]),
            kill_switch: gauge(KILL_SWITCH, &[]),
            rules_loaded_at: gauge(RULES_LOADED_AT, &[]),
            rules_version: Default::default(),
            ramp_step: gauge(RAMP_STEP, &[]),
            ramp_rolled_back: gauge(RAMP_ROLLED_BACK, &[]),
            ramp_rollbacks: Gate::iter().map(|g| counter(RAMP_ROLLBACKS, &[("gate", g.as_str())])).collect(),
            ramp_gates: Gate::iter()
                .map(|g| {
                    [RAMP_GATE_VALUE, RAMP_GATE_THRESHOLD, RAMP_GATE_SAMPLES]
                        .map(|name| gauge(name, &[("gate", g.as_str())]))
                })
                .collect(),
            namespace_lookups: NamespaceLookup::iter()
                .map(|r| counter(NAMESPACE_LOOKUPS, &[("result", r.as_str())]))
                .collect(),
            upstream_retries: RetryReason::iter()
                .map(|r| counter(UPSTREAM_RETRIES, &[("reason", r.as_str())]))
                .collect(),
            handle,
            recorder,
        }
    }

    pub fn request(&self, pool: Pool, kind: RequestKind, status: Option<u16>, seconds: f64) {
        self.requests[pool.index()][kind.index()][status_class_index(status)].increment(1);
        self.durations[pool.index()][kind.index()].record(seconds);
    }

    /// Counts what an invocation's answer says about the pool that served it.
    /// `kind` must be an invocation kind.
    pub fn invocation(&self, pool: Pool, kind: RequestKind, class: AnswerClass) {
        self.invocations[pool.index()][kind.index()][class.index()].increment(1);
    }

    pub fn decision(&self, pool: Pool, reason: DecisionReason) {
        self.decisions[pool.index()][reason.index()].increment(1);
    }

    pub fn fallback(&self, from: Pool, reason: FallbackReason) {
        self.fallbacks[from.index()][reason as usize].increment(1);
    }

    /// Counts one rule change attempt.
    pub fn reload(&self, source: ReloadSource, result: ReloadResult) {
        self.reloads[source.index()][result.index()].increment(1);
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

    pub fn client_connection_refused(&self, reason: Refusal) {
        self.client_connections_refused[reason as usize].increment(1);
    }

    pub fn namespace_lookup(&self, result: NamespaceLookup) {
        self.namespace_lookups[result as usize].increment(1);
    }

    pub fn upstream_retry(&self, reason: RetryReason) {
        self.upstream_retries[reason as usize].increment(1);
    }

    pub fn pool_health(&self, pool: Pool, members: usize, healthy: usize) {
        self.pool_members[pool.index()].set(members as f64);
        self.pool_healthy[pool.index()].set(healthy as f64);
    }

    /// Handles for `switchyard_kafka_records_total{topic, result}` (registered once per topic).
    pub fn kafka_records(&self, topic: &str) -> Vec<Counter> {
        Delivery::iter()
            .map(|result| {
                let k = Key::from_parts(
                    KAFKA_RECORDS,
                    vec![Label::new("topic", topic.to_string()), Label::new("result", result.as_str())],
                );
                self.recorder.register_counter(&k, &meta())
            })
            .collect()
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
    r.describe_histogram(
        KeyName::from_const_str(REQUEST_DURATION),
        Some(Unit::Seconds),
        SharedString::const_str("Time from request arrival to the end of the response, by pool and request kind."),
    );
    let g = |name: &'static str, help: &'static str| {
        r.describe_gauge(KeyName::from_const_str(name), None, SharedString::const_str(help))
    };
    g(POOL_MEMBERS, "Controllers configured in each pool.");
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
    g(RAMP_GATE_VALUE, "Each ramp gate's scheduler value over its window (a ratio, a rate, or ms for latency).");
    g(RAMP_GATE_THRESHOLD, "Each ramp gate's threshold over its window.");
    g(RAMP_GATE_SAMPLES, "Samples each ramp gate read over its window.");
    g(RULES_LOADED_AT, "Unix time the active rules were loaded.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::EnumCount;

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
        check(ReloadSource::index, ReloadSource::as_str);
        check(ReloadResult::index, ReloadResult::as_str);
        check(Delivery::index, Delivery::as_str);
        check(|r: FallbackReason| r as usize, FallbackReason::as_str);
        check(|r: Refusal| r as usize, Refusal::as_str);
        check(|r: NamespaceLookup| r as usize, NamespaceLookup::as_str);
        check(|r: RetryReason| r as usize, RetryReason::as_str);
        check(|v: switchyard_shadow::Verdict| v as usize, switchyard_shadow::Verdict::as_str);
        check(OutcomeKind::index, OutcomeKind::as_str);
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

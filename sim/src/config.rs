use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The default `guest` key of an OpenWhisk deployment (`uuid:key`), as in the OpenWhisk sources.
pub const GUEST_KEY: &str =
    "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// The `guest` key as Basic-auth user and password: (namespace UUID, key).
pub fn guest_credentials() -> (&'static str, &'static str) {
    GUEST_KEY.split_once(':').unwrap_or((GUEST_KEY, ""))
}

/// Which controller fleet the simulator imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// `ShardingContainerPoolBalancer`: the activation crosses Kafka to an invoker; throttles are
    /// counted per controller (`entitlement/Entitlement.scala`).
    #[default]
    Legacy,
    /// `FPCPoolBalancer`: per-action queues in a scheduler, containers pull work; throttling by
    /// container limits and queue flags (`entitlement/FPCEntitlement.scala`,
    /// `scheduler/queue/MemoryQueue.scala`).
    Scheduler,
}

impl Flavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Legacy => "legacy",
            Flavor::Scheduler => "scheduler",
        }
    }

    /// The `waitTime` range (ms) each flavor reports by default. An assumption, not a measurement:
    /// both paths cross Kafka (the scheduler path to a per-scheduler topic, then a 100 ms
    /// scheduling tick and a gRPC pull), and which one is faster for an action is for a real
    /// deployment to show. The defaults only make the two fleets distinguishable in a demo.
    pub(crate) fn wait_time_ms(self) -> (u64, u64) {
        match self {
            Flavor::Legacy => (20, 80),
            Flavor::Scheduler => (1, 8),
        }
    }
}

/// What part of a fleet is down; set at run time with `SimHandle::set_outage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Outage {
    #[default]
    None,
    /// The invokers are gone. Legacy: the balancer has no invoker and the controller answers 503.
    /// Scheduler: the scheduler still takes activations and queues them; a blocking caller gets
    /// 202 when its wait runs out, and the activation fails with a 500 record once it has waited
    /// `queue_retention_ms` (`scheduler/queue/MemoryQueue.scala`).
    NoInvokers,
    /// The controller cannot hand the activation on at all (no scheduler reachable, or the
    /// legacy balancer overloaded): 503 on both flavors.
    Unreachable,
}

/// A fault that begins a while after the simulator starts: a share of invocations answered with
/// `status` (503 with the controller's unavailable text; other statuses with a generic error
/// body) instead of running. For demos and tests of what a failing path looks like.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Milliseconds after start when the fault begins.
    pub after_ms: u64,
    /// How long it lasts; `None`: until the simulator stops.
    #[serde(default)]
    pub for_ms: Option<u64>,
    /// Probability (0..1) that an invocation is hit.
    pub share: f64,
    pub status: u16,
}

/// The text of the controller's 503 (Pekko HTTP's default for `ServiceUnavailable`).
pub const UNAVAILABLE_MESSAGE: &str =
    "The server is currently unavailable (because it is overloaded or down for maintenance).";

/// An API key known to the simulated deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthKey {
    /// `uuid:key`, as in `wsk property set --auth`.
    pub key: String,
    /// The namespace this key owns (what `_` resolves to).
    pub namespace: String,
}

/// A latency distribution in milliseconds: uniform in `[min, max]`, plus an optional slow tail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Latency {
    pub min_ms: f64,
    pub max_ms: f64,
    /// Probability (0..1) that a call takes `slow_ms` instead.
    pub slow_probability: f64,
    pub slow_ms: f64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency { min_ms: 1.0, max_ms: 3.0, slow_probability: 0.0, slow_ms: 0.0 }
    }
}

/// How an action computes its result from its parameters.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ResultSpec {
    /// `{"payload": "Hello, <name>!"}` with `name` from the parameters (default `stranger`).
    #[default]
    Greeting,
    /// The parameters themselves.
    Echo,
    /// Always this value.
    Fixed(Value),
    /// A bare JSON array of the parameter names (exercises OpenWhisk's array results).
    Array,
}

/// How one action behaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionProfile {
    pub latency: Latency,
    /// Extra time of a cold start, reported as the `initTime` annotation.
    pub cold_start_ms: f64,
    /// A container stays warm this long after a call; the next call after that is cold.
    pub keep_warm_s: f64,
    pub result: ResultSpec,
    /// Probability that the action returns `{"error": ...}` (502, `application error`).
    pub application_error_rate: f64,
    /// Probability that the action crashes (502, `action developer error`).
    pub developer_error_rate: f64,
    /// Probability that the platform fails the run (500, `whisk internal error`, a record written
    /// by the system: the legacy invoker, or the scheduler's queue).
    pub whisk_error_rate: f64,
    /// Containers this action may have at once (`limits.instances`); enforced on the scheduler
    /// path only (`entitlement/FPCEntitlement.scala`). `None`: the namespace's limit.
    pub instances: Option<u32>,
    /// Makes the action a sequence of these components (names relative to the namespace, or fully
    /// qualified): each runs in turn on the previous one's result (`actions/SequenceActions.scala`).
    pub sequence: Vec<String>,
    /// Merged into the result: a controlled divergence, set on one fleet's simulator only.
    pub result_patch: Option<Value>,
    pub kind: String,
    pub memory_mb: u64,
    /// The action's own time limit: a call whose simulated duration exceeds it is a developer error.
    pub timeout_ms: u64,
}

impl Default for ActionProfile {
    fn default() -> Self {
        ActionProfile {
            latency: Latency::default(),
            cold_start_ms: 0.0,
            keep_warm_s: 600.0,
            result: ResultSpec::default(),
            application_error_rate: 0.0,
            developer_error_rate: 0.0,
            whisk_error_rate: 0.0,
            instances: None,
            sequence: Vec::new(),
            result_patch: None,
            kind: "nodejs:20".to_string(),
            memory_mb: 256,
            timeout_ms: 60_000,
        }
    }
}

/// Everything that shapes a simulated controller. Loadable from JSON (`whisk-sim --profile FILE`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    pub flavor: Flavor,
    /// Known keys. Empty means the `guest` key only.
    pub auth: Vec<AuthKey>,
    /// Invocations (actions and trigger fires) allowed per namespace per minute; 0 disables. A
    /// legacy controller enforces its share of it (see `cluster_size`); a scheduler-path controller
    /// enforces all of it.
    pub invocations_per_minute: u32,
    /// Legacy: calls in flight per namespace (each controller enforces its share). Scheduler:
    /// containers per namespace; calls beyond them wait in the action's queue. 0 disables.
    pub concurrent_invocations: u32,
    /// Controllers in this fleet. A legacy controller keeps its throttle counts to itself, so it
    /// enforces `ceil(limit * 1.2) / cluster_size` (the 1.2 only when there are several) of each
    /// limit (`entitlement/Entitlement.scala`, `calculateIndividualLimit`).
    pub cluster_size: u32,
    /// Scheduler: activations an action's queue holds before the action is throttled (later calls
    /// get 429 "Too many requests"); OpenWhisk's `max-retention-size` is 10,000.
    pub queue_retention_size: usize,
    /// Scheduler: how long an activation may wait in the queue before it fails with a 500 record
    /// ("Activation processing is not initiated for N ms"); OpenWhisk's `max-retention-ms` is 60,000.
    pub queue_retention_ms: u64,
    /// Profiles by fully qualified action name (`ns/action` or `ns/pkg/action`); `_` in the
    /// request is resolved to the caller's namespace first.
    pub actions: BTreeMap<String, ActionProfile>,
    /// For actions without a profile of their own.
    pub default_action: ActionProfile,
    /// When false, unknown actions answer 404 like a real controller; when true (the default) every
    /// action name exists and behaves as `default_action`.
    pub implicit_actions: bool,
    /// Activation records kept for `GET .../activations/{id}` (oldest dropped first).
    pub max_activations: usize,
    /// Overrides the flavor's `waitTime` range `[min, max]` in ms (the queueing delay before the
    /// action starts, which the client waits for too).
    pub wait_time_ms: Option<[u64; 2]>,
    /// Worker threads of the simulator's runtime.
    pub threads: usize,
    /// Time-based faults on invocations (see [`Fault`]).
    pub faults: Vec<Fault>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            flavor: Flavor::Legacy,
            auth: Vec::new(),
            invocations_per_minute: 0,
            concurrent_invocations: 0,
            cluster_size: 1,
            queue_retention_size: 10_000,
            queue_retention_ms: 60_000,
            actions: BTreeMap::new(),
            default_action: ActionProfile::default(),
            implicit_actions: true,
            max_activations: 100_000,
            wait_time_ms: None,
            threads: 1,
            faults: Vec::new(),
        }
    }
}

impl SimConfig {
    pub fn with_flavor(flavor: Flavor) -> SimConfig {
        SimConfig { flavor, ..SimConfig::default() }
    }

    pub(crate) fn wait_time_range(&self) -> (u64, u64) {
        match self.wait_time_ms {
            Some([lo, hi]) => (lo.min(hi), hi.max(lo)),
            None => self.flavor.wait_time_ms(),
        }
    }

    /// A limit as this controller enforces it: a legacy controller its share of the fleet's
    /// (at least 1), a scheduler-path controller all of it. 0 stays "no limit".
    pub(crate) fn own_limit(&self, limit: u32) -> u32 {
        if limit == 0 || self.flavor == Flavor::Scheduler {
            return limit;
        }
        let cluster = self.cluster_size.max(1);
        let dilated = if cluster > 1 { (f64::from(limit) * 1.2).ceil() as u32 } else { limit };
        (dilated / cluster).max(1)
    }

    /// The status a fault answers an invocation with `elapsed_ms` after start, if one hits it.
    pub(crate) fn fault(&self, elapsed_ms: u64) -> Option<u16> {
        self.faults
            .iter()
            .filter(|f| elapsed_ms >= f.after_ms && f.for_ms.is_none_or(|d| elapsed_ms < f.after_ms + d))
            .find(|f| rand::random::<f64>() < f.share)
            .map(|f| f.status)
    }

    pub(crate) fn keys(&self) -> Vec<AuthKey> {
        if self.auth.is_empty() {
            vec![AuthKey { key: GUEST_KEY.to_string(), namespace: "guest".to_string() }]
        } else {
            self.auth.clone()
        }
    }
}

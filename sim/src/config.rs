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
    /// `ShardingContainerPoolBalancer`: the activation crosses Kafka to an invoker, so `waitTime`
    /// is tens of milliseconds.
    #[default]
    Legacy,
    /// `FPCPoolBalancer`: per-action queues in the scheduler, containers pull work; `waitTime` is a
    /// few milliseconds and the activation carries a different annotation set.
    Scheduler,
}

impl Flavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Legacy => "legacy",
            Flavor::Scheduler => "scheduler",
        }
    }

    /// The `waitTime` range (ms) each flavor reports by default.
    pub(crate) fn wait_time_ms(self) -> (u64, u64) {
        match self {
            Flavor::Legacy => (20, 80),
            Flavor::Scheduler => (1, 8),
        }
    }
}

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
    /// Invocations (actions and trigger fires) allowed per namespace per minute; 0 disables.
    pub invocations_per_minute: u32,
    /// Concurrent invocations allowed per namespace; 0 disables.
    pub concurrent_invocations: u32,
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
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            flavor: Flavor::Legacy,
            auth: Vec::new(),
            invocations_per_minute: 0,
            concurrent_invocations: 0,
            actions: BTreeMap::new(),
            default_action: ActionProfile::default(),
            implicit_actions: true,
            max_activations: 100_000,
            wait_time_ms: None,
            threads: 1,
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

    pub(crate) fn keys(&self) -> Vec<AuthKey> {
        if self.auth.is_empty() {
            vec![AuthKey { key: GUEST_KEY.to_string(), namespace: "guest".to_string() }]
        } else {
            self.auth.clone()
        }
    }
}

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::capacity::Capacity;
use crate::config::{ActionProfile, SimConfig};
use crate::sync::lock;

/// What a request was, as the simulator understood it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Ping,
    Invoke,
    WebAction,
    TriggerFire,
    Activations,
    Entity,
    /// `GET /api/v1/namespaces`: the caller's namespaces (how `_` is resolved).
    Namespaces,
    Other,
}

const KINDS: [RequestKind; 8] = [
    RequestKind::Ping,
    RequestKind::Invoke,
    RequestKind::WebAction,
    RequestKind::TriggerFire,
    RequestKind::Activations,
    RequestKind::Entity,
    RequestKind::Namespaces,
    RequestKind::Other,
];

/// A snapshot of what a simulator has served.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SimStats {
    pub total: u64,
    pub by_kind: HashMap<RequestKind, u64>,
    /// Invocations (including web actions) by fully qualified action name.
    pub by_action: HashMap<String, u64>,
    /// Requests that carried an `x-switchyard-shadow` header (mirrored copies).
    pub shadow_marked: u64,
}

impl SimStats {
    pub fn kind(&self, kind: RequestKind) -> u64 {
        self.by_kind.get(&kind).copied().unwrap_or(0)
    }

    pub fn action(&self, name: &str) -> u64 {
        self.by_action.get(name).copied().unwrap_or(0)
    }
}

/// Bounded memory of recent request ids, so tests can check which ids reached the controller.
const REMEMBERED_REQUEST_IDS: usize = 20_000;

pub(crate) struct SimState {
    pub config: SimConfig,
    /// `Basic` credentials (`uuid:key`) to namespace.
    pub keys: HashMap<String, String>,
    counters: [AtomicU64; KINDS.len()],
    shadow_marked: AtomicU64,
    by_action: Mutex<HashMap<String, u64>>,
    request_ids: Mutex<(HashSet<String>, VecDeque<String>)>,
    activations: Mutex<(HashMap<String, Value>, VecDeque<String>)>,
    pub entities: Mutex<HashMap<String, Value>>,
    last_used: Mutex<HashMap<String, Instant>>,
    pub(crate) capacity: Arc<Capacity>,
    /// When the simulator started (faults are timed from it).
    pub started: Instant,
}

impl SimState {
    pub fn new(config: SimConfig) -> SimState {
        let keys = config.keys().into_iter().map(|k| (k.key, k.namespace)).collect();
        SimState {
            config,
            keys,
            counters: Default::default(),
            shadow_marked: AtomicU64::new(0),
            by_action: Mutex::default(),
            request_ids: Mutex::default(),
            activations: Mutex::default(),
            entities: Mutex::default(),
            last_used: Mutex::default(),
            capacity: Arc::default(),
            started: Instant::now(),
        }
    }

    pub fn count(&self, kind: RequestKind, shadow: bool, request_id: Option<&str>) {
        let i = KINDS.iter().position(|k| *k == kind).unwrap_or(KINDS.len() - 1);
        self.counters[i].fetch_add(1, Ordering::Relaxed);
        if shadow {
            self.shadow_marked.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(id) = request_id {
            let mut guard = lock(&self.request_ids);
            let (set, order) = &mut *guard;
            if set.insert(id.to_string()) {
                order.push_back(id.to_string());
                if order.len() > REMEMBERED_REQUEST_IDS {
                    if let Some(old) = order.pop_front() {
                        set.remove(&old);
                    }
                }
            }
        }
    }

    pub fn count_action(&self, name: &str) {
        *lock(&self.by_action).entry(name.to_string()).or_insert(0) += 1;
    }

    pub fn saw_request_id(&self, id: &str) -> bool {
        lock(&self.request_ids).0.contains(id)
    }

    pub fn stats(&self) -> SimStats {
        let by_kind: HashMap<RequestKind, u64> =
            KINDS.iter().zip(&self.counters).map(|(k, c)| (*k, c.load(Ordering::Relaxed))).collect();
        SimStats {
            total: by_kind.values().sum(),
            by_kind,
            by_action: lock(&self.by_action).clone(),
            shadow_marked: self.shadow_marked.load(Ordering::Relaxed),
        }
    }

    pub fn profile(&self, qualified_name: &str) -> Option<&ActionProfile> {
        match self.config.actions.get(qualified_name) {
            Some(p) => Some(p),
            None if self.config.implicit_actions => Some(&self.config.default_action),
            None => None,
        }
    }

    /// Whether this call is a cold start (no call within the profile's keep-warm time).
    pub fn is_cold(&self, qualified_name: &str, keep_warm: Duration) -> bool {
        let now = Instant::now();
        let mut last = lock(&self.last_used);
        let cold = last.get(qualified_name).is_none_or(|t| now.duration_since(*t) > keep_warm);
        last.insert(qualified_name.to_string(), now);
        cold
    }

    pub fn store_activation(&self, id: String, record: Value) {
        let mut guard = lock(&self.activations);
        let (map, order) = &mut *guard;
        map.insert(id.clone(), record);
        order.push_back(id);
        while order.len() > self.config.max_activations {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    pub fn activation(&self, id: &str) -> Option<Value> {
        lock(&self.activations).0.get(id).cloned()
    }

    /// The newest activations of a namespace, newest first.
    pub fn recent_activations(&self, namespace: &str, limit: usize) -> Vec<Value> {
        let guard = lock(&self.activations);
        let (map, order) = &*guard;
        order
            .iter()
            .rev()
            .filter_map(|id| map.get(id))
            .filter(|r| r["namespace"] == namespace)
            .take(limit)
            .cloned()
            .collect()
    }
}

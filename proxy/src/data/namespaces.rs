//! `_` is the caller's default namespace: OpenWhisk's own clients (the `wsk` CLI, the `openwhisk`
//! npm client without a `namespace` option) call with it, and the controller resolves it to the
//! namespace of the caller's subject. switchyard resolves it the same way before routing, so a
//! namespace pin holds for `_` callers and `_/hello` and `guest/hello` are one sticky key.
//!
//! The lookup asks a controller (`GET /api/v1/namespaces` with the caller's own credential; both
//! fleets share the auth store). Answers are cached per credential, keyed by a seeded hash of the
//! whole `Authorization` value (the credential itself is never stored), bounded in entries and
//! time; one lookup is in flight per credential, and a request waits for it only a short bound.
//! A credential that fails authentication is never cached as a namespace.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_rules::Pool;
use tokio::sync::watch;

use crate::data::pools::Pools;
use crate::data::upstream::{self, Client};
use crate::ops::config::NamespacesConfig;
use crate::ops::metrics::{Counters, Metrics, NAMESPACE_LOOKUPS};
use crate::sync::lock;

/// What one lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Namespace(Arc<str>),
    /// The controller refused the credential (401/403).
    Unauthorized,
    /// No answer, or not one that names a namespace.
    Failed,
}

/// The largest namespace list read (a subject has one namespace; the list is a few bytes).
const MAX_ANSWER: usize = 64 * 1024;

#[derive(Default)]
struct Cache {
    entries: HashMap<u64, (Arc<str>, Instant)>,
    /// Insertion order, for evicting the oldest past the bound.
    order: VecDeque<u64>,
    /// Lookups in flight, one per credential; waiters watch for the result.
    pending: HashMap<u64, watch::Receiver<Option<Found>>>,
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

pub struct NamespaceResolver {
    pools: Arc<Pools>,
    client: Client,
    config: NamespacesConfig,
    /// Keys the cache, so the hash of a credential cannot be matched against precomputed ones.
    seed: u64,
    cache: Mutex<Cache>,
    lookups: Counters<NamespaceLookup>,
}

impl NamespaceResolver {
    pub fn new(pools: Arc<Pools>, config: NamespacesConfig, client: Client, metrics: &Metrics) -> NamespaceResolver {
        let lookups = Counters::new(metrics, NAMESPACE_LOOKUPS, &[], "result");
        NamespaceResolver { pools, client, config, seed: rand::random(), cache: Mutex::default(), lookups }
    }

    /// The caller's namespace for `_`, or `None` (anonymous, refused, failed, or not in time):
    /// the request is then routed by the safe policy (legacy).
    pub async fn resolve(self: &Arc<Self>, authorization: Option<&[u8]>) -> Option<Arc<str>> {
        let Some(credential) = authorization else {
            self.lookups.count(NamespaceLookup::Anonymous);
            return None;
        };
        let key = xxhash_rust::xxh3::xxh3_64_with_seed(credential, self.seed);
        let mut rx = {
            let mut cache = lock(&self.cache);
            if let Some((ns, at)) = cache.entries.get(&key) {
                if at.elapsed() < Duration::from_secs(self.config.ttl_s) {
                    self.lookups.count(NamespaceLookup::Cached);
                    return Some(Arc::clone(ns));
                }
            }
            match cache.pending.get(&key) {
                Some(rx) => rx.clone(),
                None if cache.pending.len() >= self.config.max_in_flight => {
                    self.lookups.count(NamespaceLookup::Busy);
                    return None;
                }
                None => {
                    let (tx, rx) = watch::channel(None);
                    cache.pending.insert(key, rx.clone());
                    let (resolver, credential) = (Arc::clone(self), credential.to_vec());
                    // Runs to the end even when the request stops waiting: later requests use it.
                    tokio::spawn(async move {
                        let found = resolver.look_up(&credential).await;
                        resolver.settle(key, &found);
                        let _ = tx.send(Some(found));
                    });
                    rx
                }
            }
        };
        let wait = Duration::from_millis(self.config.wait_ms);
        let found = match tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await {
            Ok(Ok(found)) => found.clone().unwrap_or(Found::Failed),
            Ok(Err(_)) => Found::Failed,
            Err(_) => {
                self.lookups.count(NamespaceLookup::Timeout);
                return None;
            }
        };
        match found {
            Found::Namespace(ns) => {
                self.lookups.count(NamespaceLookup::Resolved);
                Some(ns)
            }
            Found::Unauthorized => {
                self.lookups.count(NamespaceLookup::Unauthorized);
                None
            }
            Found::Failed => {
                self.lookups.count(NamespaceLookup::Failed);
                None
            }
        }
    }

    /// Asks a healthy controller (legacy first, else the scheduler fleet) for the namespace.
    async fn look_up(&self, credential: &[u8]) -> Found {
        let Some(member) =
            self.pools.get(Pool::Legacy).pick_healthy().or_else(|| self.pools.get(Pool::Scheduler).pick_healthy())
        else {
            return Found::Failed;
        };
        let Ok(header) = http::HeaderValue::from_bytes(credential) else { return Found::Failed };
        let mut request = upstream::get("/api/v1/namespaces");
        request.headers_mut().insert(http::header::AUTHORIZATION, header);
        let timeout = Duration::from_millis(self.config.lookup_timeout_ms);
        let Ok((head, body)) = self.client.exchange(&member.endpoint, request, MAX_ANSWER, timeout).await else {
            return Found::Failed;
        };
        match head.status.as_u16() {
            401 | 403 => Found::Unauthorized,
            200 => match serde_json::from_slice::<Vec<String>>(body.as_deref().unwrap_or_default()) {
                Ok(names) => match names.into_iter().next() {
                    Some(ns) if !ns.is_empty() && ns != "_" => Found::Namespace(Arc::from(ns)),
                    _ => Found::Failed,
                },
                Err(_) => Found::Failed,
            },
            _ => Found::Failed,
        }
    }

    /// Records a finished lookup: a namespace is cached (the oldest entry leaves past the
    /// bound); a refusal or failure is not.
    fn settle(&self, key: u64, found: &Found) {
        let mut cache = lock(&self.cache);
        cache.pending.remove(&key);
        if let Found::Namespace(ns) = found {
            if cache.entries.insert(key, (Arc::clone(ns), Instant::now())).is_none() {
                cache.order.push_back(key);
            }
            while cache.entries.len() > self.config.cache_entries {
                let Some(oldest) = cache.order.pop_front() else { break };
                cache.entries.remove(&oldest);
            }
        }
    }
}

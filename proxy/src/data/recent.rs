//! Recent invocations, bounded whatever the traffic: what a rules plan weighs a change with.
//!
//! The last hour is kept as [`WINDOWS`] windows of [`WINDOW_MS`]. In each window every shard keeps
//! a Space-Saving summary (Metwally et al.): at most [`ACTIONS_PER_SHARD`] actions and
//! [`NAMESPACES_PER_SHARD`] namespaces with their counts. A key that is not kept takes the place
//! of the least counted one and inherits its count (remembered as the entry's error), so a count
//! never underestimates and any key with more than 1/capacity of a shard's traffic is always kept:
//! the busiest actions are exact or close, and the rest of a namespace's traffic is its total
//! minus its listed actions. A shard is picked by the key's hash; recording takes one uncontended
//! lock of one shard, and allocates only when a new key enters a summary.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use switchyard_rules::{ActionRate, NamespaceRate, Traffic};

use crate::sync::lock;

pub const WINDOW_MS: u64 = 600_000;
/// Six windows of ten minutes: the last hour (the current window is partly filled).
pub const WINDOWS: usize = 6;
pub const SHARDS: usize = 8;
pub const ACTIONS_PER_SHARD: usize = 256;
pub const NAMESPACES_PER_SHARD: usize = 128;
/// The most entries the sketch holds: per window, 2,048 actions and 1,024 namespace counts.
/// OpenWhisk's longest entity name (namespace, package or action).
pub const MAX_NAME_BYTES: usize = 256;
#[cfg(test)]
const MAX_ENTRIES: usize = WINDOWS * SHARDS * (ACTIONS_PER_SHARD + NAMESPACES_PER_SHARD);

/// Recent invocations by action and namespace, over the last hour.
pub struct RecentTraffic {
    shards: Vec<Mutex<Shard>>,
    started_ms: u64,
}

#[derive(Default)]
struct Shard {
    windows: [Window; WINDOWS],
}

#[derive(Default)]
struct Window {
    /// Which window of time this is (`now / WINDOW_MS`); an older one is emptied before reuse.
    epoch: u64,
    actions: Summary<ActionKey>,
    namespaces: Summary<Box<str>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct ActionKey {
    namespace: Box<str>,
    package: Box<str>,
    action: Box<str>,
}

/// A Space-Saving summary keyed by a 64-bit hash (two keys with one hash share a count; with
/// xxh3 that takes billions of distinct keys to become likely).
struct Summary<K> {
    index: HashMap<u64, usize, BuildHasherDefault<KeyIsHash>>,
    entries: Vec<Entry<K>>,
}

/// The index's keys are xxh3 hashes already: hashing them again would only cost time.
#[derive(Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are u64); any other input still hashes.
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

struct Entry<K> {
    hash: u64,
    key: K,
    count: u64,
}

impl<K> Default for Summary<K> {
    fn default() -> Self {
        Summary { index: HashMap::default(), entries: Vec::new() }
    }
}

impl<K> Summary<K> {
    fn add(&mut self, hash: u64, capacity: usize, key: impl FnOnce() -> K) {
        if let Some(&i) = self.index.get(&hash) {
            self.entries[i].count += 1;
            return;
        }
        if self.entries.len() < capacity {
            self.index.insert(hash, self.entries.len());
            self.entries.push(Entry { hash, key: key(), count: 1 });
            return;
        }
        // Full: the least counted entry makes room (a scan: only for a key not kept).
        let Some((i, _)) = self.entries.iter().enumerate().min_by_key(|(_, e)| e.count) else { return };
        let least = &mut self.entries[i];
        self.index.remove(&least.hash);
        *least = Entry { hash, key: key(), count: least.count + 1 };
        self.index.insert(hash, i);
    }

    fn clear(&mut self) {
        self.index.clear();
        self.entries.clear();
    }
}

/// An action's hash, chained from its namespace's (each part hashed once, seeded by the parts
/// before it, so `a/bc` and `ab/c` differ).
fn action_hash(namespace_hash: u64, package: &str, action: &str) -> u64 {
    let package_hash = xxhash_rust::xxh3::xxh3_64_with_seed(package.as_bytes(), namespace_hash);
    xxhash_rust::xxh3::xxh3_64_with_seed(action.as_bytes(), package_hash)
}

impl RecentTraffic {
    pub fn new(now_ms: u64) -> RecentTraffic {
        RecentTraffic { shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(), started_ms: now_ms }
    }

    /// Counts one invocation (the namespace as routed: `_` already resolved). A name longer than
    /// OpenWhisk allows is not counted (its controller refuses it), which keeps the bound.
    pub fn record(&self, now_ms: u64, namespace: &str, package: &str, action: &str) {
        if [namespace, package, action].iter().any(|part| part.len() > MAX_NAME_BYTES) {
            return;
        }
        let ns_hash = xxhash_rust::xxh3::xxh3_64(namespace.as_bytes());
        let hash = action_hash(ns_hash, package, action);
        let epoch = now_ms / WINDOW_MS;
        let mut shard = lock(&self.shards[(hash % SHARDS as u64) as usize]);
        let window = &mut shard.windows[(epoch % WINDOWS as u64) as usize];
        if window.epoch != epoch {
            window.actions.clear();
            window.namespaces.clear();
            window.epoch = epoch;
        }
        window.actions.add(hash, ACTIONS_PER_SHARD, || ActionKey {
            namespace: namespace.into(),
            package: package.into(),
            action: action.into(),
        });
        window.namespaces.add(ns_hash, NAMESPACES_PER_SHARD, || namespace.into());
    }

    /// The rates of the last hour (or since start, when that is shorter).
    pub fn traffic(&self, now_ms: u64) -> Traffic {
        let epoch = now_ms / WINDOW_MS;
        let oldest = epoch.saturating_sub(WINDOWS as u64 - 1);
        let mut actions: HashMap<ActionKey, u64> = HashMap::new();
        let mut namespaces: HashMap<Box<str>, u64> = HashMap::new();
        for shard in &self.shards {
            let shard = lock(shard);
            for w in shard.windows.iter().filter(|w| w.epoch >= oldest && w.epoch <= epoch) {
                for e in &w.actions.entries {
                    *actions.entry(e.key.clone()).or_default() += e.count;
                }
                for e in &w.namespaces.entries {
                    *namespaces.entry(e.key.clone()).or_default() += e.count;
                }
            }
        }
        let since = self.started_ms.max(oldest * WINDOW_MS);
        let span_s = (now_ms.saturating_sub(since) as f64 / 1000.0).max(1.0);
        let mut actions: Vec<ActionRate> = actions
            .into_iter()
            .map(|(k, count)| ActionRate {
                namespace: k.namespace.into(),
                package: k.package.into(),
                action: k.action.into(),
                per_s: count as f64 / span_s,
            })
            .collect();
        actions.sort_by(|a, b| b.per_s.total_cmp(&a.per_s));
        let mut namespaces: Vec<NamespaceRate> = namespaces
            .into_iter()
            .map(|(namespace, count)| NamespaceRate { namespace: namespace.into(), per_s: count as f64 / span_s })
            .collect();
        namespaces.sort_by(|a, b| b.per_s.total_cmp(&a.per_s));
        Traffic { span_s, actions, namespaces }
    }

    /// Entries held now, and the bytes they take (keys' text included): the bound the README states.
    pub fn footprint(&self) -> (usize, usize) {
        let (mut entries, mut bytes) = (0, 0);
        for shard in &self.shards {
            let shard = lock(shard);
            for w in &shard.windows {
                entries += w.actions.entries.len() + w.namespaces.entries.len();
                bytes += w.actions.entries.capacity() * std::mem::size_of::<Entry<ActionKey>>()
                    + w.namespaces.entries.capacity() * std::mem::size_of::<Entry<Box<str>>>()
                    + (w.actions.index.capacity() + w.namespaces.index.capacity())
                        * (2 * std::mem::size_of::<u64>() + 1);
                bytes += w
                    .actions
                    .entries
                    .iter()
                    .map(|e| e.key.namespace.len() + e.key.package.len() + e.key.action.len())
                    .sum::<usize>();
                bytes += w.namespaces.entries.iter().map(|e| e.key.len()).sum::<usize>();
            }
        }
        (entries, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_distinct_actions_stay_within_the_bound_and_the_busy_ones_stay_exact_enough() {
        let t = RecentTraffic::new(0);
        // 1,000,000 actions seen once each over the hour (every window fills), and one action
        // with a tenth of all traffic.
        let at = |i: u32| u64::from(i) * WINDOW_MS * WINDOWS as u64 / 1_000_000 + 1;
        for i in 0..1_000_000u32 {
            t.record(at(i), &format!("ns-{}", i % 5_000), "", &format!("action-{i}"));
            if i % 9 == 0 {
                t.record(at(i), "busy", "pkg", "hot");
            }
        }
        let now = at(999_999);
        let (entries, bytes) = t.footprint();
        eprintln!("a million distinct actions: {entries} entries, {bytes} bytes");
        assert_eq!(entries, MAX_ENTRIES, "every summary is full, and no fuller");
        // About 1.6 MB with names like these; 12.3 MB with the longest names OpenWhisk allows.
        assert!(bytes < 2_500_000, "{bytes} bytes");
        let traffic = t.traffic(now);
        let hot = traffic.actions.iter().find(|a| a.action == "hot").expect("the busy action is kept");
        let true_count = 1_000_000 / 9 + 1;
        let counted = hot.per_s * traffic.span_s;
        assert!(counted >= true_count as f64 - 0.5, "never below: {counted}");
        assert!(counted <= true_count as f64 * 1.05, "close above: {counted}");
        let busy = traffic.namespaces.iter().find(|n| n.namespace == "busy").expect("namespace kept");
        assert!(busy.per_s * traffic.span_s >= true_count as f64 - 0.5);
    }

    #[test]
    fn windows_older_than_an_hour_are_forgotten() {
        let t = RecentTraffic::new(0);
        t.record(0, "a", "", "old");
        t.record(WINDOW_MS * WINDOWS as u64, "a", "", "new");
        let traffic = t.traffic(WINDOW_MS * WINDOWS as u64 + 1);
        let names: Vec<&str> = traffic.actions.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(names, ["new"]);
        assert!((traffic.span_s - (WINDOW_MS as f64 / 1000.0 * (WINDOWS - 1) as f64)).abs() < 2.0);
    }
}

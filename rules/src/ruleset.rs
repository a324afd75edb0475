//! The compiled rule set: what a request routes by.

use serde_json::{json, Value};

use crate::matcher::Matcher;
use crate::model::{Override, Pool, StickyKey};
use crate::share::Share;

/// A validated, compiled rule set. Immutable: a change builds a new one and swaps it in whole.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Identifies the content; two different contents must not share a version.
    pub version: String,
    /// Where non-invocation API traffic (entity CRUD, activations, anything else) goes.
    pub default_pool: Pool,
    /// Share of invocations sent to the scheduler when no override matches.
    pub scheduler_share: Share,
    /// When on, every request goes to legacy, whatever the overrides say.
    pub kill_switch: bool,
    pub seed: u64,
    pub sticky_key: StickyKey,
    /// In file order.
    pub overrides: Vec<Override>,
    /// Hash of the canonical document, independent of file format and field order.
    pub fingerprint: u64,
    pub(crate) matcher: Matcher,
}

impl RuleSet {
    /// Whether any decision hashes the Basic-auth subject (so the proxy decodes it only then).
    pub fn uses_subject(&self) -> bool {
        self.sticky_key == StickyKey::Subject || self.overrides.iter().any(|o| o.sticky_key == StickyKey::Subject)
    }

    /// The canonical form of the rule set (what `GET /rules` shows), independent of input format.
    pub fn to_document(&self) -> Value {
        json!({
            "version": self.version,
            "default_pool": self.default_pool.as_str(),
            "scheduler_share": self.scheduler_share.to_string(),
            "kill_switch": self.kill_switch,
            "seed": self.seed,
            "sticky_key": self.sticky_key.to_string(),
            "overrides": self.overrides.iter().map(Override::to_document).collect::<Vec<_>>(),
        })
    }

    /// The same rule set with the kill switch set as given, under a derived version.
    pub fn with_kill_switch(&self, on: bool) -> RuleSet {
        let mut next = self.clone();
        next.kill_switch = on;
        let base = self.version.strip_suffix("+killed").unwrap_or(&self.version).to_string();
        next.version = if on { format!("{base}+killed") } else { base };
        next.fingerprint = fingerprint(&next.to_document());
        next
    }
}

/// Hash of a canonical document without its version: two rule sets with the same fingerprint
/// route identically.
pub(crate) fn fingerprint(doc: &Value) -> u64 {
    let mut doc = doc.clone();
    if let Some(map) = doc.as_object_mut() {
        map.remove("version");
    }
    // serde_json's map is ordered by key, so this serialisation is canonical.
    xxhash_rust::xxh3::xxh3_64(&serde_json::to_vec(&doc).unwrap_or_default())
}

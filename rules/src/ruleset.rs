//! The compiled rule set: what a request routes by.

use serde_json::Value;

use crate::document::{Each, Field, FieldType, OverrideDocument, RulesDocument, Version};
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
    /// Compiles validated parts: builds the override index and the fingerprint.
    pub(crate) fn new(
        version: String,
        default_pool: Pool,
        scheduler_share: Share,
        kill_switch: bool,
        seed: u64,
        sticky_key: StickyKey,
        overrides: Vec<Override>,
    ) -> RuleSet {
        let matcher = Matcher::build(&overrides);
        let mut rules = RuleSet {
            version,
            default_pool,
            scheduler_share,
            kill_switch,
            seed,
            sticky_key,
            overrides,
            fingerprint: 0,
            matcher,
        };
        rules.fingerprint = fingerprint(&rules.to_document());
        rules
    }

    /// Whether any decision hashes the Basic-auth subject (so the proxy decodes it only then).
    pub fn uses_subject(&self) -> bool {
        self.sticky_key == StickyKey::Subject || self.overrides.iter().any(|o| o.sticky_key == StickyKey::Subject)
    }

    /// The canonical form of the rule set (what `GET /rules` shows), independent of input format:
    /// every field written, defaults included, in the document's own schema.
    pub fn to_document(&self) -> Value {
        RulesDocument {
            version: Field::Value(Version(self.version.clone())),
            default_pool: Field::Value(self.default_pool),
            scheduler_share: Field::Value(self.scheduler_share),
            kill_switch: Field::Value(self.kill_switch),
            seed: Field::Value(self.seed),
            sticky_key: Field::Value(self.sticky_key.clone()),
            overrides: Field::Value(Each(self.overrides.iter().map(|o| Some(OverrideDocument::from(o))).collect())),
        }
        .write()
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

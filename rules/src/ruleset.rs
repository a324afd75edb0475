//! The compiled rule set: what a request routes by.

use serde_json::Value;

use crate::document::{OverrideDocument, RampDocument, RulesDocument, Version};
use crate::field::{Each, Field, FieldType};
use crate::force::Force;
use crate::matcher::Matcher;
use crate::model::{Override, Pool, StickyKey};
use crate::ramp::Ramp;
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
    /// Raises the global share step by step; `None` without one.
    pub ramp: Option<Ramp>,
    /// Listed callers choose their path with a header; `None`: nobody can.
    pub force: Option<Force>,
    /// The global share the ramp has reached on this replica, when it drives the share (set by the
    /// proxy, not written in documents: `scheduler_share` stays what the rules say).
    pub ramp_share: Option<Share>,
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
            ramp: None,
            force: None,
            ramp_share: None,
            fingerprint: 0,
            matcher,
        };
        rules.fingerprint = fingerprint(&rules.to_document());
        rules
    }

    pub(crate) fn with_ramp_and_force(mut self, ramp: Option<Ramp>, force: Option<Force>) -> RuleSet {
        self.ramp = ramp;
        self.force = force;
        self.fingerprint = fingerprint(&self.to_document());
        self
    }

    /// The share invocations without an override are routed by: the ramp's, when it drives it.
    pub fn global_share(&self) -> Share {
        self.ramp_share.unwrap_or(self.scheduler_share)
    }

    /// The same rule set (same version and content) routing by a ramp's share.
    pub fn at_ramp_share(&self, share: Share) -> RuleSet {
        RuleSet { ramp_share: Some(share), ..self.clone() }
    }

    /// The rules a replica publishes when its ramp rolled back: the same document with the ramp
    /// marked `rolled_back`, under a derived version, so that every replica follows.
    pub fn with_rollback(&self, reason: &str) -> Option<RuleSet> {
        let mut ramp = self.ramp.clone()?;
        ramp.rolled_back = Some(reason.chars().take(1000).collect());
        let mut next = RuleSet { ramp: Some(ramp), ramp_share: None, ..self.clone() };
        let base = self.version.strip_suffix("+rollback").unwrap_or(&self.version);
        next.version = format!("{base}+rollback");
        next.fingerprint = fingerprint(&next.to_document());
        Some(next)
    }

    /// The rules a rollback was derived from (the inverse of [`RuleSet::with_rollback`]), when
    /// these are such a rollback.
    pub fn before_rollback(&self) -> Option<RuleSet> {
        let base = self.version.strip_suffix("+rollback")?;
        let mut ramp = self.ramp.clone()?;
        ramp.rolled_back = None;
        let mut prior = RuleSet { ramp: Some(ramp), version: base.to_string(), ..self.clone() };
        prior.fingerprint = fingerprint(&prior.to_document());
        Some(prior)
    }

    /// Whether any decision hashes the Basic-auth subject (so the proxy decodes it only then).
    pub fn uses_subject(&self) -> bool {
        self.sticky_key == StickyKey::Subject
            || self.overrides.iter().any(|o| o.sticky_key == StickyKey::Subject)
            || self.force.as_ref().is_some_and(|f| !f.subjects.is_empty())
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
            ramp: self.ramp.as_ref().map_or(Field::Absent, |r| Field::Value(RampDocument::from(r))),
            force: self.force.as_ref().map_or(Field::Absent, |f| Field::Value(f.document())),
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

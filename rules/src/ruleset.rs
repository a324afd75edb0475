//! The compiled rule set: what a request routes by.

use serde_json::Value;

use crate::document::{OverrideDocument, RampDocument, RulesDocument, Version};
use crate::field::{Each, Field, FieldType};
use crate::force::Force;
use crate::matcher::Matcher;
use crate::model::{Override, StickyKey};
use crate::pool::Pool;
use crate::ramp::{Ramp, RampScope};
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
    /// By override index: the slot of its own counters when it has a ramp (0 ..
    /// `Ramp::MAX_SCOPED`, in file order).
    ramp_slots: Vec<Option<usize>>,
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
        let mut slots = 0..;
        let ramp_slots = overrides.iter().map(|o| o.ramp.as_ref().and_then(|_| slots.next())).collect();
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
            ramp_slots,
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

    /// Every ramp with the share it drives: the global one first, then the overrides' in order.
    pub fn ramps(&self) -> Vec<(RampScope, &Ramp)> {
        let global = self.ramp.iter().map(|r| (RampScope::Global, r));
        let scoped =
            self.overrides.iter().enumerate().filter_map(|(i, o)| Some((RampScope::Override(i), o.ramp.as_ref()?)));
        global.chain(scoped).collect()
    }

    pub fn ramp_of(&self, scope: RampScope) -> Option<&Ramp> {
        match scope {
            RampScope::Global => self.ramp.as_ref(),
            RampScope::Override(i) => self.overrides.get(i)?.ramp.as_ref(),
        }
    }

    /// The share a scope routes by while its ramp does not drive it (as the rules write it).
    pub fn share_before_ramp(&self, scope: RampScope) -> Share {
        match scope {
            RampScope::Global => self.scheduler_share,
            RampScope::Override(i) => self.overrides.get(i).map_or(Share::ZERO, |o| o.share),
        }
    }

    /// How a scope is named in `GET /ramp`, the audit log and operators' calls: `global`, or the
    /// override's label (its `name`, else its patterns).
    pub fn scope_name(&self, scope: RampScope) -> String {
        match scope {
            RampScope::Global => "global".to_string(),
            RampScope::Override(i) => self.overrides.get(i).map_or_else(String::new, |o| o.label()),
        }
    }

    /// The ramp scope a name stands for.
    pub fn scope_named(&self, name: &str) -> Option<RampScope> {
        self.ramps().into_iter().map(|(scope, _)| scope).find(|scope| self.scope_name(*scope) == name)
    }

    /// The slot of an override's own counters, when it has a ramp.
    pub fn ramp_slot(&self, override_index: usize) -> Option<usize> {
        self.ramp_slots.get(override_index).copied().flatten()
    }

    /// Routes `scope` by its ramp's share (same version and content).
    pub fn set_ramp_share(&mut self, scope: RampScope, share: Share) {
        match scope {
            RampScope::Global => self.ramp_share = Some(share),
            RampScope::Override(i) => {
                if let Some(o) = self.overrides.get_mut(i) {
                    o.ramp_share = Some(share);
                }
            }
        }
    }

    /// The rules a replica publishes when one of its ramps rolled back: the same document with
    /// that ramp marked `rolled_back`, under a derived version (`+rollback` for the global ramp,
    /// `+rollback-o<index>` for an override's), so that every replica follows.
    pub fn with_rollback(&self, scope: RampScope, reason: &str) -> Option<RuleSet> {
        let mut next = self.clone();
        let ramp = match scope {
            RampScope::Global => next.ramp.as_mut()?,
            RampScope::Override(i) => next.overrides.get_mut(i)?.ramp.as_mut()?,
        };
        ramp.rolled_back = Some(reason.chars().take(1000).collect());
        next.ramp_share = None;
        for o in &mut next.overrides {
            o.ramp_share = None;
        }
        let mark = match scope {
            RampScope::Global => "rollback".to_string(),
            RampScope::Override(i) => format!("rollback-o{i}"),
        };
        if !self.version.split('+').skip(1).any(|part| part == mark) {
            next.version = format!("{}+{mark}", self.version);
        }
        next.fingerprint = fingerprint(&next.to_document());
        Some(next)
    }

    /// The version these rules were derived from by rollbacks ([`RuleSet::with_rollback`]), when
    /// they are such a rollback.
    pub fn rollback_base(&self) -> Option<&str> {
        let at = self.version.find("+rollback")?;
        Some(&self.version[..at])
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

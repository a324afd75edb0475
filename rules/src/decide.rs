//! The routing decision: which override applies, and which side of the share a key falls on.
//!
//! Precedence: among the overrides that match an invocation, the most specific wins; ties go to
//! the one written first. Specificity is the sum over namespace, package and action of 2 for a
//! literal, 1 for a glob with literal text (`img-*`), 0 for `*`. The kill switch beats everything.

use crate::bucket::sticky_bucket;
use crate::force::Force;
use crate::model::StickyKey;
use crate::pool::Pool;
use crate::ruleset::RuleSet;
use crate::share::Share;

/// Looks up a request header by lower-case name.
pub type HeaderLookup<'a> = dyn Fn(&str) -> Option<&'a str> + 'a;

/// What the proxy knows about one invocation, borrowed from the request.
#[derive(Clone, Copy, Default)]
pub struct Invocation<'a> {
    pub namespace: &'a str,
    /// `""` for actions outside any package.
    pub package: &'a str,
    pub action: &'a str,
    /// The Basic-auth user part, if the request carried one.
    pub subject: Option<&'a str>,
    /// Looks up a request header by lower-case name (for `header:NAME` sticky keys).
    pub header: Option<&'a HeaderLookup<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum DecisionReason {
    KillSwitch,
    /// The override at this index in `RuleSet::overrides` matched.
    Override(usize),
    /// No override matched: the global share applied.
    Global,
    /// Not an invocation: the rules' `default_pool` applied.
    DefaultPool,
    /// The caller's namespace (`_`) could not be resolved: legacy, the side no pin can forbid.
    UnresolvedNamespace,
    /// A caller listed in `force` chose the path with its header.
    Forced,
}

impl DecisionReason {
    /// The `reason` label of `switchyard_decisions_total`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Dense index (0 ..= 5) for per-reason arrays; every override counts as one.
    pub fn index(self) -> usize {
        match self {
            DecisionReason::KillSwitch => 0,
            DecisionReason::Override(_) => 1,
            DecisionReason::Global => 2,
            DecisionReason::DefaultPool => 3,
            DecisionReason::UnresolvedNamespace => 4,
            DecisionReason::Forced => 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub pool: Pool,
    pub reason: DecisionReason,
    /// The key's bucket (0 ..= 999,999); `None` under the kill switch (nothing was hashed).
    pub bucket: Option<u32>,
    pub share: Share,
}

impl Decision {
    /// For an invocation whose namespace (`_`) could not be resolved: legacy, whatever the rules.
    pub fn unresolved_namespace() -> Decision {
        Decision { pool: Pool::Legacy, reason: DecisionReason::UnresolvedNamespace, bucket: None, share: Share::ZERO }
    }
}

impl RuleSet {
    /// Routes a request that runs no action (entity CRUD, activations, `/ping`, unknown paths):
    /// the kill switch sends it to legacy, else it goes to `default_pool`.
    pub fn decide_default(&self) -> Decision {
        let (pool, reason) = if self.kill_switch {
            (Pool::Legacy, DecisionReason::KillSwitch)
        } else {
            (self.default_pool, DecisionReason::DefaultPool)
        };
        Decision { pool, reason, bucket: None, share: Share::ZERO }
    }

    /// Routes one invocation. Allocation-free; cost is a few hash lookups plus the hash of the key.
    pub fn decide(&self, inv: &Invocation<'_>) -> Decision {
        if self.kill_switch {
            return Decision {
                pool: Pool::Legacy,
                reason: DecisionReason::KillSwitch,
                bucket: None,
                share: Share::ZERO,
            };
        }
        if let Some(pool) = self.forced(inv) {
            return Decision { pool, reason: DecisionReason::Forced, bucket: None, share: Share::ZERO };
        }
        let (reason, share, seed, key) =
            match self.matcher.find(&self.overrides, inv.namespace, inv.package, inv.action) {
                Some(i) => {
                    let o = &self.overrides[i];
                    (DecisionReason::Override(i), o.effective_share(), o.seed, &o.sticky_key)
                }
                None => (DecisionReason::Global, self.global_share(), self.seed, &self.sticky_key),
            };
        let bucket = bucket_for(inv, key, seed);
        let pool = if bucket < share.ppm() { Pool::Scheduler } else { Pool::Legacy };
        Decision { pool, reason, bucket: Some(bucket), share }
    }
}

impl RuleSet {
    /// The path a listed caller asked for with the `force` header (none for anyone else).
    fn forced(&self, inv: &Invocation<'_>) -> Option<Pool> {
        let force = self.force.as_ref()?;
        let asked = inv.header.and_then(|h| h(&force.header)).and_then(Force::asked)?;
        force.lists(inv.namespace, inv.subject).then_some(asked)
    }
}

/// Hashes the invocation's sticky key. The action key is `namespace/action` or
/// `namespace/package/action`, exactly as OpenWhisk writes a fully qualified action name.
fn bucket_for(inv: &Invocation<'_>, key: &StickyKey, seed: u64) -> u32 {
    let header_value = |name: &str| inv.header.and_then(|h| h(name));
    match key {
        StickyKey::Namespace => sticky_bucket(&[inv.namespace], seed),
        StickyKey::Subject if inv.subject.is_some() => sticky_bucket(&[inv.subject.unwrap_or_default()], seed),
        StickyKey::Header(name) if header_value(name).is_some() => {
            sticky_bucket(&[header_value(name).unwrap_or_default()], seed)
        }
        _ if inv.package.is_empty() => sticky_bucket(&[inv.namespace, "/", inv.action], seed),
        _ => sticky_bucket(&[inv.namespace, "/", inv.package, "/", inv.action], seed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_rules, RulesFormat};

    fn rules(text: &str) -> RuleSet {
        parse_rules(text.as_bytes(), RulesFormat::Toml, "t.toml").unwrap()
    }

    fn decide(r: &RuleSet, ns: &str, pkg: &str, action: &str) -> Decision {
        r.decide(&Invocation { namespace: ns, package: pkg, action, ..Invocation::default() })
    }

    const LAYERED: &str = r#"
        version = "p"
        scheduler_share = 50
        [[overrides]]
        namespace = "guest"
        share = 10
        [[overrides]]
        namespace = "guest"
        action = "img-*"
        share = 20
        [[overrides]]
        namespace = "guest"
        package = ""
        action = "img-resize"
        share = 30
        [[overrides]]
        namespace = "*"
        action = "img-resize"
        share = 40
        [[overrides]]
        namespace = "gu*"
        package = "*"
        action = "img-*"
        share = 60
    "#;

    #[test]
    fn most_specific_override_wins() {
        let r = rules(LAYERED);
        let share = |ns, pkg, a| decide(&r, ns, pkg, a).share.ppm() / 10_000;
        assert_eq!(share("guest", "", "img-resize"), 30, "all literal beats everything");
        assert_eq!(share("guest", "p", "img-resize"), 20, "guest/*/img-* (3) beats */*/img-resize (2)");
        assert_eq!(share("guest", "", "img-crop"), 20);
        assert_eq!(share("guest", "", "hello"), 10);
        assert_eq!(share("other", "", "img-resize"), 40);
        assert_eq!(share("guests", "", "img-crop"), 60);
        assert_eq!(share("other", "", "hello"), 50, "global share");
    }

    #[test]
    fn ties_go_to_the_first_written() {
        let r = rules(
            r#"
            version = "t"
            [[overrides]]
            namespace = "guest"
            share = 100
            [[overrides]]
            action = "hello"
            package = "*"
            namespace = "*"
            share = 0
            "#,
        );
        // guest/*/* and */*/hello both score 2: the first written wins.
        assert_eq!(decide(&r, "guest", "", "hello").reason, DecisionReason::Override(0));
        assert_eq!(decide(&r, "x", "", "hello").reason, DecisionReason::Override(1));
    }

    #[test]
    fn kill_switch_beats_overrides() {
        let r = rules(
            "version = \"k\"\nkill_switch = true\nscheduler_share = 100\n[[overrides]]\nnamespace = \"a\"\nshare = 100",
        );
        let d = decide(&r, "a", "", "b");
        assert_eq!((d.pool, d.reason), (Pool::Legacy, DecisionReason::KillSwitch));
    }

    #[test]
    fn other_traffic_goes_to_the_default_pool_unless_killed() {
        let r = rules("version = \"d\"\ndefault_pool = \"scheduler\"\nscheduler_share = 0");
        assert_eq!(
            (r.decide_default().pool, r.decide_default().reason),
            (Pool::Scheduler, DecisionReason::DefaultPool)
        );
        let killed = r.with_kill_switch(true);
        assert_eq!(
            (killed.decide_default().pool, killed.decide_default().reason),
            (Pool::Legacy, DecisionReason::KillSwitch)
        );
        let plain = rules("version = \"e\"\nscheduler_share = 100");
        assert_eq!(plain.decide_default().pool, Pool::Legacy, "legacy is the default default_pool");
    }

    #[test]
    fn zero_and_full_shares_are_absolute() {
        let none = rules("version = \"0\"\nscheduler_share = 0");
        let all = rules("version = \"1\"\nscheduler_share = 100");
        for i in 0..2_000 {
            let a = format!("a{i}");
            assert_eq!(decide(&none, "n", "", &a).pool, Pool::Legacy);
            assert_eq!(decide(&all, "n", "", &a).pool, Pool::Scheduler);
        }
    }

    #[test]
    fn sticky_keys_hash_what_they_name() {
        let by_ns = rules("version = \"n\"\nscheduler_share = 50\nsticky_key = \"namespace\"");
        let first = decide(&by_ns, "tenant-7", "", "a").pool;
        for i in 0..200 {
            assert_eq!(decide(&by_ns, "tenant-7", "p", &format!("x{i}")).pool, first);
        }
        let by_header = rules("version = \"h\"\nscheduler_share = 50\nsticky_key = \"header:X-Tenant\"");
        let lookup = |name: &str| (name == "x-tenant").then_some("blue");
        let inv = |action| Invocation { namespace: "n", action, header: Some(&lookup), ..Invocation::default() };
        let expected = crate::bucket_of(b"blue", 0);
        assert_eq!(by_header.decide(&inv("a")).bucket, Some(expected));
        assert_eq!(by_header.decide(&inv("b")).bucket, Some(expected));
        let subject = rules("version = \"s\"\nscheduler_share = 50\nsticky_key = \"subject\"");
        let with_subject = Invocation { namespace: "n", action: "a", subject: Some("uuid-1"), ..Invocation::default() };
        assert_eq!(subject.decide(&with_subject).bucket, Some(crate::bucket_of(b"uuid-1", 0)));
        let without = Invocation { namespace: "n", action: "a", ..Invocation::default() };
        assert_eq!(subject.decide(&without).bucket, Some(crate::bucket_of(b"n/a", 0)), "falls back to the action key");
    }

    #[test]
    fn a_listed_caller_picks_its_path_by_header_and_nobody_else_does_and_the_kill_switch_wins() {
        let text = "version = \"f\"\nscheduler_share = 0\nforce = { header = \"x-path\", namespaces = [\"qa-*\"], subjects = [\"tester\"] }\n";
        let r = rules(text);
        let asks = |name: &str| (name == "x-path").then_some("scheduler");
        let inv = |ns, subject| Invocation {
            namespace: ns,
            action: "a",
            subject,
            header: Some(&asks),
            ..Invocation::default()
        };
        let d = r.decide(&inv("qa-1", None));
        assert_eq!((d.pool, d.reason), (Pool::Scheduler, DecisionReason::Forced));
        assert_eq!(r.decide(&inv("prod", Some("tester"))).reason, DecisionReason::Forced);
        let ignored = r.decide(&inv("prod", Some("someone")));
        assert_eq!((ignored.pool, ignored.reason), (Pool::Legacy, DecisionReason::Global), "not listed: ignored");
        let killed = r.with_kill_switch(true).decide(&inv("qa-1", None));
        assert_eq!((killed.pool, killed.reason), (Pool::Legacy, DecisionReason::KillSwitch));
        let nonsense = |name: &str| (name == "x-path").then_some("both");
        let unclear = Invocation { namespace: "qa-1", action: "a", header: Some(&nonsense), ..Invocation::default() };
        assert_eq!(r.decide(&unclear).reason, DecisionReason::Global, "a value that names no path asks for nothing");
    }

    #[test]
    fn action_key_is_the_qualified_name() {
        let r = rules("version = \"q\"\nscheduler_share = 50\nseed = 42");
        assert_eq!(decide(&r, "guest", "img", "resize").bucket, Some(593_664));
    }
}

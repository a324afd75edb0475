//! Statistical and ordering properties of sticky bucketing.

use proptest::prelude::*;
use switchyard_rules::{parse_rules, Decisions, Invocation, Pool, Position, RampScope, RuleSet, RulesFormat};

fn with_share(percent: &str, seed: u64) -> RuleSet {
    let doc = format!("version = \"v\"\nscheduler_share = \"{percent}\"\nseed = {seed}");
    parse_rules(doc.as_bytes(), RulesFormat::Toml, "prop.toml").unwrap()
}

fn realised_share(rules: &RuleSet, keys: &[(String, String)]) -> f64 {
    let to_scheduler = keys
        .iter()
        .filter(|(ns, action)| {
            rules.decide(&Invocation { namespace: ns, action, ..Invocation::default() }).pool == Pool::Scheduler
        })
        .count();
    to_scheduler as f64 / keys.len() as f64
}

/// Random (namespace, action) names from a seeded generator (splitmix64): generating 200,000
/// strings through proptest's regex strategies would take most of the test's time.
fn random_keys(mut state: u64, count: usize) -> Vec<(String, String)> {
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..count).map(|_| (format!("ns{:x}", next() % 5_000), format!("action-{:x}", next()))).collect()
}

/// Over 200,000 random keys the realised share is within ±0.3 percentage points of the target.
/// At 50 % that bound is 2.7 standard deviations, so random seeds would fail about one run in seven:
/// the seeds here are fixed (hash seeds and key sets of different shapes), which keeps the check
/// deterministic while still exercising the hash's uniformity.
#[test]
fn realised_share_is_close_to_target() {
    for (seed, key_seed) in [(0u64, 1u64), (42, 7), (1 << 40, 0xdead_beef), (i64::MAX as u64, 12_345)] {
        let keys = random_keys(key_seed, 200_000);
        for (percent, target) in [("0.1", 0.001), ("1", 0.01), ("10", 0.10), ("50", 0.50), ("99", 0.99)] {
            let got = realised_share(&with_share(percent, seed), &keys);
            assert!((got - target).abs() <= 0.003, "seed {seed}, keys {key_seed}, share {percent}%: realised {got}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Raising the share never moves a key from the scheduler back to legacy.
    #[test]
    fn ramp_is_monotone(seed in 0..=i64::MAX as u64, low in 0u32..=1_000_000, raise in 0u32..=1_000_000,
                        ns in "[a-z]{1,8}", pkg in "[a-z]{0,8}", action in "[a-z]{1,12}") {
        let high = (low + raise).min(1_000_000);
        let pct = |ppm: u32| format!("{}.{:04}", ppm / 10_000, ppm % 10_000);
        let (lo, hi) = (with_share(&pct(low), seed), with_share(&pct(high), seed));
        let inv = Invocation { namespace: &ns, package: &pkg, action: &action, ..Invocation::default() };
        if lo.decide(&inv).pool == Pool::Scheduler {
            prop_assert_eq!(hi.decide(&inv).pool, Pool::Scheduler);
        }
    }

    /// Every replica decides the same: the decision depends only on the rules and the key.
    #[test]
    fn decisions_are_deterministic(seed in 0..=i64::MAX as u64, ns in "[a-z]{1,8}", action in "[a-z]{1,12}") {
        let a = with_share("37.5", seed);
        let b = with_share("37.5", seed);
        let inv = Invocation { namespace: &ns, action: &action, ..Invocation::default() };
        prop_assert_eq!(a.decide(&inv), b.decide(&inv));
    }
}

/// The reference precedence rule, by brute force: most specific match, ties to the first written.
fn reference_winner(rules: &RuleSet, ns: &str, pkg: &str, action: &str) -> Option<usize> {
    rules
        .overrides
        .iter()
        .enumerate()
        .filter(|(_, o)| o.matches(ns, pkg, action))
        .max_by_key(|(i, o)| (o.specificity(), std::cmp::Reverse(*i)))
        .map(|(i, _)| i)
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![Just("*".to_string()), "[ab]{1,2}", "[ab]\\*", "\\*[ab]"]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// The indexed matcher picks exactly the override the documented precedence rule picks.
    #[test]
    fn index_agrees_with_brute_force(
        overrides in prop::collection::vec((pattern(), prop_oneof![Just("".to_string()), pattern()], pattern()), 1..25),
        calls in prop::collection::vec(("[ab]{1,2}", prop_oneof![Just("".to_string()), "[ab]{1,2}".prop_map(|s| s)], "[ab]{1,2}"), 1..40),
    ) {
        let mut doc = String::from("version = \"p\"\n");
        let mut seen = std::collections::HashSet::new();
        for (ns, pkg, action) in &overrides {
            if (ns == "*" && pkg == "*" && action == "*") || !seen.insert((ns.clone(), pkg.clone(), action.clone())) {
                continue;
            }
            doc.push_str(&format!("[[overrides]]\nnamespace = \"{ns}\"\npackage = \"{pkg}\"\naction = \"{action}\"\nshare = 50\n"));
        }
        let rules = parse_rules(doc.as_bytes(), RulesFormat::Toml, "p.toml").unwrap();
        for (ns, pkg, action) in &calls {
            let got = match rules.decide(&Invocation { namespace: ns, package: pkg, action, ..Invocation::default() }).reason {
                switchyard_rules::DecisionReason::Override(i) => Some(i),
                _ => None,
            };
            prop_assert_eq!(got, reference_winner(&rules, ns, pkg, action), "{}/{}/{}", ns, pkg, action);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Every replica decides alike for the same rules, however they reached it: parsed from TOML,
    /// or from the canonical JSON another replica published (the Kafka path), with overrides, seeds
    /// and shares drawn at random; and a ramp at the same clock is at the same share everywhere.
    #[test]
    fn replicas_decide_alike_whatever_the_format(
        seed in 0..=i64::MAX as u64,
        share in 0u32..=100,
        overrides in prop::collection::vec((pattern(), pattern(), 0u32..=100, 0..=i64::MAX as u64), 0..10),
        calls in prop::collection::vec(("[ab]{1,2}", prop_oneof![Just("".to_string()), "[ab]{1,2}".prop_map(|s| s)], "[ab]{1,3}"), 1..40),
        since_start_ms in 0u64..20_000,
    ) {
        let mut doc = format!(
            "version = \"r\"\nseed = {seed}\n[ramp]\nstart = 1800000000\nsteps = [{{ share = {share}, hold_s = 5 }}, {{ share = 100, hold_s = 0 }}]\n"
        );
        let mut seen = std::collections::HashSet::new();
        for (ns, action, s, o_seed) in &overrides {
            if (ns == "*" && action == "*") || !seen.insert((ns.clone(), action.clone())) {
                continue;
            }
            doc.push_str(&format!("[[overrides]]\nnamespace = \"{ns}\"\naction = \"{action}\"\nshare = {s}\nseed = {o_seed}\n"));
        }
        let a = parse_rules(doc.as_bytes(), RulesFormat::Toml, "a.toml").unwrap();
        let published = serde_json::to_vec(&a.to_document()).unwrap();
        let b = parse_rules(&published, RulesFormat::Json, "kafka").unwrap();
        prop_assert_eq!(a.fingerprint, b.fingerprint);
        let now = 1_800_000_000_000 + since_start_ms;
        let (ra, rb) = (a.ramp.as_ref().unwrap(), b.ramp.as_ref().unwrap());
        let none = Decisions::default();
        let (pa, pb) = (Position::initial(ra, now, 0, &none), Position::initial(rb, now, 0, &none));
        prop_assert_eq!(pa.share(ra, a.scheduler_share), pb.share(rb, b.scheduler_share));
        let (share_a, share_b) = (pa.share(ra, a.scheduler_share), pb.share(rb, b.scheduler_share));
        let (mut a, mut b) = (a.clone(), b.clone());
        a.set_ramp_share(RampScope::Global, share_a);
        b.set_ramp_share(RampScope::Global, share_b);
        for (ns, pkg, action) in &calls {
            let inv = Invocation { namespace: ns, package: pkg, action, ..Invocation::default() };
            prop_assert_eq!(a.decide(&inv), b.decide(&inv));
        }
    }
}

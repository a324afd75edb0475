//! One routing decision against rule sets of 10, 1,000 and 10,000 overrides.
//!
//! The overrides mix the shapes operators write: mostly exact actions, some per-namespace globs and a
//! few wildcard-namespace rules. Looked-up keys are a mix of exact hits and misses that fall through
//! every index to the global share (the slowest path).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use switchyard_rules::{parse_rules, Invocation, RuleSet, RulesFormat};

fn rules_with(n: usize) -> RuleSet {
    let mut doc = String::from("version = \"bench\"\nscheduler_share = 25\n");
    for i in 0..n {
        let (ns, pkg, action) = match i % 10 {
            0 => (format!("ns{i}"), "*".to_string(), format!("img-{i}-*")),
            1 if i % 100 == 1 => ("*".to_string(), "*".to_string(), format!("job{i}")),
            _ => (format!("ns{}", i % 500), format!("p{}", i % 7), format!("a{i}")),
        };
        doc.push_str(&format!(
            "[[overrides]]\nnamespace = \"{ns}\"\npackage = \"{pkg}\"\naction = \"{action}\"\nshare = {}\n",
            i % 101
        ));
    }
    parse_rules(doc.as_bytes(), RulesFormat::Toml, "bench.toml").expect("bench rules are valid")
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    for n in [10usize, 1_000, 10_000] {
        let rules = rules_with(n);
        let hit_action = format!("a{}", n.saturating_sub(2));
        let hit_ns = format!("ns{}", n.saturating_sub(2) % 500);
        let hit_pkg = format!("p{}", n.saturating_sub(2) % 7);
        group.bench_with_input(BenchmarkId::new("exact_hit", n), &n, |b, _| {
            b.iter(|| {
                rules.decide(black_box(&Invocation {
                    namespace: &hit_ns,
                    package: &hit_pkg,
                    action: &hit_action,
                    ..Invocation::default()
                }))
            })
        });
        group.bench_with_input(BenchmarkId::new("miss_to_global", n), &n, |b, _| {
            b.iter(|| {
                rules.decide(black_box(&Invocation {
                    namespace: "ns3",
                    package: "",
                    action: "not-listed",
                    ..Invocation::default()
                }))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);

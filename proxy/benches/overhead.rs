//! What the proxy adds to a request: the same blocking invocations sent straight to a simulated
//! controller and through switchyard, one at a time (latency) and 32 at a time (throughput).
//!
//! `cargo bench -p switchyard --bench overhead` (release build, loopback, in-process fleet).

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_tests::{guest_credentials, FleetSpec, LocalFleet};
use whisk_sim::{ActionProfile, Latency};

const SEQUENTIAL: usize = 3_000;
const CONCURRENT_TOTAL: usize = 20_000;
const CONCURRENCY: usize = 32;

async fn one(client: &reqwest::Client, base: &str) {
    let (user, key) = guest_credentials();
    let resp = client
        .post(format!("{base}/api/v1/namespaces/guest/actions/hello?blocking=true&result=true"))
        .basic_auth(user, Some(key))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
}

async fn sequential(base: &str) -> Vec<Duration> {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        one(&client, base).await;
    }
    let mut out = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        one(&client, base).await;
        out.push(t.elapsed());
    }
    out.sort();
    out
}

async fn throughput(base: &str) -> f64 {
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    let base: Arc<str> = base.into();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, base) = (client.clone(), Arc::clone(&base));
            tokio::spawn(async move {
                for _ in 0..CONCURRENT_TOTAL / CONCURRENCY {
                    one(&client, &base).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    CONCURRENT_TOTAL as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut spec = FleetSpec::new("version = \"bench\"\nscheduler_share = 0\n");
    let instant = ActionProfile {
        latency: Latency { min_ms: 0.0, max_ms: 0.0, ..Latency::default() },
        ..ActionProfile::default()
    };
    spec.legacy.wait_time_ms = Some([0, 0]);
    spec.legacy.default_action = instant;
    spec.legacy.threads = 1;
    spec.tweak = Some(Box::new(|c| c.threads = 1));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let direct = format!("http://{}", fleet.legacy.addr());
    let proxied = fleet.proxy_url();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let d = sequential(&direct).await;
        let p = sequential(&proxied).await;
        println!("one request at a time ({SEQUENTIAL} requests, simulator answers at once, proxy on 1 thread):");
        for (name, s) in [("direct", &d), ("through switchyard", &p)] {
            println!(
                "  {name:<20} p50 {:>7.0} µs  p90 {:>7.0} µs  p99 {:>7.0} µs",
                us(s[s.len() / 2]),
                us(s[s.len() * 9 / 10]),
                us(s[s.len() * 99 / 100])
            );
        }
        println!("  added at p50: {:.0} µs, at p99: {:.0} µs", us(p[p.len() / 2]) - us(d[d.len() / 2]), us(p[p.len() * 99 / 100]) - us(d[d.len() * 99 / 100]));
        let td = throughput(&direct).await;
        let tp = throughput(&proxied).await;
        println!("{CONCURRENCY} concurrent clients, {CONCURRENT_TOTAL} requests: direct {td:.0} req/s, through switchyard {tp:.0} req/s");
    });
}

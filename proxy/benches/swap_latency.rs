//! How long a rule change takes to route requests: from the moment the new file is in place (or
//! the admin PUT returns) to the first request routed by the new version.
//!
//! `cargo bench -p switchyard --bench swap_latency` (release build, loopback, in-process fleet).

use std::time::{Duration, Instant};

use switchyard_tests::{guest_credentials, FleetSpec, LocalFleet};

const ROUNDS: usize = 30;
const TOKEN: &str = "bench-token-0123456789abcdef";

fn rules(version: &str) -> String {
    format!("version = \"{version}\"\nscheduler_share = 50\n")
}

async fn first_request_with(client: &reqwest::Client, base: &str, version: &str, since: Instant) -> Duration {
    let (user, key) = guest_credentials();
    loop {
        let resp = client
            .post(format!("{base}/api/v1/namespaces/guest/actions/probe?blocking=true&result=true"))
            .basic_auth(user, Some(key))
            .send()
            .await
            .unwrap();
        if resp.headers()["x-switchyard-rules-version"] == version {
            return since.elapsed();
        }
        assert!(since.elapsed() < Duration::from_secs(10), "{version} never took effect");
    }
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<28} n={:<3} min {:>7.1} ms  p50 {:>7.1} ms  p90 {:>7.1} ms  max {:>7.1} ms",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10]),
        ms(samples[samples.len() - 1])
    );
}

fn main() {
    let mut spec = FleetSpec::new(&rules("v0"));
    spec.legacy.wait_time_ms = Some([0, 0]);
    spec.scheduler.wait_time_ms = Some([0, 0]);
    spec.tweak = Some(Box::new(|c| c.admin.token = Some(TOKEN.into())));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let base = fleet.proxy_url();
        let mut file = Vec::new();
        for i in 1..=ROUNDS {
            let version = format!("file-{i}");
            let tmp = fleet.rules_path().with_extension("next");
            std::fs::write(&tmp, rules(&version)).unwrap();
            std::fs::rename(&tmp, fleet.rules_path()).unwrap();
            let since = Instant::now();
            file.push(first_request_with(&client, &base, &version, since).await);
        }
        let mut admin = Vec::new();
        for i in 1..=ROUNDS {
            let version = format!("admin-{i}");
            let since = Instant::now();
            let resp = client
                .put(format!("{}/rules", fleet.admin_url()))
                .bearer_auth(TOKEN)
                .header("content-type", "application/toml")
                .body(rules(&version))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            admin.push(first_request_with(&client, &base, &version, since).await);
        }
        println!("rule change → first request routed by it (includes the file watcher's 100 ms debounce)");
        summary("file rename", file);
        summary("admin PUT (incl. the PUT)", admin);
    });
}

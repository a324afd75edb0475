//! Kafka down under load, with librdkafka's mock cluster (a broker that can be taken down and up):
//! zero client errors, client latency unaffected, every record counted as delivered, failed or
//! dropped, and delivery resuming when the broker returns.

use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use serde_json::Value;
use switchyard_tests::broker::{records_to, RecordCounts};
use switchyard_tests::{guest_credentials, FleetSpec, LocalFleet};

const RULES: &str = "version = \"k\"\nscheduler_share = 0\n[[overrides]]\nnamespace = \"guest\"\naction = \"pure-*\"\nshare = 0\nshadow = { sample = 100 }\n";

fn counts(admin: &str, rt: &tokio::runtime::Runtime) -> (u64, u64, u64, u64) {
    let c = rt.block_on(RecordCounts::read(admin));
    (c.delivered, c.failed, c.dropped, c.compared)
}

#[test]
fn broker_down_and_up_under_load() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("records", 1, 1).expect("topic");
    let brokers = mock.bootstrap_servers();
    let mut spec = FleetSpec::new(RULES);
    spec.legacy.wait_time_ms = Some([0, 0]);
    spec.scheduler.wait_time_ms = Some([0, 0]);
    spec.tweak = Some(Box::new(move |c| records_to(c, brokers, "records", 3_000)));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let (user, key) = guest_credentials();
    let phase = |n: usize| -> Vec<Duration> {
        rt.block_on(async {
            let mut latencies = Vec::new();
            for i in 0..n {
                let t = Instant::now();
                let resp = client
                    .post(format!("{base}/api/v1/namespaces/guest/actions/pure-{i}?blocking=true"))
                    .basic_auth(user, Some(key))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "a client request failed while Kafka was in trouble");
                resp.bytes().await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        })
    };
    let settle = |expected_total: u64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (d, f, x, compared) = counts(&admin, &rt);
            if d + f + x == expected_total && compared == expected_total {
                return (d, f, x);
            }
            assert!(
                Instant::now() < deadline,
                "records unaccounted for: delivered {d} failed {f} dropped {x} of {compared}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    let up = phase(40);
    let (d1, f1, _) = settle(40);
    assert_eq!((d1, f1), (40, 0), "all delivered while the broker is up");
    let ready: Value =
        rt.block_on(async { reqwest::get(format!("{admin}/readyz")).await.unwrap().json().await.unwrap() });
    assert_eq!(ready["kafka"]["records"]["healthy"], true);

    mock.broker_down(1).expect("down");
    let down = phase(40);
    let (_, f2, x2) = settle(80);
    assert!(f2 + x2 >= 40, "records during the outage fail or drop: {f2} failed, {x2} dropped");
    let ready: Value =
        rt.block_on(async { reqwest::get(format!("{admin}/readyz")).await.unwrap().json().await.unwrap() });
    assert_eq!(ready["ready"], true, "Kafka never takes readiness away");
    assert_eq!(ready["kafka"]["records"]["healthy"], false);

    mock.broker_up(1).expect("up");
    // Delivery resumes by itself: probe one shadowed request at a time until one is delivered.
    let mut total = 80;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        phase(1);
        total += 1;
        let (d, _, _) = settle(total);
        if d > 40 {
            break;
        }
        assert!(Instant::now() < deadline, "delivery did not resume after the broker came back");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (before, _, _) = settle(total);
    let again = phase(40);
    let (d3, _, _) = settle(total + 40);
    assert_eq!(d3 - before, 40, "every record after the broker came back was delivered");

    let p99 = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() * 99 / 100].as_secs_f64() * 1000.0
    };
    let (p_up, p_down, p_again) = (p99(up), p99(down), p99(again));
    println!(
        "client p99: broker up {p_up:.2} ms, down {p_down:.2} ms, back {p_again:.2} ms; records: {d3} delivered, {f2} failed, {x2} dropped of {}",
        total + 40
    );
    assert!(p_down < p_up * 3.0 + 5.0, "the outage slowed clients: p99 {p_up:.2} ms up vs {p_down:.2} ms down");
}

#[test]
fn an_unreachable_broker_at_start_changes_nothing_for_clients() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut spec = FleetSpec::new(RULES);
    spec.tweak = Some(Box::new(move |c| {
        c.kafka.brokers = dead.to_string();
        c.kafka.records_topic = "records".into();
        c.kafka.rules_topic = "rules".into();
        c.kafka.message_timeout_ms = 1_000;
    }));
    let fleet = LocalFleet::start(spec).expect("starts without a broker");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (user, key) = guest_credentials();
    rt.block_on(async {
        let c = reqwest::Client::new();
        for i in 0..5 {
            let resp = c
                .post(format!("{base}/api/v1/namespaces/guest/actions/pure-{i}?blocking=true"))
                .basic_auth(user, Some(key))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready: Value = reqwest::get(format!("{admin}/readyz")).await.unwrap().json().await.unwrap();
            let k = &ready["kafka"];
            if k["records"]["failed"].as_u64() == Some(5) && k["rules_topic_error"].is_string() {
                assert_eq!(ready["ready"], true, "readiness for traffic is not affected");
                assert_eq!(k["records"]["healthy"], false);
                break;
            }
            assert!(Instant::now() < deadline, "Kafka trouble not reported: {ready}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

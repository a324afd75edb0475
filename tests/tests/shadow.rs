//! Shadow comparison end to end: mirrored copies, OpenWhisk-aware comparison, reports, bounds,
//! and no secret in any record, report or log line.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::*;
use whisk_sim::{ActionProfile, Flavor, Latency, RequestKind, ResultSpec, SimConfig};

const RULES: &str = SHADOW_PURE;

/// Every log line of this test binary, to search for secrets: what an operator gets with
/// `SWITCHYARD_LOG=debug`.
fn debug_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    captured_logs("debug")
}

/// Two simulators of the same flavor: any difference must come from the profiles.
fn identical_spec(rules: &str) -> FleetSpec {
    let mut spec = FleetSpec::new(rules);
    spec.scheduler = SimConfig::with_flavor(Flavor::Legacy);
    spec
}

fn full_record(c: &reqwest::Client, base: &str, action: &str, params: Value) -> reqwest::RequestBuilder {
    let (user, key) = guest_credentials();
    c.post(format!("{base}/api/v1/namespaces/guest/actions/{action}?blocking=true"))
        .basic_auth(user, Some(key))
        .json(&params)
}

fn action<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == name)
        .unwrap_or_else(|| panic!("{name} not in {report}"))
}

#[test]
fn identical_paths_match_fully_despite_per_call_values() {
    debug_logs();
    let fleet = LocalFleet::start(identical_spec(RULES)).expect("fleet");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let report = block_on(async {
        let c = client();
        for i in 0..60 {
            let resp = full_record(&c, &base, &format!("pure-{}", i % 6), json!({"name": format!("n{i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
        shadow_report_with(&admin, 60).await
    });
    for a in report["actions"].as_array().unwrap() {
        assert_eq!(a["match_rate"], 1.0, "{a}");
        assert_eq!(a["real_differences"], json!([]), "{a}");
        assert!(a["latency_ms"]["scheduler"]["p50"].is_number());
        assert!(a["wait_time_ms"]["legacy"]["p50"].is_number(), "waitTime of both sides is reported");
    }
    assert_eq!(fleet.scheduler.stats().shadow_marked, 60, "the copies carry the shadow marker");
    let (records, bad) = switchyard_shadow::read_records(&fleet.shadow_records_path()).unwrap();
    assert_eq!((records.len(), bad), (60, 0));
    assert!(records
        .iter()
        .all(|r| r.served_by == "legacy" && r.legacy.status == Some(200) && r.scheduler.status == Some(200)));
}

#[test]
fn a_changed_result_field_is_named_exactly_and_others_stay_clean() {
    debug_logs();
    let mut spec = identical_spec(RULES);
    spec.scheduler.actions.insert(
        "guest/pure-2".into(),
        ActionProfile { result_patch: Some(json!({"payload": "Hi!"})), ..ActionProfile::default() },
    );
    let fleet = LocalFleet::start(spec).expect("fleet");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let report = block_on(async {
        let c = client();
        for i in 0..40 {
            full_record(&c, &base, &format!("pure-{}", i % 4), json!({})).send().await.unwrap();
        }
        shadow_report_with(&admin, 40).await
    });
    let changed = action(&report, "guest/pure-2");
    let paths: Vec<&str> =
        changed["real_differences"].as_array().unwrap().iter().filter_map(|d| d["path"].as_str()).collect();
    assert_eq!(paths, vec!["/response/result/payload", "/response/size"], "{changed}");
    assert_eq!(changed["match_rate"], 0.0);
    assert_eq!(changed["real_differences"][0]["examples"][0]["scheduler"], "Hi!");
    for clean in ["guest/pure-0", "guest/pure-1", "guest/pure-3"] {
        assert_eq!(action(&report, clean)["match_rate"], 1.0);
    }
}

#[test]
fn actions_not_opted_in_are_never_mirrored() {
    debug_logs();
    let fleet = LocalFleet::start(identical_spec(RULES)).expect("fleet");
    let base = fleet.proxy_url();
    block_on(async {
        let c = client();
        for i in 0..30 {
            invoke(&c, &base, &format!("other-{}", i % 3), json!({})).send().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    assert_eq!(fleet.legacy.stats().kind(RequestKind::Invoke), 30);
    let scheduler = fleet.scheduler.stats();
    assert_eq!((scheduler.kind(RequestKind::Invoke), scheduler.shadow_marked), (0, 0));
}

#[test]
fn a_slow_shadow_pool_never_slows_clients_and_stays_bounded() {
    debug_logs();
    let mut spec = FleetSpec::new(RULES);
    spec.legacy.wait_time_ms = Some([0, 0]);
    spec.scheduler.default_action = ActionProfile {
        latency: Latency { min_ms: 5_000.0, max_ms: 5_000.0, ..Latency::default() },
        ..ActionProfile::default()
    };
    spec.scheduler.threads = 2;
    spec.tweak = Some(Box::new(|c| {
        c.shadow.max_in_flight = 4;
        c.shadow.queue = 8;
        c.shadow.timeout_ms = 10_000;
    }));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let (off, on, peak_in_flight, peak_queued, dropped) = block_on(async {
        let c = client();
        let (mut off, mut on) = (Vec::new(), Vec::new());
        let (mut peak_in_flight, mut peak_queued) = (0.0f64, 0.0f64);
        // Interleaved in one run: even requests are not mirrored, odd ones are.
        for i in 0..300 {
            let name = if i % 2 == 0 { format!("other-{i}") } else { format!("pure-{i}") };
            let t = Instant::now();
            let resp = invoke(&c, &base, &name, json!({})).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.bytes().await.unwrap();
            if i % 2 == 0 {
                off.push(t.elapsed())
            } else {
                on.push(t.elapsed())
            }
            if i % 25 == 0 {
                let text = metrics_text(&admin).await;
                peak_in_flight = peak_in_flight.max(metric(&text, "switchyard_shadow_in_flight", &[]));
                peak_queued = peak_queued.max(metric(&text, "switchyard_shadow_queued", &[]));
            }
        }
        let text = metrics_text(&admin).await;
        (
            off,
            on,
            peak_in_flight,
            peak_queued,
            metric(&text, "switchyard_shadow_dropped_total", &[("reason", "queue_full")]),
        )
    });
    let p99 = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() * 99 / 100].as_secs_f64() * 1000.0
    };
    let (p_off, p_on) = (p99(off), p99(on));
    println!("client p99 with shadow off {p_off:.2} ms, on {p_on:.2} ms, ratio {:.2}", p_on / p_off);
    assert!(p_on / p_off < 3.0 && p_on < 1_000.0, "shadowing slowed clients: p99 {p_off:.2} ms off, {p_on:.2} ms on");
    assert!(dropped > 0.0, "the queue filled and drops were counted");
    assert!(
        peak_in_flight <= 4.0 && peak_queued <= 8.0,
        "bounds held: {peak_in_flight} in flight, {peak_queued} queued"
    );
}

#[test]
fn no_secret_reaches_records_reports_or_logs() {
    let logs = debug_logs();
    let mut spec = identical_spec(RULES);
    // The scheduler copy answers a different `who`: the difference carries the legacy value, which
    // is the caller's own key echoed back.
    spec.legacy
        .actions
        .insert("guest/pure-echo".into(), ActionProfile { result: ResultSpec::Echo, ..ActionProfile::default() });
    spec.scheduler.actions.insert(
        "guest/pure-echo".into(),
        ActionProfile {
            result: ResultSpec::Echo,
            result_patch: Some(json!({"who": "someone else"})),
            ..ActionProfile::default()
        },
    );
    let fleet = LocalFleet::start(spec).expect("fleet");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let (json_report, html) = block_on(async {
        let c = client();
        for _ in 0..5 {
            full_record(&c, &base, "pure-echo", json!({"who": GUEST_KEY, "api_key": "abc-secret-value"}))
                .send()
                .await
                .unwrap();
        }
        let report = shadow_report_with(&admin, 5).await;
        let html = c.get(format!("{admin}/shadow/report.html")).send().await.unwrap().text().await.unwrap();
        (report.to_string(), html)
    });
    let records = std::fs::read_to_string(fleet.shadow_records_path()).unwrap();
    assert!(records.contains("/response/result/who"), "the difference is recorded: {records}");
    let (_, key) = guest_credentials();
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(GUEST_KEY);
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(!logs.is_empty());
    for (what, text) in [("records", &records), ("JSON report", &json_report), ("HTML report", &html), ("logs", &logs)]
    {
        for secret in [key, basic.as_str(), "abc-secret-value"] {
            let line = text.lines().find(|l| l.contains(secret)).unwrap_or_default();
            assert!(
                !text.contains(secret),
                "{what} contain a secret ({}…) in: {}",
                &secret[..6],
                line.replace(secret, "<SECRET>")
            );
        }
    }
}

#[test]
fn web_actions_are_mirrored_with_their_method() {
    debug_logs();
    let rules = "version = \"web\"\nscheduler_share = 0\n[[overrides]]\nnamespace = \"guest\"\naction = \"page\"\nshare = 0\nshadow = { sample = 100 }\n";
    let mut spec = identical_spec(rules);
    let page = ActionProfile { result: ResultSpec::Fixed(json!({"html": "<p>hello</p>"})), ..ActionProfile::default() };
    spec.legacy.actions.insert("guest/page".into(), page.clone());
    spec.scheduler.actions.insert(
        "guest/page".into(),
        ActionProfile { result: ResultSpec::Fixed(json!({"html": "<p>hullo</p>"})), ..page },
    );
    let fleet = LocalFleet::start(spec).expect("fleet");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let report = block_on(async {
        let c = client();
        for _ in 0..4 {
            let resp = c.get(format!("{base}/api/v1/web/guest/default/page.html")).send().await.unwrap();
            assert_eq!(resp.text().await.unwrap(), "<p>hello</p>", "the client gets the primary's page");
        }
        shadow_report_with(&admin, 4).await
    });
    assert_eq!(
        fleet.scheduler.stats().kind(RequestKind::WebAction),
        4,
        "the copies went out as GETs to the web action"
    );
    let a = action(&report, "guest/page");
    assert_eq!(a["real_differences"][0]["path"], "/xxh3", "HTML compared by length and hash: {a}");
}

//! End to end through the real proxy (pingora, on loopback) to simulated controllers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_rules::{parse_rules, Invocation, Pool, RulesFormat};
use switchyard_tests::*;
use whisk_sim::{ActionProfile, RequestKind, ResultSpec};

const QUARTER: &str = "version = \"quarter\"\nscheduler_share = 25\n";

#[test]
fn share_is_sticky_per_action_and_matches_the_rules() {
    let fleet = LocalFleet::start(FleetSpec::new(QUARTER)).expect("fleet");
    let rules = parse_rules(QUARTER.as_bytes(), RulesFormat::Toml, "quarter").unwrap();
    let base = fleet.proxy_url();
    let seen: HashMap<String, Vec<String>> = block_on(async {
        let c = client();
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        for round in 0..3 {
            let mut batch = Vec::new();
            for i in 0..300 {
                let action = format!("act-{i}");
                let req = invoke(&c, &base, &action, json!({"round": round}));
                batch.push(async move { (action, req.send().await.expect("response")) });
            }
            for (action, resp) in futures_join(batch).await {
                assert_eq!(resp.status(), 200, "{action}");
                seen.entry(action).or_default().push(pool_of(&resp));
            }
        }
        seen
    });
    let mut to_scheduler = 0;
    for (action, pools) in &seen {
        assert!(pools.iter().all(|p| p == &pools[0]), "{action} was split: {pools:?}");
        let expected = rules.decide(&Invocation { namespace: "guest", action, ..Invocation::default() }).pool;
        assert_eq!(pools[0], expected.as_str(), "{action} disagrees with the documented decision");
        to_scheduler += usize::from(expected == Pool::Scheduler);
    }
    let share = to_scheduler as f64 / 300.0;
    // 300 keys at 25 %: three standard deviations are 7.5 points.
    assert!((share - 0.25).abs() < 0.075, "realised share {share}");
    assert_eq!(fleet.scheduler.stats().kind(RequestKind::Invoke), 3 * to_scheduler as u64);
    assert_eq!(fleet.legacy.stats().kind(RequestKind::Invoke), 3 * (300 - to_scheduler) as u64);
}

/// Awaits a batch of futures concurrently.
async fn futures_join<F: std::future::Future + Send + 'static>(batch: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = batch.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[test]
fn overrides_pin_actions_and_the_kill_switch_beats_them() {
    let rules = r#"
        version = "pins"
        scheduler_share = 50
        [[overrides]]
        namespace = "guest"
        action = "old-*"
        share = 0
        [[overrides]]
        namespace = "guest"
        package = "img"
        share = 100
    "#;
    let fleet = LocalFleet::start(FleetSpec::new(rules)).expect("fleet");
    let base = fleet.proxy_url();
    block_on(async {
        let c = client();
        for i in 0..20 {
            let old = invoke(&c, &base, &format!("old-{i}"), json!({})).send().await.unwrap();
            assert_eq!(pool_of(&old), "legacy");
            let img = invoke(&c, &base, &format!("img/resize-{i}"), json!({})).send().await.unwrap();
            assert_eq!(pool_of(&img), "scheduler");
            assert_eq!(img.headers()["x-switchyard-rules-version"], "pins");
        }
    });
    drop(fleet);

    let killed = rules.replace("version = \"pins\"", "version = \"pins-killed\"\nkill_switch = true");
    let fleet = LocalFleet::start(FleetSpec::new(&killed)).expect("fleet");
    let base = fleet.proxy_url();
    block_on(async {
        let c = client();
        for i in 0..20 {
            let img = invoke(&c, &base, &format!("img/resize-{i}"), json!({})).send().await.unwrap();
            assert_eq!(pool_of(&img), "legacy", "the kill switch sends everything to legacy");
        }
    });
    assert_eq!(fleet.scheduler.stats().kind(RequestKind::Invoke), 0);
}

#[test]
fn non_invocation_traffic_goes_to_the_default_pool() {
    for (default_pool, rules) in [
        ("legacy", "version = \"d1\"\nscheduler_share = 100\n"),
        ("scheduler", "version = \"d2\"\nscheduler_share = 0\ndefault_pool = \"scheduler\"\n"),
    ] {
        let fleet = LocalFleet::start(FleetSpec::new(rules)).expect("fleet");
        let base = fleet.proxy_url();
        block_on(async {
            let c = client();
            let put = with_guest(c.put(format!("{base}/api/v1/namespaces/guest/actions/stored")))
                .json(&json!({"exec": {"kind": "nodejs:20", "code": "x"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(put.status(), 200);
            assert_eq!(pool_of(&put), default_pool);
            let get = with_guest(c.get(format!("{base}/api/v1/namespaces/guest/actions/stored"))).send().await.unwrap();
            assert_eq!((get.status().as_u16(), pool_of(&get)), (200, default_pool.to_string()));
            let list = with_guest(c.get(format!("{base}/api/v1/namespaces/guest/activations"))).send().await.unwrap();
            assert_eq!((list.status().as_u16(), pool_of(&list)), (200, default_pool.to_string()));
            let ping = c.get(format!("{base}/ping")).send().await.unwrap();
            assert_eq!(pool_of(&ping), default_pool);
            assert_eq!(ping.text().await.unwrap(), "pong");
        });
        let (served, other) = if default_pool == "legacy" {
            (&fleet.legacy, &fleet.scheduler)
        } else {
            (&fleet.scheduler, &fleet.legacy)
        };
        assert_eq!(served.stats().kind(RequestKind::Entity), 2);
        assert_eq!(served.stats().kind(RequestKind::Activations), 1);
        assert_eq!(other.stats().kind(RequestKind::Entity) + other.stats().kind(RequestKind::Activations), 0);
    }
}

#[test]
fn a_5_mb_body_streams_through_both_ways() {
    let mut spec = FleetSpec::new("version = \"big\"\n");
    spec.legacy
        .actions
        .insert("guest/echo".into(), ActionProfile { result: ResultSpec::Echo, ..ActionProfile::default() });
    let fleet = LocalFleet::start(spec).expect("fleet");
    let blob: String = (0..5 * 1024 * 1024).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let body: Value = block_on(async {
        let resp = invoke(&client(), &fleet.proxy_url(), "echo", json!({"blob": blob})).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    });
    assert_eq!(body["blob"].as_str().map(str::len), Some(5 * 1024 * 1024));
    assert!(body["blob"] == blob.as_str());
}

#[test]
fn scheduler_down_means_no_client_errors_and_counted_fallbacks() {
    let mut spec = FleetSpec::new("version = \"all-in\"\nscheduler_share = 100\n");
    // Slow health checks, so the first requests meet the dead controller through a failed connect.
    spec.tweak = Some(Box::new(|c| c.health.interval_ms = 60_000));
    let fleet = LocalFleet::start(spec).expect("fleet");
    fleet.scheduler.stop();
    let base = fleet.proxy_url();
    let metrics = block_on(async {
        let c = client();
        for i in 0..50 {
            let resp = invoke(&c, &base, &format!("a{i}"), json!({})).send().await.unwrap();
            assert_eq!(resp.status(), 200, "request {i} failed");
            assert_eq!(pool_of(&resp), "legacy");
        }
        metrics_text(&fleet.admin_url()).await
    });
    let connect_failed =
        metric(&metrics, "switchyard_fallbacks_total", &[("from", "scheduler"), ("reason", "connect_failed")]);
    let no_member =
        metric(&metrics, "switchyard_fallbacks_total", &[("from", "scheduler"), ("reason", "no_healthy_member")]);
    assert!(connect_failed >= 1.0, "{metrics}");
    assert_eq!(connect_failed + no_member, 50.0, "every request fell back once: {metrics}");
    assert_eq!(fleet.legacy.stats().kind(RequestKind::Invoke), 50);
}

#[test]
fn both_pools_down_answers_a_fast_502_in_openwhisk_shape() {
    let mut spec = FleetSpec::new("version = \"dark\"\nscheduler_share = 50\n");
    spec.tweak = Some(Box::new(|c| {
        c.pools.legacy.members = vec![closed_port().to_string()];
        c.pools.scheduler.members = vec![closed_port().to_string()];
    }));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let base = fleet.proxy_url();
    block_on(async {
        let c = client();
        for i in 0..5 {
            let started = Instant::now();
            let resp = invoke(&c, &base, &format!("a{i}"), json!({}))
                .header("x-request-id", format!("dark-{i}"))
                .send()
                .await
                .unwrap();
            assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
            assert_eq!(resp.status(), 502);
            assert_eq!(resp.headers()["content-type"], "application/json");
            let body: Value = resp.json().await.unwrap();
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
            assert_eq!(body["code"], format!("dark-{i}"), "the error carries the request id like OpenWhisk's");
        }
        let ready = client().get(format!("{}/readyz", fleet.admin_url())).send().await.unwrap();
        assert_eq!(ready.status(), 503, "not ready without a healthy default pool");
    });
}

#[test]
fn request_ids_are_kept_or_generated() {
    let fleet = LocalFleet::start(FleetSpec::new(QUARTER)).expect("fleet");
    let base = fleet.proxy_url();
    block_on(async {
        let c = client();
        let resp = invoke(&c, &base, "hello", json!({})).header("x-request-id", "my-trace-42").send().await.unwrap();
        assert_eq!(resp.headers()["x-request-id"], "my-trace-42");
        assert!(resp.headers().contains_key("x-openwhisk-activation-id"));
        let resp = invoke(&c, &base, "hello", json!({})).send().await.unwrap();
        let generated = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(generated.len(), 32);
        assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));
        let saw = |id: &str| fleet.legacy.saw_request_id(id) || fleet.scheduler.saw_request_id(id);
        assert!(saw("my-trace-42"), "the caller's id reached the controller");
        assert!(saw(&generated), "the generated id reached the controller");
    });
}

#[test]
fn admin_endpoints_answer() {
    let fleet = LocalFleet::start(FleetSpec::new(QUARTER)).expect("fleet");
    let admin = fleet.admin_url();
    let base = fleet.proxy_url();
    block_on(async {
        let c = client();
        invoke(&c, &base, "hello", json!({})).send().await.unwrap();
        assert_eq!(c.get(format!("{admin}/healthz")).send().await.unwrap().status(), 200);
        let ready: Value = c.get(format!("{admin}/readyz")).send().await.unwrap().json().await.unwrap();
        assert_eq!(ready["ready"], true);
        assert_eq!(ready["pools"]["scheduler"]["healthy"], 1);
        let rules: Value = c.get(format!("{admin}/rules")).send().await.unwrap().json().await.unwrap();
        assert_eq!(rules["version"], "quarter");
        assert_eq!(rules["rules"]["scheduler_share"], "25%");
        let text = metrics_text(&admin).await;
        assert_eq!(
            metric(&text, "switchyard_requests_total", &[("kind", "invoke"), ("status_class", "2xx")]),
            1.0,
            "{text}"
        );
        assert_eq!(metric(&text, "switchyard_scheduler_share_ratio", &[]), 0.25);
        assert_eq!(metric(&text, "switchyard_pool_healthy_members", &[("pool", "legacy")]), 1.0);
        assert!(text.contains("switchyard_request_duration_seconds_bucket"), "latency is a histogram");
    });
}

/// `force`: a listed caller's header picks the path (by namespace pattern or by subject); anyone
/// else's is ignored; no controller ever sees the header; the kill switch still wins; counted as
/// `reason="forced"`.
#[test]
fn a_forced_header_from_a_listed_caller_goes_where_it_says_and_from_anyone_else_is_ignored_and_stripped() {
    use switchyard_tests::scripted::ScriptedController;
    let rules = "version = \"force\"\nscheduler_share = 0\n\
                 force = { header = \"x-switchyard-path\", namespaces = [\"qa-*\"], subjects = [\"tester-uuid\"] }\n";
    let start = |rules: &str| {
        let (legacy, scheduler) = (ScriptedController::echo(), ScriptedController::echo());
        let mut spec = FleetSpec::new(rules);
        let members = (legacy.addr.to_string(), scheduler.addr.to_string());
        spec.tweak = Some(Box::new(move |c| {
            c.pools.legacy.members = vec![members.0];
            c.pools.scheduler.members = vec![members.1];
        }));
        (LocalFleet::start(spec).expect("fleet"), legacy, scheduler)
    };
    let call = |base: &str, ns: &str, user: &str, path: Option<&str>| {
        let c = client();
        let mut req = c
            .post(format!("{base}/api/v1/namespaces/{ns}/actions/hello?blocking=true"))
            .basic_auth(user, Some("the-key"))
            .json(&json!({}));
        if let Some(path) = path {
            req = req.header("X-Switchyard-Path", path);
        }
        block_on(async move { pool_of(&req.send().await.unwrap()) })
    };
    let (fleet, legacy, scheduler) = start(rules);
    let base = fleet.proxy_url();
    assert_eq!(call(&base, "qa-team", "someone", Some("scheduler")), "scheduler", "listed by namespace");
    assert_eq!(call(&base, "prod", "tester-uuid", Some("scheduler")), "scheduler", "listed by subject");
    assert_eq!(call(&base, "qa-team", "someone", Some("legacy")), "legacy");
    assert_eq!(call(&base, "prod", "someone", Some("scheduler")), "legacy", "not listed: ignored");
    assert_eq!(call(&base, "qa-team", "someone", Some("everywhere")), "legacy", "names no path: ignored");
    assert_eq!(call(&base, "qa-team", "someone", None), "legacy");
    let seen: Vec<_> = legacy.seen().into_iter().chain(scheduler.seen()).collect();
    assert_eq!(seen.len(), 6);
    for s in &seen {
        assert_eq!(s.field("x-switchyard-path"), None, "no controller sees the header: {}", s.head);
    }
    let text = block_on(metrics_text(&fleet.admin_url()));
    let forced = |pool| metric(&text, "switchyard_decisions_total", &[("pool", pool), ("reason", "forced")]);
    assert_eq!((forced("scheduler"), forced("legacy")), (2.0, 1.0));
    drop(fleet);

    let (fleet, _legacy, scheduler) =
        start(&rules.replace("version = \"force\"", "version = \"f2\"\nkill_switch = true"));
    assert_eq!(call(&fleet.proxy_url(), "qa-team", "someone", Some("scheduler")), "legacy", "the kill switch wins");
    assert!(scheduler.seen().is_empty());
}

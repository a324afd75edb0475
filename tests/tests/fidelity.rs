//! What the scheduler path really answers, as the proxy classifies it: queueing without invokers,
//! capacity drops, throttling and the action's own failures, each apart (one classification for
//! the metrics, the alerts, the comparison and the ramp's gates).

use std::time::Duration;

use serde_json::{json, Value};
use switchyard_tests::*;
use whisk_sim::{ActionProfile, Flavor, Latency, Outage, ResultSpec, SimConfig};

fn invocations(text: &str, pool: &str, class: &str) -> f64 {
    metric(text, "switchyard_invocations_total", &[("pool", pool), ("kind", "invoke"), ("class", class)])
}

fn call(c: &reqwest::Client, base: &str, action: &str, query: &str) -> reqwest::RequestBuilder {
    with_guest(c.post(format!("{base}/api/v1/namespaces/guest/actions/{action}?{query}")))
}

#[test]
fn the_simulator_and_the_proxy_agree_on_the_throttle_drop_text() {
    assert_eq!(switchyard_shadow::THROTTLE_DROP_MESSAGE, whisk_sim::THROTTLE_DROP_MESSAGE);
}

/// A scheduler path with no invokers answers blocking callers 202 (the queue holds the activation),
/// not an error: the proxy must count it as queued, apart from successes, or a dead path looks healthy.
#[test]
fn a_scheduler_path_without_invokers_counts_as_queued_while_clients_get_202s() {
    let mut spec = FleetSpec::new(
        r#"
version = "all-scheduler"
scheduler_share = 100
[[overrides]]
namespace = "guest"
action = "old-*"
share = 0
"#,
    );
    spec.scheduler = SimConfig { queue_retention_ms: 5_000, ..SimConfig::with_flavor(Flavor::Scheduler) };
    let fleet = LocalFleet::start(spec).expect("fleet");
    fleet.scheduler.set_outage(Outage::NoInvokers);
    fleet.legacy.set_outage(Outage::NoInvokers);
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let text = block_on(async {
        let c = client();
        for _ in 0..6 {
            let resp = call(&c, &base, "hello", "blocking=true&timeout=150").send().await.unwrap();
            assert_eq!((resp.status().as_u16(), pool_of(&resp)), (202, "scheduler".to_string()));
        }
        let accepted = call(&c, &base, "hello", "").send().await.unwrap();
        assert_eq!(accepted.status(), 202, "a non-blocking call");
        let refused = call(&c, &base, "old-job", "blocking=true").send().await.unwrap();
        assert_eq!((refused.status().as_u16(), pool_of(&refused)), (503, "legacy".to_string()));
        metrics_text(&admin).await
    });
    assert_eq!(invocations(&text, "scheduler", "queued"), 6.0, "{text}");
    assert_eq!(invocations(&text, "scheduler", "ok"), 1.0, "the non-blocking 202 is not queueing");
    assert_eq!(invocations(&text, "scheduler", "platform_failure"), 0.0);
    assert_eq!(invocations(&text, "legacy", "platform_failure"), 1.0, "legacy without invokers answers 503");
}

/// The scheduler's queue drops a call for the namespace's container limit as a 502 record: a
/// capacity failure of the path, not the action's. The action's own 502 stays an action failure.
#[test]
fn capacity_drops_count_against_the_path_and_action_failures_do_not() {
    let mut spec = FleetSpec::new("version = \"s\"\nscheduler_share = 100\n");
    spec.scheduler = SimConfig {
        concurrent_invocations: 1,
        wait_time_ms: Some([0, 0]),
        ..SimConfig::with_flavor(Flavor::Scheduler)
    };
    spec.scheduler.actions.insert(
        "guest/busy".into(),
        ActionProfile {
            latency: Latency { min_ms: 500.0, max_ms: 500.0, ..Latency::default() },
            ..ActionProfile::default()
        },
    );
    spec.scheduler
        .actions
        .insert("guest/fails".into(), ActionProfile { application_error_rate: 1.0, ..ActionProfile::default() });
    let fleet = LocalFleet::start(spec).expect("fleet");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let text = block_on(async {
        let c = client();
        let fails = call(&c, &base, "fails", "blocking=true").send().await.unwrap();
        assert_eq!(fails.status(), 502);
        let busy = tokio::spawn(call(&c, &base, "busy", "blocking=true").send());
        tokio::time::sleep(Duration::from_millis(150)).await;
        let dropped = call(&c, &base, "other", "blocking=true").send().await.unwrap();
        assert_eq!(dropped.status(), 502, "the client sees what the controller answered");
        let record: Value = dropped.json().await.unwrap();
        assert_eq!(record["response"]["result"]["error"], whisk_sim::THROTTLE_DROP_MESSAGE);
        assert_eq!(busy.await.unwrap().unwrap().status(), 200);
        metrics_text(&admin).await
    });
    assert_eq!(invocations(&text, "scheduler", "action_failure"), 1.0, "{text}");
    assert_eq!(invocations(&text, "scheduler", "capacity_drop"), 1.0);
    assert_eq!(invocations(&text, "scheduler", "ok"), 1.0);
    assert_eq!(invocations(&text, "scheduler", "platform_failure"), 0.0);
}

/// The paths count limits differently; a 429 on one side against a result on the other is
/// throttling, never a mismatch.
#[test]
fn a_throttled_namespace_gives_throttled_outcomes_and_no_false_mismatch() {
    let mut spec = FleetSpec::new(SHADOW_PURE);
    spec.legacy.invocations_per_minute = 4;
    let fleet = LocalFleet::start(spec).expect("fleet");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let (report, text) = block_on(async {
        let c = client();
        let mut throttled = 0;
        for _ in 0..10 {
            let resp = call(&c, &base, "pure-hello", "blocking=true").send().await.unwrap();
            if resp.status() == 429 {
                throttled += 1;
            }
        }
        assert_eq!(throttled, 6, "legacy allows 4 a minute");
        (shadow_report_with(&admin, 10).await, metrics_text(&admin).await)
    });
    let outcomes = &report["actions"][0]["outcomes"];
    assert_eq!(outcomes["throttled"], 6, "{report}");
    assert_eq!(outcomes["match"], 4, "{report}");
    assert!(outcomes.get("mismatch").is_none(), "{report}");
    assert_eq!(metric(&text, "switchyard_shadow_comparisons_total", &[("outcome", "throttled")]), 6.0);
    assert_eq!(invocations(&text, "legacy", "throttled"), 6.0);
}

/// `{"error", "code"}` is the controller's error shape only when `code` is its transaction id; an
/// action's own result of that shape is compared whole.
#[test]
fn a_change_in_an_actions_own_error_code_is_reported() {
    let mut spec = FleetSpec::new(SHADOW_PURE);
    spec.scheduler = SimConfig::with_flavor(Flavor::Legacy);
    let own_error = ResultSpec::Fixed(json!({"error": "bad input", "code": 41}));
    spec.legacy
        .actions
        .insert("guest/pure-check".into(), ActionProfile { result: own_error.clone(), ..ActionProfile::default() });
    spec.scheduler.actions.insert(
        "guest/pure-check".into(),
        ActionProfile { result: own_error, result_patch: Some(json!({"code": 42})), ..ActionProfile::default() },
    );
    let fleet = LocalFleet::start(spec).expect("fleet");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let report = block_on(async {
        let c = client();
        for _ in 0..3 {
            let resp = call(&c, &base, "pure-check", "blocking=true&result=true").send().await.unwrap();
            assert_eq!(resp.status(), 502, "an error result is an application error");
        }
        shadow_report_with(&admin, 3).await
    });
    let action = report["actions"].as_array().unwrap().iter().find(|a| a["action"] == "guest/pure-check").unwrap();
    let paths: Vec<&str> =
        action["real_differences"].as_array().unwrap().iter().filter_map(|d| d["path"].as_str()).collect();
    assert_eq!(paths, vec!["/code"], "{action}");
    assert_eq!(action["outcomes"]["mismatch"], 3);
}

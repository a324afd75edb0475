//! Notifications (`[[notify]]`): what happens to the ramp and the rules reaches webhooks on
//! loopback, in the documented JSON (signed) or as Slack payloads, and a dead or slow receiver
//! costs the requests nothing.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use switchyard_tests::webhook::{Received, Webhook};
use switchyard_tests::*;
use whisk_sim::Fault;

const TOKEN: &str = "open-sesame-0123456789";
const SECRET: &str = "a-webhook-secret-of-some-length";

/// Waits (at most `limit`) until `hook` got a request whose `pick` holds; returns it.
fn wait_for(hook: &Webhook, limit: Duration, pick: impl Fn(&Received) -> bool) -> Received {
    let started = Instant::now();
    loop {
        if let Some(r) = hook.received().into_iter().find(&pick) {
            return r;
        }
        assert!(started.elapsed() < limit, "not received in {limit:?}; got {:?}", hook.received());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn event_is(name: &'static str) -> impl Fn(&Received) -> bool {
    move |r| r.json()["event"] == name
}

#[test]
fn a_rollback_reaches_a_webhook_signed_and_in_the_documented_json() {
    let hook = Webhook::start();
    let rules = format!(
        "version = \"notify-1\"\n[ramp]\nstart = {}\nwindow_s = 2\nsteps = [{{ share = 50, hold_s = 60 }}, {{ share = 100, hold_s = 0 }}]\n\
         [ramp.gates]\nplatform_failure = {{ min_samples = 10 }}\n",
        // In the next second: the ramp starts while the proxy runs.
        now_ms() / 1000 + 1
    );
    let mut spec = FleetSpec::new(&rules);
    spec.scheduler.faults = vec![Fault { after_ms: 2500, for_ms: None, share: 0.5, status: 503 }];
    let url = hook.url();
    spec.tweak = Some(Box::new(move |c| {
        let secret = c.rules.parent().unwrap().join("webhook.secret");
        std::fs::write(&secret, SECRET).unwrap();
        c.notify = serde_json::from_value(json!([{ "url": url, "secret_file": secret }])).unwrap();
    }));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let load = Load::start(&fleet.proxy_url(), "notified", 100, 3, "blocking=true");
    let rolled_back = wait_for(&hook, Duration::from_secs(20), event_is("ramp.rolled_back"));
    drop(load);

    let event = rolled_back.json();
    assert_eq!(event["schema"], "switchyard.event/v1", "{event}");
    assert_eq!(event["rules_version"], "notify-1");
    assert_eq!(event["id"].as_str().unwrap().len(), 32, "{event}");
    assert!(event["time"].as_str().unwrap().ends_with('Z'), "{event}");
    assert!(!event["instance"].as_str().unwrap().is_empty());
    assert!(event["summary"].as_str().unwrap().contains("rolled back"), "{event}");
    assert_eq!(event["detail"]["gate"], "platform_failure", "{event}");
    assert_eq!(event["detail"]["rollback_share"], "0%");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&rolled_back.body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(rolled_back.fields.get("x-switchyard-signature"), Some(&format!("sha256={expected}")));
    let kinds: Vec<String> = hook.received().iter().map(|r| r.json()["event"].as_str().unwrap().to_string()).collect();
    assert!(kinds.contains(&"ramp.started".to_string()), "{kinds:?}");
    let text = block_on(metrics_text(&fleet.admin_url()));
    assert!(metric(&text, "switchyard_notifications_total", &[("result", "delivered")]) >= 2.0);
}

#[test]
fn a_slack_receiver_gets_text_payloads_of_the_events_it_asked_for() {
    let hook = Webhook::start();
    let mut spec = FleetSpec::new("version = \"slack-1\"\nscheduler_share = 10\n");
    let url = hook.url();
    spec.tweak = Some(Box::new(move |c| {
        c.admin.token = Some(TOKEN.into());
        c.notify = serde_json::from_value(
            json!([{ "url": url, "format": "slack", "events": ["kill_switch.on", "kill_switch.off"] }]),
        )
        .unwrap();
    }));
    let fleet = LocalFleet::start(spec).expect("fleet");
    block_on(async {
        let c = client();
        for call in ["kill", "unkill"] {
            let resp = c.post(format!("{}/rules/{call}", fleet.admin_url())).bearer_auth(TOKEN).send().await.unwrap();
            assert_eq!(resp.status(), 200);
        }
        // Not asked for: a rules change.
        let put = c
            .put(format!("{}/rules", fleet.admin_url()))
            .bearer_auth(TOKEN)
            .header("content-type", "application/toml")
            .body("version = \"slack-2\"\nscheduler_share = 20\n");
        assert_eq!(put.send().await.unwrap().status(), 200);
    });
    wait_for(&hook, Duration::from_secs(10), |r| {
        r.json()["text"].as_str().is_some_and(|t| t.contains("kill_switch.off"))
    });
    std::thread::sleep(Duration::from_millis(500));
    let got: Vec<Value> = hook.received().iter().map(Received::json).collect();
    assert_eq!(got.len(), 2, "only the events asked for: {got:?}");
    for (payload, kind) in got.iter().zip(["kill_switch.on", "kill_switch.off"]) {
        let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["text"], "a Slack incoming-webhook payload: {payload}");
        assert!(payload["text"].as_str().unwrap().contains(kind), "{payload}");
    }
}

/// Runs `calm` load for 5 s while 20 kill-switch changes make 20 events; every answer's latency.
fn latencies_under_events(notify: Value) -> (Vec<Duration>, String) {
    let mut spec = FleetSpec::new("version = \"quiet-1\"\nscheduler_share = 50\n");
    spec.tweak = Some(Box::new(move |c| {
        c.admin.token = Some(TOKEN.into());
        c.notify = serde_json::from_value(notify).unwrap();
    }));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let load = Load::start(&fleet.proxy_url(), "calm", 50, 4, "blocking=true");
    block_on(async {
        let c = client();
        for i in 0..20 {
            let call = if i % 2 == 0 { "kill" } else { "unkill" };
            let resp = c.post(format!("{}/rules/{call}", fleet.admin_url())).bearer_auth(TOKEN).send().await.unwrap();
            assert_eq!(resp.status(), 200, "the admin call does not wait for a receiver");
        }
    });
    std::thread::sleep(Duration::from_secs(5));
    let answers = load.stop();
    assert!(answers.len() > 100, "{} answers", answers.len());
    assert!(answers.iter().all(Answer::ok), "every request was served");
    let mut latencies: Vec<Duration> = answers.iter().map(|a| a.latency).collect();
    latencies.sort();
    (latencies, block_on(metrics_text(&fleet.admin_url())))
}

/// A receiver that refuses every connection and one that answers after 3 s: every request is
/// served, the failures are counted, and the latencies are printed beside a run without receivers
/// (side by side in one test; not asserted, the machine is noisy).
#[test]
fn a_dead_or_slow_receiver_costs_the_requests_nothing() {
    let slow = Webhook::start();
    slow.slow(Duration::from_secs(3));
    let dead = format!("http://{}/hook", closed_port());
    let (quiet, _) = latencies_under_events(json!([]));
    let (noisy, text) = latencies_under_events(json!([{ "url": dead }, { "url": slow.url() }]));
    let at = |l: &[Duration], q: usize| l[l.len() * q / 100];
    println!(
        "latency without receivers p50 {:?} p99 {:?}; with a dead and a slow one p50 {:?} p99 {:?}",
        at(&quiet, 50),
        at(&quiet, 99),
        at(&noisy, 50),
        at(&noisy, 99)
    );
    assert!(metric(&text, "switchyard_notifications_total", &[("result", "failed")]) >= 1.0, "the dead one is counted");
    assert!(!slow.received().is_empty(), "the slow one still gets its events, in order");
}

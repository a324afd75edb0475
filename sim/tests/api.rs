//! The simulator answers like an OpenWhisk controller (see the project's OpenWhisk notes).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use whisk_sim::*;

fn start(config: SimConfig) -> SimHandle {
    Simulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).expect("sim starts")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn guest(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let (u, k) = whisk_sim::guest_credentials();
    req.basic_auth(u, Some(k))
}

fn is_activation_id(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

#[test]
fn auth_ping_and_errors() {
    let sim = start(SimConfig::default());
    let base = format!("http://{}", sim.addr());
    rt().block_on(async {
        let c = reqwest::Client::new();
        let ping = c.get(format!("{base}/ping")).send().await.unwrap();
        assert_eq!(ping.text().await.unwrap(), "pong");

        let anon = c.post(format!("{base}/api/v1/namespaces/_/actions/hello")).send().await.unwrap();
        assert_eq!(anon.status(), 401);
        assert_eq!(anon.headers()["www-authenticate"], "Basic realm=\"OpenWhisk secure realm\"");
        let body: Value = anon.json().await.unwrap();
        assert!(body["error"].is_string() && body["code"].is_string());

        let wrong = c
            .post(format!("{base}/api/v1/namespaces/_/actions/hello"))
            .basic_auth("x", Some("y"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let other_ns = guest(c.post(format!("{base}/api/v1/namespaces/someone/actions/hello"))).send().await.unwrap();
        assert_eq!(other_ns.status(), 403);
        let bad_timeout =
            guest(c.post(format!("{base}/api/v1/namespaces/_/actions/hello?blocking=true&timeout=60001")))
                .send()
                .await
                .unwrap();
        assert_eq!(bad_timeout.status(), 400);
        let unknown = guest(c.get(format!("{base}/api/v1/nothing-here"))).send().await.unwrap();
        assert_eq!(unknown.status(), 404);
    });
}

#[test]
fn blocking_invokes_return_activation_records() {
    let mut config = SimConfig::with_flavor(Flavor::Legacy);
    config.actions.insert("guest/cold".into(), ActionProfile { cold_start_ms: 30.0, ..ActionProfile::default() });
    config
        .actions
        .insert("guest/fails".into(), ActionProfile { application_error_rate: 1.0, ..ActionProfile::default() });
    config.actions.insert("guest/list".into(), ActionProfile { result: ResultSpec::Array, ..ActionProfile::default() });
    let sim = start(config);
    let base = format!("http://{}/api/v1/namespaces/_/actions", sim.addr());
    rt().block_on(async {
        let c = reqwest::Client::new();
        let resp = guest(c.post(format!("{base}/cold?blocking=true")))
            .header("x-request-id", "trace-1")
            .json(&json!({"name": "Ada"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-request-id"], "trace-1");
        let header_id = resp.headers()["x-openwhisk-activation-id"].to_str().unwrap().to_string();
        let record: Value = resp.json().await.unwrap();
        assert!(is_activation_id(&record["activationId"]));
        assert_eq!(record["activationId"], header_id);
        assert_eq!(record["namespace"], "guest");
        assert_eq!(record["response"]["status"], "success");
        assert_eq!(record["response"]["success"], true);
        assert_eq!(record["response"]["result"], json!({"payload": "Hello, Ada!"}));
        assert_eq!(record["logs"], json!([]));
        assert_eq!(
            record["end"].as_u64().unwrap() - record["start"].as_u64().unwrap(),
            record["duration"].as_u64().unwrap()
        );
        let keys: Vec<&str> =
            record["annotations"].as_array().unwrap().iter().map(|a| a["key"].as_str().unwrap()).collect();
        assert!(keys.contains(&"waitTime") && keys.contains(&"initTime"), "first call is cold: {keys:?}");
        let wait = record["annotations"].as_array().unwrap().iter().find(|a| a["key"] == "waitTime").unwrap()["value"]
            .as_u64()
            .unwrap();
        assert!((20..=80).contains(&wait), "legacy waitTime {wait}");

        let warm: Value =
            guest(c.post(format!("{base}/cold?blocking=true"))).send().await.unwrap().json().await.unwrap();
        assert!(!warm["annotations"].as_array().unwrap().iter().any(|a| a["key"] == "initTime"), "second call is warm");

        let result_only: Value = guest(c.post(format!("{base}/cold?blocking=true&result=true")))
            .json(&json!({"name": "Bo"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(result_only, json!({"payload": "Hello, Bo!"}));

        let failed = guest(c.post(format!("{base}/fails?blocking=true"))).send().await.unwrap();
        assert_eq!(failed.status(), 502);
        let record: Value = failed.json().await.unwrap();
        assert_eq!(record["response"]["status"], "application error");
        assert_eq!(record["response"]["success"], false);

        let array: Value = guest(c.post(format!("{base}/list?blocking=true")))
            .json(&json!({"a": 1, "b": 2}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(array, json!(["a", "b"]), "array results come back bare");
    });
}

#[test]
fn non_blocking_and_timed_out_calls_answer_202_and_store_the_record() {
    let mut config = SimConfig::default();
    config.actions.insert(
        "guest/slow".into(),
        ActionProfile {
            latency: Latency { min_ms: 300.0, max_ms: 300.0, ..Latency::default() },
            ..ActionProfile::default()
        },
    );
    config.wait_time_ms = Some([0, 0]);
    let sim = start(config);
    let base = format!("http://{}/api/v1/namespaces", sim.addr());
    rt().block_on(async {
        let c = reqwest::Client::new();
        let started = Instant::now();
        let resp = guest(c.post(format!("{base}/_/actions/slow"))).send().await.unwrap();
        assert_eq!(resp.status(), 202);
        assert!(started.elapsed() < Duration::from_millis(250), "non-blocking answers at once");
        let id = resp.json::<Value>().await.unwrap()["activationId"].clone();
        assert!(is_activation_id(&id));
        let early = guest(c.get(format!("{base}/guest/activations/{}", id.as_str().unwrap()))).send().await.unwrap();
        assert_eq!(early.status(), 404, "not stored until the run ends");

        let started = Instant::now();
        let timed_out = guest(c.post(format!("{base}/_/actions/slow?blocking=true&timeout=100"))).send().await.unwrap();
        assert_eq!(timed_out.status(), 202, "a blocking call that waits too long is a 202, never 408");
        assert!(started.elapsed() >= Duration::from_millis(100));
        let body: Value = timed_out.json().await.unwrap();
        assert!(is_activation_id(&body["activationId"]));

        tokio::time::sleep(Duration::from_millis(400)).await;
        let stored = guest(c.get(format!("{base}/guest/activations/{}", id.as_str().unwrap()))).send().await.unwrap();
        assert_eq!(stored.status(), 200);
        let result =
            guest(c.get(format!("{base}/guest/activations/{}/result", id.as_str().unwrap()))).send().await.unwrap();
        assert_eq!(result.json::<Value>().await.unwrap()["status"], "success");
    });
}

#[test]
fn throttling_answers_429_with_openwhisks_message() {
    let config = SimConfig { invocations_per_minute: 3, wait_time_ms: Some([0, 0]), ..SimConfig::default() };
    let sim = start(config);
    let url = format!("http://{}/api/v1/namespaces/_/actions/hello?blocking=true", sim.addr());
    rt().block_on(async {
        let c = reqwest::Client::new();
        for _ in 0..3 {
            assert_eq!(guest(c.post(&url)).send().await.unwrap().status(), 200);
        }
        let throttled = guest(c.post(&url)).send().await.unwrap();
        assert_eq!(throttled.status(), 429);
        let body: Value = throttled.json().await.unwrap();
        assert_eq!(body["error"], "Too many requests in the last minute (count: 3, allowed: 3).");
    });
}

#[test]
fn triggers_web_actions_and_entities() {
    let mut config = SimConfig::default();
    config.actions.insert(
        "guest/site/page".into(),
        ActionProfile {
            result: ResultSpec::Fixed(json!({"html": "<p>hi</p>", "text": "hi"})),
            ..ActionProfile::default()
        },
    );
    let sim = start(config);
    let base = format!("http://{}/api/v1", sim.addr());
    rt().block_on(async {
        let c = reqwest::Client::new();
        let no_rule = guest(c.post(format!("{base}/namespaces/_/triggers/tick"))).send().await.unwrap();
        assert_eq!(no_rule.status(), 204);
        let put = guest(c.put(format!("{base}/namespaces/guest/rules/on-tick")))
            .json(&json!({"trigger": "/guest/tick", "action": "/guest/hello"}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
        let again =
            guest(c.put(format!("{base}/namespaces/guest/rules/on-tick"))).json(&json!({})).send().await.unwrap();
        assert_eq!(again.status(), 409, "no overwrite without ?overwrite=true");
        let fired = guest(c.post(format!("{base}/namespaces/_/triggers/tick"))).send().await.unwrap();
        assert_eq!(fired.status(), 202);
        assert!(fired.headers().contains_key("x-openwhisk-activation-id"));

        let page = c.get(format!("{base}/web/guest/site/page.html")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["content-type"], "text/html");
        assert_eq!(page.text().await.unwrap(), "<p>hi</p>");
        let json_page: Value =
            c.get(format!("{base}/web/guest/site/page.json")).send().await.unwrap().json().await.unwrap();
        assert_eq!(json_page["text"], "hi");

        let got = guest(c.get(format!("{base}/namespaces/guest/rules/on-tick"))).send().await.unwrap();
        assert_eq!(got.json::<Value>().await.unwrap()["trigger"], "/guest/tick");
        assert_eq!(
            guest(c.delete(format!("{base}/namespaces/guest/rules/on-tick"))).send().await.unwrap().status(),
            200
        );
        assert_eq!(guest(c.get(format!("{base}/namespaces/guest/rules/on-tick"))).send().await.unwrap().status(), 404);
    });
    let stats = sim.stats();
    assert_eq!(stats.kind(RequestKind::TriggerFire), 2);
    assert_eq!(stats.kind(RequestKind::WebAction), 2);
    assert_eq!(stats.kind(RequestKind::Entity), 5);
    assert_eq!(stats.action("guest/site/page"), 2);
}

#[test]
fn flavors_differ_in_wait_time_and_annotations() {
    let legacy = start(SimConfig::with_flavor(Flavor::Legacy));
    let scheduler = start(SimConfig::with_flavor(Flavor::Scheduler));
    rt().block_on(async {
        let c = reqwest::Client::new();
        let call = |sim: &SimHandle| {
            guest(c.post(format!("http://{}/api/v1/namespaces/_/actions/hello?blocking=true", sim.addr()))).send()
        };
        let l: Value = call(&legacy).await.unwrap().json().await.unwrap();
        let s: Value = call(&scheduler).await.unwrap().json().await.unwrap();
        let keys = |r: &Value| {
            r["annotations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["key"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert!(keys(&l).contains(&"timeout".to_string()));
        assert!(!keys(&s).contains(&"timeout".to_string()));
        let wait = |r: &Value| {
            r["annotations"].as_array().unwrap().iter().find(|a| a["key"] == "waitTime").unwrap()["value"]
                .as_u64()
                .unwrap()
        };
        assert!(wait(&l) >= 20 && wait(&s) <= 8);
        assert_eq!(l["response"]["result"], s["response"]["result"]);
    });
}

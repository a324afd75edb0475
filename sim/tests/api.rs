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

fn keys(record: &Value) -> Vec<String> {
    record["annotations"].as_array().unwrap().iter().map(|a| a["key"].as_str().unwrap().to_string()).collect()
}

fn annotation<'a>(record: &'a Value, key: &str) -> &'a Value {
    &record["annotations"].as_array().unwrap().iter().find(|a| a["key"] == key).unwrap()["value"]
}

fn invoke_url(sim: &SimHandle, action: &str, query: &str) -> String {
    format!("http://{}/api/v1/namespaces/_/actions/{action}?{query}", sim.addr())
}

fn slow(ms: f64) -> ActionProfile {
    ActionProfile { latency: Latency { min_ms: ms, max_ms: ms, ..Latency::default() }, ..ActionProfile::default() }
}

/// `containerpool/ContainerProxy.scala` and `containerpool/v2/FunctionPullingContainerProxy.scala`
/// attach the same annotations; `ActivationResponse.toExtendedJson` has no `statusCode`.
#[test]
fn both_paths_answer_the_same_record_shape() {
    let legacy = start(SimConfig::with_flavor(Flavor::Legacy));
    let scheduler = start(SimConfig::with_flavor(Flavor::Scheduler));
    rt().block_on(async {
        let c = reqwest::Client::new();
        let l: Value =
            guest(c.post(invoke_url(&legacy, "hello", "blocking=true"))).send().await.unwrap().json().await.unwrap();
        let s: Value =
            guest(c.post(invoke_url(&scheduler, "hello", "blocking=true"))).send().await.unwrap().json().await.unwrap();
        assert_eq!(keys(&l), keys(&s));
        assert!(keys(&s).contains(&"timeout".to_string()), "the scheduler path's invoker attaches `timeout` too");
        for r in [&l, &s] {
            assert!(r["response"].get("statusCode").is_none(), "REST records have no statusCode: {r}");
            assert!(r["response"]["size"].is_u64());
        }
        assert_eq!(l["response"], s["response"]);
    });
}

/// System-written records: `invoker/InvokerReactive.scala` (kind "unknown") and
/// `scheduler/queue/MemoryQueue.scala` (the real kind, with limits); `duration` 0, no `waitTime`, no `size`.
#[test]
fn system_error_records_carry_their_writers_kind() {
    let broken = ActionProfile { whisk_error_rate: 1.0, kind: "python:3".into(), ..ActionProfile::default() };
    let config = |flavor| {
        let mut c = SimConfig::with_flavor(flavor);
        c.actions.insert("guest/broken".into(), broken.clone());
        c
    };
    let legacy = start(config(Flavor::Legacy));
    let scheduler = start(config(Flavor::Scheduler));
    rt().block_on(async {
        let c = reqwest::Client::new();
        for (sim, kind) in [(&legacy, "unknown"), (&scheduler, "python:3")] {
            let resp = guest(c.post(invoke_url(sim, "broken", "blocking=true"))).send().await.unwrap();
            assert_eq!(resp.status(), 500);
            let r: Value = resp.json().await.unwrap();
            assert_eq!(r["response"]["status"], "whisk internal error");
            assert_eq!(*annotation(&r, "kind"), json!(kind));
            assert_eq!(r["duration"], 0);
            assert!(r["response"].get("size").is_none());
            for absent in ["waitTime", "timeout", "initTime"] {
                assert!(!keys(&r).contains(&absent.to_string()), "{absent} in {r}");
            }
        }
    });
}

/// A scheduler-path controller whose namespace has one container, and a `busy` action that holds
/// it for `busy_ms`.
fn one_container(queue_retention_size: usize, busy_ms: f64) -> SimHandle {
    let mut config = SimConfig {
        concurrent_invocations: 1,
        queue_retention_size,
        wait_time_ms: Some([0, 0]),
        ..SimConfig::with_flavor(Flavor::Scheduler)
    };
    config.actions.insert("guest/busy".into(), slow(busy_ms));
    start(config)
}

/// `MemoryQueue.scala`: a call for an action without a container while the namespace's containers
/// are all busy is dropped with a 502 record; calls for an action with a busy container wait.
#[test]
fn the_scheduler_queues_calls_and_drops_them_at_the_namespace_limit() {
    let sim = one_container(10_000, 400.0);
    rt().block_on(async {
        let c = reqwest::Client::new();
        let first = tokio::spawn(guest(c.post(invoke_url(&sim, "busy", "blocking=true"))).send());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let queued = tokio::spawn(guest(c.post(invoke_url(&sim, "busy", "blocking=true"))).send());
        let dropped = guest(c.post(invoke_url(&sim, "other", "blocking=true"))).send().await.unwrap();
        assert_eq!(dropped.status(), 502);
        let r: Value = dropped.json().await.unwrap();
        assert_eq!(r["response"]["status"], "action developer error");
        assert_eq!(r["response"]["result"], json!({"error": THROTTLE_DROP_MESSAGE}));
        assert_eq!(*annotation(&r, "kind"), json!("nodejs:20"));
        assert!(!keys(&r).contains(&"waitTime".to_string()));

        assert_eq!(first.await.unwrap().unwrap().status(), 200);
        let waited: Value = queued.await.unwrap().unwrap().json().await.unwrap();
        assert_eq!(waited["response"]["status"], "success");
        let wait = annotation(&waited, "waitTime").as_u64().unwrap();
        assert!(wait >= 250, "the queued call waited for the container: waitTime {wait}");
    });
}

/// `MemoryQueue.scala` `max-retention-size` and `FPCEntitlement.scala`: a full queue throttles the action.
#[test]
fn a_full_scheduler_queue_answers_429_too_many_requests() {
    let sim = one_container(1, 300.0);
    rt().block_on(async {
        let c = reqwest::Client::new();
        let running = tokio::spawn(guest(c.post(invoke_url(&sim, "busy", "blocking=true"))).send());
        tokio::time::sleep(Duration::from_millis(80)).await;
        let queued = tokio::spawn(guest(c.post(invoke_url(&sim, "busy", "blocking=true"))).send());
        tokio::time::sleep(Duration::from_millis(80)).await;
        let throttled = guest(c.post(invoke_url(&sim, "busy", "blocking=true"))).send().await.unwrap();
        assert_eq!(throttled.status(), 429);
        assert_eq!(throttled.json::<Value>().await.unwrap()["error"], "Too many requests");
        assert_eq!(running.await.unwrap().unwrap().status(), 200);
        assert_eq!(queued.await.unwrap().unwrap().status(), 200);
    });
}

/// `limits.instances` is enforced on the scheduler path only (`FPCEntitlement.scala`).
#[test]
fn per_action_instances_hold_on_the_scheduler_path_only() {
    let config = |flavor| {
        let mut c = SimConfig { wait_time_ms: Some([0, 0]), ..SimConfig::with_flavor(flavor) };
        c.actions.insert("guest/single".into(), ActionProfile { instances: Some(1), ..slow(300.0) });
        c
    };
    let legacy = start(config(Flavor::Legacy));
    let scheduler = start(config(Flavor::Scheduler));
    rt().block_on(async {
        let c = reqwest::Client::new();
        for (sim, serialised) in [(&legacy, false), (&scheduler, true)] {
            let started = Instant::now();
            let a = guest(c.post(invoke_url(sim, "single", "blocking=true"))).send();
            let b = guest(c.post(invoke_url(sim, "single", "blocking=true"))).send();
            let (a, b) = tokio::join!(a, b);
            assert_eq!((a.unwrap().status().as_u16(), b.unwrap().status().as_u16()), (200, 200));
            let took = started.elapsed();
            assert_eq!(took >= Duration::from_millis(550), serialised, "{sim:?} took {took:?}", sim = sim.addr());
        }
    });
}

/// `Entitlement.scala` `calculateIndividualLimit`: a legacy controller enforces
/// `ceil(limit * 1.2) / cluster_size`; the scheduler path's controller the whole limit.
#[test]
fn legacy_controllers_enforce_their_share_of_the_limits() {
    let config = |flavor| SimConfig {
        invocations_per_minute: 10,
        cluster_size: 3,
        wait_time_ms: Some([0, 0]),
        ..SimConfig::with_flavor(flavor)
    };
    let legacy = start(config(Flavor::Legacy));
    let scheduler = start(config(Flavor::Scheduler));
    rt().block_on(async {
        let c = reqwest::Client::new();
        let admitted = |sim| {
            let c = c.clone();
            let url = invoke_url(sim, "hello", "blocking=true");
            async move {
                let mut ok = 0;
                for _ in 0..12 {
                    let resp = guest(c.post(&url)).send().await.unwrap();
                    if resp.status() == 429 {
                        let body: Value = resp.json().await.unwrap();
                        assert!(body["error"].as_str().unwrap().starts_with("Too many requests in the last minute"));
                    } else {
                        ok += 1;
                    }
                }
                ok
            }
        };
        assert_eq!(admitted(&legacy).await, 4, "ceil(10 * 1.2) / 3");
        assert_eq!(admitted(&scheduler).await, 10);
    });
    let legacy = start(SimConfig {
        concurrent_invocations: 4,
        cluster_size: 2,
        wait_time_ms: Some([0, 0]),
        default_action: slow(300.0),
        ..SimConfig::default()
    });
    rt().block_on(async {
        let c = reqwest::Client::new();
        let calls: Vec<_> =
            (0..4).map(|_| tokio::spawn(guest(c.post(invoke_url(&legacy, "hello", "blocking=true"))).send())).collect();
        let mut statuses = Vec::new();
        let mut messages = Vec::new();
        for call in calls {
            let resp = call.await.unwrap().unwrap();
            statuses.push(resp.status().as_u16());
            if resp.status() == 429 {
                messages.push(resp.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_string());
            }
        }
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2, "ceil(4 * 1.2) / 2 = 2 in flight: {statuses:?}");
        assert!(
            messages.iter().all(|m| m == "Too many concurrent requests in flight (count: 2, allowed: 2)."),
            "{messages:?}"
        );
    });
}

/// No invokers: the legacy balancer refuses with 503; the scheduler queues, the blocking caller
/// gets 202, and the activation fails with a 500 record after `max-retention-ms` (`MemoryQueue.scala`).
#[test]
fn without_invokers_legacy_refuses_and_the_scheduler_queues() {
    let legacy = start(SimConfig::with_flavor(Flavor::Legacy));
    let scheduler = start(SimConfig { queue_retention_ms: 600, ..SimConfig::with_flavor(Flavor::Scheduler) });
    legacy.set_outage(Outage::NoInvokers);
    scheduler.set_outage(Outage::NoInvokers);
    rt().block_on(async {
        let c = reqwest::Client::new();
        let refused = guest(c.post(invoke_url(&legacy, "hello", "blocking=true"))).send().await.unwrap();
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.json::<Value>().await.unwrap()["error"], UNAVAILABLE_MESSAGE);

        let queued = guest(c.post(invoke_url(&scheduler, "hello", "blocking=true&timeout=200"))).send().await.unwrap();
        assert_eq!(queued.status(), 202, "the blocking wait ran out while the activation sat in the queue");
        let id = queued.json::<Value>().await.unwrap()["activationId"].as_str().unwrap().to_string();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let url = format!("http://{}/api/v1/namespaces/guest/activations/{id}", scheduler.addr());
        let record: Value = guest(c.get(&url)).send().await.unwrap().json().await.unwrap();
        assert_eq!(record["response"]["status"], "whisk internal error");
        assert_eq!(record["response"]["result"]["error"], "Activation processing is not initiated for 600 ms");

        scheduler.set_outage(Outage::Unreachable);
        let down = guest(c.post(invoke_url(&scheduler, "hello", "blocking=true"))).send().await.unwrap();
        assert_eq!(down.status(), 503);
        scheduler.set_outage(Outage::None);
        assert_eq!(guest(c.post(invoke_url(&scheduler, "hello", "blocking=true"))).send().await.unwrap().status(), 200);
    });
}

/// `SequenceActions.scala`: `logs` lists the components' activation ids; the result is the last one's.
#[test]
fn sequences_chain_their_components() {
    let mut config = SimConfig { wait_time_ms: Some([0, 0]), ..SimConfig::default() };
    config.actions.insert("guest/echo".into(), ActionProfile { result: ResultSpec::Echo, ..ActionProfile::default() });
    config.actions.insert(
        "guest/both".into(),
        ActionProfile { sequence: vec!["echo".into(), "guest/hello".into()], ..ActionProfile::default() },
    );
    let sim = start(config);
    rt().block_on(async {
        let c = reqwest::Client::new();
        let r: Value = guest(c.post(invoke_url(&sim, "both", "blocking=true")))
            .json(&json!({"name": "Ada"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["response"]["result"], json!({"payload": "Hello, Ada!"}));
        assert_eq!(*annotation(&r, "kind"), json!("sequence"));
        let logs = r["logs"].as_array().unwrap();
        assert_eq!(logs.len(), 2);
        let url = format!("http://{}/api/v1/namespaces/guest/activations/{}", sim.addr(), logs[0].as_str().unwrap());
        let first: Value = guest(c.get(&url)).send().await.unwrap().json().await.unwrap();
        assert_eq!(first["cause"], r["activationId"]);
        assert_eq!(first["name"], "echo");
    });
}

/// `stop()` is a controller process dying: when it returns, the listener refuses and every open
/// connection is closed, so a caller that goes on at once never reaches a half-stopped server
/// (a connect the backlog still took, then reset after the request was sent).
#[test]
fn stop_returns_once_the_listener_and_every_connection_are_closed() {
    use std::io::{Read, Write};
    let sim = start(SimConfig::default());
    let addr = sim.addr();
    let mut kept = std::net::TcpStream::connect(addr).unwrap();
    kept.write_all(b"GET /ping HTTP/1.1\r\nhost: sim\r\n\r\n").unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = [0u8; 512];
    assert!(kept.read(&mut answer).unwrap() > 0, "the kept connection was served");
    sim.stop();
    let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(refused.is_err(), "a connect right after stop() must be refused");
    let closed = kept.read(&mut answer);
    assert!(matches!(closed, Ok(0)) || closed.is_err(), "the kept connection must be closed: {closed:?}");
    assert_eq!(sim.stats().total, 1, "counters stay readable");
}

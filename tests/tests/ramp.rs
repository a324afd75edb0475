//! The self-driving ramp: steps on a wall-clock schedule, held by gates without enough samples,
//! rolled back by a failing gate (platform failures, queueing) and not by the action's own errors,
//! resumed at the scheduled step after a restart. (Two replicas over Kafka: `proxy/tests/kafka_fleet.rs`.)

use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_tests::*;
use whisk_sim::{ActionProfile, Fault, Outage, SimConfig};

/// A ramp starting at `start_ms` (unix ms) with these steps and a 2 s window.
fn ramp_rules(version: &str, start_ms: u64, steps: &str, gates: &str) -> String {
    format!(
        "version = \"{version}\"\n[ramp]\nstart = {}\nwindow_s = 2\nsteps = [{steps}]\n[ramp.gates]\n{gates}\n",
        start_ms / 1000
    )
}

const FEW_SAMPLES: &str =
    "platform_failure = { min_samples = 10 }\nthrottled = { min_samples = 10 }\nqueued = { min_samples = 10 }";

/// Polls `GET /ramp` until `done` holds (at most `limit`), returning every state seen with its time.
fn watch(admin: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Vec<(Duration, Value)> {
    block_on(async {
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            let status = ramp_status(admin).await;
            let finished = done(&status);
            seen.push((started.elapsed(), status));
            if finished {
                return seen;
            }
            assert!(started.elapsed() < limit, "not reached in {limit:?}; last: {}", seen.last().unwrap().1);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

#[test]
fn steps_advance_on_schedule_under_load() {
    let start = now_ms() + 1000;
    let rules = ramp_rules(
        "ramp-1",
        start,
        "{ share = 10, hold_s = 2 }, { share = 50, hold_s = 2 }, { share = 100, hold_s = 0 }",
        FEW_SAMPLES,
    );
    let fleet = LocalFleet::start(FleetSpec::new(&rules)).expect("fleet");
    let before = block_on(ramp_status(&fleet.admin_url()));
    assert_eq!(before["state"], "not_started", "{before}");
    let load = Load::start(&fleet.proxy_url(), "ramped", 200, 3, "blocking=true");
    let seen = watch(&fleet.admin_url(), Duration::from_secs(20), |s| s["step"]["index"] == 2);
    let answers = load.stop();
    // When each step was first seen, relative to the ramp's start.
    let first = |i: u64| {
        let (at, _) = seen.iter().find(|(_, s)| s["step"]["index"] == i).expect("every step is seen");
        *at
    };
    let (s1, s2) = (first(1), first(2));
    assert!(s2 >= s1 + Duration::from_millis(1900), "step 2 at {s2:?}, step 1 at {s1:?}: the hold is 2 s");
    assert!(answers.iter().all(|a| a.status == Some(200)), "no request failed during the ramp");
    let last = &seen.last().unwrap().1;
    assert_eq!(last["state"], "complete");
    assert_eq!(last["share"], "100%");
    // Monotone: once an action was served by the scheduler it stays there.
    let after = Load::start(&fleet.proxy_url(), "ramped", 200, 2, "blocking=true");
    std::thread::sleep(Duration::from_millis(500));
    assert!(after.stop().iter().all(|a| a.pool == "scheduler"), "at 100 % every action is on the scheduler");
    let text = block_on(metrics_text(&fleet.admin_url()));
    assert_eq!(metric(&text, "switchyard_ramp_step", &[]), 2.0);
    assert_eq!(metric(&text, "switchyard_scheduler_share_ratio", &[]), 1.0);
}

#[test]
fn a_gate_with_too_few_samples_holds_the_step() {
    let rules = ramp_rules(
        "ramp-hold",
        now_ms(),
        "{ share = 20, hold_s = 1 }, { share = 100, hold_s = 0 }",
        "platform_failure = { min_samples = 100000 }",
    );
    let fleet = LocalFleet::start(FleetSpec::new(&rules)).expect("fleet");
    let load = Load::start(&fleet.proxy_url(), "held", 50, 2, "blocking=true");
    std::thread::sleep(Duration::from_millis(3000));
    let status = block_on(ramp_status(&fleet.admin_url()));
    drop(load);
    assert_eq!(status["step"]["index"], 0, "held past its 1 s hold: {status}");
    assert_eq!(status["state"], "advancing");
    let gate = status["gates"].as_array().unwrap().iter().find(|g| g["gate"] == "platform_failure").unwrap();
    assert_eq!(gate["verdict"], "hold", "{gate}");
    assert!(gate["samples"].as_u64().unwrap() < 100_000);
    assert!(status["rollback"].is_null());
}

/// Platform failures on the scheduler path roll the ramp back within the window; the action's own
/// failures (502) do not.
#[test]
fn platform_failures_roll_back_and_action_failures_do_not() {
    let rules =
        ramp_rules("ramp-503", now_ms(), "{ share = 50, hold_s = 60 }, { share = 100, hold_s = 0 }", FEW_SAMPLES);
    let mut spec = FleetSpec::new(&rules);
    spec.scheduler.faults = vec![Fault { after_ms: 1500, for_ms: None, share: 0.3, status: 503 }];
    let fleet = LocalFleet::start(spec).expect("fleet");
    let load = Load::start(&fleet.proxy_url(), "faulty", 100, 3, "blocking=true");
    let seen = watch(&fleet.admin_url(), Duration::from_secs(15), |s| s["state"] == "rolled_back");
    let (at, status) = seen.last().unwrap();
    let answers = load.stop();
    // The fault began 1.5 s after the simulator started; the window is 2 s.
    assert!(*at < Duration::from_millis(1500 + 2000 + 1500), "rolled back {at:?} after the load began");
    assert_eq!(status["rollback"]["gate"], "platform_failure", "{status}");
    assert_eq!(status["share"], "0%");
    assert!(status["rollback"]["reason"].as_str().unwrap().contains("threshold"), "{status}");
    assert!(answers.iter().any(|a| a.pool == "scheduler" && a.status == Some(503)), "the fault did happen");
    let after = Load::start(&fleet.proxy_url(), "faulty", 100, 2, "blocking=true");
    std::thread::sleep(Duration::from_millis(400));
    assert!(after.stop().iter().all(|a| a.pool == "legacy"), "rolled back: everything on legacy");
    let text = block_on(metrics_text(&fleet.admin_url()));
    let rules_status: Value = block_on(async {
        client().get(format!("{}/rules/status", fleet.admin_url())).send().await.unwrap().json().await.unwrap()
    });
    assert_eq!(rules_status["ramp"]["rollback"]["gate"], "platform_failure", "/rules/status has the rollback too");
    assert_eq!(metric(&text, "switchyard_ramp_rollbacks_total", &[("gate", "platform_failure")]), 1.0);
    assert_eq!(metric(&text, "switchyard_ramp_rolled_back", &[]), 1.0);

    // The same ramp over an action that fails a third of the time by itself: it completes.
    let rules =
        ramp_rules("ramp-502", now_ms(), "{ share = 50, hold_s = 1 }, { share = 100, hold_s = 0 }", FEW_SAMPLES);
    let mut spec = FleetSpec::new(&rules);
    let flaky = ActionProfile { application_error_rate: 0.3, ..ActionProfile::default() };
    spec.scheduler.default_action = flaky.clone();
    spec.legacy.default_action = flaky;
    let fleet = LocalFleet::start(spec).expect("fleet");
    let load = Load::start(&fleet.proxy_url(), "flaky", 100, 3, "blocking=true");
    let seen =
        watch(&fleet.admin_url(), Duration::from_secs(15), |s| s["state"] == "complete" || s["state"] == "rolled_back");
    let answers = load.stop();
    assert_eq!(seen.last().unwrap().1["state"], "complete", "{}", seen.last().unwrap().1);
    assert!(answers.iter().any(|a| a.status == Some(502)), "the action did fail");
}

/// A scheduler path without invokers answers 202s, not errors: the queued gate stops the ramp.
#[test]
fn a_scheduler_without_invokers_is_rolled_back_by_the_queued_gate() {
    let rules = ramp_rules("ramp-queued", now_ms(), "{ share = 100, hold_s = 60 }", FEW_SAMPLES);
    let mut spec = FleetSpec::new(&rules);
    spec.scheduler = SimConfig { queue_retention_ms: 60_000, ..spec.scheduler };
    let fleet = LocalFleet::start(spec).expect("fleet");
    fleet.scheduler.set_outage(Outage::NoInvokers);
    let load = Load::start(&fleet.proxy_url(), "stuck", 20, 4, "blocking=true&timeout=100");
    let seen = watch(&fleet.admin_url(), Duration::from_secs(15), |s| s["state"] == "rolled_back");
    let answers = load.stop();
    assert_eq!(seen.last().unwrap().1["rollback"]["gate"], "queued", "{}", seen.last().unwrap().1);
    assert!(answers.iter().any(|a| a.pool == "scheduler" && a.status == Some(202)), "clients got 202s");
}

/// The position after a start is the schedule's: a restart mid-ramp resumes at the right step.
#[test]
fn a_restart_mid_ramp_resumes_at_the_scheduled_step() {
    let start = now_ms() - 2500;
    let rules = ramp_rules(
        "ramp-restart",
        start,
        "{ share = 10, hold_s = 1 }, { share = 20, hold_s = 1 }, { share = 30, hold_s = 2 }, { share = 40, hold_s = 0 }",
        FEW_SAMPLES,
    );
    let fleet = LocalFleet::start(FleetSpec::new(&rules)).expect("fleet");
    let status = block_on(ramp_status(&fleet.admin_url()));
    assert_eq!(status["step"]["index"], 2, "2.5 s into 1 s + 1 s holds: {status}");
    assert_eq!(status["share"], "30%");
    drop(fleet);
    std::thread::sleep(Duration::from_millis(2100));
    let fleet = LocalFleet::start(FleetSpec::new(&rules)).expect("fleet");
    let status = block_on(ramp_status(&fleet.admin_url()));
    assert_eq!(status["step"]["index"], 3, "restarted 4.6 s in: {status}");
    assert_eq!(status["state"], "complete");
}

/// A rollback is latched until an operator resumes it (admin call with the token, or a new version).
#[test]
fn resuming_is_an_operator_action() {
    let rules = ramp_rules("ramp-resume", now_ms(), "{ share = 100, hold_s = 60 }", FEW_SAMPLES);
    let mut spec = FleetSpec::new(&rules);
    spec.scheduler.faults = vec![Fault { after_ms: 0, for_ms: Some(3000), share: 1.0, status: 500 }];
    spec.tweak = Some(Box::new(|c| c.admin.token = Some("open-sesame-0123456789".into())));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let load = Load::start(&fleet.proxy_url(), "resume", 20, 2, "blocking=true");
    watch(&fleet.admin_url(), Duration::from_secs(15), |s| s["state"] == "rolled_back");
    drop(load);
    block_on(async {
        let c = client();
        let url = format!("{}/ramp/resume", fleet.admin_url());
        assert_eq!(c.post(&url).send().await.unwrap().status(), 401, "the token is needed");
        let resumed = c.post(&url).bearer_auth("open-sesame-0123456789").send().await.unwrap();
        assert_eq!(resumed.status(), 200);
        let status = ramp_status(&fleet.admin_url()).await;
        assert_eq!(status["state"], "complete", "back at the scheduled step: {status}");
    });
}

const TOKEN: &str = "open-sesame-0123456789";

/// `POST {admin}/ramp/{action}` with the token; the status and the JSON answer.
fn ramp_call(admin: &str, action: &str, body: Option<Value>) -> (u16, Value) {
    block_on(async {
        let mut req = client().post(format!("{admin}/ramp/{action}")).bearer_auth(TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    })
}

/// A step with `approve = true` holds the ramp under load, at the share of the step before, until
/// a person approves it; a hold with a reason pauses it and is shown until released.
#[test]
fn an_approval_step_waits_for_a_person_and_a_hold_pauses_the_ramp() {
    let rules = ramp_rules(
        "ramp-approve",
        now_ms(),
        "{ share = 10, hold_s = 1 }, { share = 50, hold_s = 1, approve = true }, { share = 100, hold_s = 0 }",
        FEW_SAMPLES,
    );
    let mut spec = FleetSpec::new(&rules);
    spec.tweak = Some(Box::new(|c| c.admin.token = Some(TOKEN.into())));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let admin = fleet.admin_url();
    let load = Load::start(&fleet.proxy_url(), "approve", 100, 3, "blocking=true");
    let seen = watch(&admin, Duration::from_secs(15), |s| s["state"] == "awaiting_approval");
    let waiting = &seen.last().unwrap().1;
    assert_eq!(waiting["awaiting_approval"]["index"], 1, "{waiting}");
    assert_eq!(waiting["share"], "10%", "waiting at the step before: {waiting}");
    // It keeps waiting, however long the hold of the step before has passed.
    std::thread::sleep(Duration::from_millis(1500));
    let still = block_on(ramp_status(&admin));
    assert_eq!((still["state"].as_str(), still["share"].as_str()), (Some("awaiting_approval"), Some("10%")), "{still}");
    let text = block_on(metrics_text(&admin));
    assert_eq!(metric(&text, "switchyard_ramp_awaiting_approval", &[]), 1.0);

    // An operator holds first: the approval is taken, but nothing moves while held.
    let (status, _) = ramp_call(&admin, "hold", Some(serde_json::json!({"reason": "change freeze until 14:00"})));
    assert_eq!(status, 200);
    let (status, approved) = ramp_call(&admin, "approve", None);
    assert_eq!((status, &approved["approved"]), (200, &Value::from(1)), "{approved}");
    std::thread::sleep(Duration::from_millis(600));
    let held = block_on(ramp_status(&admin));
    assert_eq!(held["state"], "awaiting_approval", "held: {held}");
    assert_eq!(held["hold"]["reason"], "change freeze until 14:00");
    assert_eq!(metric(&block_on(metrics_text(&admin)), "switchyard_ramp_held", &[]), 1.0);
    assert_eq!(ramp_call(&admin, "hold", Some(serde_json::json!({"reason": ""}))).0, 400, "a hold needs a reason");

    let (status, _) = ramp_call(&admin, "release", None);
    assert_eq!(status, 200);
    let seen = watch(&admin, Duration::from_secs(10), |s| s["state"] == "complete");
    assert!(seen.iter().any(|(_, s)| s["share"] == "50%"), "the approved step ran");
    let (status, refused) = ramp_call(&admin, "approve", None);
    assert_eq!(status, 409, "nothing to approve: {refused}");
    assert!(refused["error"].as_str().unwrap().contains("not waiting for an approval"), "{refused}");
    assert_eq!(ramp_call(&admin, "release", None).0, 409, "not held");
    // The replica's timeline says it all, in order.
    let history = block_on(ramp_status(&admin))["history"].clone();
    let events: Vec<&str> = history.as_array().unwrap().iter().map(|h| h["event"].as_str().unwrap()).collect();
    let order = [
        "ramp.awaiting_approval",
        "ramp.held",
        "ramp.approved",
        "ramp.released",
        "ramp.step_advanced",
        "ramp.completed",
    ];
    let at = |e: &str| events.iter().position(|x| *x == e).unwrap_or_else(|| panic!("{e} missing in {events:?}"));
    assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{events:?}");
    let answers = load.stop();
    assert!(answers.iter().all(|a| a.status == Some(200)), "no request failed while people decided");
}

/// A gate in `observe` mode that fails neither holds nor rolls the ramp back; it is reported as
/// "would have".
#[test]
fn an_observe_only_gate_that_fails_is_reported_and_changes_nothing() {
    let gates = format!("{FEW_SAMPLES}\nlatency = {{ max_p99_ms = 0.001, min_samples = 10, mode = \"observe\" }}");
    let rules = ramp_rules("ramp-observe", now_ms(), "{ share = 20, hold_s = 1 }, { share = 100, hold_s = 0 }", &gates);
    let fleet = LocalFleet::start(FleetSpec::new(&rules)).expect("fleet");
    let load = Load::start(&fleet.proxy_url(), "observed", 100, 3, "blocking=true");
    let seen = watch(&fleet.admin_url(), Duration::from_secs(15), |s| s["state"] == "complete");
    drop(load);
    let would = seen.iter().find_map(|(_, s)| {
        s["gates"].as_array().unwrap().iter().find(|g| g["gate"] == "latency" && g["would_roll_back"] == true).cloned()
    });
    let would = would.expect("the latency gate failed while observing");
    assert_eq!((would["mode"].as_str(), would["verdict"].as_str()), (Some("observe"), Some("fail")), "{would}");
    assert!(seen.iter().all(|(_, s)| s["state"] != "rolled_back"));
    let text = block_on(metrics_text(&fleet.admin_url()));
    assert_eq!(metric(&text, "switchyard_ramp_rolled_back", &[]), 0.0);
}

/// Two namespaces, each moving on a ramp of its own (`ramp` on its override), under load: the
/// scheduler fails every one of team-b's invocations, so team-b's gates (reading team-b's counts
/// only) roll team-b back, while team-a's ramp goes on to 100 %. `GET /ramp` lists both; each
/// namespace then routes by its own ramp's share.
#[test]
fn two_namespace_ramps_advance_and_roll_back_independently_under_load() {
    let start = now_ms() / 1000;
    let ramp = |ns: &str| {
        format!(
            "[[overrides]]\nname = \"{ns}\"\nnamespace = \"{ns}\"\nshare = 0\n\
             ramp = {{ start = {start}, window_s = 2, steps = [{{ share = 20, hold_s = 1 }}, {{ share = 60, hold_s = 1 }}, {{ share = 100, hold_s = 0 }}], \
             gates = {{ platform_failure = {{ min_samples = 10 }}, throttled = {{ min_samples = 10 }}, queued = {{ min_samples = 10 }} }} }}\n"
        )
    };
    let rules = format!("version = \"two-ramps\"\nscheduler_share = 0\n{}{}", ramp("team-a"), ramp("team-b"));
    let mut spec = FleetSpec::new(&rules);
    let keys = [("team-a", "a-uuid", "a-key"), ("team-b", "b-uuid", "b-key")];
    for sim in [&mut spec.legacy, &mut spec.scheduler] {
        sim.auth = keys
            .iter()
            .map(|(ns, user, key)| whisk_sim::AuthKey { key: format!("{user}:{key}"), namespace: ns.to_string() })
            .collect();
    }
    for i in 0..10 {
        let failing = ActionProfile { whisk_error_rate: 1.0, ..ActionProfile::default() };
        spec.scheduler.actions.insert(format!("team-b/act-{i}"), failing);
    }
    let fleet = LocalFleet::start(spec).expect("fleet");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let loads: Vec<Load> = keys
        .iter()
        .map(|(ns, user, key)| Load::start_as(&base, ns, (user, key), "act", 10, 4, "blocking=true"))
        .collect();
    let scope = |s: &Value, name: &str| {
        s["ramps"].as_array().unwrap().iter().find(|r| r["scope"] == name).cloned().unwrap_or(Value::Null)
    };
    let seen = watch(&admin, Duration::from_secs(20), |s| {
        scope(s, "team-a")["state"] == "complete" && scope(s, "team-b")["state"] == "rolled_back"
    });
    let answers: Vec<Vec<Answer>> = loads.into_iter().map(Load::stop).collect();
    let status = &seen.last().unwrap().1;
    let (a, b) = (scope(status, "team-a"), scope(status, "team-b"));
    assert_eq!((a["state"].as_str(), a["share"].as_str()), (Some("complete"), Some("100%")), "{a}");
    assert_eq!((b["state"].as_str(), b["share"].as_str()), (Some("rolled_back"), Some("0%")), "{b}");
    assert_eq!(b["rollback"]["gate"], "platform_failure", "{b}");
    assert!(status.get("state").is_none(), "no global ramp: only the list");
    // team-a never rolled back, and passed through every step while team-b was failing.
    let said = |r: &Value| {
        r["history"].as_array().unwrap().iter().map(|h| h["event"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert!(!said(&a).iter().any(|e| e == "ramp.rolled_back"), "{a}");
    assert!(said(&a).iter().any(|e| e == "ramp.completed"), "{a}");
    // Under load nothing failed on team-a; team-b's failures were the scheduler's share of it.
    let failed = |answers: &[Answer]| answers.iter().filter(|x| x.status != Some(200)).count();
    assert_eq!(failed(&answers[0]), 0, "team-a");
    assert!(
        answers[1].iter().all(|x| x.status == Some(200) || x.pool == "scheduler"),
        "team-b's failures are the scheduler's"
    );
    // Each namespace now routes by its own ramp's share.
    block_on(async {
        let c = client();
        for (ns, user, key) in keys {
            for i in 0..10 {
                let url = format!("{base}/api/v1/namespaces/{ns}/actions/act-{i}?blocking=true");
                let resp = c.post(url).basic_auth(user, Some(key)).send().await.unwrap();
                let expected = if ns == "team-a" { "scheduler" } else { "legacy" };
                assert_eq!(pool_of(&resp), expected, "{ns}/act-{i}");
            }
        }
    });
}

//! `PUT /rules?dry_run=true`: a plan against the traffic the proxy recorded names exactly what the
//! change then moves (checked by applying it), flags what moves back, and changes nothing itself.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use switchyard_tests::*;

const TOKEN: &str = "test-admin-token-0123456789";

fn fleet(rules: &str) -> LocalFleet {
    let mut spec = FleetSpec::new(rules);
    spec.tweak = Some(Box::new(|c| c.admin.token = Some(TOKEN.to_string())));
    LocalFleet::start(spec).expect("fleet")
}

/// Invokes `guest/a{i}` for i in 0..40, action i `1 + i % 4` times, then `billing/pay` 5 times;
/// returns how many times each was invoked, by `namespace/action`.
fn drive(base: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    block_on(async {
        let c = client();
        for i in 0..40u64 {
            for _ in 0..1 + i % 4 {
                assert_eq!(invoke(&c, base, &format!("a{i}"), json!({})).send().await.unwrap().status(), 200);
            }
            counts.insert(format!("guest/a{i}"), 1 + i % 4);
        }
        for _ in 0..5 {
            let url = format!("{base}/api/v1/namespaces/billing/actions/pay?blocking=true");
            let resp = with_guest(c.post(url)).json(&json!({})).send().await.unwrap();
            assert!(resp.headers().contains_key("x-switchyard-pool"));
        }
        counts.insert("billing/pay".into(), 5);
    });
    counts
}

/// Which pool each action goes to now (one more invocation each).
fn pools(base: &str, names: &[String]) -> BTreeMap<String, String> {
    block_on(async {
        let c = client();
        let mut out = BTreeMap::new();
        for name in names {
            let (ns, action) = name.split_once('/').unwrap();
            let url = format!("{base}/api/v1/namespaces/{ns}/actions/{action}?blocking=true");
            let resp = with_guest(c.post(url)).json(&json!({})).send().await.unwrap();
            out.insert(name.clone(), pool_of(&resp));
        }
        out
    })
}

async fn put(admin: &str, body: &str, dry_run: bool) -> (u16, Value) {
    let query = if dry_run { "?dry_run=true" } else { "" };
    let resp = client()
        .put(format!("{admin}/rules{query}"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/toml")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Plans `next` against what `drive` recorded, applies it, and checks that exactly the listed
/// actions changed pools, each at the rate its invocations give; returns the plan.
fn plan_then_apply(current: &str, next: &str) -> Value {
    let fleet = fleet(current);
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let counts = drive(&base);
    let names: Vec<String> = counts.keys().cloned().collect();
    let before = pools(&base, &names);
    let (status, answer) = block_on(put(&admin, next, true));
    assert_eq!(status, 200, "{answer}");
    let plan = answer["plan"].clone();
    let (status, applied) = block_on(put(&admin, next, false));
    assert_eq!(status, 200, "{applied}");
    let after = pools(&base, &names);
    let moved: BTreeMap<&String, (&String, &String)> =
        names.iter().filter(|n| before[*n] != after[*n]).map(|n| (n, (&before[n], &after[n]))).collect();
    let listed: BTreeMap<String, &Value> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (format!("{}/{}", a["namespace"].as_str().unwrap(), a["action"].as_str().unwrap()), a))
        .collect();
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        moved.keys().copied().collect::<Vec<_>>(),
        "the plan names exactly the actions the change moved"
    );
    let span = plan["traffic_span_s"].as_f64().unwrap();
    for (name, a) in &listed {
        let (from, to) = moved[name];
        assert_eq!((a["from"].as_str().unwrap(), a["to"].as_str().unwrap()), (from.as_str(), to.as_str()), "{name}");
        // Every invocation `drive` made, and the probe of `pools` before the plan.
        let invoked = (counts[name] + 1) as f64;
        assert!((a["per_s"].as_f64().unwrap() * span - invoked).abs() < 1e-6, "{name}: {a} over {span} s");
    }
    // The answer of the applied change (and its audit line) says what the plan said; its rates are
    // taken a moment later, over a longer span.
    let words = format!("of {} actions to the scheduler", plan["actions_to_scheduler"]);
    assert!(applied["moves"].as_str().unwrap().contains(&words), "{applied} / {}", plan["summary"]);
    plan
}

#[test]
fn a_plan_against_live_traffic_names_exactly_the_actions_and_rates_the_change_then_moves() {
    let plan = plan_then_apply(
        "version = \"p1\"\nscheduler_share = 10\n",
        "version = \"p2\"\nscheduler_share = 60\n[[overrides]]\nnamespace = \"billing\"\nshare = 0\n",
    );
    assert_eq!(plan["moves_back"], false, "{plan}");
    assert!(plan["actions_to_scheduler"].as_u64().unwrap() > 5, "{plan}");
    let text = plan["summary"].as_str().unwrap();
    assert!(text.starts_with("moves ") && text.contains("actions to the scheduler"), "{text}");
    assert!(plan["rules"].as_array().unwrap().iter().any(|r| r["label"] == "billing/*/*" && r["pin"] == true));
}

#[test]
fn a_plan_that_lowers_a_share_flags_every_action_that_moves_back() {
    let plan = plan_then_apply("version = \"b1\"\nscheduler_share = 70\n", "version = \"b2\"\nscheduler_share = 15\n");
    assert_eq!(plan["moves_back"], true);
    let actions = plan["actions"].as_array().unwrap();
    assert!(!actions.is_empty());
    assert!(actions.iter().all(|a| a["to"] == "legacy"), "a lowered share only moves back: {plan}");
    assert_eq!(plan["actions_to_legacy"].as_u64().unwrap() as usize, actions.len());
}

#[test]
fn dry_run_changes_nothing_not_the_version_the_metrics_nor_the_audit_log() {
    let logs = captured_logs("info");
    let fleet = fleet("version = \"d1\"\nscheduler_share = 10\n");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    drive(&base);
    let reloads = |text: &str| {
        ["accepted", "unchanged", "rejected"]
            .map(|r| metric(text, "switchyard_rules_reloads_total", &[("source", "admin"), ("result", r)]))
    };
    let before = block_on(metrics_text(&admin));
    let logged = logs.lock().unwrap().len();
    let next = "version = \"d2\"\nscheduler_share = 90\n";
    let (status, answer) = block_on(put(&admin, next, true));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "plan");
    // Refused exactly as an offer is, and still nothing changes.
    let (status, refused) = block_on(put(&admin, "version = \"d1\"\nscheduler_share = 200\n", true));
    assert_eq!(status, 422, "{refused}");
    let (status, typo) = block_on(async {
        let resp =
            client().put(format!("{admin}/rules?dryrun=true")).bearer_auth(TOKEN).body(next).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    });
    assert_eq!(status, 400, "a misspelt dry run is refused, never applied: {typo}");
    let after = block_on(metrics_text(&admin));
    assert_eq!(reloads(&before), reloads(&after), "no reload counted");
    let rules: Value =
        block_on(async { client().get(format!("{admin}/rules")).send().await.unwrap().json().await.unwrap() });
    assert_eq!(rules["version"], "d1");
    assert_eq!(metric(&after, "switchyard_scheduler_share", &[]), metric(&before, "switchyard_scheduler_share", &[]));
    let since = String::from_utf8_lossy(&logs.lock().unwrap()[logged..]).to_string();
    // The other tests of this file change their own rules meanwhile (versions p… and b…).
    let ours = since.lines().filter(|l| l.contains("rules changed") && l.contains("d2")).count();
    assert_eq!(ours, 0, "no audit line: {since}");
    assert!(!since.contains("rules rejected"), "a rejected plan is not a rejected change: {since}");
    // Applying it writes the audit line, with the plan's words.
    let (status, applied) = block_on(put(&admin, next, false));
    assert_eq!(status, 200);
    let since = String::from_utf8_lossy(&logs.lock().unwrap()[logged..]).to_string();
    let line = since.lines().find(|l| l.contains("rules changed") && l.contains("d2")).expect("an audit line");
    assert!(line.contains(applied["moves"].as_str().unwrap()), "{line}");
}

//! Secrets stay secret: nested secret-named values and the caller's credential in every form are
//! absent from the record file, both report endpoints, the text report and the Kafka records, even
//! where the two paths' answers differ at exactly those places. And only what is safe to run
//! twice is mirrored unless a policy says more.

use std::time::{Duration, Instant};

use base64::Engine;
use rdkafka::mocking::MockCluster;
use serde_json::{json, Value};
use switchyard_tests::*;
use whisk_sim::{ActionProfile, RequestKind, ResultSpec};

const BEARER: &str = "tok-bearer-0123456789abcdef";

/// The attacker's payload: secrets nested under secret-named keys, and the caller's credential in
/// every form inside an innocent field.
fn payload() -> Value {
    let (user, key) = guest_credentials();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"));
    json!({
        "password": {"v": "hunter2"},
        "token": ["tok-abc-secret"],
        "__ow_headers": {"cookie": "session=s3cr3t-cookie"},
        "cfg": {"api_key": "ak-123456789", "Client_Secret": {"x": "cs-987654321"}},
        "note": format!("basic {basic} decoded {user}:{key} key {key} bearer {BEARER}"),
    })
}

fn secrets() -> Vec<String> {
    let (user, key) = guest_credentials();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"));
    ["hunter2", "tok-abc-secret", "s3cr3t-cookie", "ak-123456789", "cs-987654321", key, &basic, BEARER]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn assert_clean(what: &str, text: &str) {
    for secret in secrets() {
        assert!(!text.contains(&secret), "{what} contains a secret ({}…)", &secret[..4]);
    }
}

/// Every answer of the scheduler differs from legacy's at each secret's place.
fn diverging() -> ActionProfile {
    ActionProfile {
        result: ResultSpec::Echo,
        result_patch: Some(json!({
            "password": {"v": "other"}, "token": ["other"], "__ow_headers": {"cookie": "other"},
            "cfg": {"api_key": "other", "Client_Secret": {"x": "other"}}, "note": "other",
        })),
        ..ActionProfile::default()
    }
}

#[test]
fn nested_secrets_and_the_callers_credential_leave_no_trace() {
    let mock = MockCluster::new(1).expect("mock Kafka cluster");
    let brokers = mock.bootstrap_servers();
    mock.create_topic("records", 1, 1).expect("topic");
    let rules = "version = \"sec\"\nscheduler_share = 0\n\
                 [[overrides]]\nnamespace = \"guest\"\naction = \"pure-*\"\nshare = 0\nshadow = { sample = 100 }\n\
                 [[overrides]]\nnamespace = \"guest\"\naction = \"web-echo\"\nshare = 0\nshadow = { sample = 100, methods = [\"POST\"] }\n";
    let mut spec = FleetSpec::new(rules);
    for name in ["guest/pure-echo", "guest/web-echo"] {
        spec.legacy.actions.insert(name.into(), ActionProfile { result: ResultSpec::Echo, ..ActionProfile::default() });
        spec.scheduler.actions.insert(name.into(), diverging());
    }
    let kafka_brokers = brokers.clone();
    spec.tweak = Some(Box::new(move |c| {
        c.kafka.brokers = kafka_brokers;
        c.kafka.records_topic = "records".into();
        c.kafka.message_timeout_ms = 5_000;
    }));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let (json_report, html) = block_on(async {
        let c = client();
        for _ in 0..3 {
            // Basic auth (the guest key) on an action invoke.
            let (user, key) = guest_credentials();
            let resp = c
                .post(format!("{base}/api/v1/namespaces/guest/actions/pure-echo?blocking=true"))
                .basic_auth(user, Some(key))
                .json(&payload())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            // A bearer token (lower-case scheme) on a web action the policy opts in for POST.
            let resp = c
                .post(format!("{base}/api/v1/web/guest/default/web-echo.json"))
                .header("authorization", format!("bearer {BEARER}"))
                .json(&payload())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let report = loop {
            let report: Value = c.get(format!("{admin}/shadow/report")).send().await.unwrap().json().await.unwrap();
            if report["records"] == 6 {
                break report;
            }
            assert!(Instant::now() < deadline, "records: {report}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let html = c.get(format!("{admin}/shadow/report.html")).send().await.unwrap().text().await.unwrap();
        (report.to_string(), html)
    });
    let records = std::fs::read_to_string(fleet.shadow_records_path()).unwrap();
    assert!(records.contains("/response/result/password"), "the differences are recorded: {records}");
    assert!(records.contains("[redacted]"));
    assert_clean("the record file", &records);
    assert_clean("the JSON report", &json_report);
    assert_clean("the HTML report", &html);
    let (read, _) = switchyard_shadow::read_records(&fleet.shadow_records_path()).unwrap();
    let mut text_report = switchyard_shadow::Report::default();
    read.iter().for_each(|r| text_report.add(r));
    assert_clean("the text report", &text_report.to_text());
    // The Kafka records, as any consumer of the topic reads them.
    let deadline = Instant::now() + Duration::from_secs(20);
    let on_topic = loop {
        let config = switchyard::KafkaConfig { brokers: brokers.clone(), ..Default::default() };
        let (on_topic, _) = switchyard::read_records_from_topic(&config.client_config(), "records", None, |_, _| {})
            .expect("read the topic");
        if on_topic.len() == 6 || Instant::now() > deadline {
            break on_topic;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(on_topic.len(), 6, "every record reached the topic");
    assert_clean("the Kafka records", &serde_json::to_string(&on_topic).unwrap());
}

#[test]
fn only_what_is_safe_to_run_twice_is_mirrored_by_default() {
    let rules = "version = \"safe\"\nscheduler_share = 0\n[[overrides]]\nnamespace = \"guest\"\nshare = 0\nshadow = { sample = 100 }\n";
    let fleet = LocalFleet::start(FleetSpec::new(rules)).expect("fleet");
    let base = fleet.proxy_url();
    block_on(async {
        let c = client();
        for method in ["DELETE", "PUT", "PATCH", "POST"] {
            let resp = c
                .request(method.parse().unwrap(), format!("{base}/api/v1/web/guest/default/hello.json"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{method}");
        }
        let resp = with_guest(c.post(format!("{base}/api/v1/namespaces/guest/actions/hello?blocking=false")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        // A safe one is mirrored, so the check below is not vacuous.
        let resp = c.get(format!("{base}/api/v1/web/guest/default/hello.json")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let deadline = Instant::now() + Duration::from_secs(10);
        while fleet.scheduler.stats().shadow_marked < 1 {
            assert!(Instant::now() < deadline, "the GET was not mirrored");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    let scheduler = fleet.scheduler.stats();
    assert_eq!(scheduler.shadow_marked, 1, "only the GET was copied");
    assert_eq!(scheduler.kind(RequestKind::Invoke), 0, "the non-blocking invoke was not copied");
}

/// The admin token from a mounted secret file, re-read when it changes; the `Bearer` scheme in any
/// case.
#[test]
fn the_admin_token_comes_from_a_file_and_rotates_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("switchyard-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "first-token-0123456789\n").unwrap();
    let mut spec = FleetSpec::new("version = \"t\"\n");
    let file = token_file.clone();
    spec.tweak = Some(Box::new(move |c| c.admin.token_file = Some(file)));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let kill = |auth: &str| {
        let (url, auth) = (format!("{}/rules/kill", fleet.admin_url()), auth.to_string());
        block_on(
            async move { client().post(url).header("authorization", auth).send().await.unwrap().status().as_u16() },
        )
    };
    assert_eq!(kill("bearer first-token-0123456789"), 200, "the scheme is case-insensitive");
    assert_eq!(kill("BEARER first-token-0123456789"), 200);
    assert_eq!(kill("Bearer wrong-token-0123456789"), 401);
    std::fs::write(&token_file, "second-token-0123456789").unwrap();
    assert_eq!(kill("Bearer first-token-0123456789"), 401, "the rotated-out token no longer works");
    assert_eq!(kill("Bearer second-token-0123456789"), 200);
    std::fs::remove_file(&token_file).unwrap();
    assert_eq!(kill("Bearer second-token-0123456789"), 503, "an unreadable token file allows nothing");
    let _ = std::fs::remove_dir_all(&dir);
}

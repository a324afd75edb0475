//! Kafka as the fleet's bus, against a real Kafka-protocol broker (tansu, in-memory storage, on a
//! free loopback port): two replicas' records in one report, rules published once reaching both,
//! and the records readable by a generic Kafka client (Python's confluent-kafka).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::Value;
use switchyard_tests::broker::{create_topics, records_to, RecordCounts, Tansu};
use switchyard_tests::free_port;
use switchyard_tests::{guest_credentials, FleetSpec, LocalFleet};
use whisk_sim::{Flavor, SimConfig};

const SHADOWED: &str = "version = \"file-1\"\nscheduler_share = 0\n[[overrides]]\nnamespace = \"guest\"\naction = \"pure-*\"\nshare = 0\nshadow = { sample = 100 }\n";

fn replica(brokers: &str, instance: &str, records_topic: &str, rules_topic: &str) -> LocalFleet {
    let mut spec = FleetSpec::new(SHADOWED);
    spec.scheduler = SimConfig::with_flavor(Flavor::Legacy);
    let (brokers, instance, records_topic, rules_topic) =
        (brokers.to_string(), instance.to_string(), records_topic.to_string(), rules_topic.to_string());
    spec.tweak = Some(Box::new(move |c| {
        c.kafka.brokers = brokers;
        c.kafka.records_topic = records_topic;
        c.kafka.rules_topic = rules_topic;
        c.kafka.message_timeout_ms = 10_000;
        c.shadow.instance = Some(instance);
    }));
    LocalFleet::start(spec).expect("replica")
}

fn invoke_many(fleet: &LocalFleet, n: usize, rt: &tokio::runtime::Runtime) {
    let (user, key) = guest_credentials();
    let base = fleet.proxy_url();
    rt.block_on(async {
        let c = reqwest::Client::new();
        for i in 0..n {
            let resp = c
                .post(format!("{base}/api/v1/namespaces/guest/actions/pure-{}?blocking=true", i % 5))
                .basic_auth(user, Some(key))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
    });
}

fn readyz(fleet: &LocalFleet, rt: &tokio::runtime::Runtime) -> Value {
    rt.block_on(async { reqwest::get(format!("{}/readyz", fleet.admin_url())).await.unwrap().json().await.unwrap() })
}

fn wait_delivered(fleet: &LocalFleet, n: u64, rt: &tokio::runtime::Runtime) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = readyz(fleet, rt);
        if ready["kafka"]["records"]["delivered"].as_u64() == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "records not delivered: {}", ready["kafka"]);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_replicas_one_report_readable_by_any_client() {
    let tansu = Tansu::start(&["comparisons"]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let a = replica(&tansu.brokers, "replica-a", "comparisons", "");
    let b = replica(&tansu.brokers, "replica-b", "comparisons", "");
    invoke_many(&a, 25, &rt);
    invoke_many(&b, 35, &rt);
    wait_delivered(&a, 25, &rt);
    wait_delivered(&b, 35, &rt);

    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["report", "--format", "json", "--from", &format!("kafka://{}/comparisons", tansu.brokers)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"], 60, "the records of both replicas, exactly");
    let samples: u64 = report["actions"].as_array().unwrap().iter().map(|a| a["samples"].as_u64().unwrap()).sum();
    assert_eq!(samples, 60);
    assert!(report["actions"].as_array().unwrap().iter().all(|a| a["match_rate"] == 1.0));

    // A generic client reads plain JSON values keyed by action, with the schema header.
    let script = format!(
        r#"
import json, sys
from confluent_kafka import Consumer
c = Consumer({{"bootstrap.servers": "{}", "group.id": "generic-reader", "auto.offset.reset": "earliest"}})
c.subscribe(["comparisons"])
seen, instances = 0, set()
while seen < 60:
    m = c.poll(10.0)
    if m is None:
        sys.exit("timed out after %d records" % seen)
    if m.error():
        continue
    record = json.loads(m.value())
    assert m.key().decode() == record["action"], (m.key(), record["action"])
    assert dict(m.headers())["schema"] == b"1"
    instances.add(record["instance"])
    seen += 1
c.close()
print(json.dumps({{"records": seen, "instances": sorted(instances)}}))
"#,
        tansu.brokers
    );
    let py = Command::new("python3").args(["-c", &script]).output().expect("python3");
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let summary: Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(summary["records"], 60);
    assert_eq!(summary["instances"], serde_json::json!(["replica-a", "replica-b"]));
}

/// A replica's producer batches records: when the last batch on a partition holds several, the
/// reader must still read every one. (tansu answers a `Latest` offset query with the last batch's
/// first offset + 1, so a reader that stops at the queried end would miss the rest of that batch;
/// it must stop where the fetch itself says the partition ends.)
#[test]
fn a_topic_whose_last_batch_holds_many_records_is_read_to_its_end() {
    let tansu = Tansu::start(&["batched"]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &tansu.brokers).set("linger.ms", "500").create().unwrap();
    rt.block_on(async {
        let payloads: Vec<String> = (0..10).map(|i| format!("record-{i}")).collect();
        let sends = payloads
            .iter()
            .map(|p| producer.send(FutureRecord::to("batched").key("k").payload(p), Duration::from_secs(10)));
        let offsets: Vec<i64> =
            futures::future::join_all(sends).await.into_iter().map(|r| r.map_err(|(e, _)| e).unwrap().offset).collect();
        assert_eq!(offsets, (0..10).collect::<Vec<_>>(), "one batch of ten");
    });
    let config = switchyard::KafkaConfig { brokers: tansu.brokers.clone(), ..Default::default() };
    let mut reported = (0, 0);
    let read =
        switchyard::read_to_end(&config.client_config(), "batched", |read, total| reported = (read, total)).unwrap();
    let payloads: Vec<String> = read.iter().map(|m| String::from_utf8_lossy(&m.payload).into_owned()).collect();
    assert_eq!(payloads, (0..10).map(|i| format!("record-{i}")).collect::<Vec<_>>());
    assert_eq!(reported.0, 10, "progress counts every record read");
}

fn status(fleet: &LocalFleet, rt: &tokio::runtime::Runtime) -> Value {
    rt.block_on(async {
        reqwest::get(format!("{}/rules/status", fleet.admin_url())).await.unwrap().json().await.unwrap()
    })
}

fn wait_version(fleets: &[&LocalFleet], version: &str, rt: &tokio::runtime::Runtime) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for f in fleets {
        loop {
            let s = status(f, rt);
            if s["active"]["version"] == version {
                assert!(s["active"]["source"].as_str().unwrap().starts_with("kafka topic rules"), "{s}");
                break;
            }
            assert!(Instant::now() < deadline, "{version} did not arrive: {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn publish(brokers: &str, name: &str, text: &str) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("switchyard-publish-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["rules", "publish"])
        .arg(&path)
        .args(["--brokers", brokers, "--topic", "rules"])
        .output()
        .unwrap()
}

#[test]
fn rules_published_once_reach_every_replica() {
    let tansu = Tansu::start(&["rules", "records-unused"]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let a = replica(&tansu.brokers, "a", "records-unused", "rules");
    let b = replica(&tansu.brokers, "b", "records-unused", "rules");

    let out = publish(&tansu.brokers, "r.toml", "version = \"kafka-1\"\nscheduler_share = 100\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("published version kafka-1"));
    wait_version(&[&a, &b], "kafka-1", &rt);

    // The publisher refuses an invalid rule set...
    let refused = publish(&tansu.brokers, "bad.toml", "version = \"kafka-2\"\nscheduler_share = 140\n");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not published"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // ...and a record that bypasses it is rejected by every replica, which keep their rules.
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &tansu.brokers).create().unwrap();
    rt.block_on(async {
        producer
            .send(
                FutureRecord::to("rules").key("rules").payload("version = \"kafka-3\"\nscheduler_share = \"lots\"\n"),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    });
    for f in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = status(f, &rt);
            if s["last_rejected"]["source"].as_str().is_some_and(|src| src.starts_with("kafka topic rules")) {
                assert_eq!(s["active"]["version"], "kafka-1", "the old rules keep serving");
                assert_eq!(s["last_rejected"]["errors"][0]["path"], "scheduler_share");
                break;
            }
            assert!(Instant::now() < deadline, "the invalid record was not rejected: {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // The kill switch published once reaches every replica.
    let out =
        publish(&tansu.brokers, "kill.toml", "version = \"kafka-4\"\nscheduler_share = 100\nkill_switch = true\n");
    assert!(out.status.success());
    wait_version(&[&a, &b], "kafka-4", &rt);
    let (user, key) = guest_credentials();
    for f in [&a, &b] {
        let pool = rt.block_on(async {
            let resp = reqwest::Client::new()
                .post(format!("{}/api/v1/namespaces/guest/actions/anything?blocking=true", f.proxy_url()))
                .basic_auth(user, Some(key))
                .send()
                .await
                .unwrap();
            resp.headers()["x-switchyard-pool"].to_str().unwrap().to_string()
        });
        assert_eq!(pool, "legacy");
    }
}

/// Waits until `fleet` reports a rejection from the topic whose first error mentions `needle`.
fn wait_rejected(fleet: &LocalFleet, needle: &str, rt: &tokio::runtime::Runtime) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(fleet, rt);
        if s["last_rejected"]["errors"][0]["reason"].as_str().is_some_and(|r| r.contains(needle)) {
            return s;
        }
        assert!(Instant::now() < deadline, "no rejection mentioning {needle:?}: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn replicas_with_verify_keys_apply_only_signed_records() {
    let tansu = Tansu::start(&["signed-rules"]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("switchyard-signing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("rules.key");
    let _ = std::fs::remove_file(&key);
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard")).args(["rules", "keygen"]).arg(&key).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verify_key = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let mut spec = FleetSpec::new("version = \"file-1\"\nscheduler_share = 0\n");
    let (brokers, vk) = (tansu.brokers.clone(), verify_key.clone());
    spec.tweak = Some(Box::new(move |c| {
        c.kafka.brokers = brokers;
        c.kafka.rules_topic = "signed-rules".into();
        c.kafka.rules_verify_keys = vec![vk];
    }));
    let replica = LocalFleet::start(spec).expect("replica");
    let publish_to = |name: &str, text: &str, sign: bool| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(["rules", "publish"]).arg(&path).args(["--brokers", &tansu.brokers, "--topic", "signed-rules"]);
        if sign {
            cmd.arg("--sign-key").arg(&key);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };

    // Unsigned: refused like an invalid document, the file's rules keep serving.
    publish_to("unsigned.toml", "version = \"unsigned\"\nkill_switch = true\n", false);
    let s = wait_rejected(&replica, "unsigned", &rt);
    assert_eq!(s["active"]["version"], "file-1");
    assert_eq!(s["last_rejected"]["errors"][0]["path"], "signature");

    // Signed by the configured key: applied.
    publish_to("signed.toml", "version = \"signed-1\"\nscheduler_share = 50\n", true);
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(&replica, &rt)["active"]["version"] != "signed-1" {
        assert!(Instant::now() < deadline, "the signed record was not applied: {}", status(&replica, &rt));
        std::thread::sleep(Duration::from_millis(100));
    }

    // Tampered with (same signature, other payload) and replayed (an older signed record produced
    // again after a newer one): both refused.
    let consumer_config = switchyard::KafkaConfig { brokers: tansu.brokers.clone(), ..Default::default() };
    let records = switchyard::read_to_end(&consumer_config.client_config(), "signed-rules", |_, _| {}).unwrap();
    let signed = records.iter().find(|m| m.headers.contains_key("signature")).expect("the signed record").clone();
    publish_to("signed2.toml", "version = \"signed-2\"\nscheduler_share = 60\n", true);
    while status(&replica, &rt)["active"]["version"] != "signed-2" {
        assert!(Instant::now() < deadline, "signed-2 was not applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &tansu.brokers).create().unwrap();
    let send = |payload: &[u8]| {
        let mut headers = rdkafka::message::OwnedHeaders::new();
        for (k, v) in &signed.headers {
            headers = headers.insert(rdkafka::message::Header { key: k, value: Some(v.as_str()) });
        }
        rt.block_on(producer.send(
            FutureRecord::to("signed-rules").key("rules").payload(payload).headers(headers),
            Duration::from_secs(10),
        ))
        .map_err(|(e, _)| e)
        .unwrap();
    };
    send(b"version = \"tampered\"\nkill_switch = true\n");
    let s = wait_rejected(&replica, "does not verify", &rt);
    assert_eq!(s["active"]["version"], "signed-2");
    send(&signed.payload);
    let s = wait_rejected(&replica, "replayed", &rt);
    assert_eq!(s["active"]["version"], "signed-2", "a replayed record does not roll the rules back");
}

/// A TLS terminator (socat) in front of the broker, which advertises the TLS port: every client
/// connection is TLS, checked against a CA made for the test.
struct TlsBroker {
    tansu: Tansu,
    socat: Child,
    ca: std::path::PathBuf,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.socat.kill();
        let _ = self.socat.wait();
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is needed for the TLS test");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl TlsBroker {
    fn start(topics: &[&str]) -> TlsBroker {
        let dir = std::env::temp_dir().join(format!("switchyard-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=switchyard test CA",
            ],
        );
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "1",
                "-extfile",
                "san.cnf",
            ],
        );
        let (plain, tls) = (free_port(), free_port());
        let socat = Command::new("socat")
            .arg(format!(
                "openssl-listen:{tls},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                dir.join("server.pem").display(),
                dir.join("server.key").display()
            ))
            .arg(format!("tcp:127.0.0.1:{plain}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat is needed for the TLS test (Debian package socat)");
        let tansu = Tansu::spawn(plain, tls);
        switchyard_tests::wait_accepting(SocketAddr::from(([127, 0, 0, 1], tls)), || "socat did not start".into());
        let ca = dir.join("ca.pem");
        create_topics(
            ClientConfig::new()
                .set("bootstrap.servers", &tansu.brokers)
                .set("security.protocol", "ssl")
                .set("ssl.ca.location", ca.display().to_string()),
            topics,
        );
        TlsBroker { tansu, socat, ca }
    }
}

#[test]
fn records_and_rules_travel_over_tls() {
    let broker = TlsBroker::start(&["tls-records", "tls-rules"]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tls_replica = |ca: Option<std::path::PathBuf>| {
        let mut spec = FleetSpec::new(SHADOWED);
        spec.scheduler = SimConfig::with_flavor(Flavor::Legacy);
        let brokers = broker.tansu.brokers.clone();
        spec.tweak = Some(Box::new(move |c| {
            c.kafka.brokers = brokers;
            c.kafka.records_topic = "tls-records".into();
            c.kafka.rules_topic = "tls-rules".into();
            c.kafka.message_timeout_ms = 5_000;
            c.kafka.tls.ca_file = ca;
        }));
        LocalFleet::start(spec).expect("replica")
    };
    let with_tls = tls_replica(Some(broker.ca.clone()));
    let without = tls_replica(None);
    invoke_many(&with_tls, 5, &rt);
    invoke_many(&without, 5, &rt);
    wait_delivered(&with_tls, 5, &rt);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = readyz(&without, &rt);
        if ready["kafka"]["records"]["failed"].as_u64() == Some(5) {
            assert_eq!(ready["kafka"]["records"]["delivered"], 0, "plaintext to a TLS listener delivers nothing");
            break;
        }
        assert!(Instant::now() < deadline, "the plaintext replica's records did not fail: {ready}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Rules over TLS: published with the same TLS settings, followed by the TLS replica.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.tansu.brokers)
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", broker.ca.display().to_string())
        .create()
        .unwrap();
    rt.block_on(producer.send(
        FutureRecord::to("tls-rules").key("rules").payload("version = \"over-tls\"\nscheduler_share = 10\n"),
        Duration::from_secs(10),
    ))
    .map_err(|(e, _)| e)
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(&with_tls, &rt)["active"]["version"] != "over-tls" {
        assert!(Instant::now() < deadline, "the rules did not arrive over TLS: {}", status(&with_tls, &rt));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The ramp over the fleet's bus: the replica whose scheduler path fails rolls back and publishes
/// it; the other replica, which saw no error, follows within seconds. Both end on legacy.
#[test]
fn a_ramp_rollback_on_one_replica_reaches_every_replica() {
    ramp_rollback_over_the_bus(false);
}

/// The same where replicas apply only signed rule records: the rollback is signed with
/// `kafka.rules_sign_key`, so the other replica accepts it.
#[test]
fn a_signed_ramp_rollback_reaches_replicas_that_verify() {
    ramp_rollback_over_the_bus(true);
}

fn ramp_rollback_over_the_bus(signed: bool) {
    let tansu = Tansu::start(&["ramp-rules"]);
    let keys = signed.then(|| {
        let dir = std::env::temp_dir().join(format!("switchyard-ramp-signing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("rules.key");
        let _ = std::fs::remove_file(&key);
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard")).args(["rules", "keygen"]).arg(&key).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (key, String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let start = switchyard_tests::now_ms() / 1000;
    let rules = format!(
        "version = \"ramp-k\"\n[ramp]\nstart = {start}\nwindow_s = 2\nsteps = [{{ share = 50, hold_s = 60 }}]\n\
         [ramp.gates]\nplatform_failure = {{ min_samples = 10 }}\n"
    );
    let replica = |instance: &str, faulty: bool| {
        let mut spec = FleetSpec::new(&rules);
        if faulty {
            spec.scheduler.faults = vec![whisk_sim::Fault { after_ms: 0, for_ms: None, share: 0.5, status: 503 }];
        }
        let (brokers, instance, keys) = (tansu.brokers.clone(), instance.to_string(), keys.clone());
        spec.tweak = Some(Box::new(move |c| {
            c.kafka.brokers = brokers;
            c.kafka.rules_topic = "ramp-rules".into();
            c.shadow.instance = Some(instance);
            if let Some((key, verify)) = keys {
                c.kafka.rules_sign_key = Some(key);
                c.kafka.rules_verify_keys = vec![verify];
            }
        }));
        LocalFleet::start(spec).expect("replica")
    };
    let (a, b) = (replica("faulty", true), replica("healthy", false));
    let ramp = |f: &LocalFleet| rt.block_on(switchyard_tests::ramp_status(&f.admin_url()));
    assert_eq!(ramp(&b)["share"], "50%");
    let load_a = switchyard_tests::Load::start(&a.proxy_url(), "k", 50, 3, "blocking=true");
    let load_b = switchyard_tests::Load::start(&b.proxy_url(), "k", 50, 1, "blocking=true");
    let started = Instant::now();
    let mut followed = None;
    while followed.is_none() {
        let (sa, sb) = (ramp(&a), ramp(&b));
        if sa["state"] == "rolled_back" && sb["state"] == "rolled_back" {
            followed = Some((sa, sb));
        }
        assert!(started.elapsed() < Duration::from_secs(30), "not both rolled back: {} / {}", ramp(&a), ramp(&b));
        std::thread::sleep(Duration::from_millis(100));
    }
    drop((load_a, load_b));
    let (sa, sb) = followed.unwrap();
    assert_eq!(sb["rollback"]["in_rules"], true, "B follows the published rules: {sb}");
    assert_eq!(sb["version"], "ramp-k+rollback");
    assert_eq!(sa["share"], "0%");
    assert_eq!(sb["share"], "0%");
    assert!(sb["rollback"]["reason"].as_str().unwrap().starts_with("gate platform_failure fail"), "{sb}");
    let after = switchyard_tests::Load::start(&b.proxy_url(), "k", 50, 2, "blocking=true");
    std::thread::sleep(Duration::from_millis(300));
    assert!(after.stop().iter().all(|a| a.pool == "legacy"), "B routes everything to legacy");
}

/// The real broker process killed (SIGKILL) and started again on the same port under shadow load:
/// no client request fails, every record is accounted for (delivered + failed + dropped =
/// compared), and delivery resumes by itself once the broker is back.
#[test]
fn the_broker_killed_and_restarted_under_shadow_load() {
    let port = free_port();
    let mut tansu = Tansu::spawn(port, port);
    create_topics(ClientConfig::new().set("bootstrap.servers", &tansu.brokers), &["outage"]);
    let mut spec = FleetSpec::new(SHADOWED);
    spec.scheduler = SimConfig::with_flavor(Flavor::Legacy);
    let brokers = tansu.brokers.clone();
    spec.tweak = Some(Box::new(move |c| records_to(c, brokers, "outage", 2_000)));
    let fleet = LocalFleet::start(spec).expect("replica");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let counts = |rt: &tokio::runtime::Runtime| rt.block_on(RecordCounts::read(&fleet.admin_url()));

    let load = switchyard_tests::Load::start(&fleet.proxy_url(), "pure", 5, 4, "blocking=true");
    std::thread::sleep(Duration::from_secs(2));
    tansu.child.kill().unwrap();
    tansu.child.wait().unwrap();
    let delivered_before = counts(&rt).delivered;
    std::thread::sleep(Duration::from_secs(4));
    let restarted = Instant::now();
    let tansu = Tansu::spawn(port, port);
    // In-memory storage: the topic is gone with the process and created again, as an operator's
    // tooling would.
    create_topics(ClientConfig::new().set("bootstrap.servers", &tansu.brokers), &["outage"]);
    let mut resumed = None;
    while restarted.elapsed() < Duration::from_secs(30) {
        if counts(&rt).delivered > delivered_before {
            resumed = Some(restarted.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let answers = load.stop();
    // Settle: every record produced ends delivered, failed or dropped.
    let deadline = Instant::now() + Duration::from_secs(20);
    let c = loop {
        let c = counts(&rt);
        if c.accounted() || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let RecordCounts { delivered: d, failed: f, dropped: x, compared } = c;
    let failed = answers.iter().filter(|a| !a.ok()).count();
    let resumed = resumed.expect("delivery resumed after the broker came back");
    switchyard_tests::fault_row(
        "the Kafka broker killed under shadow load, restarted 4 s later",
        &format!("4 clients, every call mirrored ({} calls)", answers.len()),
        &format!("{failed} of {}", answers.len()),
        &format!("{compared} records: {d} delivered, {f} failed, {x} dropped, 0 unaccounted"),
        &format!("delivery resumed {:.1} s after the restart", resumed.as_secs_f64()),
    );
    assert_eq!(failed, 0, "a client request failed while the broker was down");
    assert_eq!(d + f + x, compared, "records unaccounted for: {d} delivered, {f} failed, {x} dropped of {compared}");
    assert!(f + x > 0, "the outage did cost records (it happened)");
    drop(tansu);
}

/// An operator's ramp calls given to one replica reach every replica over the rules topic: a hold
/// given to B holds A, an approval given to A lets both begin the step once released; a replica
/// started later reads the calls from the topic and passes the approved step too.
#[test]
fn ramp_calls_given_to_one_replica_reach_every_replica() {
    const TOKEN: &str = "open-sesame-0123456789";
    let tansu = Tansu::start(&["people-rules"]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let start = switchyard_tests::now_ms() / 1000;
    let rules = format!(
        "version = \"people-1\"\n[ramp]\nstart = {start}\nwindow_s = 2\n\
         steps = [{{ share = 10, hold_s = 1 }}, {{ share = 60, hold_s = 1, approve = true }}, {{ share = 100, hold_s = 0 }}]\n\
         [ramp.gates]\nplatform_failure = {{ min_samples = 0 }}\nthrottled = {{ min_samples = 0 }}\nqueued = {{ min_samples = 0 }}\n"
    );
    let replica = |instance: &str| {
        let mut spec = FleetSpec::new(&rules);
        let (brokers, instance) = (tansu.brokers.clone(), instance.to_string());
        spec.tweak = Some(Box::new(move |c| {
            c.kafka.brokers = brokers;
            c.kafka.rules_topic = "people-rules".into();
            c.shadow.instance = Some(instance);
            c.admin.token = Some(TOKEN.into());
        }));
        LocalFleet::start(spec).expect("replica")
    };
    let ramp = |f: &LocalFleet| rt.block_on(switchyard_tests::ramp_status(&f.admin_url()));
    let call = |f: &LocalFleet, action: &str, body: Option<Value>| {
        rt.block_on(async {
            let mut req = reqwest::Client::new().post(format!("{}/ramp/{action}", f.admin_url())).bearer_auth(TOKEN);
            if let Some(body) = body {
                req = req.json(&body);
            }
            req.send().await.unwrap().status().as_u16()
        })
    };
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(30), "{what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let (a, b) = (replica("a"), replica("b"));
    until("both wait for the approval", &|| {
        ramp(&a)["state"] == "awaiting_approval" && ramp(&b)["state"] == "awaiting_approval"
    });
    assert_eq!(call(&b, "hold", Some(serde_json::json!({"reason": "freeze"}))), 200);
    until("the hold given to B reaches A", &|| ramp(&a)["hold"]["reason"] == "freeze");
    assert_eq!(call(&a, "approve", None), 200);
    std::thread::sleep(Duration::from_millis(1500));
    let (sa, sb) = (ramp(&a), ramp(&b));
    assert_eq!(
        (sa["state"].as_str(), sb["state"].as_str()),
        (Some("awaiting_approval"), Some("awaiting_approval")),
        "held: {sa} / {sb}"
    );
    assert_eq!(sb["approved"], serde_json::json!([1]), "the approval given to A reached B: {sb}");
    assert_eq!(call(&a, "release", None), 200);
    until("both complete once released", &|| ramp(&a)["state"] == "complete" && ramp(&b)["state"] == "complete");
    assert!(ramp(&b)["history"].as_array().unwrap().iter().any(|h| h["event"] == "ramp.approved"), "B's timeline");

    // A replica started now reads the calls from the topic: the approval holds for it too.
    let c = replica("c");
    until("a late replica passes the approved step", &|| ramp(&c)["state"] == "complete");
    assert!(ramp(&c)["hold"].is_null(), "the hold was released on the topic: {}", ramp(&c));
}

//! The real `switchyard` binary under continuous load while its rules are changed 1,000 times
//! through every source: file rename, SIGHUP, admin PUT (TOML and YAML), kill and unkill, and the
//! Kafka rules topic (a real broker).
//! Must hold: zero failed requests, and every response's pool agrees with the rules version it
//! reports (decided again here from that version's rules).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use switchyard_rules::{parse_rules, Invocation, Pool, RuleSet, RulesFormat};
use switchyard_tests::broker::Tansu;
use switchyard_tests::{fault_row, free_port, guest_credentials, wait_accepting};
use whisk_sim::{ActionProfile, Latency, SimConfig, Simulator};

const TOKEN: &str = "load-test-token-0123456789";
const LOAD_FOR: Duration = Duration::from_secs(20);
const SWAPS: usize = 1_000;
const CLIENTS: usize = 32;

fn rules_text(n: usize) -> String {
    let share = [0, 100, 30, 70][n % 4];
    let mut text = format!("version = \"s{n}\"\nscheduler_share = {share}\nseed = {n}\n");
    if n.is_multiple_of(3) {
        text.push_str(&format!("[[overrides]]\nnamespace = \"guest\"\naction = \"act-1*\"\nshare = {}\n", 100 - share));
    }
    text
}

fn rules_yaml(n: usize) -> String {
    let share = [0, 100, 30, 70][n % 4];
    format!("version: s{n}\nscheduler_share: {share}\nseed: {n}\n")
}

fn rename_into(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.next");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
    }
}

#[test]
fn rules_swap_under_load_without_a_failed_or_misrouted_request() {
    let quick = SimConfig {
        wait_time_ms: Some([0, 0]),
        default_action: ActionProfile {
            latency: Latency { min_ms: 0.0, max_ms: 1.0, ..Latency::default() },
            ..ActionProfile::default()
        },
        ..SimConfig::default()
    };
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let legacy = Simulator::start(quick.clone(), loopback).unwrap();
    let scheduler = Simulator::start(SimConfig { flavor: whisk_sim::Flavor::Scheduler, ..quick }, loopback).unwrap();

    let tansu = Tansu::start(&["rules"]);
    let dir: PathBuf = std::env::temp_dir().join(format!("switchyard-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules_path = dir.join("rules.toml");
    std::fs::write(&rules_path, rules_text(0)).unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let config = dir.join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nrules = \"rules.toml\"\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\
             [pools.legacy]\nmembers = [\"{}\"]\n[pools.scheduler]\nmembers = [\"{}\"]\n[shutdown]\ngrace_period_s = 0\ndrain_timeout_s = 2\n\
             [kafka]\nbrokers = \"{}\"\nrules_topic = \"rules\"\n",
            legacy.addr(),
            scheduler.addr(),
            tansu.brokers
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["run", "--config"])
        .arg(&config)
        .env("SWITCHYARD_ADMIN__TOKEN", TOKEN)
        .env("SWITCHYARD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("switchyard.log")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let _proxy = Proxy(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_accepting(addr, || std::fs::read_to_string(dir.join("switchyard.log")).unwrap_or_default());

    let known: Arc<Mutex<HashMap<String, RuleSet>>> = Arc::default();
    let register = |n: usize| {
        let rules = parse_rules(rules_text(n).as_bytes(), RulesFormat::Toml, "t").unwrap();
        known.lock().unwrap().insert(rules.version.clone(), rules);
    };
    register(0);
    for n in (1..=SWAPS).filter(|n| n % 7 == 4) {
        // The YAML variants carry no override; keep the local copy identical.
        let rules = parse_rules(rules_yaml(n).as_bytes(), RulesFormat::Yaml, "t").unwrap();
        known.lock().unwrap().insert(rules.version.clone(), rules);
    }
    for n in (1..=SWAPS).filter(|n| n % 7 != 4) {
        register(n);
    }

    let (requests, failures, misrouted) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let examples: Arc<Mutex<Vec<String>>> = Arc::default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let started = Instant::now();
    let (accepted_swaps, versions_seen, reloads) = runtime.block_on(async {
        let base = format!("http://{addr}");
        let admin = format!("http://127.0.0.1:{admin_port}");
        let http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build().unwrap();
        let (user, key) = guest_credentials();
        let seen: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
        let mut clients = Vec::new();
        for worker in 0..CLIENTS {
            let (http, base, known) = (http.clone(), base.clone(), Arc::clone(&known));
            let (requests, failures, misrouted, examples, seen) = (
                Arc::clone(&requests),
                Arc::clone(&failures),
                Arc::clone(&misrouted),
                Arc::clone(&examples),
                Arc::clone(&seen),
            );
            let (user, key) = (user.to_string(), key.to_string());
            clients.push(tokio::spawn(async move {
                let mut i = worker;
                while started.elapsed() < LOAD_FOR {
                    i += CLIENTS;
                    let action = format!("act-{}", i % 40);
                    let resp = http
                        .post(format!("{base}/api/v1/namespaces/guest/actions/{action}?blocking=true&result=true"))
                        .basic_auth(&user, Some(&key))
                        .body("{}")
                        .send()
                        .await;
                    requests.fetch_add(1, Ordering::Relaxed);
                    let resp = match resp {
                        Ok(r) if r.status() == 200 => r,
                        Ok(r) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            examples.lock().unwrap().push(format!("{action}: status {}", r.status()));
                            continue;
                        }
                        Err(e) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            examples.lock().unwrap().push(format!("{action}: {e}"));
                            continue;
                        }
                    };
                    let header =
                        |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    let (version, pool) = (header("x-switchyard-rules-version"), header("x-switchyard-pool"));
                    let expected = match version.strip_suffix("+killed") {
                        Some(_) => Some(Pool::Legacy),
                        None => known.lock().unwrap().get(&version).map(|r| {
                            r.decide(&Invocation { namespace: "guest", action: &action, ..Invocation::default() }).pool
                        }),
                    };
                    if expected.map(Pool::as_str) != Some(pool.as_str()) {
                        misrouted.fetch_add(1, Ordering::Relaxed);
                        examples
                            .lock()
                            .unwrap()
                            .push(format!("{action}: version {version} served by {pool}, expected {expected:?}"));
                    }
                    seen.lock().unwrap().insert(version);
                    let _ = resp.bytes().await;
                }
            }));
        }

        // The swapper: one change every LOAD_FOR / SWAPS, cycling through the sources.
        let pace = LOAD_FOR.mul_f64(0.9) / SWAPS as u32;
        let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &tansu.brokers).create().unwrap();
        let mut accepted = 0usize;
        for n in 1..=SWAPS {
            tokio::time::sleep(pace).await;
            let put = |body: String, media: &'static str| {
                http.put(format!("{admin}/rules")).bearer_auth(TOKEN).header("content-type", media).body(body).send()
            };
            match n % 7 {
                0 | 3 => rename_into(&rules_path, &rules_text(n)),
                1 => assert_eq!(put(rules_text(n), "application/toml").await.unwrap().status(), 200),
                2 => {
                    rename_into(&rules_path, &rules_text(n));
                    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
                }
                4 => assert_eq!(put(rules_yaml(n), "application/yaml").await.unwrap().status(), 200),
                6 => {
                    let text = rules_text(n);
                    let record = FutureRecord::to("rules").key("rules").payload(&text);
                    assert!(producer.send(record, Duration::from_secs(5)).await.is_ok(), "publish {n}");
                }
                _ => {
                    let which = if n % 14 == 5 { "kill" } else { "unkill" };
                    let resp = http.post(format!("{admin}/rules/{which}")).bearer_auth(TOKEN).send().await.unwrap();
                    assert_eq!(resp.status(), 200);
                    rename_into(&rules_path, &rules_text(n));
                }
            }
            accepted += 1;
        }
        for c in clients {
            c.await.unwrap();
        }
        let metrics = http.get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap();
        let reloads: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("switchyard_rules_reloads_total") && l.contains("result=\"accepted\""))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        let versions = seen.lock().unwrap().len();
        (accepted, versions, reloads)
    });
    let elapsed = started.elapsed();
    let total = requests.load(Ordering::Relaxed);
    println!(
        "{total} requests in {:.1} s ({:.0} req/s), {accepted_swaps} rule changes, {versions_seen} versions seen by clients",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    let (failed, wrong) = (failures.load(Ordering::Relaxed), misrouted.load(Ordering::Relaxed));
    fault_row(
        &format!("{SWAPS} rule changes in {} s through every source (file, SIGHUP, PUT TOML/YAML, kill/unkill, Kafka)", LOAD_FOR.as_secs()),
        &format!("{CLIENTS} clients, {:.0} req/s", total as f64 / elapsed.as_secs_f64()),
        &format!("{failed} of {total}"),
        &format!("{wrong} misrouted"),
        &format!("{reloads} reloads applied (file changes closer than the watch's debounce coalesce), {versions_seen} versions seen by clients"),
    );
    // Changes closer together than the file watch's debounce are applied as one.
    assert!(reloads >= SWAPS as f64 / 2.0, "only {reloads} accepted reloads");
    let examples = examples.lock().unwrap();
    assert_eq!(failures.load(Ordering::Relaxed), 0, "failed requests: {:?}", &examples[..examples.len().min(10)]);
    assert_eq!(misrouted.load(Ordering::Relaxed), 0, "misrouted: {:?}", &examples[..examples.len().min(10)]);
    assert!(versions_seen >= 300, "clients saw only {versions_seen} versions");
    let _ = std::fs::remove_dir_all(&dir);
}

//! `switchyard demo ramp`: a ramp of short steps in front of two simulated fleets; partway through,
//! the scheduler fleet starts answering a share of invocations with 503 (a time-based fault in its
//! simulator profile); the ramp's platform-failure gate rolls it back. Prints each step as it
//! happens, and the rollback with its reason and how long after the fault began it came.
//!
//! With `--approve`, the third step waits for a person: the demo shows the command that approves
//! it (and approves it itself after a few seconds if nobody does), and at the end the
//! notifications a webhook receiver on loopback got.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_rules::Pool;
use whisk_sim::{Fault, Flavor, SimConfig, SimFleet};

use crate::data::service::POOL_HEADER;
use crate::demo::DemoError;
use crate::ops::clock::now_ms;
use crate::ops::config::ServerConfig;

/// When the scheduler fleet starts failing, after the simulators start (later with an approval
/// step, which the demo waits at for up to [`APPROVE_AFTER`]).
const FAULT_AFTER: Duration = Duration::from_secs(7);
const FAULT_AFTER_APPROVAL: Duration = Duration::from_secs(14);
/// How long the demo waits for someone to approve before approving itself.
const APPROVE_AFTER: Duration = Duration::from_secs(5);
const FAULT_SHARE: f64 = 0.3;
const WINDOW_S: u64 = 3;
/// The demo gives up when the ramp has not rolled back by then.
const ROLLBACK_WITHIN: Duration = Duration::from_secs(60);

fn rules(start_ms: u64, approve: bool) -> String {
    format!(
        r#"version = "demo-ramp"
[ramp]
start = {}
window_s = {WINDOW_S}
steps = [
  {{ share = 5, hold_s = 2 }},
  {{ share = 25, hold_s = 2 }},
  {{ share = 50, hold_s = 2, approve = {approve} }},
  {{ share = 100, hold_s = 0 }},
]
[ramp.gates]
platform_failure = {{ min_samples = 20 }}
throttled = {{ min_samples = 20 }}
queued = {{ min_samples = 20 }}
"#,
        start_ms / 1000
    )
}

pub fn run(approve: bool) -> Result<(), DemoError> {
    let fault_after = if approve { FAULT_AFTER_APPROVAL } else { FAULT_AFTER };
    let legacy = SimConfig::with_flavor(Flavor::Legacy);
    let mut scheduler = SimConfig::with_flavor(Flavor::Scheduler);
    scheduler.faults =
        vec![Fault { after_ms: fault_after.as_millis() as u64, for_ms: None, share: FAULT_SHARE, status: 503 }];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(DemoError::Runtime)?;
    let began = Instant::now();
    let sims = SimFleet::start(legacy, scheduler).map_err(DemoError::Simulator)?;
    // The next whole second: the ramp's start is written in seconds.
    let start_ms = (now_ms() / 1000 + 1) * 1000;
    let path = sims.write("rules.toml", &rules(start_ms, approve)).map_err(DemoError::write("rules.toml".as_ref()))?;
    let mut config = ServerConfig::local(&path, sims.legacy.addr(), sims.scheduler.addr());
    let token = format!("demo-{:032x}", rand::random::<u128>());
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    if approve {
        config.admin.token = Some(token.clone());
        let receiver = runtime.block_on(receive_events(Arc::clone(&received))).map_err(DemoError::Runtime)?;
        config.notify = vec![crate::ops::config::NotifyConfig {
            url: format!("http://{receiver}/events"),
            events: Vec::new(),
            format: Default::default(),
            secret_file: None,
        }];
    }
    let proxy = crate::server::start(config.resolve("demo")?)?;
    let approve_command = format!("switchyard ramp approve --admin http://{} --token {token}", proxy.admin_addr);
    println!("switchyard demo ramp: a self-driving ramp in front of two simulated OpenWhisk fleets\n");
    println!("  rules: steps 5 % → 25 % → 50 % → 100 %, 2 s each; gates over a {WINDOW_S} s window");
    if approve {
        println!("  the third step (50 %) waits for a person's approval; every event goes to a webhook on loopback");
    }
    println!(
        "  fault: {:.0} s after start, the scheduler fleet answers {:.0} % of invocations with 503\n",
        fault_after.as_secs_f64(),
        FAULT_SHARE * 100.0
    );

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let load = runtime.spawn(drive(format!("http://{}", proxy.proxy_addr), Arc::clone(&stop), Arc::clone(&served)));

    let clock = |at: Instant| at.duration_since(began).as_secs_f64();
    let mut last_state = String::new();
    let mut fault_said = false;
    let mut waiting_since = None;
    let outcome = loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if waiting_since.is_some_and(|since| now.duration_since(since) >= APPROVE_AFTER) {
            waiting_since = None;
            if proxy.shared.rules.approve_ramp(None, "the demo").is_ok() {
                println!(
                    "  +{:5.1} s  nobody approved within {} s: the demo approves it (POST /ramp/approve)",
                    clock(now),
                    APPROVE_AFTER.as_secs()
                );
            }
        }
        if !fault_said && now.duration_since(began) >= fault_after {
            fault_said = true;
            println!("  +{:5.1} s  the scheduler fleet starts failing", clock(now));
        }
        let Some(status) = proxy.shared.rules.ramp_status(now_ms()) else {
            break Err(DemoError::NoRamp);
        };
        let state = format!("{}/{}", status["state"], status["step"]["index"]);
        if state != last_state {
            last_state = state;
            print_change(clock(now), &status, began + fault_after, now);
            if status["state"] == "awaiting_approval" {
                println!("             approve it: {approve_command}");
                waiting_since = Some(now);
            }
            if status["state"] == "rolled_back" {
                break Ok(now);
            }
        }
        if now.duration_since(began) > ROLLBACK_WITHIN {
            break Err(DemoError::NoRollback(ROLLBACK_WITHIN));
        }
    };
    stop.store(true, Relaxed);
    let _ = runtime.block_on(load);
    let rolled_back_at = outcome?;
    let [legacy, scheduler] = [&served[0], &served[1]].map(|c| c.load(Relaxed));
    println!(
        "\n  {} invocations: {legacy} served by legacy, {scheduler} by the scheduler; after the rollback every one goes to legacy",
        legacy + scheduler
    );
    println!(
        "  the rollback came {:.1} s after the fault began (gate window {WINDOW_S} s, evaluated every 250 ms)",
        rolled_back_at.duration_since(began + fault_after).as_secs_f64()
    );
    if approve {
        // The last events may still be on their way.
        std::thread::sleep(Duration::from_millis(500));
        let got = received.lock().map(|r| r.clone()).unwrap_or_default();
        println!("  notifications the webhook got ({}): {}", got.len(), got.join(", "));
    }
    println!("  against a running replica, `switchyard ramp --admin URL` shows where its ramp stands");
    Ok(())
}

fn print_change(at_s: f64, status: &Value, fault_at: Instant, now: Instant) {
    match status["state"].as_str() {
        Some("not_started") => println!("  +{at_s:5.1} s  waiting for the ramp's start"),
        Some("awaiting_approval") => println!(
            "  +{at_s:5.1} s  WAITING for an approval of step {} of {}: {} to the scheduler",
            status["awaiting_approval"]["index"].as_u64().unwrap_or(0) + 1,
            status["steps"].as_array().map_or(0, Vec::len),
            status["awaiting_approval"]["share"].as_str().unwrap_or("?")
        ),
        Some("rolled_back") => {
            let reason = status["rollback"]["reason"].as_str().unwrap_or("?");
            println!("  +{at_s:5.1} s  ROLLED BACK to {}: {reason}", status["share"].as_str().unwrap_or("0%"));
            if now >= fault_at {
                println!("             ({:.1} s after the fault began)", now.duration_since(fault_at).as_secs_f64());
            }
        }
        _ => println!(
            "  +{at_s:5.1} s  step {} of {}: {} to the scheduler",
            status["step"]["index"].as_u64().unwrap_or(0) + 1,
            status["steps"].as_array().map_or(0, Vec::len),
            status["share"].as_str().unwrap_or("?")
        ),
    }
}

/// Blocking invokes over 300 actions from 8 loops until stopped, counting which pool served each.
async fn drive(base: String, stop: Arc<AtomicBool>, served: Arc<[AtomicU64; 2]>) {
    let client = reqwest::Client::new();
    let (user, key) = whisk_sim::guest_credentials();
    let loops: Vec<_> = (0..8)
        .map(|l| {
            let (client, base, stop, served) = (client.clone(), base.clone(), Arc::clone(&stop), Arc::clone(&served));
            tokio::spawn(async move {
                let mut n = l;
                while !stop.load(Relaxed) {
                    let url = format!("{base}/api/v1/namespaces/guest/actions/action-{}?blocking=true", n % 300);
                    if let Ok(resp) = client.post(url).basic_auth(user, Some(key)).send().await {
                        let pool = resp.headers().get(POOL_HEADER).and_then(|v| v.to_str().ok()).and_then(Pool::parse);
                        if let Some(pool) = pool {
                            served[pool.index()].fetch_add(1, Relaxed);
                        }
                    }
                    n += 8;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    for l in loops {
        let _ = l.await;
    }
}

/// A webhook receiver on loopback: keeps the `event` of each notification it gets. Returns its
/// address.
async fn receive_events(received: Arc<std::sync::Mutex<Vec<String>>>) -> std::io::Result<std::net::SocketAddr> {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let received = Arc::clone(&received);
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let received = Arc::clone(&received);
                async move {
                    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
                    if let (Some(kind), Ok(mut got)) = (event["event"].as_str(), received.lock()) {
                        got.push(kind.to_string());
                    }
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::new(http_body_util::Empty::<bytes::Bytes>::new()),
                    )
                }
            });
            let io = hyper_util::rt::TokioIo::new(conn);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    Ok(addr)
}

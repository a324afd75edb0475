//! Stopping and restarting the real binary under load loses no request: SIGTERM keeps serving
//! through the grace period (readiness off), then drains; `run --upgrade` plus SIGQUIT hands the
//! listening sockets to a new process.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_tests::{free_port, guest_credentials};
use whisk_sim::{ActionProfile, Latency, SimConfig, SimHandle, Simulator};

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, name: &str) {
    assert!(Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap().success());
}

/// A simulator whose `slow-*` actions take `slow_ms` and the rest answer at once.
fn simulator(slow_ms: f64, very_slow_ms: f64) -> SimHandle {
    let quick = ActionProfile {
        latency: Latency { min_ms: 0.0, max_ms: 1.0, ..Latency::default() },
        ..ActionProfile::default()
    };
    let mut config = SimConfig { wait_time_ms: Some([0, 0]), default_action: quick, ..SimConfig::default() };
    for (name, ms) in [("guest/slow", slow_ms), ("guest/very-slow", very_slow_ms)] {
        config.actions.insert(
            name.into(),
            ActionProfile {
                latency: Latency { min_ms: ms, max_ms: ms, ..Latency::default() },
                ..ActionProfile::default()
            },
        );
    }
    Simulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).unwrap()
}

struct Setup {
    dir: PathBuf,
    config: PathBuf,
    proxy: SocketAddr,
    admin: SocketAddr,
    sims: [SimHandle; 2],
}

fn setup(name: &str, grace_s: u64, drain_s: u64) -> Setup {
    let sims = [simulator(3_000.0, 6_000.0), simulator(3_000.0, 6_000.0)];
    let dir = std::env::temp_dir().join(format!("switchyard-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules.toml"), "version = \"s\"\nscheduler_share = 0\n").unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let config = dir.join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nrules = \"rules.toml\"\nthreads = 2\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\
             [pools.legacy]\nmembers = [\"{}\"]\n[pools.scheduler]\nmembers = [\"{}\"]\n\
             [shutdown]\ngrace_period_s = {grace_s}\ndrain_timeout_s = {drain_s}\nupgrade_sock = \"{}\"\n",
            sims[0].addr(),
            sims[1].addr(),
            dir.join("upgrade.sock").display()
        ),
    )
    .unwrap();
    Setup {
        dir,
        config,
        proxy: SocketAddr::from(([127, 0, 0, 1], port)),
        admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
        sims,
    }
}

fn spawn(s: &Setup, log: &str, upgrade: bool) -> Proxy {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(["run", "--config"]).arg(&s.config);
    if upgrade {
        cmd.arg("--upgrade");
    }
    let child = cmd
        .env("SWITCHYARD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.dir.join(log)).unwrap())
        .spawn()
        .unwrap();
    Proxy(child)
}

fn wait_accepting(addr: SocketAddr, log: &Path) {
    switchyard_tests::wait_accepting(addr, || std::fs::read_to_string(log).unwrap_or_default());
}

/// A client that opens a new connection per request, as the listener sees a rolling restart.
fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(30)).build().unwrap()
}

async fn invoke(c: &reqwest::Client, proxy: SocketAddr, action: &str) -> Result<u16, String> {
    let (user, key) = guest_credentials();
    c.post(format!("http://{proxy}/api/v1/namespaces/guest/actions/{action}?blocking=true&result=true"))
        .basic_auth(user, Some(key))
        .json(&serde_json::json!({}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

fn exited_within(p: &mut Proxy, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if p.0.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Continuous load: `loops` clients invoking `guest/hello` one call after another until stopped
/// (bounded: at most 20 s), counting answers and failures.
struct Hammer {
    ok: Arc<AtomicU64>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    done: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Hammer {
    fn start(rt: &tokio::runtime::Runtime, proxy: SocketAddr, loops: usize) -> Hammer {
        let (ok, failures, done) = (
            Arc::new(AtomicU64::new(0)),
            Arc::<std::sync::Mutex<Vec<String>>>::default(),
            Arc::new(AtomicBool::new(false)),
        );
        let tasks = (0..loops)
            .map(|_| {
                let (ok, done, failures) = (Arc::clone(&ok), Arc::clone(&done), Arc::clone(&failures));
                rt.spawn(async move {
                    let c = client();
                    let until = Instant::now() + Duration::from_secs(20);
                    while !done.load(Ordering::Relaxed) && Instant::now() < until {
                        match invoke(&c, proxy, "hello").await {
                            Ok(200) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            other => {
                                failures.lock().unwrap().push(format!("{other:?}"));
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Hammer { ok, failures, done, tasks }
    }

    fn served(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops the loops: the answers served, and each failure.
    fn stop(self, rt: &tokio::runtime::Runtime) -> (u64, Vec<String>) {
        self.done.store(true, Ordering::Relaxed);
        for t in self.tasks {
            rt.block_on(t).unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.ok.load(Ordering::Relaxed), failures)
    }
}

#[test]
fn sigterm_serves_through_the_grace_period_then_drains() {
    let s = setup("stop", 3, 20);
    let mut proxy = spawn(&s, "stop.log", false);
    wait_accepting(s.proxy, &s.dir.join("stop.log"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Load through the grace period, as while the endpoint is being removed from the balancer.
    let hammer = Hammer::start(&rt, s.proxy, 4);
    let in_flight = rt.block_on(async {
        let c = client();
        // In flight when the stop begins: eight 3 s calls and one 6 s call.
        let mut in_flight: Vec<_> = (0..8).map(|_| tokio::spawn(invoke_owned(c.clone(), s.proxy, "slow"))).collect();
        in_flight.push(tokio::spawn(invoke_owned(c.clone(), s.proxy, "very-slow")));
        tokio::time::sleep(Duration::from_millis(500)).await;
        signal(&proxy.0, "TERM");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ready = reqwest::get(format!("http://{}/readyz", s.admin)).await.unwrap();
        assert_eq!(ready.status(), 503, "readiness turns off at once");
        // New connections during the grace period are served.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let late: Vec<_> = (0..4).map(|_| tokio::spawn(invoke_owned(c.clone(), s.proxy, "hello"))).collect();
        // The balancer has taken the endpoint out before the grace period (3 s) ends.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        in_flight.extend(late);
        in_flight
    });
    let (served, failures) = hammer.stop(&rt);
    rt.block_on(async {
        for t in in_flight {
            assert_eq!(t.await.unwrap(), Ok(200));
        }
    });
    switchyard_tests::fault_row(
        "SIGTERM under load (3 s grace, then drain)",
        "4 clients back to back, 9 calls of 3–6 s in flight",
        &format!("{} of {}", failures.len(), served + failures.len() as u64 + 13),
        "0 answers",
        "in-flight calls finish; readiness off at once; exit after the drain",
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(exited_within(&mut proxy, Duration::from_secs(15)), "did not exit after draining");
    assert!(TcpStream::connect(s.proxy).is_err(), "the listener is closed after the stop");
}

async fn invoke_owned(c: reqwest::Client, proxy: SocketAddr, action: &'static str) -> Result<u16, String> {
    invoke(&c, proxy, action).await
}

#[test]
fn an_upgrade_hands_the_sockets_over_and_loses_no_answer() {
    let s = setup("upgrade", 0, 10);
    let mut old = spawn(&s, "old.log", false);
    wait_accepting(s.proxy, &s.dir.join("old.log"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let hammer = Hammer::start(&rt, s.proxy, 4);
    std::thread::sleep(Duration::from_millis(500));
    let mut new = spawn(&s, "new.log", true);
    // The new process listens on the upgrade socket once it is ready for the listeners; only then
    // is the old one told to send them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.dir.join("upgrade.sock").exists() {
        assert!(Instant::now() < deadline, "the new process never waited for the sockets");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&old.0, "QUIT");
    assert!(exited_within(&mut old, Duration::from_secs(20)), "the old process did not exit");
    let served_before = hammer.served();
    std::thread::sleep(Duration::from_secs(1));
    let (ok, failures) = hammer.stop(&rt);
    let failed = failures.len();
    switchyard_tests::fault_row(
        "socket-handover restart under load (`run --upgrade`, SIGQUIT)",
        "4 clients back to back",
        &format!("{failed} of {}", ok + failed as u64),
        "0 answers (every call a controller ran was answered)",
        "the new process serves from the handover on",
    );
    // Nothing is lost: every request a controller ran was answered. pingora drops a connection
    // still waiting for its first request header when the old process stops accepting (its
    // shutdown is one signal for the listeners and those readers), so a connection opened in that
    // instant can be reset before any controller saw its request: rare, bounded, and never a lost
    // answer. The README states it.
    let executed: u64 = s.sims.iter().map(|sim| sim.stats().kind(whisk_sim::RequestKind::Invoke)).sum();
    assert_eq!(executed, ok, "a request ran on a controller but its answer was lost");
    assert!(failed <= 3, "{failed} failed: {failures:?}");
    assert!(
        failures.iter().all(|f| f.contains("ConnectionReset")
            || f.contains("IncompleteMessage")
            || f.contains("connection closed")),
        "{failures:?}"
    );
    assert!(ok > served_before, "the new process serves after the old one left");
    assert!(new.0.try_wait().unwrap().is_none(), "the new process runs");
    // pingora logs its wait for the sockets at error level ("No incoming socket transfer"); no
    // other error may appear.
    let log = std::fs::read_to_string(s.dir.join("new.log")).unwrap_or_default();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR") && !l.contains("transfer_fd")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

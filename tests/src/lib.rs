//! The test kit: a switchyard in front of two simulated controller fleets, free ports, the guest
//! credentials, clients, and reading the proxy's Prometheus metrics. Shared by every test and the
//! proxy's benchmarks (see `tests/README.md` for which test goes where).
#![forbid(unsafe_code)]

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use switchyard::{RunningProxy, ServerConfig};
pub use whisk_sim::{guest_credentials, GUEST_KEY};
use whisk_sim::{Flavor, SimConfig, SimFleet};

pub mod broker;
pub mod chaos;
pub mod dns;
pub mod scripted;
pub mod tools;
pub mod webhook;

/// A switchyard in front of two simulated fleets, on free loopback ports. The simulated fleets
/// (`legacy`, `scheduler`, `dir`) are reached through it as through a [`SimFleet`].
pub struct LocalFleet {
    /// Declared first so it stops before the simulators behind it.
    pub proxy: RunningProxy,
    pub sims: SimFleet,
}

/// Adjusts a generated server config before start.
pub type ConfigTweak = Box<dyn FnOnce(&mut ServerConfig)>;

/// What to start: simulator configs (`new` gives each pool its flavor) and the rules text.
pub struct FleetSpec {
    pub legacy: SimConfig,
    pub scheduler: SimConfig,
    /// TOML rules document.
    pub rules: String,
    /// Adjusts the generated server config before start (timeouts, health, extra members).
    pub tweak: Option<ConfigTweak>,
}

impl FleetSpec {
    pub fn new(rules: &str) -> FleetSpec {
        FleetSpec {
            legacy: SimConfig::with_flavor(Flavor::Legacy),
            scheduler: SimConfig::with_flavor(Flavor::Scheduler),
            rules: rules.to_string(),
            tweak: None,
        }
    }
}

impl LocalFleet {
    /// Starts the simulators, writes the rules, and starts a proxy with [`ServerConfig::local`].
    pub fn start(spec: FleetSpec) -> Result<LocalFleet, String> {
        let sims =
            SimFleet::start(spec.legacy, spec.scheduler).map_err(|e| format!("cannot start a simulator: {e}"))?;
        let rules = sims.write("rules.toml", &spec.rules).map_err(|e| format!("cannot write the rules: {e}"))?;
        let mut config = ServerConfig::local(&rules, sims.legacy.addr(), sims.scheduler.addr());
        if let Some(tweak) = spec.tweak {
            tweak(&mut config);
        }
        let proxy =
            switchyard::start(config.resolve("fleet").map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        Ok(LocalFleet { proxy, sims })
    }

    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy.proxy_addr)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.proxy.admin_addr)
    }

    pub fn shadow_records_path(&self) -> PathBuf {
        self.sims.path("shadow-records.jsonl")
    }

    pub fn rules_path(&self) -> PathBuf {
        self.sims.path("rules.toml")
    }
}

impl std::ops::Deref for LocalFleet {
    type Target = SimFleet;

    fn deref(&self) -> &SimFleet {
        &self.sims
    }
}

/// Waits until something accepts connections on `addr` (a process the test started), at most
/// 30 s; `why` says what went wrong (a log, say) when it never does.
pub fn wait_accepting(addr: SocketAddr, why: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(std::time::Instant::now() < deadline, "nothing accepts on {addr}: {}", why());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every log line of this test binary, in the text format an operator's terminal gets, at `level`
/// (as `SWITCHYARD_LOG` says it). The first call in a test binary installs the capture, with the
/// level it asks for; later calls share it.
pub fn captured_logs(level: &str) -> &'static std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buf);
        let _ = tracing_subscriber::fmt()
            .with_env_filter(switchyard::log_filter(level))
            .with_ansi(false)
            .with_writer(move || Shared(Arc::clone(&writer)))
            .try_init();
        buf
    })
}

/// A free loopback port (bound, then released; for servers that bind by themselves).
pub fn free_port() -> u16 {
    closed_port().port()
}

/// Runs async client code from a plain `#[test]`: the fleet's own runtimes must not be started
/// from inside another runtime, so tests start the fleet first and then drive it from here.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime").block_on(f)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().expect("client")
}

/// A loopback address where nothing listens (bound, then released).
pub fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port")
}

/// `POST .../actions/{path}?blocking=true&result=true` with the guest key.
pub fn invoke(client: &reqwest::Client, base: &str, path: &str, params: serde_json::Value) -> reqwest::RequestBuilder {
    let (user, key) = guest_credentials();
    client
        .post(format!("{base}/api/v1/namespaces/guest/actions/{path}?blocking=true&result=true"))
        .basic_auth(user, Some(key))
        .json(&params)
}

/// The guest's Basic credentials for other API calls.
pub fn with_guest(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let (user, key) = guest_credentials();
    req.basic_auth(user, Some(key))
}

pub fn pool_of(resp: &reqwest::Response) -> String {
    resp.headers().get("x-switchyard-pool").and_then(|v| v.to_str().ok()).unwrap_or("none").to_string()
}

pub async fn metrics_text(fleet_admin: &str) -> String {
    client().get(format!("{fleet_admin}/metrics")).send().await.expect("scrape").text().await.expect("body")
}

/// The value of one sample in Prometheus text, matched by name and a subset of its labels
/// (`[("pool","legacy")]`); 0 when absent.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric_name, label_part) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric_name == name && labels.iter().all(|(k, v)| label_part.contains(&format!("{k}=\"{v}\""))))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Comparisons the proxy made, every outcome kind summed (`switchyard_shadow_comparisons_total`).
pub fn comparisons(text: &str) -> f64 {
    <switchyard_shadow::OutcomeKind as strum::IntoEnumIterator>::iter()
        .map(|o| metric(text, "switchyard_shadow_comparisons_total", &[("outcome", o.as_str())]))
        .sum()
}

/// One answer the background load got.
#[derive(Debug, Clone)]
pub struct Answer {
    /// When the request was sent, from the start of the load.
    pub sent: std::time::Duration,
    pub latency: std::time::Duration,
    /// The pool that served it (`x-switchyard-pool`), empty when none said.
    pub pool: String,
    /// `None`: no answer (the connection failed or was cut).
    pub status: Option<u16>,
}

impl Answer {
    /// Whether the client got what it asked for: a `2xx`.
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Background load for as long as a test needs it: `concurrency` loops, each sending blocking
/// invokes of `guest/{prefix}-{n}` (over `actions` actions) with the guest key and `query`, a few
/// milliseconds apart, on a thread and runtime of its own. Bounded: it stops on [`Load::stop`],
/// on drop, or after 60 s.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    started: std::time::Instant,
    thread: Option<std::thread::JoinHandle<Vec<Answer>>>,
}

impl Load {
    pub fn start(base: &str, prefix: &str, actions: usize, concurrency: usize, query: &str) -> Load {
        let (user, key) = guest_credentials();
        Load::start_as(base, "guest", (user, key), prefix, actions, concurrency, query)
    }

    /// Like [`Load::start`], in `namespace` with the key `(user, key)`.
    pub fn start_as(
        base: &str,
        namespace: &str,
        (user, key): (&str, &str),
        prefix: &str,
        actions: usize,
        concurrency: usize,
        query: &str,
    ) -> Load {
        use std::sync::atomic::Ordering::Relaxed;
        let (namespace, user, key) = (namespace.to_string(), user.to_string(), key.to_string());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (base, prefix, query, flag) = (base.to_string(), prefix.to_string(), query.to_string(), stop.clone());
        let started = std::time::Instant::now();
        let thread = std::thread::spawn(move || {
            block_on(async move {
                let c = client();
                let loops = (0..concurrency).map(|l| {
                    let (c, base, prefix, query, flag) =
                        (c.clone(), base.clone(), prefix.clone(), query.clone(), flag.clone());
                    let (namespace, user, key) = (namespace.clone(), user.clone(), key.clone());
                    tokio::spawn(async move {
                        let mut seen = Vec::new();
                        let mut n = l;
                        while !flag.load(Relaxed) && started.elapsed() < std::time::Duration::from_secs(60) {
                            let url = format!(
                                "{base}/api/v1/namespaces/{namespace}/actions/{prefix}-{}?{query}",
                                n % actions
                            );
                            let sent = started.elapsed();
                            let answer = c.post(url).basic_auth(&user, Some(&key)).send().await;
                            // A cut body is no answer either.
                            let (pool, status) = match answer {
                                Ok(resp) => {
                                    let (pool, status) = (pool_of(&resp), resp.status().as_u16());
                                    (pool, resp.bytes().await.ok().map(|_| status))
                                }
                                Err(_) => (String::new(), None),
                            };
                            seen.push(Answer { sent, latency: started.elapsed() - sent, pool, status });
                            n += concurrency;
                            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
                        }
                        seen
                    })
                });
                let mut all = Vec::new();
                for handle in loops.collect::<Vec<_>>() {
                    all.extend(handle.await.unwrap_or_default());
                }
                all.sort_by_key(|a| a.sent);
                all
            })
        });
        Load { stop, started, thread: Some(thread) }
    }

    /// Time since the load started (the clock of [`Answer::sent`]).
    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Stops the loops and returns every answer, in the order they were sent.
    pub fn stop(mut self) -> Vec<Answer> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Prints one row of the README's fault table (`scripts/faults` collects the rows from the tests'
/// output): the case, the load, what clients saw fail, what was lost, and the recovery.
pub fn fault_row(case: &str, load: &str, client_errors: &str, lost: &str, recovery: &str) {
    println!("FAULT-ROW | {case} | {load} | {client_errors} | {lost} | {recovery} |");
}

/// `GET /ramp` on the admin port.
pub async fn ramp_status(admin: &str) -> serde_json::Value {
    client().get(format!("{admin}/ramp")).send().await.expect("GET /ramp").json().await.expect("JSON")
}

/// Unix time in milliseconds (ramp starts are wall-clock times).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Rules that keep everything on legacy and mirror every `guest/pure-*` invocation for comparison.
pub const SHADOW_PURE: &str = r#"
version = "shadow"
scheduler_share = 0
[[overrides]]
namespace = "guest"
action = "pure-*"
share = 0
shadow = { sample = 100 }
"#;

/// `GET /shadow/report` once it holds at least `n` records (at most 20 s).
pub async fn shadow_report_with(admin: &str, n: u64) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let report: serde_json::Value =
            client().get(format!("{admin}/shadow/report")).send().await.unwrap().json().await.unwrap();
        if report["records"].as_u64() >= Some(n) {
            return report;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "only {} of {n} records: {report}",
            report["records"]
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A fresh scratch directory under the system's temp directory, unique to this process and `name`.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

//! `switchyard demo`: two simulated controller fleets and a switchyard in front of them, driven
//! with a few thousand invocations over a few hundred actions; prints where traffic went.
//! `ramp` is the self-driving ramp scenario.

pub mod ramp;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use strum::IntoEnumIterator;
use switchyard_rules::Pool;
use tokio::sync::Semaphore;
use whisk_sim::{ActionProfile, Flavor, RequestKind, SimConfig, SimFleet};

use crate::data::service::POOL_HEADER;
use crate::ops::config::ConfigError;
use crate::ops::config::ServerConfig;
use crate::server::{RunningProxy, StartError};

pub const DEMO_RULES: &str = r#"
version = "demo-1"
scheduler_share = 25

[[overrides]]
name = "batch jobs stay on legacy"
namespace = "guest"
action = "batch-*"
share = 0

[[overrides]]
name = "the image pipeline moves first"
namespace = "guest"
package = "img"
share = 100
# resize is side-effect free: mirror every call to the other path and compare.
shadow = { sample = 100, calibrate = 20 }

[[overrides]]
name = "reports are pure too: mirror a quarter of them"
namespace = "guest"
action = "report-*"
share = 25
shadow = { sample = 25 }
"#;

/// The one action whose scheduler-side result differs in the demo.
const DIVERGING_ACTION: &str = "guest/img/resize-1";

/// Which demo to run.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Scenario {
    /// Routing, stickiness and shadow comparison over a few thousand invocations.
    Shadow,
    /// A ramp of short steps; the scheduler path starts failing partway; the ramp rolls back.
    Ramp,
}

pub struct DemoOptions {
    pub invocations: usize,
    pub actions: usize,
    pub concurrency: usize,
    /// Where the HTML shadow report is written (the records go next to it, as `.jsonl`).
    pub html_report: std::path::PathBuf,
    /// `demo ramp`: the third step waits for an approval, and the notifications are shown.
    pub approve: bool,
}

/// The demo's actions: every tenth a batch job, every tenth (offset) in the `img` package, every
/// tenth (offset again) a report.
fn action_path(i: usize) -> (String, String) {
    match i % 10 {
        0 => (String::new(), format!("batch-{i}")),
        1 => ("img".to_string(), format!("resize-{i}")),
        2 => (String::new(), format!("report-{i}")),
        _ => (String::new(), format!("action-{i}")),
    }
}

struct Outcome {
    action: usize,
    pool: Option<Pool>,
    status: u16,
    latency: Duration,
}

/// Why a demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start a simulator: {0}")]
    Simulator(std::io::Error),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: std::path::PathBuf, source: std::io::Error },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot start the load runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the load client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("a load task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("the shadow report is unavailable")]
    ReportUnavailable,
    #[error("the ramp is missing from the rules")]
    NoRamp,
    #[error("no rollback within {0:?}")]
    NoRollback(Duration),
}

impl DemoError {
    fn write(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
        move |source| DemoError::Write { path: path.to_path_buf(), source }
    }
}

pub fn run(opts: &DemoOptions) -> Result<(), DemoError> {
    let (mut legacy, mut scheduler) =
        (SimConfig::with_flavor(Flavor::Legacy), SimConfig::with_flavor(Flavor::Scheduler));
    // The new path returns a different result for one action: the report must point at it.
    for (config, format) in [(&mut legacy, "jpeg"), (&mut scheduler, "webp")] {
        config.actions.insert(
            DIVERGING_ACTION.to_string(),
            ActionProfile { result_patch: Some(serde_json::json!({ "format": format })), ..ActionProfile::default() },
        );
    }
    // Declared before the proxy, so the proxy stops first.
    let sims = SimFleet::start(legacy, scheduler).map_err(DemoError::Simulator)?;
    let rules = sims.write("rules.toml", DEMO_RULES).map_err(DemoError::write("rules.toml".as_ref()))?;
    let config = ServerConfig::local(&rules, sims.legacy.addr(), sims.scheduler.addr());
    let records_file = config.shadow.records_file.clone();
    let proxy = crate::server::start(config.resolve("demo")?)?;
    let proxy_url = format!("http://{}", proxy.proxy_addr);
    println!("switchyard demo: two simulated OpenWhisk controller fleets behind one switchyard\n");
    println!("  legacy controller (simulated, Kafka path)  http://{}", sims.legacy.addr());
    println!("  scheduler controller (simulated, FPC)      http://{}", sims.scheduler.addr());
    println!("  switchyard proxy                           {proxy_url}");
    println!("  switchyard admin (metrics, rules)          http://{}", proxy.admin_addr);
    println!("  rules: version demo-1, scheduler share 25 %, batch-* pinned to legacy, package img 100 % scheduler,");
    println!("         shadow comparison on for img/* (all, with calibration) and report-* (a quarter)\n");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(DemoError::Runtime)?;
    let started = Instant::now();
    let outcomes = runtime.block_on(drive(&proxy_url, opts))?;
    let elapsed = started.elapsed();
    report(&sims, opts, &outcomes, elapsed);
    shadow_report(&proxy, &records_file, opts)
}

async fn drive(base: &str, opts: &DemoOptions) -> Result<Vec<Outcome>, DemoError> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(opts.concurrency).build()?;
    let (user, key) = whisk_sim::guest_credentials();
    let bar = ProgressBar::new(opts.invocations as u64);
    bar.set_style(
        ProgressStyle::with_template("  {bar:40.cyan/blue} {pos}/{len} invocations  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let limit = Arc::new(Semaphore::new(opts.concurrency));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut tasks = Vec::with_capacity(opts.invocations);
    for n in 0..opts.invocations {
        // Skewed like real traffic: half the calls go to the 20 busiest actions.
        let action = if rng.random_bool(0.5) {
            rng.random_range(0..opts.actions.min(20))
        } else {
            rng.random_range(0..opts.actions)
        };
        let (pkg, name) = action_path(action);
        let path = if pkg.is_empty() { name } else { format!("{pkg}/{name}") };
        let url = format!("{base}/api/v1/namespaces/guest/actions/{path}?blocking=true");
        let request =
            client.post(url).basic_auth(user, Some(key)).json(&serde_json::json!({"name": format!("caller {n}")}));
        let permit = Arc::clone(&limit).acquire_owned().await.expect("the demo never closes its semaphore");
        let bar = bar.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let result = request.send().await;
            drop(permit);
            bar.inc(1);
            match result {
                Ok(resp) => {
                    let pool = resp.headers().get(POOL_HEADER).and_then(|v| v.to_str().ok()).and_then(Pool::parse);
                    let status = resp.status().as_u16();
                    let _ = resp.bytes().await;
                    Outcome { action, pool, status, latency: t.elapsed() }
                }
                Err(_) => Outcome { action, pool: None, status: 0, latency: t.elapsed() },
            }
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        outcomes.push(t.await?);
    }
    bar.finish_and_clear();
    Ok(outcomes)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn report(sims: &SimFleet, opts: &DemoOptions, outcomes: &[Outcome], elapsed: Duration) {
    let mut by_pool: HashMap<Pool, Vec<Duration>> = HashMap::new();
    let mut pools_of_action: HashMap<usize, Vec<Pool>> = HashMap::new();
    let mut errors = 0;
    for o in outcomes {
        match o.pool {
            Some(pool) if o.status < 500 && o.status != 0 => {
                by_pool.entry(pool).or_default().push(o.latency);
                let seen = pools_of_action.entry(o.action).or_default();
                if !seen.contains(&pool) {
                    seen.push(pool);
                }
            }
            _ => errors += 1,
        }
    }
    println!(
        "  {} invocations over {} actions in {:.1} s ({:.0} req/s, {} concurrent)\n",
        outcomes.len(),
        opts.actions,
        elapsed.as_secs_f64(),
        outcomes.len() as f64 / elapsed.as_secs_f64(),
        opts.concurrency
    );
    println!("  {:<10} {:>8} {:>8} {:>10} {:>10} {:>10}", "pool", "requests", "actions", "p50", "p90", "p99");
    for pool in Pool::iter() {
        let mut lat = by_pool.remove(&pool).unwrap_or_default();
        lat.sort();
        let actions = pools_of_action.values().filter(|p| p.contains(&pool)).count();
        println!(
            "  {:<10} {:>8} {:>8} {:>10} {:>10} {:>10}",
            pool.as_str(),
            lat.len(),
            actions,
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.9)),
            ms(percentile(&lat, 0.99))
        );
    }
    // The global 25 % applies to actions no override covers: measure the share there.
    let global: Vec<&Vec<Pool>> =
        pools_of_action.iter().filter(|(a, _)| !matches!(**a % 10, 0..=2)).map(|(_, p)| p).collect();
    let to_scheduler = global.iter().filter(|p| p.contains(&Pool::Scheduler)).count();
    let sticky = pools_of_action.values().all(|p| p.len() == 1);
    println!(
        "\n  realised share (actions under the global rule): {:.1} % to scheduler (target 25 %), {} of {} actions",
        100.0 * to_scheduler as f64 / global.len().max(1) as f64,
        to_scheduler,
        global.len()
    );
    println!(
        "  stickiness: {}",
        if sticky { "every action was always served by the same pool" } else { "SOME ACTIONS WERE SPLIT ACROSS POOLS" }
    );
    // Shadow copies may still be running: these counts are a snapshot.
    let (legacy, scheduler) = (sims.legacy.stats(), sims.scheduler.stats());
    println!(
        "  the controllers counted: legacy {} invocations ({} of them shadow copies), scheduler {} ({})",
        legacy.kind(RequestKind::Invoke),
        legacy.shadow_marked,
        scheduler.kind(RequestKind::Invoke),
        scheduler.shadow_marked
    );
    println!("  failed requests: {errors}");
    println!(
        "\n  The latency gap comes from the simulator's profiles (an assumed waitTime range per flavor), not from"
    );
    println!("  either path: against real fleets, measure it.");
}

/// Waits for the mirrors in flight, then prints the shadow report and writes its HTML page.
fn shadow_report(proxy: &RunningProxy, records_file: &std::path::Path, opts: &DemoOptions) -> Result<(), DemoError> {
    let shadow = &proxy.shared.shadow;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = u64::MAX;
    loop {
        let records = shadow.report.lock().map(|r| r.records).unwrap_or(0);
        // Settled: no new record in the last half second.
        if records == last || Instant::now() > deadline {
            break;
        }
        last = records;
        std::thread::sleep(Duration::from_millis(500));
    }
    let report = shadow.report.lock().map_err(|_| DemoError::ReportUnavailable)?;
    println!("\n{}", report.to_text_brief());
    let html = opts.html_report.clone();
    std::fs::write(&html, switchyard_shadow::html::page(&report, &[])).map_err(DemoError::write(&html))?;
    println!("  The same report as a page: {}", html.display());
    // The fleet's directory goes away with it; keep the records next to the page.
    let records = html.with_extension("jsonl");
    std::fs::copy(records_file, &records).map_err(DemoError::write(&records))?;
    println!("  The records: {0} (`switchyard report --from {0}` rebuilds the report)", records.display());
    Ok(())
}

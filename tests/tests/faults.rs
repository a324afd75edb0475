//! The fault suite: what each failure costs a client under load, what is lost, and how long until
//! it is over. Each case states what must hold and asserts it, and prints one row of the README's
//! table (`scripts/faults` runs every case, these and the ones in other files, and collects them).
//!
//! The controller faults run against a legacy pool of two controllers, each behind a
//! [`ChaosController`], with the production health settings (a `GET /ping` a second, out after two
//! failures, back after one success); everything else is routed nowhere (`scheduler_share = 0`).

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use switchyard::HealthConfig;
use switchyard_tests::chaos::{ChaosController, Fault};
use switchyard_tests::{
    block_on, client, comparisons, fault_row, metric, metrics_text, Answer, FleetSpec, Load, LocalFleet,
};
use whisk_sim::{ActionProfile, Flavor, Latency, SimConfig, SimHandle, Simulator};

const CLIENTS: usize = 16;

/// One case at a time: each measures what a fault costs, which a neighbour's load would distort.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
/// How long the load runs before a fault, and after it ends.
const SETTLE: Duration = Duration::from_millis(1500);

/// A quick controller: actions take 2–6 ms, no queueing.
fn quick(flavor: Flavor) -> SimConfig {
    SimConfig {
        wait_time_ms: Some([0, 0]),
        default_action: ActionProfile {
            latency: Latency { min_ms: 2.0, max_ms: 6.0, ..Latency::default() },
            ..ActionProfile::default()
        },
        ..SimConfig::with_flavor(flavor)
    }
}

struct TwoControllers {
    /// Declared first: the proxy stops before the controllers behind it.
    fleet: LocalFleet,
    a: ChaosController,
    b: ChaosController,
    _sims: [SimHandle; 2],
}

/// A legacy pool of two controllers behind chaos forwarders; `read_ms` is the proxy's read timeout.
fn legacy_pool_of_two(read_ms: u64) -> TwoControllers {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let sims = [
        Simulator::start(quick(Flavor::Legacy), loopback).unwrap(),
        Simulator::start(quick(Flavor::Legacy), loopback).unwrap(),
    ];
    let (a, b) = (ChaosController::start(sims[0].addr()), ChaosController::start(sims[1].addr()));
    let members = vec![a.addr().to_string(), b.addr().to_string()];
    let mut spec = FleetSpec::new("version = \"faults\"\nscheduler_share = 0\n");
    spec.scheduler = quick(Flavor::Scheduler);
    spec.tweak = Some(Box::new(move |c| {
        c.pools.legacy.members = members;
        c.health = HealthConfig::default();
        c.timeouts.read_ms = read_ms;
    }));
    TwoControllers { fleet: LocalFleet::start(spec).expect("fleet"), a, b, _sims: sims }
}

/// What a fault run saw.
struct Run {
    answers: Vec<Answer>,
    fault_at: Duration,
    /// From the fault's end until the faulty controller forwarded an invocation again.
    back_after: Option<Duration>,
}

impl Run {
    fn failed(&self) -> Vec<&Answer> {
        self.answers.iter().filter(|a| !a.ok()).collect()
    }

    /// Answers cut or never given: the client cannot know whether the action ran.
    fn lost(&self) -> usize {
        self.answers.iter().filter(|a| matches!(a.status, None | Some(502) | Some(504))).count()
    }

    /// From the fault's start until the last failed answer came back.
    fn errors_for(&self) -> Option<Duration> {
        self.failed().iter().map(|a| (a.sent + a.latency).saturating_sub(self.fault_at)).max()
    }

    fn rate(&self) -> f64 {
        let span = self.answers.last().map_or(1.0, |a| a.sent.as_secs_f64()).max(1.0);
        self.answers.len() as f64 / span
    }

    fn served_by(&self, pool: &str) -> usize {
        self.answers.iter().filter(|a| a.pool == pool).count()
    }

    fn p99_ms(&self, from: Duration, to: Duration) -> f64 {
        let mut l: Vec<f64> = self
            .answers
            .iter()
            .filter(|a| a.sent >= from && a.sent < to && a.ok())
            .map(|a| a.latency.as_secs_f64() * 1000.0)
            .collect();
        l.sort_by(f64::total_cmp);
        l.get((l.len() * 99 / 100).min(l.len().saturating_sub(1))).copied().unwrap_or(0.0)
    }

    fn row(&self, case: &str, recovery: String) {
        let failed = self.failed().len();
        fault_row(
            case,
            &format!("{CLIENTS} clients, {:.0} req/s", self.rate()),
            &format!("{failed} of {} ({:.2} %)", self.answers.len(), failed as f64 * 100.0 / self.answers.len() as f64),
            &format!("{} answers", self.lost()),
            &recovery,
        );
    }
}

/// Runs the load, applies `fault` to `faulty` for `hold`, ends it, and waits until the first
/// faulty controller takes invocations again.
fn run_fault(t: &TwoControllers, faulty: &[&ChaosController], fault: Fault, hold: Duration) -> Run {
    let load = Load::start(&t.fleet.proxy_url(), "f", 50, CLIENTS, "blocking=true");
    std::thread::sleep(SETTLE);
    let fault_at = load.elapsed();
    faulty.iter().for_each(|c| c.set(fault));
    std::thread::sleep(hold);
    let before = faulty[0].invocations();
    let ended = Instant::now();
    faulty.iter().for_each(|c| c.set(Fault::None));
    let mut back_after = None;
    while ended.elapsed() < Duration::from_secs(10) {
        if faulty[0].invocations() > before {
            back_after = Some(ended.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(SETTLE);
    Run { answers: load.stop(), fault_at, back_after }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn recovery(run: &Run, back: &str) -> String {
    let errors =
        run.errors_for().map_or("no errors".to_string(), |d| format!("errors for {} after the fault", secs(d)));
    let back = run.back_after.map_or("not back".to_string(), |d| format!("{back} {} later", secs(d)));
    format!("{errors}; {back}")
}

/// A controller process dies: the requests it had in flight fail (their connections drop), the
/// rest go to the other controller of the same pool (never the other pool), and it takes traffic
/// again once it is back and its health check passes.
#[test]
fn a_controller_killed_and_restarted() {
    let _serial = one_at_a_time();
    let t = legacy_pool_of_two(70_000);
    let run = run_fault(&t, &[&t.b], Fault::Killed, Duration::from_secs(3));
    run.row("a controller killed, restarted 3 s later", recovery(&run, "back in rotation"));
    let failed = run.failed();
    assert!(failed.len() <= CLIENTS, "only requests in flight on it may fail: {}", failed.len());
    assert!(run.errors_for().unwrap_or_default() < Duration::from_secs(1), "{:?}", run.errors_for());
    assert_eq!(run.served_by("scheduler"), 0, "a pool with a healthy member keeps its traffic");
    assert!(run.back_after.expect("back") < Duration::from_secs(3), "{:?}", run.back_after);
    assert!(t.a.invocations() > 0);
}

/// A controller accepts connections and never answers: what was sent to it before its health
/// check failed times out (`timeouts.read_ms`, 2 s here) with a 504; after that nothing is sent
/// to it until it answers again.
#[test]
fn a_controller_that_never_answers() {
    let _serial = one_at_a_time();
    let t = legacy_pool_of_two(2_000);
    let run = run_fault(&t, &[&t.b], Fault::Blackhole, Duration::from_secs(4));
    run.row("a controller accepts and never answers (4 s)", recovery(&run, "back in rotation"));
    let failed = run.failed();
    assert!(failed.iter().all(|a| a.status == Some(504)), "a timeout is a 504");
    assert!(
        failed.iter().all(|a| a.sent < run.fault_at + Duration::from_millis(2600)),
        "nothing is sent to it once its health check failed"
    );
    assert!(failed.len() <= 2 * CLIENTS, "{} failed", failed.len());
    assert!(run.back_after.expect("back") < Duration::from_secs(3));
}

/// A controller resets its connections halfway through each answer (its `GET /ping` too): the
/// answers cut are lost, and its failed answers take it out of rotation at once (two in a row,
/// like two failed health checks) until a health check passes again.
#[test]
fn a_controller_that_resets_mid_response() {
    let _serial = one_at_a_time();
    let t = legacy_pool_of_two(70_000);
    let run = run_fault(&t, &[&t.b], Fault::ResetMidResponse, Duration::from_secs(3));
    run.row("a controller resets connections mid-response (3 s)", recovery(&run, "back in rotation"));
    // Failed answers count against the controller's health like failed checks: out at once.
    assert!(run.errors_for().unwrap_or_default() < Duration::from_secs(1), "{:?}", run.errors_for());
    assert!(run.failed().len() <= 2 * CLIENTS, "{} failed", run.failed().len());
    assert!(run.back_after.expect("back") < Duration::from_secs(3));
}

/// A controller becomes 10× slower (each request held 50 ms more, against 2–6 ms): nothing
/// fails, and only the latency of what it serves grows.
#[test]
fn a_controller_ten_times_slower() {
    let _serial = one_at_a_time();
    let t = legacy_pool_of_two(70_000);
    let run = run_fault(&t, &[&t.b], Fault::Slow(Duration::from_millis(50)), Duration::from_secs(3));
    let before = run.p99_ms(Duration::ZERO, run.fault_at);
    let during = run.p99_ms(run.fault_at + Duration::from_millis(200), run.fault_at + Duration::from_secs(3));
    run.row(
        "a controller 10× slower (3 s)",
        format!("no errors; p99 {before:.0} ms before, {during:.0} ms during, as slow as the controller"),
    );
    assert!(run.failed().is_empty(), "{:?}", run.failed());
}

/// Both controllers of the legacy pool go away: invocations move to the scheduler pool (one
/// retry per request, for a connection that never opened) and come back when legacy does.
#[test]
fn a_whole_pool_gone_and_back() {
    let _serial = one_at_a_time();
    let t = legacy_pool_of_two(70_000);
    let run = run_fault(&t, &[&t.a, &t.b], Fault::Killed, Duration::from_secs(3));
    run.row(
        "the whole legacy pool gone, back 3 s later",
        recovery(
            &run,
            &format!("{} answers from the scheduler pool meanwhile; legacy back", run.served_by("scheduler")),
        ),
    );
    assert!(run.failed().len() <= 2 * CLIENTS, "only requests in flight may fail: {}", run.failed().len());
    assert!(run.served_by("scheduler") > 0, "the other pool took over");
    assert!(run.back_after.expect("back") < Duration::from_secs(3));
    let late = run.answers.iter().filter(|a| a.sent > run.fault_at + Duration::from_secs(3) + SETTLE);
    assert!(late.clone().count() > 0 && late.clone().all(|a| a.pool == "legacy"), "traffic returned to legacy");
}

/// Clients that send their request header a byte at a time, on the proxy port and on the admin
/// port, while normal traffic runs: normal traffic does not notice.
#[test]
fn slow_clients_on_both_ports() {
    let _serial = one_at_a_time();
    let t = legacy_pool_of_two(70_000);
    let (proxy, admin) = (t.fleet.proxy.proxy_addr, t.fleet.proxy.admin_addr);
    let load = Load::start(&t.fleet.proxy_url(), "f", 50, CLIENTS, "blocking=true");
    std::thread::sleep(SETTLE);
    let attack_at = load.elapsed();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The scrapes start once every slow connection is open: a scrape sent in the middle of the
    // burst of 200 can be displaced before its header is read by the newer ones behind it.
    let in_place = std::sync::Arc::new(std::sync::Barrier::new(3));
    let attackers: Vec<_> = [(proxy, 1000usize), (admin, 200)]
        .into_iter()
        .map(|(addr, n)| {
            let (stop, in_place) = (stop.clone(), in_place.clone());
            std::thread::spawn(move || slowloris(addr, n, &stop, &in_place))
        })
        .collect();
    in_place.wait();
    // Meanwhile, the admin port keeps answering (its header deadline frees a slot in 5 s).
    let (mut scrapes, mut scraped) = (0, 0);
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        scrapes += 1;
        scraped += u32::from(block_on(async {
            let c = client();
            tokio::time::timeout(Duration::from_secs(5), c.get(format!("http://{admin}/metrics")).send())
                .await
                .is_ok_and(|r| r.is_ok_and(|r| r.status() == 200))
        }));
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened: Vec<usize> = attackers.into_iter().map(|h| h.join().unwrap()).collect();
    let answers = load.stop();
    let run = Run { answers, fault_at: attack_at, back_after: None };
    let before = run.p99_ms(Duration::ZERO, attack_at);
    let during = run.p99_ms(attack_at, attack_at + Duration::from_secs(6));
    run.row(
        &format!("slow clients: {} on the proxy port, {} on the admin port (6 s)", opened[0], opened[1]),
        format!("p99 {before:.0} ms before, {during:.0} ms during; {scraped} of {scrapes} admin scrapes answered"),
    );
    assert!(run.failed().is_empty(), "normal traffic failed: {}", run.failed().len());
    assert!(opened[0] >= 900, "the attack ran: {opened:?}");
    assert_eq!(scraped, scrapes, "a newcomer takes a slow client's admin slot: every scrape is answered");
}

/// Opens `n` connections to `addr`, waits at `in_place`, then sends a request header one byte
/// every 500 ms on each until `stop`; returns how many connections opened.
fn slowloris(addr: SocketAddr, n: usize, stop: &std::sync::atomic::AtomicBool, in_place: &std::sync::Barrier) -> usize {
    use std::io::Write;
    let header =
        b"POST /api/v1/namespaces/guest/actions/slow HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut conns: Vec<(TcpStream, usize)> =
        (0..n).filter_map(|_| TcpStream::connect(addr).ok()).map(|s| (s, 0)).collect();
    let opened = conns.len();
    in_place.wait();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for (s, sent) in &mut conns {
            if s.write_all(&header[*sent % header.len()..][..1]).is_ok() {
                *sent += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    opened
}

/// The record file's directory removed, then the disk full, under shadow load: traffic is not
/// harmed, the removed directory is recreated with the next record, and on a full disk every
/// record that cannot be written is counted.
#[test]
fn the_record_directory_removed_and_the_disk_full() {
    let _serial = one_at_a_time();
    let dir = switchyard_tests::scratch_dir("records-gone");
    let records = dir.join("records").join("shadow.jsonl");
    let (first, second) = (records.clone(), "/dev/full");
    for (case, path) in [("the record file's directory removed", first.as_path()), ("the disk full", second.as_ref())] {
        let mut spec = FleetSpec::new(switchyard_tests::SHADOW_PURE);
        spec.scheduler = quick(Flavor::Scheduler);
        spec.legacy = quick(Flavor::Legacy);
        let path = path.to_path_buf();
        spec.tweak = Some(Box::new(move |c| c.shadow.records_file = path));
        let fleet = LocalFleet::start(spec).expect("fleet");
        let load = Load::start(&fleet.proxy_url(), "pure", 20, 4, "blocking=true");
        std::thread::sleep(SETTLE);
        let fault_at = load.elapsed();
        if case.contains("removed") {
            std::fs::remove_dir_all(dir.join("records")).unwrap();
        }
        std::thread::sleep(SETTLE);
        let run = Run { answers: load.stop(), fault_at, back_after: None };
        let text = block_on(metrics_text(&fleet.admin_url()));
        let compared = comparisons(&text);
        let failed_records = metric(&text, "switchyard_shadow_record_write_errors_total", &[]);
        let written = switchyard_shadow::read_records(&records).map(|(r, _)| r.len()).unwrap_or(0);
        drop(fleet);
        let lost = if case.contains("removed") {
            format!("{} of {compared} records written after the removal, 0 failed", written)
        } else {
            format!("{failed_records} of {compared} records failed, all counted")
        };
        fault_row(
            case,
            "4 clients, every call mirrored",
            &format!("{} of {}", run.failed().len(), run.answers.len()),
            &lost,
            "none needed: traffic unharmed",
        );
        assert!(run.failed().is_empty(), "{case}: traffic harmed");
        if case.contains("removed") {
            assert_eq!(failed_records, 0.0);
            assert!(written > 0, "records continue in the recreated directory");
        } else {
            assert!(
                compared > 0.0 && failed_records == compared,
                "every record failed and was counted: {failed_records} of {compared}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

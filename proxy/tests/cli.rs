//! The `switchyard` binary as an operator uses it: `check`, `run`, bad configs, signals.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_tests::{free_port, wait_accepting};
use whisk_sim::{SimConfig, Simulator};

fn switchyard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    // The checks below read the process's own words, not inherited overrides.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHYARD_")) {
        cmd.env_remove(key);
    }
    cmd
}

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config").join(file)
}

fn scratch(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-cli-{}-{}", std::process::id(), name));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// A proxy in front of simulated fleets, serving `rules`, whose admin API takes `token`.
fn fleet_with_token(rules: &str, token: &'static str) -> switchyard_tests::LocalFleet {
    let mut spec = switchyard_tests::FleetSpec::new(rules);
    spec.tweak = Some(Box::new(move |c| c.admin.token = Some(token.into())));
    switchyard_tests::LocalFleet::start(spec).unwrap()
}

/// `switchyard ARGS --admin ADMIN` with the token in the environment: exit code, output, errors.
fn admin_command(admin: &str, token: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = switchyard().args(args).args(["--admin", admin]).env("SWITCHYARD_ADMIN_TOKEN", token).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn check_accepts_the_shipped_examples() {
    let out = switchyard().args(["check", "--rules"]).arg(deploy("rules.toml")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rules OK (version 2026-11-28.1, scheduler share 1%, 2 overrides"), "{text}");
    let out = switchyard().args(["check", "--config"]).arg(deploy("switchyard.toml")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}

#[test]
fn check_lists_every_error_and_exits_1() {
    let bad = scratch(
        "bad.toml",
        "version = \"x\"\nscheduler_share = 140\ncolour = 1\n[[overrides]]\nnamespace = \"a/b\"\nshare = 1\n",
    );
    let out = switchyard().args(["check", "--rules"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "3 errors",
        "scheduler_share: 140 % is out of range",
        "colour: unknown field",
        "overrides[0].namespace: bad glob",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from {err}");
    }
    assert!(err.contains(&bad.display().to_string()), "errors name the file: {err}");
}

/// Documents that used to abort the process (an allocation of 10^14 bytes, a capacity overflow,
/// a stack overflow): `check` exits 1 with an error naming the problem.
#[test]
fn check_rejects_hostile_documents_with_exit_1() {
    let deep: String = (0..10_000).map(|i| format!("{}- \n", " ".repeat(i % 40))).collect();
    let cases = [
        ("huge.toml", "version = \"x\"\n\"a[1099511627776]\" = 1\n".to_string(), "unknown field"),
        ("overflow.toml", "version = \"x\"\n\"a[9223372036854775807]\" = 1\n".to_string(), "unknown field"),
        ("deep.yaml", format!("version: x\nnote:\n{deep}"), "cannot parse as Yaml"),
    ];
    for (name, text, expect) in cases {
        let out = switchyard().args(["check", "--rules"]).arg(scratch(name, &text)).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(expect), "{name}: {expect:?} missing from {err}");
    }
}

#[test]
fn run_refuses_a_bad_config_naming_the_field() {
    let config = scratch(
        "server.toml",
        "rules = \"r.toml\"\n[pools.legacy]\nmembers = []\n[pools.scheduler]\nmembers = [\"nowhere\"]\n",
    );
    let out = switchyard().args(["run", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pools.legacy.members: empty"), "{err}");
    assert!(err.contains("pools.scheduler.members[0]"), "{err}");

    let typo = scratch("typo.toml", "rules = \"r.toml\"\nlisten_addr = \"x\"\n[pools.legacy]\nmembers = [\"127.0.0.1:1\"]\n[pools.scheduler]\nmembers = [\"127.0.0.1:2\"]\n");
    let out = switchyard().args(["run", "--config"]).arg(&typo).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_addr"), "unknown fields are named");
}

#[test]
fn run_serves_with_env_overrides_and_stops_on_sigterm() {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let legacy = Simulator::start(SimConfig::default(), loopback).unwrap();
    let scheduler = Simulator::start(SimConfig::default(), loopback).unwrap();
    let rules = scratch("rules.toml", "version = \"cli\"\nscheduler_share = 0\n");
    let config = scratch(
        "run.toml",
        &format!(
            "rules = \"{}\"\nlisten = \"127.0.0.1:1\"\n[shutdown]\ngrace_period_s = 0\ndrain_timeout_s = 1\n[pools.legacy]\nmembers = [\"127.0.0.1:1\"]\n[pools.scheduler]\nmembers = [\"{}\"]\n",
            rules.display(),
            scheduler.addr()
        ),
    );
    let (port, admin_port) = (free_port(), free_port());
    let mut child = switchyard()
        .args(["run", "--config"])
        .arg(&config)
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHYARD_ADMIN__LISTEN", format!("127.0.0.1:{admin_port}"))
        .env("SWITCHYARD_POOLS__LEGACY__MEMBERS", legacy.addr().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_accepting(addr, || "switchyard did not start listening".into());
    let response = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { reqwest::Client::new().get(format!("http://{addr}/ping")).send().await.unwrap() });
    assert_eq!(response.headers()["x-switchyard-pool"], "legacy", "the env override replaced the legacy members");
    assert_eq!(legacy.stats().total, 2, "one health check and the request");

    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "switchyard did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("rules loaded") && logs.contains("stopping"), "{logs}");
}

/// CPU seconds (user + system) the process used so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

/// `switchyard run` under `ulimit -n limit` (controllers at `members`), its stderr to `stderr`;
/// with the proxy and admin ports.
fn run_with_descriptor_limit(limit: u32, members: [SocketAddr; 2], stderr: Stdio) -> (std::process::Child, u16, u16) {
    let rules = scratch("fd-rules.toml", "version = \"fd\"\n");
    let (port, admin_port) = (free_port(), free_port());
    let config = scratch(
        &format!("fd-{port}.toml"),
        &format!(
            "rules = \"{}\"\nlisten = \"127.0.0.1:{port}\"\nthreads = 1\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\
             [shadow]\nrecords_file = \"\"\n[shutdown]\ngrace_period_s = 0\ndrain_timeout_s = 1\n\
             [pools.legacy]\nmembers = [\"{}\"]\n[pools.scheduler]\nmembers = [\"{}\"]\n",
            rules.display(),
            members[0],
            members[1]
        ),
    );
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {limit} && exec {} run --config {}",
            env!("CARGO_BIN_EXE_switchyard"),
            config.display()
        ))
        .env("SWITCHYARD_LOG", "error")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    (child, port, admin_port)
}

/// At the descriptor limit `accept` fails at once, again and again: the admin listener pauses
/// instead of spinning on the control thread, and serves again once descriptors are free.
#[test]
fn the_admin_listener_does_not_spin_at_the_descriptor_limit() {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let legacy = Simulator::start(SimConfig::default(), loopback).unwrap();
    let scheduler = Simulator::start(SimConfig::default(), loopback).unwrap();
    let (mut child, port, admin_port) = run_with_descriptor_limit(64, [legacy.addr(), scheduler.addr()], Stdio::null());
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    wait_accepting(admin, || "switchyard did not start under ulimit -n 64".into());
    // The admin port opens before the data plane has built its runtime (which needs descriptors
    // of its own): the limit is reached only once both serve.
    wait_accepting(SocketAddr::from(([127, 0, 0, 1], port)), || {
        "the proxy port did not open under ulimit -n 64".into()
    });
    // More idle connections than descriptors: the process reaches its limit.
    let hogs: Vec<TcpStream> = (0..80).filter_map(|_| TcpStream::connect(admin).ok()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_seconds(child.id());
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_seconds(child.id()) - before;
    assert!(used < 0.5, "the process used {used:.2} s of CPU in 3 s at the descriptor limit");
    drop(hogs);
    // Once descriptors are free again (the admin connections time out or close), it answers.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let answered = TcpStream::connect(admin).ok().and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            std::io::Write::write_all(&mut s, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
            let mut text = String::new();
            s.read_to_string(&mut text).ok()?;
            text.starts_with("HTTP/1.1 200").then_some(())
        });
        if answered.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the admin API did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The proxy answers a request (any answer).
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    std::io::Write::write_all(&mut stream, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").is_ok()
        && stream.read(&mut [0u8; 16]).is_ok_and(|n| n > 0)
}

/// Too few descriptors to start is a startup error that names its cause, at once: whatever the
/// limit, the process either serves or exits 1 with a `switchyard: ...` error (its details may
/// follow on more lines), never after waiting out the 10 s start timeout with the admin port
/// half-open. Limits from 8 to 24 cross every start step that needs descriptors (the rules watch,
/// the admin listener, pingora's runtime and listener).
#[test]
fn too_few_descriptors_to_start_is_a_clear_error() {
    let members = [SocketAddr::from(([127, 0, 0, 1], free_port())), SocketAddr::from(([127, 0, 0, 1], free_port()))];
    let mut causes = Vec::new();
    for limit in 8..=24 {
        let (mut child, port, _) = run_with_descriptor_limit(limit, members, Stdio::piped());
        let (started, proxy) = (Instant::now(), SocketAddr::from(([127, 0, 0, 1], port)));
        // The port opens before the data plane starts, which may still fail then; a start that
        // got that far and neither failed nor answers within 2 s serves at its descriptor limit
        // (it accepts once descriptors are free; the test above covers that).
        let mut open_since = None;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if answers(proxy) {
                break None;
            }
            if TcpStream::connect(proxy).is_ok()
                && open_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(2)
            {
                break None;
            }
            assert!(started.elapsed() < Duration::from_secs(8), "ulimit -n {limit}: neither serving nor exited");
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = child.kill();
        let _ = child.wait();
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let Some(status) = status else { continue };
        assert_eq!(status.code(), Some(1), "ulimit -n {limit}: {stderr}");
        // The error and its details: from the last line that starts with `switchyard: `.
        let lines: Vec<&str> = stderr.lines().collect();
        let from = lines.iter().rposition(|l| l.starts_with("switchyard: ")).unwrap_or(lines.len());
        let cause = lines[from..].join("\n");
        assert!(cause.contains("Too many open files"), "ulimit -n {limit}: the cause is not named: {stderr}");
        assert!(!cause.contains("within 10 s"), "ulimit -n {limit}: {cause}");
        causes.push(cause);
    }
    assert!(
        causes.iter().any(|c| c.contains("the data plane stopped while starting")),
        "no limit reached the data plane's start: {causes:#?}"
    );
}

#[test]
fn report_limits_are_flags() {
    let lines: String = (0..5)
        .map(|i| {
            format!(
                "{{\"schema\":1,\"time_ms\":0,\"instance\":\"t\",\"request_id\":\"r{i}\",\"action\":\"guest/a{i}\",\
                 \"served_by\":\"legacy\",\"outcome\":{{\"kind\":\"match\"}},\"legacy\":{{\"status\":200,\"latency_ms\":1.0}},\
                 \"scheduler\":{{\"status\":200,\"latency_ms\":1.0}}}}\n"
            )
        })
        .collect();
    let records = scratch("limits.jsonl", &lines);
    let out = switchyard()
        .args(["report", "--format", "json", "--max-actions", "2", "--from"])
        .arg(&records)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions: Vec<&str> =
        report["actions"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["(other actions)", "guest/a0", "guest/a1"]);
    assert_eq!(report["records"], 5);

    // The next rules change: needs its base; moves the ready actions; passes `check`.
    let refused = switchyard().args(["report", "--format", "rules", "--from"]).arg(&records).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--format rules needs --base"));
    let base = scratch("base.toml", "version = \"b1\"\n");
    let next = base.with_file_name("next.toml");
    let out = switchyard()
        .args(["report", "--format", "rules", "--ready-min-samples", "1", "--from"])
        .arg(&records)
        .arg("--base")
        .arg(&base)
        .arg("--output")
        .arg(&next)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&next).unwrap();
    assert_eq!(text.matches("[[overrides]]").count(), 5, "every action had one compared sample:\n{text}");
    let check = switchyard().args(["check", "--rules"]).arg(&next).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}

/// `switchyard demo ramp` shows a ramp and its automatic rollback, and exits 0.
#[test]
fn the_ramp_demo_rolls_back_by_itself() {
    let out = switchyard().args(["demo", "ramp"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for line in
        ["step 1 of 4: 5%", "the scheduler fleet starts failing", "ROLLED BACK to 0%: gate platform_failure fail"]
    {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    assert!(text.contains("after the fault began"), "{text}");
}

/// `switchyard demo ramp --approve` stops at the approval step with the command that approves it,
/// goes on once approved, and shows the notifications its webhook got.
#[test]
fn the_ramp_demo_with_an_approval_shows_the_command_and_the_notifications() {
    let out = switchyard().args(["demo", "ramp", "--approve"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for line in [
        "WAITING for an approval of step 3 of 4: 50%",
        "approve it: switchyard ramp approve --admin http://127.0.0.1:",
        "the demo approves it",
        "step 3 of 4: 50%",
        "ROLLED BACK",
        "notifications the webhook got",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    let got = text.lines().find(|l| l.contains("notifications the webhook got")).unwrap();
    for event in ["ramp.awaiting_approval", "ramp.approved", "ramp.rolled_back"] {
        assert!(got.contains(event), "{event} not in {got}");
    }
}

/// `switchyard ramp hold|release|approve` change a replica's ramp with the admin token (from
/// `--token` or `SWITCHYARD_ADMIN_TOKEN`), print where it stands, and fail clearly without it.
#[test]
fn ramp_calls_from_the_command_line() {
    const TOKEN: &str = "open-sesame-0123456789";
    let start = switchyard_tests::now_ms() / 1000;
    let rules = format!(
        "version = \"cli-calls\"\n[ramp]\nstart = {start}\nsteps = [{{ share = 10, hold_s = 0 }}, {{ share = 100, hold_s = 0, approve = true }}]\n\
         [ramp.gates]\nplatform_failure = {{ min_samples = 0 }}\nthrottled = {{ min_samples = 0 }}\nqueued = {{ min_samples = 0 }}\n"
    );
    let fleet = fleet_with_token(&rules, TOKEN);
    let admin = fleet.admin_url();
    let ramp = |args: &[&str]| admin_command(&admin, TOKEN, &[&["ramp"], args].concat());
    let started = Instant::now();
    while !ramp(&[]).1.contains("awaiting_approval") {
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", ramp(&[]));
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, text, _) = ramp(&["hold", "--reason", "waiting for the on-call"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("HELD since") && text.contains("waiting for the on-call"), "{text}");
    let (code, text, _) = ramp(&["release"]);
    assert_eq!(code, Some(0), "{text}");
    let out = switchyard()
        .args(["ramp", "approve", "--admin", &admin, "--token", "wrong-token-0123456789"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, text, _) = ramp(&["approve"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("approve: {\"approved\":1}"), "{text}");
    let (code, _, err) = ramp(&["release"]);
    assert_eq!(code, Some(1), "nothing to release");
    assert!(err.contains("409") && err.contains("not held"), "{err}");
}

/// `switchyard ramp --admin URL` prints a replica's ramp; a replica without one is a clear error.
#[test]
fn ramp_shows_a_replicas_ramp() {
    let start = switchyard_tests::now_ms() / 1000;
    let rules = format!("version = \"cli-ramp\"\n[ramp]\nstart = {start}\nsteps = [{{ share = 10, hold_s = 600 }}, {{ share = 100, hold_s = 0 }}]\n");
    let checked = switchyard().args(["check", "--rules"]).arg(scratch("ramp.toml", &rules)).output().unwrap();
    assert!(String::from_utf8_lossy(&checked.stdout).contains(", ramp 10% → 100% from "), "check names the ramp");
    let fleet = switchyard_tests::LocalFleet::start(switchyard_tests::FleetSpec::new(&rules)).unwrap();
    let out = switchyard().args(["ramp", "--admin", &fleet.admin_url()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("ramp of rules cli-ramp: advancing, global share 10% (step 1 of 2"), "{text}");
    for gate in ["platform_failure", "throttled", "queued"] {
        assert!(text.lines().any(|l| l.trim_start().starts_with(gate) && l.contains("hold")), "{gate} in:\n{text}");
    }
    drop(fleet);
    let plain = switchyard_tests::LocalFleet::start(switchyard_tests::FleetSpec::new("version = \"plain\"\n")).unwrap();
    let out = switchyard().args(["ramp", "--admin", &plain.admin_url()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the active rules have no ramp"));
}

/// One record line of `guest/{action}` with these latencies.
fn record_line(action: &str, legacy_ms: &str, scheduler_ms: &str) -> String {
    format!(
        "{{\"schema\":1,\"time_ms\":0,\"instance\":\"t\",\"request_id\":\"r\",\"action\":\"guest/{action}\",\
         \"served_by\":\"legacy\",\"outcome\":{{\"kind\":\"match\"}},\"legacy\":{{\"status\":200,\"latency_ms\":{legacy_ms}}},\
         \"scheduler\":{{\"status\":200,\"latency_ms\":{scheduler_ms}}}}}\n"
    )
}

/// `switchyard report --format json` under a virtual memory limit (KiB); the exit status, the
/// report and standard error.
fn report_within(limit_kib: u64, from: &Path) -> (Option<i32>, serde_json::Value, String) {
    let script = format!("ulimit -v {limit_kib} && exec \"$0\" report --format json --from \"$1\"",);
    let out = Command::new("sh").args(["-c", &script, env!("CARGO_BIN_EXE_switchyard")]).arg(from).output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), report, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_bad_byte_or_an_impossible_latency_skips_that_record_not_the_report() {
    let mut lines: String = (0..30).map(|i| record_line(&format!("a{i}"), "1.0", "2.0")).collect();
    lines.push_str("{\"schema\":1,\"action\":\"\u{fffd}\"}\n");
    lines.push_str(&record_line("negative", "-10", "-100"));
    lines.push_str(&record_line("huge", "1e308", "1.0"));
    let path = scratch("bad-byte.jsonl", &lines);
    // A byte that is not UTF-8, in place of the replacement character.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(3).position(|w| w == "\u{fffd}".as_bytes()).unwrap();
    bytes.splice(at..at + 3, [0xff]);
    std::fs::write(&path, bytes).unwrap();
    let out = switchyard().args(["report", "--format", "json", "--from"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"], 30);
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 messages"), "{}", String::from_utf8_lossy(&out.stderr));
    let html = switchyard().args(["report", "--format", "html", "--from"]).arg(&path).output().unwrap();
    assert!(!String::from_utf8_lossy(&html.stdout).contains("NaN"));
}

#[test]
fn the_report_reads_a_1_gb_file_and_a_1_gib_line_within_a_1_gib_memory_limit() {
    let dir = scratch("big", "").parent().unwrap().to_path_buf();
    // A 1 GiB line (a sparse file: one line of zero bytes, no newline), then a record.
    let long = dir.join("long-line.jsonl");
    let file = std::fs::File::create(&long).unwrap();
    file.set_len(1 << 30).unwrap();
    drop(file);
    let mut tail = std::fs::OpenOptions::new().append(true).open(&long).unwrap();
    std::io::Write::write_all(&mut tail, format!("\n{}", record_line("after", "1.0", "1.0")).as_bytes()).unwrap();
    let (code, report, err) = report_within(1 << 20, &long);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(report["records"], 1, "{err}");
    std::fs::remove_file(&long).unwrap();

    // 1 GB of records (3 million lines over 1,000 actions): the memory is the report's.
    let big = dir.join("big.jsonl");
    let block: String = (0..1000).map(|i| record_line(&format!("a{i}"), "1.5", "2.5")).collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    let mut written = 0;
    while written < 1_000_000_000 {
        std::io::Write::write_all(&mut out, block.as_bytes()).unwrap();
        written += block.len();
    }
    drop(out);
    let (code, report, err) = report_within(1 << 20, &big);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(report["records"].as_u64().unwrap() as usize, written / block.len() * 1000, "{err}");
    std::fs::remove_file(&big).unwrap();
}

#[test]
fn files_that_are_not_regular_are_refused_not_read() {
    let dir = scratch("special", "").parent().unwrap().to_path_buf();
    let zero = dir.join("zero.toml");
    let _ = std::fs::remove_file(&zero);
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let fifo = dir.join("fifo.toml");
    let _ = std::fs::remove_file(&fifo);
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for path in [&zero, &fifo] {
        let started = Instant::now();
        let out = switchyard().args(["check", "--rules"]).arg(path).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not a regular file"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    let zero_records = dir.join("zero.jsonl");
    let _ = std::fs::remove_file(&zero_records);
    std::os::unix::fs::symlink("/dev/zero", &zero_records).unwrap();
    let (code, _, err) = report_within(1 << 20, &zero_records);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    // The base of a rules change too.
    let records = scratch("base-records.jsonl", &record_line("a", "1.0", "1.0"));
    let out = switchyard()
        .args(["report", "--format", "rules", "--from"])
        .arg(&records)
        .arg("--base")
        .arg(&zero)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
}

/// `switchyard rules plan NEW --admin URL`: the replica's plan as text and as JSON; invalid rules
/// are refused with every problem, and nothing is applied.
#[test]
fn rules_plan_from_the_command_line() {
    const TOKEN: &str = "plan-token-0123456789";
    let fleet = fleet_with_token("version = \"plan-1\"\nscheduler_share = 0\n", TOKEN);
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    switchyard_tests::block_on(async {
        let c = switchyard_tests::client();
        for i in 0..30 {
            switchyard_tests::invoke(&c, &base, &format!("a{i}"), serde_json::json!({})).send().await.unwrap();
        }
    });
    let plan = |file: &Path, format: &str| {
        admin_command(&admin, TOKEN, &["rules", "plan", file.to_str().unwrap(), "--format", format])
    };
    let next = scratch("plan-next.toml", "version = \"plan-2\"\nscheduler_share = 100\n");
    let (code, text, err) = plan(&next, "text");
    assert_eq!(code, Some(0), "{err}");
    assert!(text.starts_with("rules plan-1 → plan-2\nmoves "), "{text}");
    assert!(text.contains("of 30 actions to the scheduler") && text.contains("guest"), "{text}");
    assert!(text.contains("global share: 0% → 100%"), "{text}");
    let (code, json, err) = plan(&next, "json");
    assert_eq!(code, Some(0), "{err}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((json["to_version"].as_str(), json["actions_to_scheduler"].as_u64()), (Some("plan-2"), Some(30)));
    let bad = scratch("plan-bad.toml", "version = \"plan-3\"\nscheduler_share = 150\nkill_switch = \"yes\"\n");
    let (code, _, err) = plan(&bad, "text");
    assert_eq!(code, Some(1));
    assert!(err.contains("422") && err.contains("scheduler_share") && err.contains("kill_switch"), "{err}");
    let rules: serde_json::Value = switchyard_tests::block_on(async {
        switchyard_tests::client().get(format!("{admin}/rules")).send().await.unwrap().json().await.unwrap()
    });
    assert_eq!(rules["version"], "plan-1", "a plan applies nothing");
}

/// `--scope` names an override's own ramp in every ramp call; without it, with several ramps and no
/// global one, a call is refused with their names; `switchyard ramp` shows each ramp.
#[test]
fn ramp_calls_name_a_namespace_ramp_with_scope() {
    const TOKEN: &str = "scope-token-0123456789";
    let start = switchyard_tests::now_ms() / 1000;
    let scoped = |name: &str, approve: bool| {
        format!(
            "[[overrides]]\nname = \"{name}\"\nnamespace = \"{name}\"\nshare = 0\n\
             ramp = {{ start = {start}, steps = [{{ share = 10, hold_s = 0 }}, {{ share = 100, hold_s = 0, approve = {approve} }}], \
             gates = {{ platform_failure = {{ min_samples = 0 }}, throttled = {{ min_samples = 0 }}, queued = {{ min_samples = 0 }} }} }}\n"
        )
    };
    let rules = format!("version = \"cli-scope\"\n{}{}", scoped("team-a", true), scoped("team-b", false));
    let fleet = fleet_with_token(&rules, TOKEN);
    let admin = fleet.admin_url();
    let ramp = |args: &[&str]| admin_command(&admin, TOKEN, &[&["ramp"], args].concat());
    let started = Instant::now();
    while !ramp(&[]).1.contains("awaiting_approval, share of override `team-a`") {
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", ramp(&[]));
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _, err) = ramp(&["approve"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("409") && err.contains("several ramps") && err.contains("team-b"), "{err}");
    let (code, _, err) = ramp(&["approve", "--scope", "team-c"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("404") && err.contains("no ramp is named `team-c`"), "{err}");
    let (code, text, err) = ramp(&["approve", "--scope", "team-a"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("approve: {\"approved\":1}"), "{text}");
    let (code, text, err) = ramp(&["hold", "--scope", "team-b", "--reason", "team-b's on-call is away"]);
    assert_eq!(code, Some(0), "{err}");
    let team_b = text.split("share of override `team-b`").nth(1).unwrap_or_default();
    assert!(team_b.contains("HELD since") && team_b.contains("--scope 'team-b'"), "{text}");
}

//! The comparison report as an operator sees it: the live page rendered in a real browser
//! (headless Chromium), verdict first, charts, no request of its own; and the readiness verdicts
//! turned into the next rules change.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use switchyard_rules::RulesFormat;
use switchyard_shadow::{read_records, Report};
use switchyard_tests::*;
use whisk_sim::{ActionProfile, Flavor, Latency, SimConfig};

/// A fleet whose `pure-0` differs on the scheduler; `pure-1..3` agree: 25 calls each.
fn fleet_with_records() -> LocalFleet {
    let mut spec = FleetSpec::new(SHADOW_PURE);
    spec.scheduler = SimConfig::with_flavor(Flavor::Legacy);
    // Actions slow enough that the proxy's own milliseconds (a debug build on a busy machine) do
    // not decide the latency check of the readiness verdict: both paths take 20 to 30 ms.
    for sim in [&mut spec.legacy, &mut spec.scheduler] {
        sim.default_action.latency = Latency { min_ms: 20.0, max_ms: 30.0, ..Latency::default() };
    }
    spec.scheduler.actions.insert(
        "guest/pure-0".into(),
        ActionProfile { result_patch: Some(json!({"format": "webp"})), ..ActionProfile::default() },
    );
    let fleet = LocalFleet::start(spec).expect("fleet");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    block_on(async {
        let c = client();
        for i in 0..100 {
            let resp = invoke(&c, &base, &format!("pure-{}", i % 4), json!({"n": i})).send().await.unwrap();
            assert_eq!(resp.status(), 200);
        }
        shadow_report_with(&admin, 100).await
    });
    fleet
}

/// A loopback HTTP server for the browser: serves `pages` by path, 404 otherwise, and remembers
/// every path asked for.
fn serve(pages: Vec<(&'static str, String)>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50).flatten() {
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
                    break;
                }
            }
            seen.lock().unwrap().push(path.clone());
            let (status, body) = match pages.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => ("200 OK", body.clone()),
                None => ("404 Not Found", String::new()),
            };
            let mut s = &stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, asked)
}

/// Renders `url` in headless Chromium: a screenshot, and the URLs the page itself asked for
/// (from Chromium's network log: requests initiated by the page's origin), with any name other
/// than 127.0.0.1 unresolvable.
fn render(url: &str, origin: &str, dir: &Path) -> (PathBuf, Vec<String>) {
    let found = Command::new("sh").arg("-c").arg("command -v chromium").output().is_ok_and(|o| o.status.success());
    assert!(found, "`chromium` is not installed: scripts/test installs it (Debian: chromium)");
    let (png, netlog) = (dir.join("page.png"), dir.join("net.json"));
    let out = Command::new("timeout")
        .arg("60")
        .arg("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
        ])
        .arg("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,1400")
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(png.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&netlog).unwrap()).expect("a network log");
    let mut asked: Vec<String> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["params"])
        .filter(|p| p["initiator"].as_str() == Some(origin))
        .filter_map(|p| p["url"].as_str().map(str::to_string))
        .collect();
    asked.dedup();
    (png, asked)
}

#[test]
fn the_live_page_leads_with_the_verdict_and_renders_without_requests() {
    let fleet = fleet_with_records();
    let page = block_on(async {
        let resp = client().get(format!("{}/shadow/report.html", fleet.admin_url())).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    });
    // The verdict first: what needs a look, then what is ready, then the charts.
    let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("{needle} not on the page"));
    assert!(at("Needs a look") < at("guest/pure-0") && at("guest/pure-0") < at("Ready to move"));
    assert!(at("Ready to move") < at("Charts") && at("Charts") < at("Each action"));
    assert!(page.contains("/format differs in 25 of 25 compared"), "the reason is given");
    for ready in ["guest/pure-1", "guest/pure-2", "guest/pure-3"] {
        assert!(page[at("Ready to move")..at("Charts")].contains(ready), "{ready} is listed as ready");
    }
    assert_eq!(page.matches("<svg").count(), 4, "latency, waitTime, outcomes over time, match rate over time");
    for label in ["latency (ms)", "waitTime (ms)", "time (UTC)", "match rate (%)"] {
        assert!(page.contains(label), "axis label {label}");
    }
    assert!(page.contains("name = &quot;ready: guest/pure-1&quot;"), "a copyable snippet (escaped in the HTML)");

    let dir = scratch_dir("page-live");
    let control =
        "<!doctype html><html><body><img src=\"/pixel.png\"><img src=\"https://example.com/x.png\"></body></html>";
    let (port, asked) = serve(vec![("/report.html", page.clone()), ("/control.html", control.to_string())]);
    let origin = format!("http://127.0.0.1:{port}");
    // The check can fail: a page that loads things is caught, local or external.
    let (_, control_asked) = render(&format!("{origin}/control.html"), &origin, &dir);
    assert!(control_asked.iter().any(|u| u.ends_with("/pixel.png")), "{control_asked:?}");
    assert!(control_asked.iter().any(|u| u.starts_with("https://example.com")), "{control_asked:?}");
    let (png, page_asked) = render(&format!("{origin}/report.html"), &origin, &dir);
    assert_eq!(page_asked, Vec::<String>::new(), "the page asks for nothing, external or not");
    assert_eq!(asked.lock().unwrap().iter().filter(|p| p.as_str() == "/report.html").count(), 1);
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000, "a real screenshot ({} bytes)", bytes.len());
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    assert_eq!(width, 1280);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_rules_output_moves_exactly_the_ready_actions_and_passes_check() {
    let fleet = fleet_with_records();
    let (records, bad) = read_records(&fleet.shadow_records_path()).unwrap();
    assert_eq!((records.len(), bad), (100, 0));
    let mut report = Report::default();
    for r in &records {
        report.add(r);
    }
    let dir = scratch_dir("page-rules");
    let base = dir.join("rules.toml");
    std::fs::write(
        &base,
        "version = \"base-7\"\nscheduler_share = 5\n[[overrides]]\nnamespace = \"guest\"\naction = \"pure-2\"\npackage = \"\"\nshare = 10\n",
    )
    .unwrap();
    let text = switchyard::cli::report::next_rules(&report, &base).expect("a rules change");
    let rules =
        switchyard_rules::parse_rules(text.as_bytes(), RulesFormat::Toml, "next").expect("valid as `check` sees it");
    assert_eq!(rules.version, "base-7+ready-3");
    assert_eq!(rules.scheduler_share.to_string(), "5%", "the base is kept");
    let moved: Vec<(String, String)> =
        rules.overrides.iter().map(|o| (o.action.to_string(), o.share.to_string())).collect();
    assert_eq!(
        moved,
        vec![("pure-2".into(), "100%".into()), ("pure-1".into(), "100%".into()), ("pure-3".into(), "100%".into())],
        "the existing pure-2 override is raised, pure-1 and pure-3 added, pure-0 (a real difference) left alone"
    );
    // A base whose version is as long as a version may be: the suffix still fits.
    let longest = "v".repeat(switchyard_rules::MAX_VERSION_BYTES);
    std::fs::write(&base, format!("version = \"{longest}\"\nscheduler_share = 5\n")).unwrap();
    let text = switchyard::cli::report::next_rules(&report, &base).expect("a rules change from the longest version");
    let rules = switchyard_rules::parse_rules(text.as_bytes(), RulesFormat::Toml, "next").expect("valid");
    assert_eq!(rules.version.len(), switchyard_rules::MAX_VERSION_BYTES);
    assert!(rules.version.ends_with("+ready-3"), "{}", rules.version);
    let err = switchyard::cli::report::next_rules(&report, &dir.join("missing.toml")).unwrap_err();
    assert!(err.to_string().starts_with("the base rules are invalid"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

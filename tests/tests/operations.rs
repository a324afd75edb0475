//! The operator's tools against what switchyard exposes and ships: promtool on a live scrape, a
//! real Prometheus server scraping with the shipped config, promtool on the shipped rules and the
//! Grafana dashboard's queries. (The chart and the image: `proxy/tests/deploying.rs`.)
//! Each tool must be installed (`.ci/run` installs them); a missing tool fails the test.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::tools::{deploy, run_ok, tool};
use switchyard_tests::*;

/// Some traffic of every kind, including a fallback and an action error, so that most series exist.
fn exercise(fleet: &LocalFleet) {
    let base = fleet.proxy_url();
    block_on(async {
        let c = client();
        for i in 0..20 {
            invoke(&c, &base, &format!("a{i}"), json!({})).send().await.unwrap();
        }
        with_guest(c.get(format!("{base}/api/v1/namespaces/guest/activations"))).send().await.unwrap();
        c.get(format!("{base}/ping")).send().await.unwrap();
    });
}

#[test]
fn promtool_accepts_a_live_scrape() {
    let fleet = LocalFleet::start(FleetSpec::new("version = \"m\"\nscheduler_share = 50\n")).expect("fleet");
    exercise(&fleet);
    let text = block_on(metrics_text(&fleet.admin_url()));
    let mut child = tool("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for name in
        ["switchyard_requests_total", "switchyard_request_duration_seconds_bucket", "switchyard_pool_healthy_members"]
    {
        assert!(text.contains(name), "{name} missing");
    }
}

#[test]
fn shipped_prometheus_files_pass_promtool() {
    let mut check = tool("promtool");
    check.arg("check").arg("config").arg(deploy("prometheus/prometheus.yml"));
    run_ok(check);
    let mut rules = tool("promtool");
    rules.arg("check").arg("rules").arg(deploy("prometheus/alerts.yml"));
    run_ok(rules);
    let mut unit = tool("promtool");
    unit.arg("test").arg("rules").arg("alerts_test.yml").current_dir(deploy("prometheus"));
    run_ok(unit);
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_switchyard_with_the_shipped_config() {
    let fleet = LocalFleet::start(FleetSpec::new("version = \"p\"\nscheduler_share = 50\n")).expect("fleet");
    exercise(&fleet);
    let dir = scratch_dir("prometheus");
    let shipped = std::fs::read_to_string(deploy("prometheus/prometheus.yml")).unwrap();
    assert!(shipped.contains("\"127.0.0.1:9090\"") && shipped.contains("scrape_interval: 15s"));
    let config = shipped
        .replace("\"127.0.0.1:9090\"", &format!("\"{}\"", fleet.proxy.admin_addr))
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    std::fs::copy(deploy("prometheus/alerts.yml"), dir.join("alerts.yml")).unwrap();
    let port = closed_port().port();
    let server = tool("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus starts");
    let _server = Killed(server);
    let api = format!("http://127.0.0.1:{port}/api/v1");
    let query = |q: &str| {
        let url = format!(
            "{api}/query?query={}",
            q.replace('{', "%7B").replace('}', "%7D").replace('"', "%22").replace(' ', "%20")
        );
        block_on(async { client().get(url).send().await.ok()?.json::<Value>().await.ok() })
    };
    let started = Instant::now();
    loop {
        let result = query("switchyard_requests_total{kind=\"invoke\"}");
        if let Some(series) = result.as_ref().and_then(|r| r["data"]["result"].as_array()).filter(|s| !s.is_empty()) {
            let pools: Vec<&str> = series.iter().filter_map(|s| s["metric"]["pool"].as_str()).collect();
            assert!(pools.contains(&"legacy") && pools.contains(&"scheduler"), "{series:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no switchyard series in Prometheus: {:?}\n{}",
            result,
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let up = query("up{job=\"switchyard\"}").unwrap();
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    let rules: Value =
        block_on(async { client().get(format!("{api}/rules")).send().await.unwrap().json().await.unwrap() });
    let names: Vec<&str> =
        rules["data"]["groups"][0]["rules"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    assert!(names.contains(&"SwitchyardSchedulerErrorRatioHigh"), "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_grafana_panel_query_parses() {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(deploy("grafana/switchyard.json")).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut count = 0;
    for (i, panel) in panels.iter().enumerate() {
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("panel {i} has no queries"));
        for (j, target) in targets.iter().enumerate() {
            let expr = target["expr"].as_str().unwrap_or_else(|| panic!("panel {i} target {j} has no expr"));
            // Each query becomes a recording rule, so that promtool parses it as PromQL.
            rules.push_str(&format!(
                "      - record: dashboard:panel_{i}_{j}\n        expr: {}\n",
                serde_json::to_string(expr).unwrap()
            ));
            count += 1;
        }
    }
    let dir = scratch_dir("grafana");
    std::fs::write(dir.join("dashboard_rules.yml"), rules).unwrap();
    let mut check = tool("promtool");
    check.arg("check").arg("rules").arg(dir.join("dashboard_rules.yml"));
    let out = run_ok(check);
    assert!(out.contains(&format!("SUCCESS: {count} rules found")), "{out}");
}

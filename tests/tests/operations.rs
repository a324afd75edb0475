//! The operator's tools against what switchyard exposes and ships: promtool on a live scrape, a
//! real Prometheus server scraping with the shipped config, promtool on the shipped rules and the
//! Grafana dashboard's queries, and an offline Kubernetes schema validator on the manifests.
//! Each tool must be installed (`.ci/run` installs them); a missing tool fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::*;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(path)
}

fn tool(name: &str) -> Command {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().map(|o| o.status.success());
    assert!(
        found.unwrap_or(false),
        "`{name}` is not installed: .ci/run installs it (Debian: prometheus; PyPI: kubernetes-validate)"
    );
    Command::new(name)
}

fn run_ok(mut cmd: Command) -> String {
    let out = cmd.output().expect("tool runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

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

fn yaml_documents(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .split("\n---\n")
        .map(|doc| {
            config::Config::builder()
                .add_source(config::File::from_str(doc, config::FileFormat::Yaml))
                .build()
                .and_then(|c| c.try_deserialize::<Value>())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    let dir = deploy("kubernetes");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    manifests.sort();
    // ServiceMonitor is a Prometheus Operator CRD: no bundled schema; checked against the Service below.
    let core: Vec<&PathBuf> = manifests.iter().filter(|p| !p.ends_with("servicemonitor.yaml")).collect();
    assert_eq!(core.len(), 5, "{manifests:?}");
    let mut validate = tool("kubernetes-validate");
    validate.arg("--strict").args(&core);
    let out = run_ok(validate);
    assert_eq!(out.matches("passed").count(), 7, "{out}");

    // The validator does reject a broken manifest (so a pass above means something).
    let broken_dir = scratch_dir("k8s");
    let broken = std::fs::read_to_string(dir.join("deployment.yaml"))
        .unwrap()
        .replace("terminationGracePeriodSeconds: 80", "terminationGracePeriod: 80");
    std::fs::write(broken_dir.join("broken.yaml"), broken).unwrap();
    let rejected = tool("kubernetes-validate").arg("--strict").arg(broken_dir.join("broken.yaml")).output().unwrap();
    assert!(!rejected.status.success(), "the validator accepted an unknown field");

    // Cross-checks no schema can make.
    let service = &yaml_documents(&dir.join("service.yaml"))[0];
    let monitor = &yaml_documents(&dir.join("servicemonitor.yaml"))[0];
    assert_eq!(monitor["kind"], "ServiceMonitor");
    assert_eq!(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"]);
    let port_names: Vec<&Value> = service["spec"]["ports"].as_array().unwrap().iter().map(|p| &p["name"]).collect();
    assert!(port_names.contains(&&monitor["spec"]["endpoints"][0]["port"]));
    let configmaps = yaml_documents(&dir.join("configmap.yaml"));
    let rules = configmaps[1]["data"]["rules.toml"].as_str().unwrap();
    switchyard_rules::parse_rules(rules.as_bytes(), switchyard_rules::RulesFormat::Toml, "configmap")
        .expect("the ConfigMap's rules are valid");
    let server: switchyard::ServerConfig = config::Config::builder()
        .add_source(config::File::from_str(
            configmaps[0]["data"]["switchyard.toml"].as_str().unwrap(),
            config::FileFormat::Toml,
        ))
        .build()
        .and_then(|c| c.try_deserialize())
        .expect("the ConfigMap's static config parses");
    assert_eq!(server.rules, PathBuf::from("/etc/switchyard/rules/rules.toml"));
    let deployment = &yaml_documents(&dir.join("deployment.yaml"))[0];
    let pod = &deployment["spec"]["template"]["spec"];
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    let rules_mount = mounts.iter().find(|m| m["name"] == "rules").unwrap();
    assert_eq!(rules_mount["mountPath"], "/etc/switchyard/rules");
    assert!(rules_mount.get("subPath").is_none(), "a subPath mount never sees ConfigMap updates");
    let shutdown = &server.shutdown;
    assert!(
        pod["terminationGracePeriodSeconds"].as_u64().unwrap()
            > shutdown.grace_period_s + shutdown.drain_timeout_s + shutdown.flush_timeout_s,
        "longer than grace + drain + flush"
    );
    // The shadow record file goes to a writable volume, not into a read-only ConfigMap mount.
    let records = mounts.iter().find(|m| m["name"] == "records").expect("a volume for the records");
    assert!(server.shadow.records_file.starts_with(records["mountPath"].as_str().unwrap()));
    // Each pool names a headless Service (one address per controller pod), on its port.
    let headless = yaml_documents(&dir.join("controllers-headless.yaml"));
    for (pool, members) in [("legacy", &server.pools.legacy.members), ("scheduler", &server.pools.scheduler.members)] {
        let svc = headless
            .iter()
            .find(|s| {
                members[0]
                    .starts_with(&format!("{}.openwhisk.svc.cluster.local:", s["metadata"]["name"].as_str().unwrap()))
            })
            .unwrap_or_else(|| panic!("{pool}: {members:?} names no Service of controllers-headless.yaml"));
        assert_eq!(svc["spec"]["clusterIP"], "None", "{pool}: headless");
        let port = svc["spec"]["ports"][0]["port"].as_u64().unwrap();
        assert!(members[0].ends_with(&format!(":{port}")), "{pool}: {members:?} on the Service's port {port}");
    }
    let _ = std::fs::remove_dir_all(&broken_dir);
}

/// The image recipe passes hadolint, and the Deployment runs the image it builds, as the user it
/// creates.
#[test]
fn the_dockerfile_passes_hadolint_and_matches_the_deployment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut lint = tool("hadolint");
    lint.arg("--config").arg(root.join(".hadolint.yaml")).arg(root.join("Dockerfile"));
    run_ok(lint);
    // hadolint does reject a bad recipe (so a pass above means something).
    let bad_dir = scratch_dir("docker");
    std::fs::write(bad_dir.join("Dockerfile"), "FROM debian:latest\nRUN cd /tmp && apt-get install curl\n").unwrap();
    let rejected = tool("hadolint").arg(bad_dir.join("Dockerfile")).output().unwrap();
    assert!(!rejected.status.success(), "hadolint accepted a bad Dockerfile");

    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let image = format!("switchyard:{version}");
    assert!(dockerfile.contains(&format!("docker build -t {image} .")), "the recipe names {image}");
    let deployment = &yaml_documents(&deploy("kubernetes/deployment.yaml"))[0];
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["image"], image.as_str());
    let uid = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    assert!(dockerfile.contains(&format!("USER {uid}:{uid}")), "the image runs as the Deployment's user");
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/switchyard\"]"), "the binary is PID 1 (exec form)");
    let _ = std::fs::remove_dir_all(&bad_dir);
}

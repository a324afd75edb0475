//! Installed the way OpenWhisk is installed: the Helm chart (`deploy/helm/switchyard`) through the
//! real helm (lint, template with every example values file, the values schema, package), every
//! rendered object through `kubernetes-validate --strict`, the rendered config through
//! `switchyard check`; and the image built from the repository's Dockerfile with podman, run on the
//! host network in front of two simulated fleets with the chart's own config and pod settings.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::tools::{deploy, run_ok, tool, yaml_documents};
use switchyard_tests::{free_port, guest_credentials, scratch_dir};
use whisk_sim::{ActionProfile, Latency, SimConfig, SimHandle, Simulator};

fn chart() -> PathBuf {
    deploy("helm/switchyard")
}

/// The example values files the chart ships beside it (not packaged).
fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart().join("ci")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// `helm template` of the chart in namespace `openwhisk`, with values files and `--set` pairs.
fn render(values: &[&Path], set: &[&str]) -> Vec<Value> {
    let mut helm = tool("helm");
    helm.args(["template", "owsy"]).arg(chart()).args(["--namespace", "openwhisk"]);
    for file in values {
        helm.arg("--values").arg(file);
    }
    for pair in set {
        helm.args(["--set", pair]);
    }
    let out = helm.output().unwrap();
    assert!(out.status.success(), "helm template {values:?} {set:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    yaml_documents(&String::from_utf8(out.stdout).unwrap())
}

fn object<'a>(objects: &'a [Value], kind: &str, name_ends: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"].as_str().unwrap().ends_with(name_ends))
        .unwrap_or_else(|| panic!("no {kind} *{name_ends} among {:?}", kinds(objects)))
}

fn kinds(objects: &[Value]) -> Vec<String> {
    objects.iter().map(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"])).collect()
}

/// What a pod of the rendered Deployment sees under /etc/switchyard, laid out in `dir`: the config
/// and rules ConfigMaps, and stand-ins for the Secrets and volumes the values name.
fn lay_out_pod_files(objects: &[Value], dir: &Path, rules_text: Option<&str>) -> PathBuf {
    let config = object(objects, "ConfigMap", "-config")["data"]["switchyard.toml"].as_str().unwrap();
    let rules = match rules_text {
        Some(text) => text.to_owned(),
        None => object(objects, "ConfigMap", "-rules")["data"]["rules.toml"].as_str().unwrap().to_owned(),
    };
    let root = dir.join("etc-switchyard");
    for (path, content) in [
        ("rules/rules.toml", rules.as_str()),
        ("kafka-tls/ca.crt", "CA"),
        ("kafka-tls/tls.crt", "CERT"),
        ("kafka-tls/tls.key", "KEY"),
        ("kafka-sasl/password", "not-a-real-password"),
        ("webhook/secret", "a-webhook-signing-secret"),
    ] {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    std::fs::create_dir_all(root.join("sign-key")).unwrap();
    let keygen = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["rules", "keygen"])
        .arg(root.join("sign-key/rules.key"))
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let file = dir.join("switchyard.toml");
    std::fs::write(&file, config.replace("/etc/switchyard/", &format!("{}/", root.display()))).unwrap();
    file
}

#[test]
fn the_chart_passes_helm_lint_strict_and_renders_valid_objects_for_every_example() {
    let examples = examples();
    assert_eq!(examples.len(), 3, "minimal, Kafka with TLS, everything on: {examples:?}");
    let mut lint = tool("helm");
    lint.args(["lint", "--strict"]).arg(chart());
    run_ok(lint);

    let alerts: Value = yaml_documents(&std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap())[0].clone();
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(deploy("grafana/switchyard.json")).unwrap()).unwrap();
    let mut cases: Vec<(String, Vec<Value>)> = vec![("default values".into(), render(&[], &[]))];
    for file in &examples {
        let mut lint = tool("helm");
        lint.args(["lint", "--strict"]).arg(chart()).arg("--values").arg(file);
        run_ok(lint);
        cases.push((file.file_name().unwrap().to_string_lossy().into(), render(&[file], &[])));
    }
    let mut every_kind = BTreeSet::new();
    for (case, objects) in &cases {
        let dir = scratch_dir(&format!("chart-{}", case.replace(' ', "-")));
        // Every object of the core API through the offline validator; the two Prometheus Operator
        // kinds have no bundled schema and are checked by hand below.
        let (core, crds): (Vec<&Value>, Vec<&Value>) =
            objects.iter().partition(|o| !o["apiVersion"].as_str().unwrap().starts_with("monitoring.coreos.com/"));
        let manifest = dir.join("rendered.yaml");
        let stream: Vec<String> = core.iter().map(|o| serde_json::to_string(o).unwrap()).collect();
        std::fs::write(&manifest, stream.join("\n---\n")).unwrap();
        let mut validate = tool("kubernetes-validate");
        validate.arg("--strict").arg(&manifest);
        let out = run_ok(validate);
        assert_eq!(out.matches("passed").count(), core.len(), "{case}: {out}");
        every_kind.extend(objects.iter().map(|o| o["kind"].as_str().unwrap().to_owned()));

        // The rendered config and rules are what switchyard accepts.
        let rules_text = object(objects, "Deployment", "")["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "rules")
            .map(|v| v["configMap"]["name"].as_str().unwrap().to_owned())
            .filter(|name| !name.starts_with("owsy-"))
            .map(|_| "version = \"own\"\nscheduler_share = 0\n");
        let config = lay_out_pod_files(objects, &dir, rules_text);
        let check = Command::new(env!("CARGO_BIN_EXE_switchyard")).arg("check").arg("--config").arg(&config).output();
        let check = check.unwrap();
        assert!(check.status.success(), "{case}: {}", String::from_utf8_lossy(&check.stderr));

        // What no schema can say.
        let deployment = object(objects, "Deployment", "switchyard");
        let pod = &deployment["spec"]["template"]["spec"];
        let server: switchyard::ServerConfig = config::Config::builder()
            .add_source(config::File::from(config.as_path()))
            .build()
            .and_then(|c| c.try_deserialize())
            .unwrap();
        let s = &server.shutdown;
        assert_eq!(
            pod["terminationGracePeriodSeconds"].as_u64().unwrap(),
            s.grace_period_s + s.drain_timeout_s + s.flush_timeout_s + 5,
            "{case}: derived from [shutdown]"
        );
        let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
        let rules_mount = mounts.iter().find(|m| m["name"] == "rules").unwrap();
        assert_eq!(rules_mount["mountPath"], "/etc/switchyard/rules");
        assert!(rules_mount.get("subPath").is_none(), "{case}: a subPath mount never sees ConfigMap updates");
        let records = mounts.iter().find(|m| m["name"] == "records").unwrap();
        assert_eq!(records["mountPath"], "/var/lib/switchyard", "{case}: the image's records directory");
        assert_eq!(pod["securityContext"]["runAsUser"], 65532, "{case}: the image's user");
        let selector = &deployment["spec"]["selector"]["matchLabels"];
        let service = object(objects, "Service", "switchyard");
        assert_eq!(&service["spec"]["selector"], selector, "{case}");
        for o in objects {
            let labels = &o["metadata"]["labels"];
            assert_eq!(labels["chart"], format!("switchyard-{}", env!("CARGO_PKG_VERSION")), "{case}: {o}");
            assert_eq!(labels["heritage"], "Helm", "{case}: openwhisk-deploy-kube's labels on {o}");
            // The Prometheus Operator's objects may carry its own `release` selector label instead.
            if !crds.contains(&o) {
                assert_eq!(labels["release"], "owsy", "{case}: {o}");
            }
        }
        for pool in objects.iter().filter(|o| o["metadata"]["labels"]["component"] == "controller-pool") {
            assert_eq!(pool["spec"]["clusterIP"], "None", "{case}: headless, one member per controller pod");
            assert!(pool["spec"]["selector"]["name"].as_str().unwrap().ends_with("-controller"));
        }
        for crd in crds {
            match crd["kind"].as_str().unwrap() {
                "ServiceMonitor" => {
                    assert_eq!(&crd["spec"]["selector"]["matchLabels"], selector, "{case}");
                    assert_eq!(crd["spec"]["endpoints"][0]["port"], "admin");
                }
                "PrometheusRule" => assert_eq!(crd["spec"]["groups"], alerts["groups"], "{case}: the shipped alerts"),
                other => panic!("{case}: unexpected {other}"),
            }
        }
        if let Some(cm) = objects.iter().find(|o| o["metadata"]["name"].as_str().unwrap().ends_with("-dashboard")) {
            assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1", "{case}: the sidecar's label");
            let shipped: Value = serde_json::from_str(cm["data"]["switchyard.json"].as_str().unwrap()).unwrap();
            assert_eq!(shipped, dashboard, "{case}: the shipped dashboard");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let expected = [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Service",
        "ServiceMonitor",
    ];
    assert_eq!(every_kind, expected.iter().map(|k| k.to_string()).collect(), "the examples render every template");

    // The validator does reject a broken object (so a pass above means something).
    let dir = scratch_dir("chart-broken");
    let mut objects = render(&[], &[]);
    let deployment = objects.iter_mut().find(|o| o["kind"] == "Deployment").unwrap();
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = json!(80);
    std::fs::write(dir.join("broken.json"), serde_json::to_string(deployment).unwrap()).unwrap();
    let rejected = tool("kubernetes-validate").arg("--strict").arg(dir.join("broken.json")).output().unwrap();
    assert!(!rejected.status.success(), "the validator accepted an unknown field");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_values_schema_rejects_wrong_values_naming_each_field() {
    let dir = scratch_dir("chart-schema");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "replicaCount: 0\npools:\n  legacy:\n    port: 70000\nconfig:\n  listen: \"0.0.0.0:1\"\n  shutdown:\n    grace_period: 5\n\
         kafka:\n  enabled: true\npodAntiAffinity: always\n",
    )
    .unwrap();
    // `helm template` checks values against the schema exactly as `helm install` does before it
    // contacts the cluster (there is none here).
    let out = tool("helm").args(["template", "owsy"]).arg(chart()).arg("--values").arg(&bad).output();
    let out = out.unwrap();
    assert!(!out.status.success(), "helm install accepted wrong values");
    let said = String::from_utf8_lossy(&out.stderr);
    for field in [
        "replicaCount: Must be greater than or equal to 1",
        "pools.legacy.port: Must be less than or equal to 65535",
        "config: Additional property listen is not allowed",
        "config.shutdown: Additional property grace_period is not allowed",
        "kafka.brokers: String length must be greater than or equal to 1",
        "podAntiAffinity: podAntiAffinity must be one of the following",
    ] {
        assert!(said.contains(field), "`{field}` not in:\n{said}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn helm_package_makes_an_archive_with_the_alerts_and_dashboard_but_not_the_examples() {
    let dir = scratch_dir("chart-package");
    let mut package = tool("helm");
    package.arg("package").arg(chart()).arg("--destination").arg(&dir);
    run_ok(package);
    let archive = dir.join(format!("switchyard-{}.tgz", env!("CARGO_PKG_VERSION")));
    let listing = Command::new("tar").arg("-tzf").arg(&archive).output().unwrap();
    assert!(listing.status.success(), "{archive:?}");
    let files = String::from_utf8(listing.stdout).unwrap();
    for file in [
        "Chart.yaml",
        "values.yaml",
        "values.schema.json",
        "templates/NOTES.txt",
        "files/alerts.yml",
        "files/dashboard.json",
    ] {
        assert!(files.lines().any(|l| l == format!("switchyard/{file}")), "{file} not in:\n{files}");
    }
    assert!(!files.contains("switchyard/ci/"), "the example values stay out of the package:\n{files}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The image recipe passes hadolint, and the chart runs the image it builds, as the user it creates.
#[test]
fn the_dockerfile_passes_hadolint_and_matches_the_chart() {
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
    let objects = render(&[], &[]);
    let pod = &object(&objects, "Deployment", "switchyard")["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["image"], image.as_str());
    let uid = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    assert!(dockerfile.contains(&format!("USER {uid}:{uid}")), "the image runs as the chart's user");
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/switchyard\"]"), "the binary is PID 1 (exec form)");
    let _ = std::fs::remove_dir_all(&bad_dir);
}

/// The base image the tests build on: made by scripts/test from Debian's packages (no registry
/// is reachable here), as the Dockerfile's header shows.
const BASE: &str = "localhost/bookworm-base:12";

/// podman as this machine runs it: runc (crun refuses these cgroups) and ulimits within the hard
/// limits.
fn podman(args: &[&str]) -> Command {
    let mut cmd = tool("podman");
    cmd.args(["--runtime", "runc", "--cgroup-manager=cgroupfs"]).args(args);
    if matches!(args.first(), Some(&"build") | Some(&"run")) {
        cmd.args(["--ulimit", "nofile=10000:10000", "--ulimit", "nproc=1024:1024"]);
    }
    cmd
}

fn podman_ok(args: &[&str]) -> String {
    run_ok(podman(args))
}

/// A container that is removed (with its image) however the test ends.
struct Container {
    name: String,
    image: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "--force", "--time", "0", &self.name]).output();
        let _ = podman(&["rmi", "--force", &self.image]).output();
    }
}

fn simulator(slow_ms: f64) -> SimHandle {
    let quick = ActionProfile {
        latency: Latency { min_ms: 0.0, max_ms: 1.0, ..Latency::default() },
        ..ActionProfile::default()
    };
    let mut config = SimConfig { wait_time_ms: Some([0, 0]), default_action: quick, ..SimConfig::default() };
    let slow = ActionProfile {
        latency: Latency { min_ms: slow_ms, max_ms: slow_ms, ..Latency::default() },
        ..ActionProfile::default()
    };
    config.actions.insert("guest/slow".into(), slow);
    Simulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).unwrap()
}

fn invoke(proxy: SocketAddr, action: &str) -> Result<u16, String> {
    let (user, key) = guest_credentials();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .post(format!("http://{proxy}/api/v1/namespaces/guest/actions/{action}?blocking=true&result=true"))
            .basic_auth(user, Some(key))
            .json(&json!({"n": 1}))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| format!("{e:?}"))
    })
}

fn get_status(url: &str) -> Option<u16> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        reqwest::Client::new().get(url).timeout(Duration::from_secs(2)).send().await.ok().map(|r| r.status().as_u16())
    })
}

fn logs(name: &str) -> String {
    let out: Output = podman(&["logs", name]).output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The image the README tells users to build (its `prebuilt` stage around the binary these tests
/// built), run with what the chart gives a pod: its config and rules, its arguments, a read-only
/// root, a records volume; on the host network in front of two simulated fleets.
#[test]
fn the_image_answers_writes_its_records_as_65532_and_drains_on_podman_stop() {
    let base = podman(&["image", "exists", BASE]).status().unwrap();
    assert!(base.success(), "no {BASE}: scripts/test makes it (mmdebstrap, then podman import)");
    let sims = [simulator(4_000.0), simulator(4_000.0)];
    let dir = scratch_dir("image");
    let tag = format!("localhost/switchyard-test:{}", std::process::id());
    let container = Container { name: format!("switchyard-test-{}", std::process::id()), image: tag.clone() };

    // The build context: the binary (without its debug sections) beside the files the Dockerfile copies.
    let context = dir.join("context");
    std::fs::create_dir_all(context.join("deploy/config")).unwrap();
    for file in ["switchyard.toml", "rules.toml"] {
        std::fs::copy(deploy("config").join(file), context.join("deploy/config").join(file)).unwrap();
    }
    let mut strip = tool("strip");
    strip.arg("--strip-debug").arg("-o").arg(context.join("switchyard")).arg(env!("CARGO_BIN_EXE_switchyard"));
    run_ok(strip);
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile");
    podman_ok(&[
        "build",
        "--network=host",
        "--target",
        "prebuilt",
        "--build-arg",
        &format!("BASE={BASE}"),
        "--file",
        dockerfile.to_str().unwrap(),
        "--tag",
        &tag,
        context.to_str().unwrap(),
    ]);
    let size = podman_ok(&["image", "inspect", "--format", "{{.Size}}", &tag]);
    eprintln!("image {tag}: {} MB", size.trim().parse::<u64>().unwrap() / 1_000_000);

    // The pod the chart renders: its config (listening on loopback ports here), rules that mirror
    // every `pure-*` invocation, its container arguments and mounts.
    let (port, admin_port) = (free_port(), free_port());
    let rules = "version = \"image\"\nscheduler_share = 0\n[[overrides]]\nnamespace = \"guest\"\naction = \"pure-*\"\nshare = 0\nshadow = { sample = 100 }\n";
    let rules_file = dir.join("rules.toml");
    std::fs::write(&rules_file, rules).unwrap();
    let objects = render(
        &[],
        &[
            &format!("service.port={port}"),
            &format!("service.adminPort={admin_port}"),
            &format!("pools.legacy.members={{{}}}", sims[0].addr()),
            &format!("pools.scheduler.members={{{}}}", sims[1].addr()),
            "config.shutdown.grace_period_s=1",
            "config.shutdown.drain_timeout_s=10",
            "config.shutdown.flush_timeout_s=2",
        ],
    );
    let config = object(&objects, "ConfigMap", "-config")["data"]["switchyard.toml"].as_str().unwrap();
    // The pod listens on every address of its own network; on the host network, loopback only.
    let config = config.replace("\"0.0.0.0:", "\"127.0.0.1:");
    let pod = &object(&objects, "Deployment", "switchyard")["spec"]["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let args: Vec<String> =
        pod["containers"][0]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    let (config_dir, rules_dir, records_dir) = (dir.join("config"), dir.join("rules"), dir.join("records"));
    for d in [&config_dir, &rules_dir, &records_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(config_dir.join("switchyard.toml"), config).unwrap();
    std::fs::copy(&rules_file, rules_dir.join("rules.toml")).unwrap();
    // The records volume belongs to the pod's fsGroup, as Kubernetes prepares it.
    run_ok({
        let mut c = Command::new("chown");
        c.arg("65532:65532").arg(&records_dir);
        c
    });
    let mount = |host: &Path, at: &str, ro: bool| format!("{}:{at}{}", host.display(), if ro { ":ro" } else { "" });
    let mut run = podman(&["run", "--detach", "--name", &container.name, "--network", "host", "--read-only"]);
    run.args(["--tmpfs", "/tmp"])
        .args(["--volume", &mount(&config_dir, "/etc/switchyard/config", true)])
        .args(["--volume", &mount(&rules_dir, "/etc/switchyard/rules", true)])
        .args(["--volume", &mount(&records_dir, "/var/lib/switchyard", false)])
        .args(["--env", "SWITCHYARD_LOG=info"])
        .arg(&tag)
        .args(&args);
    run_ok(run);

    let (proxy, admin) = (SocketAddr::from(([127, 0, 0, 1], port)), format!("http://127.0.0.1:{admin_port}"));
    let started = Instant::now();
    while get_status(&format!("{admin}/readyz")) != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(20), "not ready in 20 s:\n{}", logs(&container.name));
        std::thread::sleep(Duration::from_millis(100));
    }
    // It answers invocations, and its comparisons reach the records volume, written as 65532.
    for i in 0..10 {
        assert_eq!(invoke(proxy, &format!("pure-{i}")), Ok(200), "{}", logs(&container.name));
    }
    let records = records_dir.join("shadow-records.jsonl");
    let started = Instant::now();
    loop {
        let lines = std::fs::read_to_string(&records).map(|t| t.lines().count()).unwrap_or(0);
        if lines >= 10 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{lines} of 10 records in the volume:\n{}",
            logs(&container.name)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&records).unwrap().uid(), 65532, "records written by the image's user");

    // `podman stop` sends SIGTERM to PID 1: readiness turns 503 at once, the invocation in flight
    // (4 s, past the 1 s grace period: it is drained) still gets its answer, and the process exits
    // 0 well before podman's own deadline.
    let in_flight = std::thread::spawn(move || invoke(proxy, "slow"));
    std::thread::sleep(Duration::from_millis(300));
    let stop_started = Instant::now();
    let name = container.name.clone();
    let stop = std::thread::spawn(move || podman(&["stop", "--time", &grace.to_string(), &name]).output().unwrap());
    let mut saw_unready = false;
    while !stop.is_finished() && stop_started.elapsed() < Duration::from_secs(grace) {
        if get_status(&format!("{admin}/readyz")) == Some(503) {
            saw_unready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(saw_unready, "/readyz never said 503 after SIGTERM:\n{}", logs(&container.name));
    assert_eq!(in_flight.join().unwrap(), Ok(200), "the invocation in flight drained:\n{}", logs(&container.name));
    let stopped = stop.join().unwrap();
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    let took = stop_started.elapsed();
    let exit = podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", &container.name]);
    assert_eq!(
        exit.trim(),
        "0",
        "exit code after SIGTERM (137 means podman had to kill it):\n{}",
        logs(&container.name)
    );
    assert!(took < Duration::from_secs(grace), "took {took:?}: SIGTERM did not stop it:\n{}", logs(&container.name));
    let _ = std::fs::remove_dir_all(&dir);
}

//! Rule changes through the file (rename, ConfigMap-style symlink swap) and the admin API, with
//! validation: a bad rule set never takes effect and traffic keeps flowing on the old one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::*;

const TOKEN: &str = "test-admin-token-0123456789";

fn rules(version: &str, share: u32) -> String {
    format!("version = \"{version}\"\nscheduler_share = {share}\n")
}

/// Writes `content` next to `path` and renames it over `path`, as editors and deploy tools do.
fn replace_by_rename(path: &Path, content: &[u8]) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn status(admin: &str) -> Value {
    client().get(format!("{admin}/rules/status")).send().await.unwrap().json().await.unwrap()
}

/// Polls until the proxy reports `version` on a routed request; returns how long it took.
async fn wait_for_version(base: &str, version: &str) -> Duration {
    let started = Instant::now();
    let c = client();
    loop {
        let resp = invoke(&c, base, "probe", json!({})).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        if resp.headers()["x-switchyard-rules-version"] == version {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "version {version} never took effect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `PUT /rules` with the admin token.
async fn put_rules(c: &reqwest::Client, admin: &str, media: &str, body: &str) -> reqwest::Response {
    c.put(format!("{admin}/rules"))
        .bearer_auth(TOKEN)
        .header("content-type", media)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

fn with_token(spec: &mut FleetSpec) {
    spec.tweak = Some(Box::new(|c| c.admin.token = Some(TOKEN.to_string())));
}

#[test]
fn a_file_replaced_by_rename_is_picked_up() {
    let fleet = LocalFleet::start(FleetSpec::new(&rules("r1", 0))).expect("fleet");
    let base = fleet.proxy_url();
    block_on(async {
        replace_by_rename(&fleet.rules_path(), rules("r2", 100).as_bytes());
        wait_for_version(&base, "r2").await;
        let resp = invoke(&client(), &base, "anything", json!({})).send().await.unwrap();
        assert_eq!(pool_of(&resp), "scheduler");
        let s = status(&fleet.admin_url()).await;
        assert_eq!(s["active"]["version"], "r2");
        assert!(s["active"]["source"].as_str().unwrap().contains("file change"), "{s}");
        let text = metrics_text(&fleet.admin_url()).await;
        assert_eq!(metric(&text, "switchyard_rules_reloads_total", &[("source", "file"), ("result", "accepted")]), 1.0);
        assert_eq!(metric(&text, "switchyard_rules_info", &[("version", "r2")]), 1.0);
        assert_eq!(metric(&text, "switchyard_rules_info", &[("version", "r1")]), 0.0);
    });
}

/// Kubernetes mounts a ConfigMap as `dir/rules.toml -> ..data/rules.toml`, `..data -> ..<timestamp>`,
/// and updates it by pointing a new `..data` symlink at a new directory (rename over the old link).
#[test]
fn a_configmap_style_symlink_swap_is_picked_up() {
    let dir = std::env::temp_dir().join(format!("switchyard-configmap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("..2026_11_28_a")).unwrap();
    std::fs::write(dir.join("..2026_11_28_a/rules.toml"), rules("cm1", 0)).unwrap();
    std::os::unix::fs::symlink("..2026_11_28_a", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/rules.toml", dir.join("rules.toml")).unwrap();
    let path: PathBuf = dir.join("rules.toml");
    let mut spec = FleetSpec::new(&rules("unused", 0));
    spec.tweak = Some(Box::new(move |c| c.rules = path));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let base = fleet.proxy_url();
    block_on(async {
        wait_for_version(&base, "cm1").await;
        std::fs::create_dir_all(dir.join("..2026_11_28_b")).unwrap();
        std::fs::write(dir.join("..2026_11_28_b/rules.toml"), rules("cm2", 100)).unwrap();
        std::os::unix::fs::symlink("..2026_11_28_b", dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        std::fs::remove_dir_all(dir.join("..2026_11_28_a")).unwrap();
        wait_for_version(&base, "cm2").await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_files_are_rejected_while_traffic_keeps_the_old_rules() {
    let fleet = LocalFleet::start(FleetSpec::new(&rules("good", 0))).expect("fleet");
    let base = fleet.proxy_url();
    let admin = fleet.admin_url();
    let huge = vec![b'#'; 50 * 1024 * 1024];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("syntax error", b"version = \"bad\"\nscheduler_share = [".to_vec(), "cannot parse"),
        ("unknown field", b"version = \"bad\"\nshare = 5\n".to_vec(), "unknown field"),
        ("share 140 %", b"version = \"bad\"\nscheduler_share = 140\n".to_vec(), "out of range"),
        ("bad glob", b"version = \"bad\"\n[[overrides]]\nnamespace = \"a?b\"\nshare = 1\n".to_vec(), "bad glob"),
        ("empty file", Vec::new(), "empty"),
        ("binary garbage", vec![0xff, 0x00, 0xfe, 0x13, 0x37, 0x80, 0x81], "not UTF-8"),
        ("50 MB file", huge, "the limit is"),
        ("same version, other content", rules("good", 100).into_bytes(), "already active with different content"),
    ];
    block_on(async {
        let c = client();
        for (i, (what, content, expected)) in cases.into_iter().enumerate() {
            replace_by_rename(&fleet.rules_path(), &content);
            let started = Instant::now();
            loop {
                // The counter first: a rejection is in the status before it is counted.
                let count =
                    metric(&metrics_text(&admin).await, "switchyard_rules_reloads_total", &[("result", "rejected")]);
                let s = status(&admin).await;
                let rejected = s["last_rejected"]["errors"].to_string();
                if count as usize == i + 1 {
                    assert!(rejected.contains(expected), "{what}: expected {expected:?} in {rejected}");
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(10), "{what} was never rejected: {s}");
                // Traffic keeps flowing on the old rules meanwhile.
                let resp = invoke(&c, &base, "hello", json!({})).send().await.unwrap();
                assert_eq!(resp.status(), 200, "{what}");
                assert_eq!(resp.headers()["x-switchyard-rules-version"], "good", "{what}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(status(&admin).await["active"]["version"], "good");
        replace_by_rename(&fleet.rules_path(), rules("better", 0).as_bytes());
        wait_for_version(&base, "better").await;
    });
}

#[test]
fn admin_mutations_need_the_token() {
    let mut spec = FleetSpec::new(&rules("t1", 0));
    with_token(&mut spec);
    let fleet = LocalFleet::start(spec).expect("fleet");
    let admin = fleet.admin_url();
    block_on(async {
        let c = client();
        let put = |token: Option<&str>| {
            let req = c.put(format!("{admin}/rules")).header("content-type", "application/toml").body(rules("t2", 100));
            match token {
                Some(t) => req.bearer_auth(t),
                None => req,
            }
        };
        let none = put(None).send().await.unwrap();
        assert_eq!(none.status(), 401);
        assert!(none.headers().contains_key("www-authenticate"));
        assert_eq!(put(Some("wrong-token-0123456789")).send().await.unwrap().status(), 401);
        assert_eq!(c.post(format!("{admin}/rules/kill")).send().await.unwrap().status(), 401);
        let ok = put(Some(TOKEN)).send().await.unwrap();
        assert_eq!(ok.status(), 200);
        let body: Value = ok.json().await.unwrap();
        assert_eq!(body["status"], "accepted");
        assert_eq!(body["summary"], "scheduler_share: 0% → 100%");
        assert_eq!(c.get(format!("{admin}/rules")).send().await.unwrap().status(), 200, "reads stay open");
    });

    let open = LocalFleet::start(FleetSpec::new(&rules("o1", 0))).expect("fleet");
    block_on(async {
        let resp = client()
            .put(format!("{}/rules", open.admin_url()))
            .header("content-type", "application/json")
            .bearer_auth(TOKEN)
            .body(r#"{"version": "o2"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("SWITCHYARD_ADMIN__TOKEN"), "{body}");
    });
}

#[test]
fn admin_put_kill_and_unkill() {
    let mut spec = FleetSpec::new(&rules("a1", 0));
    with_token(&mut spec);
    let fleet = LocalFleet::start(spec).expect("fleet");
    let (admin, base) = (fleet.admin_url(), fleet.proxy_url());
    block_on(async {
        let c = client();
        let yaml =
            "version: a2\nscheduler_share: 100\noverrides:\n  - namespace: guest\n    action: legacy-*\n    share: 0\n";
        let resp = put_rules(&c, &admin, "application/yaml", yaml).await;
        assert_eq!(resp.status(), 200);
        wait_for_version(&base, "a2").await;
        let s = status(&admin).await;
        assert!(s["active"]["source"].as_str().unwrap().starts_with("admin API"), "{s}");

        let bad = put_rules(&c, &admin, "application/json", r#"{"version":"a3","scheduler_share":"lots"}"#).await;
        assert_eq!(bad.status(), 422);
        let body: Value = bad.json().await.unwrap();
        assert_eq!(body["errors"][0]["path"], "scheduler_share");
        assert_eq!(body["errors"][0]["source"], "admin API");
        let again = put_rules(&c, &admin, "application/yaml", yaml).await;
        assert_eq!(again.json::<Value>().await.unwrap()["status"], "unchanged");
        let odd = put_rules(&c, &admin, "text/plain", yaml).await;
        assert_eq!(odd.status(), 415);

        let killed: Value =
            c.post(format!("{admin}/rules/kill")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
        assert_eq!(killed["effective_version"], "a2+killed");
        let resp = invoke(&c, &base, "x", json!({})).send().await.unwrap();
        assert_eq!(
            (pool_of(&resp).as_str(), resp.headers()["x-switchyard-rules-version"].to_str().unwrap()),
            ("legacy", "a2+killed")
        );

        // The latch holds across a rule change from another source.
        replace_by_rename(&fleet.rules_path(), rules("a4", 100).as_bytes());
        wait_for_version(&base, "a4+killed").await;
        assert_eq!(pool_of(&invoke(&c, &base, "x", json!({})).send().await.unwrap()), "legacy");

        let released: Value =
            c.post(format!("{admin}/rules/unkill")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
        assert_eq!(released["effective_version"], "a4");
        assert_eq!(pool_of(&invoke(&c, &base, "x", json!({})).send().await.unwrap()), "scheduler");
    });
}

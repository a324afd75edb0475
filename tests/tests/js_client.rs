//! The official OpenWhisk JavaScript client (`openwhisk` on npm) against the proxy.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use switchyard_tests::*;
use whisk_sim::{ActionProfile, RequestKind};

fn ensure_node_modules(dir: &Path) {
    if dir.join("node_modules/openwhisk").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm is needed for this test (install Node.js and npm)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

#[test]
fn the_openwhisk_js_client_works_through_the_proxy() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    ensure_node_modules(&dir);
    let rules =
        "version = \"js\"\nscheduler_share = 0\n[[overrides]]\nnamespace = \"*\"\npackage = \"img\"\nshare = 100\n";
    let mut spec = FleetSpec::new(rules);
    spec.legacy
        .actions
        .insert("guest/broken".into(), ActionProfile { application_error_rate: 1.0, ..ActionProfile::default() });
    let fleet = LocalFleet::start(spec).expect("fleet");
    let out = Command::new("node")
        .arg("client.js")
        .arg(fleet.proxy_url())
        .arg(GUEST_KEY)
        .current_dir(&dir)
        .output()
        .expect("node is needed for this test");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).expect("client prints JSON");
    assert_eq!(got["blocking"]["payload"], "Hello, Ada!");
    assert_eq!(got["packaged"]["payload"], "Hello, stranger!");
    assert_eq!(got["nonBlockingId"].as_str().map(str::len), Some(32));
    assert_eq!(got["recordStatus"], "success");
    assert_eq!(got["fetched"], got["recordId"], "the activation is readable through the proxy");
    assert_eq!(got["storedName"], "stored");
    assert_eq!(got["broken"]["status"], 502, "the action's error reaches the client unchanged");
    assert_eq!(got["broken"]["responseStatus"], "application error");
    assert_eq!(fleet.scheduler.stats().kind(RequestKind::Invoke), 1, "only img/resize went to the scheduler");
    assert!(fleet.legacy.stats().kind(RequestKind::Invoke) >= 4);
    assert_eq!(fleet.legacy.stats().kind(RequestKind::TriggerFire), 1);
}

/// A new user's client calls with `_`: a pin of the caller's namespace holds for every call, and
/// the namespace is looked up once for the credential.
#[test]
fn the_default_namespace_of_the_official_client_obeys_a_pin() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    ensure_node_modules(&dir);
    let rules = "version = \"pin\"\nscheduler_share = 100\n[[overrides]]\nnamespace = \"guest\"\nshare = 0\n";
    let fleet = LocalFleet::start(FleetSpec::new(rules)).expect("fleet");
    let out = Command::new("node")
        .args(["default_namespace.js", &fleet.proxy_url(), GUEST_KEY, "41"])
        .current_dir(&dir)
        .output()
        .expect("node is needed for this test");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).expect("client prints JSON");
    assert_eq!(got["answered"], 41);
    assert_eq!(fleet.scheduler.stats().kind(RequestKind::Invoke), 0, "the guest pin held for `_` calls");
    assert_eq!(fleet.legacy.stats().kind(RequestKind::Invoke), 41);
    let lookups =
        fleet.legacy.stats().kind(RequestKind::Namespaces) + fleet.scheduler.stats().kind(RequestKind::Namespaces);
    assert_eq!(lookups, 1, "one lookup for the credential, then the cache");
}

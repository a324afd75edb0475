//! The operator's own tools the tests drive (promtool, Prometheus, kubernetes-validate, hadolint,
//! helm, podman), and reading the YAML they take and print. `scripts/test` installs every one.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The repository's `deploy/` folder, or a path inside it.
pub fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(path)
}

/// An installed tool; a missing one fails the test (never skips it) and says who installs it.
pub fn tool(name: &str) -> Command {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().map(|o| o.status.success());
    assert!(found.unwrap_or(false), "`{name}` is not installed: scripts/test installs it (see its comments)");
    Command::new(name)
}

/// Runs a tool that must succeed; its standard output and error together.
pub fn run_ok(mut cmd: Command) -> String {
    let out = cmd.output().expect("tool runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// Every non-empty document of a YAML stream (a manifest file, `helm template`'s output).
pub fn yaml_documents(text: &str) -> Vec<Value> {
    text.split("\n---")
        .filter(|doc| doc.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')))
        .map(|doc| {
            config::Config::builder()
                .add_source(config::File::from_str(doc, config::FileFormat::Yaml))
                .build()
                .and_then(|c| c.try_deserialize::<Value>())
                .unwrap_or_else(|e| panic!("{e}:\n{doc}"))
        })
        .collect()
}

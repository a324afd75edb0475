//! The layout rules of the workspace, checked on the sources: no two modules of a crate use each
//! other (directly or in a loop), the proxy's folders only use the floors below them, the shadow
//! library stays off the network, `main.rs` only wires, and the test kit is not part of the proxy's
//! library.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `a/b.rs` and `a/b/mod.rs` → `["a", "b"]`; `lib.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// Every `crate::a::b::...` and `super::...` path in the non-test part of a file, made absolute.
fn referenced_paths(text: &str, me: &[String]) -> Vec<Vec<String>> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = Vec::new();
    // `super` is the parent module, whether the file is `a/b.rs` or `a/b/mod.rs`.
    let parent = me[..me.len().saturating_sub(1)].to_vec();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().last();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            assert!(!rest.starts_with('{'), "write `use {prefix}a::b` per module, not grouped: {me:?}");
            let path: Vec<String> = rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            out.push(base.iter().cloned().chain(path).collect());
        }
    }
    out
}

/// The module graph of one crate: module → modules it uses.
fn module_graph(krate: &str) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let src = workspace().join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.retain(|f| !f.ends_with("main.rs") && !f.starts_with(src.join("bin")));
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let me = module_of(&src, file);
        let text = std::fs::read_to_string(file).unwrap();
        let mut uses = BTreeSet::new();
        for path in referenced_paths(&text, &me) {
            // The longest prefix that is a module of its own file.
            let target = (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains(p)).unwrap();
            // The crate root only declares and re-exports; a module's own items are not an edge.
            if !target.is_empty() && target != me {
                uses.insert(target);
            }
        }
        graph.insert(me, uses);
    }
    graph
}

/// A cycle in the graph, if there is one, as the modules on it.
fn find_cycle(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            return Some(stack[i..].iter().chain([node]).map(|m| m.join("::")).collect());
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_cycles_in_any_crate() {
    for krate in ["rules", "shadow", "proxy", "sim"] {
        let graph = module_graph(krate);
        assert!(graph.len() > 3, "{krate}: modules not found");
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{krate}: modules use each other in a loop: {}", cycle.join(" → "));
        }
    }
}

/// The floors of `proxy/src`, lowest first (the README draws them). A module may use its own floor
/// and the floors below; the request path and the control plane never reach up into the wiring.
const PROXY_FLOORS: &[&[&str]] = &[
    &["sync", "lifecycle"],
    &["ops"],
    &["control", "data", "kafka", "shadow", "state"],
    &["server"],
    &["demo"],
    &["cli"],
];

fn floor_of(module: &[String]) -> usize {
    let top = module.first().map(String::as_str).unwrap_or_default();
    PROXY_FLOORS.iter().position(|f| f.contains(&top)).unwrap_or_else(|| panic!("`{top}` has no floor"))
}

/// Every use that reaches a higher floor, as `from → to`.
fn upward_uses(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<String> {
    graph
        .iter()
        .filter(|(from, _)| !from.is_empty())
        .flat_map(|(from, to)| to.iter().map(move |to| (from, to)))
        .filter(|(from, to)| floor_of(to) > floor_of(from))
        .map(|(from, to)| format!("{} → {}", from.join("::"), to.join("::")))
        .collect()
}

#[test]
fn the_proxy_folders_only_use_the_floors_below_them() {
    let graph = module_graph("proxy");
    let upward = upward_uses(&graph);
    assert!(upward.is_empty(), "uses that reach up a floor:\n{}", upward.join("\n"));
}

#[test]
fn the_floor_check_finds_a_use_that_reaches_up() {
    let m = |s: &str| s.split("::").map(str::to_string).collect::<Vec<_>>();
    let graph = BTreeMap::from([(m("ops::metrics"), BTreeSet::from([m("data::classify"), m("sync")]))]);
    assert_eq!(upward_uses(&graph), ["ops::metrics → data::classify"]);
}

#[test]
fn the_cycle_check_finds_cycles() {
    let m = |s: &str| s.split("::").map(str::to_string).collect::<Vec<_>>();
    let mut graph = BTreeMap::new();
    graph.insert(m("a"), BTreeSet::from([m("b")]));
    graph.insert(m("b"), BTreeSet::from([m("c::d")]));
    graph.insert(m("c::d"), BTreeSet::from([m("a")]));
    assert_eq!(find_cycle(&graph), Some(vec!["a".into(), "b".into(), "c::d".into(), "a".into()]));
    graph.insert(m("c::d"), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
    let refs = referenced_paths("use crate::x::y;\nfn f() { super::z::w(); }\n#[cfg(test)]\nuse crate::t;", &m("p::q"));
    assert_eq!(refs, vec![m("x::y"), m("p::z::w")]);
}

#[test]
fn the_shadow_library_stays_off_the_network() {
    let manifest = std::fs::read_to_string(workspace().join("shadow/Cargo.toml")).unwrap();
    for dep in ["rdkafka", "tokio", "reqwest", "hyper", "pingora"] {
        assert!(!manifest.lines().any(|l| l.starts_with(dep)), "shadow/Cargo.toml depends on {dep}");
    }
}

#[test]
fn main_only_wires() {
    let main = std::fs::read_to_string(workspace().join("proxy/src/main.rs")).unwrap();
    assert!(main.lines().count() <= 150, "proxy/src/main.rs has {} lines", main.lines().count());
}

#[test]
fn the_fleet_fixture_is_not_in_the_proxy_library() {
    let lib = std::fs::read_to_string(workspace().join("proxy/src/lib.rs")).unwrap();
    assert!(!lib.contains("mod fleet"), "the simulated fleets belong to the test kit");
    assert!(!workspace().join("proxy/src/fleet.rs").exists());
}

/// The proxy library's surface is one list: its modules are private (but `cli`, the binary's
/// commands) and `lib.rs` re-exports what the binary, the tests, the benches and the fuzz targets
/// use. So the compiler reports any code nothing uses.
#[test]
fn the_proxy_library_surface_is_the_list_in_lib_rs() {
    let lib = std::fs::read_to_string(workspace().join("proxy/src/lib.rs")).unwrap();
    let public: Vec<&str> =
        lib.lines().filter_map(|l| l.strip_prefix("pub mod ")).map(|m| m.trim_end_matches(';')).collect();
    assert_eq!(public, ["cli"], "only the binary's commands are a public module");
    let private = lib.lines().filter(|l| l.starts_with("mod ")).count();
    assert!(private >= 10, "the other modules are declared private ({private} found)");
    assert!(lib.lines().filter(|l| l.starts_with("pub use ")).count() >= 5, "the surface is re-exported");
}

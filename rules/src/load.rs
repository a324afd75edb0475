//! From bytes to a compiled [`RuleSet`]: size and encoding checks, parsing with serde (TOML,
//! YAML or JSON) under budgets for nesting and YAML aliases, then a validating walk over the
//! document that collects every error with its field path instead of stopping at the first, as
//! serde would. Keys are plain field names, never path expressions; every error and every value it
//! quotes is bounded, so a hostile document costs at most its own size.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{cut, RuleError, RulesRejected, MAX_ERRORS};
use crate::glob::Glob;
use crate::matcher::Matcher;
use crate::model::{Override, Pool, ShadowPolicy, StickyKey, MIRROR_METHODS};
use crate::ruleset::{fingerprint, RuleSet};
use crate::share::Share;

/// The largest rule document accepted (10,000 overrides in TOML take about 1 MiB).
pub const MAX_RULES_BYTES: usize = 8 * 1024 * 1024;
/// The deepest nesting of tables and lists accepted (a rule document needs 4).
pub const MAX_DEPTH: usize = 32;
/// YAML aliases accepted in one document (a rule document needs none; a few are harmless).
pub const MAX_YAML_ALIASES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesFormat {
    Toml,
    Yaml,
    Json,
}

impl RulesFormat {
    /// By file extension: `.toml`, `.yaml`/`.yml`, `.json`.
    pub fn from_path(path: &Path) -> Option<RulesFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "toml" => Some(RulesFormat::Toml),
            "yaml" | "yml" => Some(RulesFormat::Yaml),
            "json" => Some(RulesFormat::Json),
            _ => None,
        }
    }

    /// By media type, as sent to the admin API (`application/toml`, `application/yaml`, ...).
    pub fn from_media_type(media_type: &str) -> Option<RulesFormat> {
        let essence = media_type.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/toml" | "text/toml" | "text/x-toml" => Some(RulesFormat::Toml),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Some(RulesFormat::Yaml),
            "application/json" | "text/json" => Some(RulesFormat::Json),
            _ => None,
        }
    }

    /// The media type a document in this format is sent with (the inverse of `from_media_type`).
    pub fn media_type(self) -> &'static str {
        match self {
            RulesFormat::Toml => "application/toml",
            RulesFormat::Yaml => "application/yaml",
            RulesFormat::Json => "application/json",
        }
    }

    /// Parses a document into a plain tree, within the nesting and alias budgets.
    fn parse(self, text: &str) -> Result<Value, String> {
        let doc = match self {
            RulesFormat::Json => serde_json::from_str(text).map_err(|e| e.to_string())?,
            RulesFormat::Toml => toml::from_str(text).map_err(|e| e.to_string())?,
            RulesFormat::Yaml => {
                let mut budget = serde_saphyr::Budget::default();
                budget.max_depth = MAX_DEPTH;
                budget.max_aliases = MAX_YAML_ALIASES;
                budget.max_documents = 1;
                let mut options = serde_saphyr::Options::default();
                options.budget = Some(budget);
                // YAML 1.2 booleans only: a namespace called `n` or `no` stays a string.
                options.strict_booleans = true;
                options.alias_limits.max_total_replayed_events = 10_000;
                serde_saphyr::from_str_with_options(text, options).map_err(|e| e.to_string())?
            }
        };
        let depth = depth(&doc);
        if depth > MAX_DEPTH {
            return Err(format!("nested {depth} levels deep; the limit is {MAX_DEPTH}"));
        }
        Ok(doc)
    }
}

/// How deeply tables and lists nest (a scalar is 0), without recursion.
fn depth(doc: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(doc, 0)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// Reads, parses and validates a rules file; the format comes from the extension.
pub fn load_rules_file(path: &Path) -> Result<RuleSet, RulesRejected> {
    let source = path.display().to_string();
    let format = RulesFormat::from_path(path).ok_or_else(|| {
        RulesRejected::single(&source, "", "unknown file extension (expected .toml, .yaml, .yml or .json)")
    })?;
    let size =
        std::fs::metadata(path).map_err(|e| RulesRejected::single(&source, "", format!("cannot read: {e}")))?.len();
    if size > MAX_RULES_BYTES as u64 {
        return Err(too_large(&source, size));
    }
    let bytes = std::fs::read(path).map_err(|e| RulesRejected::single(&source, "", format!("cannot read: {e}")))?;
    parse_rules(&bytes, format, &source)
}

fn too_large(source: &str, size: u64) -> RulesRejected {
    RulesRejected::single(source, "", format!("document is {size} bytes; the limit is {MAX_RULES_BYTES} bytes"))
}

/// Parses and validates a rule document. `source` names where it came from in every error.
pub fn parse_rules(bytes: &[u8], format: RulesFormat, source: &str) -> Result<RuleSet, RulesRejected> {
    if bytes.len() > MAX_RULES_BYTES {
        return Err(too_large(source, bytes.len() as u64));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        RulesRejected::single(source, "", format!("not UTF-8 text (invalid byte at offset {})", e.valid_up_to()))
    })?;
    if text.trim().is_empty() {
        return Err(RulesRejected::single(source, "", "the document is empty"));
    }
    let doc = format
        .parse(text)
        .map_err(|e| RulesRejected::single(source, "", format!("cannot parse as {format:?}: {}", cut(&e))))?;
    validate(&doc, source)
}

const TOP_FIELDS: &[&str] =
    &["version", "default_pool", "scheduler_share", "kill_switch", "seed", "sticky_key", "overrides"];
const OVERRIDE_FIELDS: &[&str] = &["name", "namespace", "package", "action", "share", "seed", "sticky_key", "shadow"];
const SHADOW_FIELDS: &[&str] = &["sample", "ignore", "redact", "calibrate", "methods", "non_blocking"];

/// Collects errors while reading typed fields out of a JSON-like document: the first
/// [`MAX_ERRORS`] in full, the rest counted.
struct Walker<'a> {
    source: &'a str,
    errors: Vec<RuleError>,
    more: usize,
}

impl Walker<'_> {
    fn error(&mut self, path: &str, reason: impl Into<String>) {
        if self.errors.len() == MAX_ERRORS {
            self.more += 1;
            return;
        }
        self.errors.push(RuleError { source: cut(self.source), path: cut(path), reason: cut(&reason.into()) });
    }

    fn rejected(self) -> RulesRejected {
        RulesRejected { errors: self.errors, more: self.more }
    }

    fn unknown_fields(&mut self, map: &Map<String, Value>, known: &[&str], prefix: &str) {
        for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
            self.error(&join(prefix, key), format!("unknown field (expected one of: {})", known.join(", ")));
        }
    }

    fn string<'v>(&mut self, map: &'v Map<String, Value>, key: &str, prefix: &str) -> Option<&'v str> {
        match map.get(key)? {
            Value::String(s) => Some(s),
            other => {
                self.error(&join(prefix, key), format!("expected a string, found {}", kind(other)));
                None
            }
        }
    }

    fn share(&mut self, map: &Map<String, Value>, key: &str, prefix: &str) -> Option<Share> {
        let text = match map.get(key)? {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            other => {
                self.error(&join(prefix, key), format!("expected a percentage, found {}", kind(other)));
                return None;
            }
        };
        Share::parse_percent(&text).map_err(|e| self.error(&join(prefix, key), e)).ok()
    }

    fn seed(&mut self, map: &Map<String, Value>, key: &str, prefix: &str) -> Option<u64> {
        match map.get(key)? {
            // TOML integers are signed 64-bit, so seeds stop at 2^63 - 1 in every format.
            Value::Number(n) if n.as_i64().is_some_and(|s| s >= 0) => n.as_u64(),
            other => {
                self.error(&join(prefix, key), format!("expected an integer from 0 to 2^63-1, found {}", kind(other)));
                None
            }
        }
    }

    fn sticky_key(&mut self, map: &Map<String, Value>, key: &str, prefix: &str) -> Option<StickyKey> {
        let text = self.string(map, key, prefix)?;
        StickyKey::parse(text).map_err(|e| self.error(&join(prefix, key), e)).ok()
    }

    fn glob(&mut self, map: &Map<String, Value>, key: &str, prefix: &str, allow_empty: bool) -> Option<Glob> {
        let text = match map.get(key) {
            None => "*",
            Some(_) => self.string(map, key, prefix)?,
        };
        Glob::parse(text, allow_empty).map_err(|e| self.error(&join(prefix, key), e)).ok()
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

fn validate(doc: &Value, source: &str) -> Result<RuleSet, RulesRejected> {
    let mut w = Walker { source, errors: Vec::new(), more: 0 };
    let Some(top) = doc.as_object() else {
        return Err(RulesRejected::single(source, "", format!("expected a table at the top, found {}", kind(doc))));
    };
    w.unknown_fields(top, TOP_FIELDS, "");

    let version = match w.string(top, "version", "") {
        Some(v) if v.trim().is_empty() => {
            w.error("version", "must not be empty");
            None
        }
        Some(v) if v.len() > 128 => {
            w.error("version", "longer than 128 characters");
            None
        }
        // It goes into logs, headers and metric labels as it is.
        Some(v) if v.chars().any(char::is_control) => {
            w.error("version", "contains control characters (a version is short printable text)");
            None
        }
        Some(v) => Some(v.to_string()),
        None => {
            if !top.contains_key("version") {
                w.error("version", "missing (every rule set needs a version that identifies its content)");
            }
            None
        }
    };
    let default_pool = match w.string(top, "default_pool", "") {
        None => Some(Pool::Legacy),
        Some(text) => {
            let pool = Pool::parse(text);
            if pool.is_none() {
                w.error("default_pool", format!("unknown pool `{text}` (expected legacy or scheduler)"));
            }
            pool
        }
    };
    let scheduler_share =
        if top.contains_key("scheduler_share") { w.share(top, "scheduler_share", "") } else { Some(Share::ZERO) };
    let kill_switch = match top.get("kill_switch") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            w.error("kill_switch", format!("expected true or false, found {}", kind(other)));
            false
        }
    };
    let seed = w.seed(top, "seed", "").unwrap_or(0);
    let sticky_key =
        if top.contains_key("sticky_key") { w.sticky_key(top, "sticky_key", "") } else { Some(StickyKey::Action) };

    let overrides = match top.get("overrides") {
        None => Vec::new(),
        Some(Value::Array(items)) => read_overrides(&mut w, items, seed, sticky_key.as_ref()),
        Some(other) => {
            w.error("overrides", format!("expected a list of tables, found {}", kind(other)));
            Vec::new()
        }
    };

    if !w.errors.is_empty() {
        return Err(w.rejected());
    }
    let (Some(version), Some(default_pool), Some(scheduler_share), Some(sticky_key)) =
        (version, default_pool, scheduler_share, sticky_key)
    else {
        unreachable!("a missing value always records an error");
    };
    let matcher = Matcher::build(&overrides);
    let mut rules = RuleSet {
        version,
        default_pool,
        scheduler_share,
        kill_switch,
        seed,
        sticky_key,
        overrides,
        fingerprint: 0,
        matcher,
    };
    rules.fingerprint = fingerprint(&rules.to_document());
    Ok(rules)
}

fn read_pointers(w: &mut Walker<'_>, map: &Map<String, Value>, key: &str, prefix: &str) -> Option<Vec<String>> {
    let path = join(prefix, key);
    match map.get(key) {
        None => Some(Vec::new()),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(p) if p.starts_with('/') => out.push(p.to_string()),
                    Some(p) => w.error(
                        &format!("{path}[{i}]"),
                        format!("`{p}` is not a JSON pointer (it must start with `/`)"),
                    ),
                    None => w.error(&format!("{path}[{i}]"), format!("expected a string, found {}", kind(item))),
                }
            }
            (out.len() == items.len()).then_some(out)
        }
        Some(other) => {
            w.error(&path, format!("expected a list of JSON pointers, found {}", kind(other)));
            None
        }
    }
}

fn read_shadow(w: &mut Walker<'_>, map: &Map<String, Value>, prefix: &str) -> Option<ShadowPolicy> {
    w.unknown_fields(map, SHADOW_FIELDS, prefix);
    if !map.contains_key("sample") {
        w.error(&join(prefix, "sample"), "missing (the share of matching invocations to mirror)");
    }
    let sample = w.share(map, "sample", prefix);
    let calibrate = if map.contains_key("calibrate") { w.share(map, "calibrate", prefix) } else { Some(Share::ZERO) };
    let ignore = read_pointers(w, map, "ignore", prefix);
    let redact = read_pointers(w, map, "redact", prefix);
    let methods = read_methods(w, map, prefix);
    let non_blocking = match map.get("non_blocking") {
        None => Some(false),
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            w.error(&join(prefix, "non_blocking"), format!("expected true or false, found {}", kind(other)));
            None
        }
    };
    Some(ShadowPolicy {
        sample: sample?,
        ignore: ignore?,
        redact: redact?,
        calibrate: calibrate?,
        methods: methods?,
        non_blocking: non_blocking?,
    })
}

/// `methods`: HTTP methods of web actions to mirror besides GET and HEAD. Trigger fires are never
/// mirrored (their rule-driven invocations run where the fire lands), so nothing can opt them in.
fn read_methods(w: &mut Walker<'_>, map: &Map<String, Value>, prefix: &str) -> Option<Vec<String>> {
    let path = join(prefix, "methods");
    let items = match map.get("methods") {
        None => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            w.error(&path, format!("expected a list of HTTP methods, found {}", kind(other)));
            return None;
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_str().map(str::to_ascii_uppercase) {
            Some(m) if MIRROR_METHODS.contains(&m.as_str()) => out.push(m),
            Some(m) if m.contains("TRIGGER") || m == "FIRE" => w.error(
                &format!("{path}[{i}]"),
                "trigger fires are never mirrored: their rule-driven invocations run on the path that received the fire",
            ),
            Some(m) => w.error(
                &format!("{path}[{i}]"),
                format!("`{m}` is not a web-action method (expected one of: {})", MIRROR_METHODS.join(", ")),
            ),
            None => w.error(&format!("{path}[{i}]"), format!("expected a string, found {}", kind(item))),
        }
    }
    (out.len() == items.len()).then_some(out)
}

fn read_overrides(w: &mut Walker<'_>, items: &[Value], seed: u64, sticky_key: Option<&StickyKey>) -> Vec<Override> {
    let mut out = Vec::with_capacity(items.len());
    let mut seen: std::collections::HashMap<(String, String, String), usize> = std::collections::HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("overrides[{i}]");
        let Some(map) = item.as_object() else {
            w.error(&prefix, format!("expected a table, found {}", kind(item)));
            continue;
        };
        w.unknown_fields(map, OVERRIDE_FIELDS, &prefix);
        let name = w.string(map, "name", &prefix).map(str::to_string);
        let namespace = w.glob(map, "namespace", &prefix, false);
        let package = w.glob(map, "package", &prefix, true);
        let action = w.glob(map, "action", &prefix, false);
        let share = w.share(map, "share", &prefix);
        if !map.contains_key("share") {
            w.error(&join(&prefix, "share"), "missing (the share of matching invocations sent to the scheduler)");
        }
        let own_seed = w.seed(map, "seed", &prefix);
        let own_key =
            if map.contains_key("sticky_key") { w.sticky_key(map, "sticky_key", &prefix) } else { sticky_key.cloned() };
        let (Some(namespace), Some(package), Some(action), Some(share), Some(sticky_key)) =
            (namespace, package, action, share, own_key)
        else {
            continue;
        };
        if namespace.specificity() + package.specificity() + action.specificity() == 0 {
            w.error(&prefix, "matches every invocation; set scheduler_share instead");
            continue;
        }
        let triple = (namespace.as_str().to_string(), package.as_str().to_string(), action.as_str().to_string());
        if let Some(first) = seen.get(&triple) {
            w.error(&prefix, format!("duplicate of overrides[{first}] (same namespace, package and action)"));
            continue;
        }
        seen.insert(triple, i);
        let shadow = match map.get("shadow") {
            None => None,
            Some(Value::Object(policy)) => read_shadow(w, policy, &join(&prefix, "shadow")),
            Some(other) => {
                w.error(&join(&prefix, "shadow"), format!("expected a table, found {}", kind(other)));
                None
            }
        };
        if map.contains_key("shadow") && shadow.is_none() {
            continue;
        }
        out.push(Override {
            name,
            namespace,
            package,
            action,
            share,
            seed: own_seed.unwrap_or(seed),
            sticky_key,
            shadow,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::MAX_ERROR_TEXT;

    fn toml(text: &str) -> Result<RuleSet, RulesRejected> {
        parse_rules(text.as_bytes(), RulesFormat::Toml, "rules.toml")
    }

    #[test]
    fn reads_every_field() {
        let rules = toml(
            r#"
            version = "v1"
            default_pool = "scheduler"
            scheduler_share = 12.5
            kill_switch = false
            seed = 9
            sticky_key = "header:X-Tenant"
            [[overrides]]
            name = "billing stays"
            namespace = "billing"
            share = "0%"
            [[overrides]]
            namespace = "guest"
            package = ""
            action = "img-*"
            share = 100
            seed = 3
            sticky_key = "subject"
            "#,
        )
        .unwrap();
        assert_eq!(rules.version, "v1");
        assert_eq!(rules.default_pool, Pool::Scheduler);
        assert_eq!(rules.scheduler_share.ppm(), 125_000);
        assert_eq!(rules.seed, 9);
        assert_eq!(rules.sticky_key, StickyKey::Header("x-tenant".into()));
        assert_eq!(rules.overrides.len(), 2);
        assert_eq!(rules.overrides[0].seed, 9, "overrides inherit the global seed");
        assert_eq!(rules.overrides[0].package.as_str(), "*");
        assert_eq!(rules.overrides[1].seed, 3);
        assert_eq!(rules.overrides[1].sticky_key, StickyKey::Subject);
    }

    #[test]
    fn the_three_formats_give_the_same_rules() {
        let t = toml("version = \"a\"\nscheduler_share = 5\n[[overrides]]\nnamespace = \"n\"\nshare = 50\n").unwrap();
        let y = parse_rules(
            b"version: a\nscheduler_share: 5\noverrides:\n  - namespace: n\n    share: 50\n",
            RulesFormat::Yaml,
            "r.yaml",
        )
        .unwrap();
        let j = parse_rules(
            br#"{"version":"a","scheduler_share":5,"overrides":[{"namespace":"n","share":50}]}"#,
            RulesFormat::Json,
            "r.json",
        )
        .unwrap();
        assert_eq!(t.to_document(), y.to_document());
        assert_eq!(t.to_document(), j.to_document());
        assert_eq!(t.fingerprint, j.fingerprint);
    }

    #[test]
    fn reports_every_error_with_source_and_path() {
        let err = toml(
            r#"
            version = "v2"
            scheduler_share = 140
            colour = "blue"
            default_pool = ""
            [[overrides]]
            namespace = "a/b"
            share = 10
            [[overrides]]
            namespace = "guest"
            action = "hello"
            share = 1
            [[overrides]]
            namespace = "guest"
            action = "hello"
            share = 2
            [[overrides]]
            action = "x"
            "#,
        )
        .unwrap_err();
        let lines: Vec<String> = err.errors.iter().map(ToString::to_string).collect();
        let expect = [
            "rules.toml: scheduler_share: 140 % is out of range 0 to 100",
            "rules.toml: colour: unknown field",
            "rules.toml: default_pool: unknown pool ``",
            "rules.toml: overrides[0].namespace: bad glob `a/b`",
            "rules.toml: overrides[2]: duplicate of overrides[1]",
            "rules.toml: overrides[3].share: missing",
        ];
        for e in expect {
            assert!(lines.iter().any(|l| l.starts_with(e)), "missing {e:?} in {lines:#?}");
        }
        assert_eq!(lines.len(), expect.len(), "{lines:#?}");
    }

    #[test]
    fn shadow_policies() {
        let r = toml(
            "version = \"s\"\n[[overrides]]\nnamespace = \"guest\"\naction = \"pure-*\"\nshare = 50\n\
             shadow = { sample = 10, ignore = [\"/response/result/now\"], calibrate = 20 }\n",
        )
        .unwrap();
        let p = r.overrides[0].shadow.as_ref().unwrap();
        assert_eq!((p.sample.ppm(), p.calibrate.ppm()), (100_000, 200_000));
        assert_eq!(p.ignore, vec!["/response/result/now"]);
        let err = toml("version = \"s\"\n[[overrides]]\nnamespace = \"g\"\nshare = 5\nshadow = { ignore = [\"now\"], every = 1 }\n")
            .unwrap_err()
            .to_string();
        for e in [
            "overrides[0].shadow.every: unknown field",
            "overrides[0].shadow.sample: missing",
            "overrides[0].shadow.ignore[0]: `now` is not a JSON pointer",
        ] {
            assert!(err.contains(e), "{e:?} not in {err}");
        }
    }

    #[test]
    fn rejects_documents_that_are_not_rules() {
        let cases: [(&[u8], &str); 5] = [
            (b"", "empty"),
            (b"version = ", "cannot parse as Toml"),
            (&[0xff, 0xfe, 0x00, 0x9c], "not UTF-8"),
            (b"scheduler_share = 5", "version: missing"),
            (b"version = \"v\"\noverrides = 3", "overrides: expected a list"),
        ];
        for (bytes, expect) in cases {
            let err = parse_rules(bytes, RulesFormat::Toml, "f.toml").unwrap_err().to_string();
            assert!(err.contains(expect), "{expect:?} not in {err}");
        }
        let big = vec![b' '; MAX_RULES_BYTES + 1];
        let err = parse_rules(&big, RulesFormat::Toml, "big.toml").unwrap_err().to_string();
        assert!(err.contains("the limit is"), "{err}");
    }

    /// Documents built to hurt the process: each is rejected cleanly, quickly and with a bounded error.
    #[test]
    fn hostile_documents_are_rejected_within_bounds() {
        let deep_yaml = format!(
            "version: x\nnote:\n{}",
            (0..10_000).map(|i| format!("{}- \n", " ".repeat(i % 60))).collect::<String>()
        );
        let nested = |open: &str, close: &str| format!("{}{}", open.repeat(10_000), close.repeat(10_000));
        let alias_bomb = {
            let mut y = String::from("version: x\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
            for i in 1..10 {
                let refs = vec![format!("*a{}", i - 1); 10].join(", ");
                y.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
            }
            y
        };
        let cases: Vec<(Vec<u8>, RulesFormat, &str)> = vec![
            (b"version = \"x\"\n\"a[1099511627776]\" = 1\n".to_vec(), RulesFormat::Toml, "unknown field"),
            (b"version = \"x\"\n\"a[9223372036854775807]\" = 1\n".to_vec(), RulesFormat::Toml, "unknown field"),
            (deep_yaml.into_bytes(), RulesFormat::Yaml, "cannot parse as Yaml"),
            (alias_bomb.into_bytes(), RulesFormat::Yaml, "cannot parse as Yaml"),
            (
                format!("version = \"x\"\nnote = {}", nested("[", "]")).into_bytes(),
                RulesFormat::Toml,
                "cannot parse as Toml",
            ),
            (
                format!("{{\"version\":\"x\",\"note\":{}}}", nested("[", "]")).into_bytes(),
                RulesFormat::Json,
                "cannot parse as Json",
            ),
            (
                format!("{{\"version\":\"x\",\"note\":{}}}", nested("{\"a\":", "}").replace("}}", "1}}")).into_bytes(),
                RulesFormat::Json,
                "cannot parse as Json",
            ),
            (b"version = \"v\\nold_version=forged\"\n".to_vec(), RulesFormat::Toml, "control characters"),
        ];
        for (bytes, format, expect) in cases {
            let started = std::time::Instant::now();
            let err = parse_rules(&bytes, format, "hostile").unwrap_err();
            let text = err.to_string();
            assert!(text.contains(expect), "{expect:?} not in {text}");
            assert!(text.len() < 2_000, "error of {} bytes", text.len());
            assert!(!text.contains('\n') || text.lines().all(|l| !l.contains("old_version=forged\n")));
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
        }
    }

    #[test]
    fn errors_are_capped_and_counted() {
        let doc: String = (0..5_000).map(|i| format!("unknown_{i} = 1\n")).collect();
        let err = toml(&format!("version = \"x\"\n{doc}")).unwrap_err();
        assert_eq!(err.errors.len(), MAX_ERRORS);
        assert_eq!(err.more, 5_000 - MAX_ERRORS);
        assert_eq!(err.total(), 5_000);
        let text = err.to_string();
        assert!(text.starts_with("rule set rejected (5000 errors)"), "{}", &text[..80]);
        assert!(text.ends_with(&format!("and {} more", 5_000 - MAX_ERRORS)), "{}", &text[text.len() - 80..]);
        let long_key = "k".repeat(100_000);
        let err = toml(&format!("version = \"x\"\n{long_key} = 1\n")).unwrap_err();
        assert!(err.errors[0].path.chars().count() <= MAX_ERROR_TEXT + 1, "paths are cut");
    }

    #[test]
    fn mirroring_is_for_what_is_safe_to_run_twice_unless_listed() {
        let r = toml(
            "version = \"m\"\n[[overrides]]\nnamespace = \"g\"\nshare = 5\nshadow = { sample = 10 }\n\
             [[overrides]]\nnamespace = \"h\"\nshare = 5\nshadow = { sample = 10, methods = [\"post\", \"DELETE\"], non_blocking = true }\n",
        )
        .unwrap();
        let (plain, open) = (r.overrides[0].shadow.as_ref().unwrap(), r.overrides[1].shadow.as_ref().unwrap());
        assert!(plain.mirrors_invoke(true) && !plain.mirrors_invoke(false));
        assert!(plain.mirrors_web_method("GET") && plain.mirrors_web_method("HEAD"));
        for m in ["POST", "PUT", "DELETE", "PATCH"] {
            assert!(!plain.mirrors_web_method(m), "{m}");
        }
        assert!(open.mirrors_invoke(false) && open.mirrors_web_method("POST") && open.mirrors_web_method("DELETE"));
        assert!(!open.mirrors_web_method("PUT"));
        let err = toml("version = \"m\"\n[[overrides]]\nnamespace = \"g\"\nshare = 5\nshadow = { sample = 10, methods = [\"trigger\", \"BREW\"], non_blocking = 1 }\n")
            .unwrap_err()
            .to_string();
        for e in [
            "methods[0]: trigger fires are never mirrored",
            "methods[1]: `BREW` is not a web-action method",
            "non_blocking: expected true or false",
        ] {
            assert!(err.contains(e), "{e:?} not in {err}");
        }
    }

    #[test]
    fn media_types_round_trip() {
        for f in [RulesFormat::Toml, RulesFormat::Yaml, RulesFormat::Json] {
            assert_eq!(RulesFormat::from_media_type(f.media_type()), Some(f));
        }
    }

    #[test]
    fn fingerprint_ignores_version_and_format_but_not_content() {
        let a = toml("version = \"1\"\nscheduler_share = 5").unwrap();
        let b = toml("version = \"2\"\nscheduler_share = 5.0").unwrap();
        let c = toml("version = \"1\"\nscheduler_share = 6").unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
    }
}

//! From bytes to a compiled [`RuleSet`]: size and encoding checks, parsing with serde (TOML,
//! YAML or JSON) under budgets for nesting and YAML aliases, then a validating walk over the
//! document that collects every error with its field path instead of stopping at the first, as
//! serde would. Keys are plain field names, never path expressions; every error and every value it
//! quotes is bounded, so a hostile document costs at most its own size.

use std::path::Path;

use std::collections::HashMap;

use serde_json::Value;

use crate::document::{
    OverrideDocument, PackageGlob, Pointer, RampDocument, RulesDocument, ShadowDocument, StepDocument, Version,
};
use crate::error::{cut, Collector, RulesRejected};
use crate::field::{kind, Each, Field, FieldType};
use crate::force::Force;
use crate::gates::Gates;
use crate::glob::Glob;
use crate::model::{Override, ShadowPolicy, StickyKey};
use crate::pool::Pool;
use crate::ramp::{Ramp, Step};
use crate::ruleset::RuleSet;
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
    /// What a file whose extension names no format is told.
    pub const UNKNOWN_EXTENSION: &'static str = "unknown file extension (expected .toml, .yaml, .yml or .json)";

    /// By file extension, in any case: `.toml`, `.yaml`/`.yml`, `.json`. The one reading of a
    /// file's format: rules files and the static config both take it.
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
    let format = RulesFormat::from_path(path)
        .ok_or_else(|| RulesRejected::single(&source, "", RulesFormat::UNKNOWN_EXTENSION))?;
    let bytes = match crate::file::read_capped(path, MAX_RULES_BYTES) {
        Ok(bytes) => bytes,
        Err(crate::FileError::TooLarge(_)) => {
            return Err(RulesRejected::single(
                &source,
                "",
                format!("document is larger than allowed; the limit is {MAX_RULES_BYTES} bytes"),
            ))
        }
        Err(e) => return Err(RulesRejected::single(&source, "", e.to_string())),
    };
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

/// Turns a parsed document into a compiled rule set: reads it into the typed document (every
/// field, every problem), then applies defaults and the rules that span fields.
fn validate(doc: &Value, source: &str) -> Result<RuleSet, RulesRejected> {
    let mut c = Collector::new(source);
    if !doc.is_object() {
        return Err(RulesRejected::single(source, "", format!("expected a table at the top, found {}", kind(doc))));
    }
    let Some(top) = RulesDocument::read(doc, "", &mut c) else {
        return Err(c.rejected());
    };
    let seed = top.seed.value().copied().unwrap_or(0);
    let sticky_key = top.sticky_key.value().cloned().unwrap_or(StickyKey::Action);
    let overrides = match top.overrides.value() {
        Some(Each(items)) => compile_overrides(items, seed, &sticky_key, &mut c),
        None => Vec::new(),
    };
    let scheduler_share = top.scheduler_share.value().copied().unwrap_or(Share::ZERO);
    let ramp = match &top.ramp {
        Field::Value(r) => compile_ramp(r, "ramp", scheduler_share, "scheduler_share", &mut c),
        _ => None,
    };
    let force = match &top.force {
        Field::Value(f) => Force::compile(f, &mut c),
        _ => None,
    };
    let (Field::Value(Version(version)), false, false, false, false) = (
        top.version,
        top.default_pool.is_invalid(),
        top.scheduler_share.is_invalid(),
        top.kill_switch.is_invalid() || top.seed.is_invalid() || top.force.is_invalid(),
        top.sticky_key.is_invalid() || top.overrides.is_invalid() || top.ramp.is_invalid(),
    ) else {
        return Err(c.rejected());
    };
    if !c.is_empty() {
        return Err(c.rejected());
    }
    Ok(RuleSet::new(
        version,
        top.default_pool.value().copied().unwrap_or(Pool::Legacy),
        scheduler_share,
        top.kill_switch.value().copied().unwrap_or(false),
        seed,
        sticky_key,
        overrides,
    )
    .with_ramp_and_force(ramp, force))
}

/// The longest rollback reason kept in the rules.
const MAX_REASON: usize = 1000;

/// A ramp with its defaults; `None` when something did not read or validate (reported).
/// `at`: where the ramp is (`ramp`, `overrides[i].ramp`); `before`: the share it starts from,
/// written at `before_path`.
fn compile_ramp(r: &RampDocument, at: &str, before: Share, before_path: &str, c: &mut Collector<'_>) -> Option<Ramp> {
    let mut steps = Vec::new();
    let mut complete = true;
    if let Some(Each(items)) = r.steps.value() {
        if items.is_empty() {
            c.error(&format!("{at}.steps"), "needs at least one step");
        }
        if items.len() > Ramp::MAX_STEPS {
            c.error(&format!("{at}.steps"), format!("{} steps; the limit is {}", items.len(), Ramp::MAX_STEPS));
        }
        for (i, item) in items.iter().enumerate() {
            if let Some(StepDocument { hold_s: Field::Value(hold_s), .. }) = item {
                if *hold_s > Ramp::MAX_HOLD_S {
                    c.error(
                        &format!("{at}.steps[{i}].hold_s"),
                        format!("{hold_s} s is longer than the limit, {} s (366 days)", Ramp::MAX_HOLD_S),
                    );
                    complete = false;
                    continue;
                }
            }
            match item {
                Some(StepDocument {
                    share: Field::Value(share),
                    hold_s: Field::Value(hold_s),
                    min_invocations,
                    approve,
                }) if !min_invocations.is_invalid() && !approve.is_invalid() => steps.push(Step {
                    share: *share,
                    hold_s: *hold_s,
                    min_invocations: min_invocations.value().copied().unwrap_or(0),
                    approve: approve.value().copied().unwrap_or(false),
                }),
                _ => complete = false,
            }
        }
    }
    if complete {
        for (i, pair) in steps.windows(2).enumerate() {
            if pair[1].share < pair[0].share {
                c.error(
                    &format!("{at}.steps[{}].share", i + 1),
                    format!(
                        "{} is below the step before ({}): a ramp only moves keys to the scheduler",
                        pair[1].share, pair[0].share
                    ),
                );
            }
        }
    }
    let first = steps.first().map(|s| s.share);
    let window_s = r.window_s.value().copied().unwrap_or(Ramp::DEFAULT_WINDOW_S);
    if !(1..=Ramp::MAX_WINDOW_S).contains(&window_s) {
        c.error(&format!("{at}.window_s"), format!("{window_s} is out of range 1 to {}", Ramp::MAX_WINDOW_S));
    }
    let rollback_share = r.rollback_share.value().copied().unwrap_or(Share::ZERO);
    if first.is_some_and(|f| rollback_share > f) {
        c.error(
            &format!("{at}.rollback_share"),
            "above the first step's share: a rollback only moves keys back to legacy",
        );
    }
    if first.is_some_and(|f| before > f) {
        c.error(before_path, "above the ramp's first step: the share before the ramp starts must not exceed it");
    }
    if r.rolled_back.value().is_some_and(|t| t.len() > MAX_REASON) {
        c.error(&format!("{at}.rolled_back"), format!("longer than {MAX_REASON} characters"));
    }
    let gates = Gates::compile(&r.gates, at, c);
    let invalid = r.window_s.is_invalid() || r.rollback_share.is_invalid() || r.rolled_back.is_invalid();
    if !complete || invalid || steps.is_empty() {
        return None;
    }
    Some(Ramp {
        start_ms: r.start.value()?.0,
        steps,
        window_s,
        rollback_share,
        rolled_back: r.rolled_back.value().cloned(),
        gates: gates?,
    })
}

/// The overrides that read cleanly, with the global seed and sticky key filled in; reports the
/// ones that match everything and duplicates.
fn compile_overrides(
    items: &[Option<OverrideDocument>],
    seed: u64,
    sticky_key: &StickyKey,
    c: &mut Collector<'_>,
) -> Vec<Override> {
    let mut out = Vec::with_capacity(items.len());
    let mut seen: HashMap<(String, String, String), usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let Some(o) = item else { continue };
        let prefix = format!("overrides[{i}]");
        let any = || Glob::parse("*", false).expect("`*` is a glob");
        let pattern = |f: &Field<Glob>| match f {
            Field::Absent => Some(any()),
            Field::Value(g) => Some(g.clone()),
            Field::Invalid => None,
        };
        let package = match &o.package {
            Field::Absent => Some(any()),
            Field::Value(PackageGlob(g)) => Some(g.clone()),
            Field::Invalid => None,
        };
        let shadow = match &o.shadow {
            Field::Absent => Some(None),
            Field::Value(s) => compile_shadow(s).map(Some),
            Field::Invalid => None,
        };
        let ramp = match (&o.ramp, o.share.value()) {
            (Field::Absent, _) => Some(None),
            (Field::Value(r), Some(share)) => {
                let at = format!("{prefix}.ramp");
                compile_ramp(r, &at, *share, &format!("{prefix}.share"), c).map(Some)
            }
            _ => None,
        };
        let (Some(namespace), Some(package), Some(action), Some(share), Some(shadow), Some(ramp), false, false, false) = (
            pattern(&o.namespace),
            package,
            pattern(&o.action),
            o.share.value().copied(),
            shadow,
            ramp,
            o.seed.is_invalid(),
            o.sticky_key.is_invalid(),
            o.name.is_invalid(),
        ) else {
            continue;
        };
        if namespace.specificity() + package.specificity() + action.specificity() == 0 {
            c.error(&prefix, "matches every invocation; set scheduler_share instead");
            continue;
        }
        let triple = (namespace.as_str().to_string(), package.as_str().to_string(), action.as_str().to_string());
        if let Some(first) = seen.get(&triple) {
            c.error(&prefix, format!("duplicate of overrides[{first}] (same namespace, package and action)"));
            continue;
        }
        seen.insert(triple, i);
        out.push(Override {
            name: o.name.value().cloned(),
            namespace,
            package,
            action,
            share,
            seed: o.seed.value().copied().unwrap_or(seed),
            sticky_key: o.sticky_key.value().cloned().unwrap_or_else(|| sticky_key.clone()),
            shadow,
            ramp,
            ramp_share: None,
        });
    }
    let ramped = out.iter().filter(|o| o.ramp.is_some()).count();
    if ramped > Ramp::MAX_SCOPED {
        c.error("overrides", format!("{ramped} overrides have a ramp of their own; the limit is {}", Ramp::MAX_SCOPED));
    }
    out
}

/// A shadow policy with its defaults; `None` when a field did not read (already reported).
fn compile_shadow(s: &ShadowDocument) -> Option<ShadowPolicy> {
    let pointers = |f: &Field<Vec<Pointer>>| match f {
        Field::Invalid => None,
        f => Some(f.value().map(|ps| ps.iter().map(|p| p.0.clone()).collect()).unwrap_or_default()),
    };
    let (ignore, redact) = (pointers(&s.ignore)?, pointers(&s.redact)?);
    if s.calibrate.is_invalid() || s.methods.is_invalid() || s.non_blocking.is_invalid() {
        return None;
    }
    Some(ShadowPolicy {
        sample: s.sample.value().copied()?,
        ignore,
        redact,
        calibrate: s.calibrate.value().copied().unwrap_or(Share::ZERO),
        methods: s.methods.value().map(|ms| ms.iter().map(|m| m.0.clone()).collect()).unwrap_or_default(),
        non_blocking: s.non_blocking.value().copied().unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{MAX_ERRORS, MAX_ERROR_TEXT};
    use crate::ramp::RampScope;

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
    fn the_canonical_document_reads_back_as_the_same_rules() {
        let r = toml(
            "version = \"c\"\nscheduler_share = \"12.5%\"\nsticky_key = \"subject\"\n[[overrides]]\nname = \"n\"\n\
             namespace = \"guest\"\npackage = \"\"\naction = \"img-*\"\nshare = 50\n\
             shadow = { sample = 10, ignore = [\"/a\"], methods = [\"post\"], non_blocking = true }\n\
             [ramp]\nstart = 2026-11-30T10:00:00Z\nsteps = [{ share = 25, hold_s = 60 }, { share = 100, hold_s = 0 }]\n\
             [ramp.gates]\nmismatch = { max = 0.01 }\nlatency = { factor = 1.5 }\n\
             [force]\nheader = \"X-Path\"\nnamespaces = [\"qa-*\"]\n",
        )
        .unwrap();
        let doc = r.to_document();
        assert_eq!(doc["force"], serde_json::json!({"header": "x-path", "namespaces": ["qa-*"], "subjects": []}));
        assert_eq!(doc["ramp"]["start"], "2026-11-30T10:00:00Z");
        assert_eq!(doc["ramp"]["gates"]["platform_failure"]["factor"], 2.0, "defaults are written");
        let again = parse_rules(&serde_json::to_vec(&doc).unwrap(), RulesFormat::Json, "canonical").unwrap();
        assert_eq!(again.to_document(), doc);
        assert_eq!(again.fingerprint, r.fingerprint);
        assert_eq!(doc["overrides"][0]["shadow"]["methods"], serde_json::json!(["POST"]));
        let keys: Vec<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
        let mut fields = crate::document::RulesDocument::FIELDS.to_vec();
        fields.sort_unstable();
        assert_eq!(keys, fields, "every field of the schema is written");
    }

    #[test]
    fn an_override_may_have_a_ramp_of_its_own_validated_under_its_path() {
        let r = toml(
            "version = \"o\"\n[[overrides]]\nname = \"team-a\"\nnamespace = \"team-a\"\nshare = 5\n\
             ramp = { start = 1800000000, steps = [{ share = 10, hold_s = 60 }, { share = 100, hold_s = 0 }] }\n\
             [[overrides]]\nnamespace = \"plain\"\nshare = 1\n\
             [[overrides]]\nnamespace = \"team-b\"\nshare = 0\nramp = { start = 1800000000, steps = [{ share = 50, hold_s = 1 }] }\n",
        )
        .unwrap();
        let scopes: Vec<RampScope> = r.ramps().into_iter().map(|(s, _)| s).collect();
        assert_eq!(scopes, [RampScope::Override(0), RampScope::Override(2)]);
        assert_eq!((r.ramp_slot(0), r.ramp_slot(1), r.ramp_slot(2)), (Some(0), None, Some(1)));
        assert_eq!(r.scope_name(RampScope::Override(2)), "team-b/*/*");
        assert_eq!(r.scope_named("team-a"), Some(RampScope::Override(0)));
        assert_eq!(r.share_before_ramp(RampScope::Override(0)).to_string(), "5%");
        let again = parse_rules(&serde_json::to_vec(&r.to_document()).unwrap(), RulesFormat::Json, "c").unwrap();
        assert_eq!(again.fingerprint, r.fingerprint, "the override's ramp is in the canonical form");
        // A rollback of one marks that ramp only, under a version that says which.
        let b = r.with_rollback(RampScope::Override(2), "gate queued fail").unwrap();
        assert_eq!(b.version, "o+rollback-o2");
        assert!(b.overrides[2].ramp.as_ref().unwrap().rolled_back.is_some());
        assert!(b.overrides[0].ramp.as_ref().unwrap().rolled_back.is_none());
        let both = b.with_rollback(RampScope::Override(0), "gate throttled fail").unwrap();
        assert_eq!((both.version.as_str(), both.rollback_base()), ("o+rollback-o2+rollback-o0", Some("o")));
        assert_eq!(both.with_rollback(RampScope::Override(0), "again").unwrap().version, both.version);

        let err = toml(
            "version = \"o\"\n[[overrides]]\nnamespace = \"a\"\nshare = 20\n\
             ramp = { start = 1800000000, window_s = 0, steps = [{ share = 10, hold_s = 60 }, { share = 5, hold_s = 0 }] }\n",
        )
        .unwrap_err()
        .to_string();
        for e in [
            "overrides[0].share: above the ramp's first step",
            "overrides[0].ramp.steps[1].share: 5% is below the step before",
            "overrides[0].ramp.window_s: 0 is out of range",
        ] {
            assert!(err.contains(e), "{e:?} not in {err}");
        }
        let many: String = (0..17)
            .map(|i| format!("[[overrides]]\nnamespace = \"n{i}\"\nshare = 0\nramp = {{ start = 1800000000, steps = [{{ share = 1, hold_s = 1 }}] }}\n"))
            .collect();
        let err = toml(&format!("version = \"m\"\n{many}")).unwrap_err().to_string();
        assert!(err.contains("overrides: 17 overrides have a ramp of their own; the limit is 16"), "{err}");
    }

    #[test]
    fn ramps_are_validated_with_every_problem_named() {
        let ok = toml(
            "version = \"r\"\n[ramp]\nstart = \"2026-11-30T10:00:00Z\"\nwindow_s = 30\n\
             steps = [{ share = 5, hold_s = 60, min_invocations = 100 }, { share = 50, hold_s = 60 }]\n",
        )
        .unwrap();
        let ramp = ok.ramp.as_ref().unwrap();
        assert_eq!((ramp.start_ms, ramp.window_s, ramp.steps.len()), (1_796_032_800_000, 30, 2));
        assert_eq!(ramp.gates, Gates::default());
        let from_seconds =
            toml("version = \"s\"\n[ramp]\nstart = 1796032800\nsteps = [{ share = 5, hold_s = 1 }]\n").unwrap();
        assert_eq!(from_seconds.ramp.unwrap().start_ms, 1_796_032_800_000);
        let err = toml(
            "version = \"r\"\nscheduler_share = 30\n[ramp]\nstart = \"soon\"\nwindow_s = 0\nrollback_share = 40\n\
             steps = [{ share = 25, hold_s = 60 }, { share = 10, hold_s = 60 }, { hold_s = 1 }]\n\
             gates = { latency = {}, mismatch = { max = 2 }, queued = { excess = -1 }, colour = 1 }\n",
        )
        .unwrap_err()
        .to_string();
        for e in [
            "ramp.start: `soon` is not an RFC 3339 time",
            "ramp.steps[2].share: missing",
            "ramp.window_s: 0 is out of range 1 to 3600",
            "ramp.gates.queued.excess: expected a number of 0 or more",
            "ramp.gates.colour: unknown field",
        ] {
            assert!(err.contains(e), "{e:?} not in {err}");
        }
        let err = toml(
            "version = \"r\"\nscheduler_share = 30\n[ramp]\nstart = 0\nrollback_share = 40\n\
             steps = [{ share = 25, hold_s = 60 }, { share = 10, hold_s = 60 }]\n\
             gates = { latency = {}, mismatch = { max = 2 } }\n",
        )
        .unwrap_err()
        .to_string();
        for e in [
            "ramp.steps[1].share: 10% is below the step before (25%)",
            "ramp.rollback_share: above the first step's share",
            "scheduler_share: above the ramp's first step",
            "ramp.gates.latency: set max_p99_ms, factor",
            "ramp.gates.mismatch.max: a rate: 0 to 1",
        ] {
            assert!(err.contains(e), "{e:?} not in {err}");
        }
    }

    #[test]
    fn an_absurd_hold_or_a_start_the_canonical_form_cannot_write_is_rejected() {
        let err = toml(
            "version = \"h\"\n[ramp]\nstart = 1800000000\nsteps = [{ share = 5, hold_s = 9223372036854775807 }]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ramp.steps[0].hold_s: 9223372036854775807 s is longer than the limit"), "{err}");
        for start in
            ["\"9999-12-31T23:59:59-99:00\"", "\"2026-02-31T00:00:00Z\"", "\"2026-01-01T00:00:00+99999999999999:00\""]
        {
            let err =
                toml(&format!("version = \"s\"\n[ramp]\nstart = {start}\nsteps = [{{ share = 5, hold_s = 1 }}]\n"))
                    .unwrap_err()
                    .to_string();
            assert!(err.contains("ramp.start:"), "{start}: {err}");
        }
        // Whatever is accepted is written back in a form that is accepted again.
        let ok = toml("version = \"s\"\n[ramp]\nstart = \"9999-12-31T23:59:59+23:59\"\nsteps = [{ share = 5, hold_s = 31622400 }]\n").unwrap();
        let again = serde_json::to_vec(&ok.to_document()).unwrap();
        assert!(parse_rules(&again, RulesFormat::Json, "again").is_ok());
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

    /// Found by fuzzing: a gate's factor whose shortest decimal form JSON's fast float parser
    /// read back one unit off, so the copy another replica parsed from the rules topic had a
    /// different fingerprint than the rules it came from.
    #[test]
    fn every_number_survives_the_trip_through_published_json() {
        for factor in ["1.5555552463839555", "1.5588796836325587", "1.2888796467844779"] {
            let doc = format!(
                "version = \"f\"\n[ramp]\nstart = 1800000000\nsteps = [{{ share = 100, hold_s = 0 }}]\n\
                 [ramp.gates]\nlatency = {{ max_p99_ms = 500, factor = {factor} }}\n"
            );
            let rules = toml(&doc).unwrap();
            let published = serde_json::to_vec(&rules.to_document()).unwrap();
            let again = parse_rules(&published, RulesFormat::Json, "kafka").unwrap();
            assert_eq!(again.fingerprint, rules.fingerprint, "factor {factor}");
        }
    }
}

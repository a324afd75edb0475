//! The rule document as written: the one description of the schema. A parsed document (any
//! format) is read into these types field by field, each field keeping its value or the reason it
//! could not be read, so that validation reports every problem at once with its path; the
//! canonical form of a compiled rule set (`RuleSet::to_document`) is written from the same types.
//! A field's name, type, whether it is required, and how it is read and written are each stated
//! once, in the `document!` declarations below.

use serde_json::Value;

use crate::error::Collector;
use crate::field::{document, kind, parsed, text, Each, Field, FieldType};
use crate::force::ForceDocument;
use crate::gates::GatesDocument;
use crate::glob::Glob;
use crate::model::{Override, StickyKey, MIRROR_METHODS};
use crate::pool::Pool;
use crate::ramp::Ramp;
use crate::share::Share;

/// A percentage, as a number (`12.5`) or a string (`"12.5%"`).
impl FieldType for Share {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let text = match v {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            other => {
                c.error(path, format!("expected a percentage, found {}", kind(other)));
                return None;
            }
        };
        parsed(Share::parse_percent(&text), path, c)
    }
    fn write(&self) -> Value {
        Value::String(self.to_string())
    }
}

impl FieldType for Pool {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let t = text(v, path, c)?;
        parsed(Pool::parse(t).ok_or_else(|| format!("unknown pool `{t}` (expected legacy or scheduler)")), path, c)
    }
    fn write(&self) -> Value {
        Value::String(self.as_str().into())
    }
}

impl FieldType for StickyKey {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let t = text(v, path, c)?;
        parsed(StickyKey::parse(t), path, c)
    }
    fn write(&self) -> Value {
        Value::String(self.to_string())
    }
}

/// A namespace or action pattern (never empty).
impl FieldType for Glob {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let t = text(v, path, c)?;
        parsed(Glob::parse(t, false), path, c)
    }
    fn write(&self) -> Value {
        Value::String(self.as_str().into())
    }
}

/// A package pattern: `""` matches only actions outside any package.
#[derive(Debug, Clone)]
pub(crate) struct PackageGlob(pub Glob);

impl FieldType for PackageGlob {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let t = text(v, path, c)?;
        parsed(Glob::parse(t, true), path, c).map(PackageGlob)
    }
    fn write(&self) -> Value {
        self.0.write()
    }
}

/// What identifies a rule set's content: short printable text (it goes into logs, headers and
/// metric labels as it is).
#[derive(Debug, Clone)]
pub(crate) struct Version(pub String);

impl FieldType for Version {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let t = text(v, path, c)?;
        let problem = if t.trim().is_empty() {
            Some("must not be empty")
        } else if t.len() > crate::MAX_VERSION_BYTES {
            Some("longer than 128 bytes")
        } else if t.chars().any(char::is_control) {
            Some("contains control characters (a version is short printable text)")
        } else {
            None
        };
        match problem {
            Some(p) => parsed(Err(p.to_string()), path, c),
            None => Some(Version(t.to_string())),
        }
    }
    fn write(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// A wall-clock time: RFC 3339 text (or a TOML date-time), or unix seconds. Kept in milliseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timestamp(pub u64);

/// How the `toml` crate hands a native date-time to serde.
const TOML_DATETIME: &str = "$__toml_private_datetime";

impl FieldType for Timestamp {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let text = match v {
            Value::Number(n) => {
                return match n.as_u64() {
                    Some(secs) if secs < 253_402_300_800 => Some(Timestamp(secs * 1000)),
                    _ => parsed(Err("unix seconds out of range".to_string()), path, c),
                }
            }
            Value::String(s) => s.as_str(),
            Value::Object(m) if m.len() == 1 && m.contains_key(TOML_DATETIME) => {
                m[TOML_DATETIME].as_str().unwrap_or_default()
            }
            other => {
                c.error(path, format!("expected an RFC 3339 time or unix seconds, found {}", kind(other)));
                return None;
            }
        };
        parsed(crate::ramp::parse_rfc3339(text), path, c).map(Timestamp)
    }
    fn write(&self) -> Value {
        Value::String(crate::ramp::format_rfc3339(self.0))
    }
}

/// A JSON pointer into the normalised body.
#[derive(Debug, Clone)]
pub(crate) struct Pointer(pub String);

impl FieldType for Pointer {
    const LIST: &'static str = "a list of JSON pointers";
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let t = text(v, path, c)?;
        let ok = t.starts_with('/');
        parsed(
            ok.then(|| Pointer(t.to_string())).ok_or(format!("`{t}` is not a JSON pointer (it must start with `/`)")),
            path,
            c,
        )
    }
    fn write(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// A web-action method to mirror. Trigger fires are never mirrored (their rule-driven invocations
/// run where the fire lands), so nothing can opt them in.
#[derive(Debug, Clone)]
pub(crate) struct Method(pub String);

impl FieldType for Method {
    const LIST: &'static str = "a list of HTTP methods";
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let m = text(v, path, c)?.to_ascii_uppercase();
        let result = if MIRROR_METHODS.contains(&m.as_str()) {
            Ok(Method(m))
        } else if m.contains("TRIGGER") || m == "FIRE" {
            Err("trigger fires are never mirrored: their rule-driven invocations run on the path that received the fire".to_string())
        } else {
            Err(format!("`{m}` is not a web-action method (expected one of: {})", MIRROR_METHODS.join(", ")))
        };
        parsed(result, path, c)
    }
    fn write(&self) -> Value {
        Value::String(self.0.clone())
    }
}

document! {
    /// The top of a rule document.
    RulesDocument {
        version: Version => required "every rule set needs a version that identifies its content",
        /// Where non-invocation traffic goes (default `legacy`).
        default_pool: Pool,
        /// Percent of invocations with no override sent to the scheduler (default 0).
        scheduler_share: Share,
        kill_switch: bool,
        seed: u64,
        sticky_key: StickyKey,
        overrides: Each<OverrideDocument>,
        /// Raises `scheduler_share` step by step from `start`, held and rolled back by gates.
        ramp: RampDocument,
        /// Listed callers choose their path per request with a header.
        force: ForceDocument,
    }
}

document! {
    /// The ramp (`ramp`).
    RampDocument {
        start: Timestamp => required "when the first step begins, the same for every replica",
        steps: Each<StepDocument> => required "the shares to go through, in order",
        window_s: u64,
        rollback_share: Share,
        rolled_back: String,
        gates: GatesDocument,
    }
}

document! {
    /// One step (`ramp.steps[i]`).
    StepDocument {
        share: Share => required "the global share of this step",
        hold_s: u64 => required "how long the step lasts at least",
        min_invocations: u64,
        /// The ramp waits before this step until a person approves it.
        approve: bool,
    }
}

impl From<&Ramp> for RampDocument {
    fn from(r: &Ramp) -> RampDocument {
        RampDocument {
            start: Field::Value(Timestamp(r.start_ms)),
            steps: Field::Value(Each(
                r.steps
                    .iter()
                    .map(|s| {
                        Some(StepDocument {
                            share: Field::Value(s.share),
                            hold_s: Field::Value(s.hold_s),
                            min_invocations: Field::Value(s.min_invocations),
                            // Written only when set: rules without approvals keep their canonical
                            // form (and fingerprint).
                            approve: if s.approve { Field::Value(true) } else { Field::Absent },
                        })
                    })
                    .collect(),
            )),
            window_s: Field::Value(r.window_s),
            rollback_share: Field::Value(r.rollback_share),
            rolled_back: r.rolled_back.clone().map_or(Field::Absent, Field::Value),
            gates: r.gates.document(),
        }
    }
}

document! {
    /// One override (`overrides[i]`); an omitted pattern is `*`.
    OverrideDocument {
        name: String,
        namespace: Glob,
        package: PackageGlob,
        action: Glob,
        share: Share => required "the share of matching invocations sent to the scheduler",
        seed: u64,
        sticky_key: StickyKey,
        shadow: ShadowDocument,
        /// Moves this override's share on its own schedule and gates.
        ramp: RampDocument,
    }
}

document! {
    /// An override's shadow policy.
    ShadowDocument {
        sample: Share => required "the share of matching invocations to mirror",
        ignore: Vec<Pointer>,
        redact: Vec<Pointer>,
        calibrate: Share,
        methods: Vec<Method>,
        non_blocking: bool,
    }
}

impl From<&Override> for OverrideDocument {
    fn from(o: &Override) -> OverrideDocument {
        OverrideDocument {
            name: o.name.clone().map_or(Field::Absent, Field::Value),
            namespace: Field::Value(o.namespace.clone()),
            package: Field::Value(PackageGlob(o.package.clone())),
            action: Field::Value(o.action.clone()),
            share: Field::Value(o.share),
            seed: Field::Value(o.seed),
            sticky_key: Field::Value(o.sticky_key.clone()),
            shadow: o.shadow.as_ref().map_or(Field::Absent, |p| {
                Field::Value(ShadowDocument {
                    sample: Field::Value(p.sample),
                    ignore: Field::Value(p.ignore.iter().cloned().map(Pointer).collect()),
                    redact: Field::Value(p.redact.iter().cloned().map(Pointer).collect()),
                    calibrate: Field::Value(p.calibrate),
                    methods: Field::Value(p.methods.iter().cloned().map(Method).collect()),
                    non_blocking: Field::Value(p.non_blocking),
                })
            }),
            ramp: o.ramp.as_ref().map_or(Field::Absent, |r| Field::Value(RampDocument::from(r))),
        }
    }
}

//! Routing rules for switchyard.
//!
//! A rule set says which share of OpenWhisk invocations goes to the new scheduler path, with
//! per-namespace/package/action overrides and a kill switch. This crate owns the whole life of a
//! rule set except where it comes from: parsing (TOML, YAML or JSON with serde, under size, depth
//! and alias budgets), the document schema stated once (`document`), validation with every error
//! at once, compilation into an indexed matcher, sticky bucketing and the routing decision. It has
//! no networking or async dependency, so a decision is a plain function call.
#![forbid(unsafe_code)]

mod bucket;
mod decide;
mod diff;
mod document;
mod error;
mod field;
mod file;
mod force;
mod gates;
mod glob;
mod load;
mod matcher;
mod model;
mod plan;
mod pool;
mod ramp;
mod ruleset;
mod share;

pub use bucket::{bucket_of, sticky_bucket, BUCKETS};
pub use decide::{Decision, DecisionReason, HeaderLookup, Invocation};
pub use diff::RulesDiff;
pub use error::{escape_controls, RuleError, RulesRejected, MAX_ERRORS, MAX_ERROR_TEXT};
pub use file::{open_regular, read_capped, read_capped_text, FileError, MAX_CONFIG_BYTES, MAX_SECRET_FILE_BYTES};
pub use force::Force;
pub use gates::{Gate, Gates, LatencyGate, Mode, RateGate, RatioGate, Reading, Signals, Verdict};
pub use glob::Glob;
pub use load::{load_rules_file, parse_rules, RulesFormat, MAX_DEPTH, MAX_RULES_BYTES, MAX_YAML_ALIASES};
pub use model::{Override, ShadowPolicy, StickyKey, MIRROR_METHODS};
pub use plan::{
    ActionMove, ActionRate, NamespaceMove, NamespaceRate, Plan, RampPlan, RuleChange, ShadowChange, TimelineStep,
    Traffic, MAX_LISTED_MOVES,
};
pub use pool::Pool;
pub use ramp::{format_rfc3339, parse_rfc3339, Decisions, Hold, Position, Ramp, RampScope, Step, Transition};
pub use ruleset::RuleSet;

/// The longest rules version, in bytes (it goes into logs, headers and metric labels as it is).
pub const MAX_VERSION_BYTES: usize = 128;
pub use share::Share;

use std::fmt;

use crate::glob::Glob;
use crate::ramp::Ramp;
use crate::share::Share;

/// What identifies "the same caller" for sticky routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickyKey {
    /// `namespace/action` or `namespace/package/action` (the default): keeps an action's warm
    /// containers on one path.
    Action,
    /// The namespace in the URL, as written (`_` is hashed as `_`).
    Namespace,
    /// The Basic-auth user (the namespace UUID), never the key.
    Subject,
    /// The value of a request header; requests without it fall back to the action key.
    Header(String),
}

impl StickyKey {
    pub fn parse(text: &str) -> Result<StickyKey, String> {
        match text {
            "action" => Ok(StickyKey::Action),
            "namespace" => Ok(StickyKey::Namespace),
            "subject" => Ok(StickyKey::Subject),
            _ => match text.strip_prefix("header:") {
                Some(name) if is_header_name(name) => Ok(StickyKey::Header(name.to_ascii_lowercase())),
                Some(name) => Err(format!("`{name}` is not a valid HTTP header name")),
                None => {
                    Err(format!("unknown sticky key `{text}` (expected action, namespace, subject or header:NAME)"))
                }
            },
        }
    }
}

impl fmt::Display for StickyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StickyKey::Action => f.write_str("action"),
            StickyKey::Namespace => f.write_str("namespace"),
            StickyKey::Subject => f.write_str("subject"),
            StickyKey::Header(name) => write!(f, "header:{name}"),
        }
    }
}

pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A rule for the invocations whose namespace, package and action match its patterns.
#[derive(Debug, Clone)]
pub struct Override {
    /// Optional label shown in decisions and audit logs.
    pub name: Option<String>,
    pub namespace: Glob,
    /// `""` matches only actions outside any package.
    pub package: Glob,
    pub action: Glob,
    pub share: Share,
    pub seed: u64,
    pub sticky_key: StickyKey,
    /// Mirror matching invocations to the other path and compare; `None` = never (the default).
    pub shadow: Option<ShadowPolicy>,
    /// Moves this override's share step by step on its own schedule and gates (a namespace
    /// moving on its own); `None` without one.
    pub ramp: Option<Ramp>,
    /// The share its ramp has reached on this replica, when it drives it (set by the proxy, not
    /// written in documents: `share` stays what the rules say).
    pub ramp_share: Option<Share>,
}

/// Shadow comparison for the invocations an override matches. Opt-in: a shadow copy runs the
/// action a second time (a second activation, counted against the namespace's throttles), so only
/// actions that are safe to run twice should have one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowPolicy {
    /// Share of matching invocations mirrored (sampled per request, not sticky).
    pub sample: Share,
    /// JSON pointers (into the normalised body, e.g. `/response/result/requestedAt`) left out of
    /// the comparison.
    pub ignore: Vec<String>,
    /// JSON pointers whose values are redacted from records and reports.
    pub redact: Vec<String>,
    /// Share of mirrored invocations that also send a control copy to the serving path, to learn
    /// which fields differ by themselves.
    pub calibrate: Share,
    /// Web-action methods mirrored besides `GET` and `HEAD` (upper case), for actions whose
    /// `POST`/`PUT`/`DELETE`/... are known to be safe to run twice.
    pub methods: Vec<String>,
    /// Also mirror non-blocking invokes (the copy only returns 202: one more execution, nothing
    /// compared but the status).
    pub non_blocking: bool,
}

/// Web-action methods a copy may be sent with, if the policy lists them.
pub const MIRROR_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

impl ShadowPolicy {
    /// Whether an action invoke is mirrored: blocking ones always, non-blocking ones only when
    /// the policy says so.
    pub fn mirrors_invoke(&self, blocking: bool) -> bool {
        blocking || self.non_blocking
    }

    /// Whether a web action called with `method` is mirrored: `GET` and `HEAD` (safe methods)
    /// always, others only when listed.
    pub fn mirrors_web_method(&self, method: &str) -> bool {
        matches!(method, "GET" | "HEAD") || self.methods.iter().any(|m| m == method)
    }
}

impl Override {
    /// The share matching invocations are routed by: the ramp's, when it drives it.
    pub fn effective_share(&self) -> Share {
        self.ramp_share.unwrap_or(self.share)
    }

    /// Sum of the three patterns' specificities (literal 2, partial glob 1, `*` 0): 0 ..= 6.
    pub fn specificity(&self) -> u8 {
        self.namespace.specificity() + self.package.specificity() + self.action.specificity()
    }

    pub fn matches(&self, namespace: &str, package: &str, action: &str) -> bool {
        self.namespace.matches(namespace) && self.package.matches(package) && self.action.matches(action)
    }

    /// A short human label: the name if given, else the patterns.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("{}/{}/{}", self.namespace, self.package, self.action),
        }
    }
}

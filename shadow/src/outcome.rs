//! How the comparison of one request ended, and what each path answered.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::answer::AnswerClass;

/// How the comparison of one request ended. Its kind ([`OutcomeKind`], a skip whatever its reason)
/// is the `outcome` label of the comparison metric and a series of the report's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, strum::EnumDiscriminants)]
#[serde(tag = "kind", content = "reason", rename_all = "snake_case")]
#[strum_discriminants(
    name(OutcomeKind),
    derive(strum::EnumIter, strum::EnumCount, strum::IntoStaticStr),
    strum(serialize_all = "snake_case")
)]
pub enum Outcome {
    /// Same status, same normalised body and annotations.
    Match,
    /// Something differs (see `differences`; learned noise is separated in reports).
    Mismatch,
    /// Both sides answered 202 with an activation id (non-blocking calls): no result to compare.
    Accepted,
    /// Only one side answered 202: the call sat queued (or ran) on that path past the blocking
    /// wait while the other path answered. Not a mismatch; a path that keeps doing it is slow or
    /// has no invokers.
    Queued,
    /// A limit refused or dropped the call on either side (429, or the scheduler's 502 capacity
    /// drop). The paths count limits differently, so this is never a mismatch.
    Throttled,
    /// One side gave no answer (connection refused, reset, no healthy controller).
    Error,
    /// One side did not answer within the shadow timeout.
    Timeout,
    /// Not compared, and why.
    Skipped(SkipReason),
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Dense index for per-kind arrays, in declaration order.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Outcome {
    pub fn kind_index(&self) -> usize {
        OutcomeKind::from(self).index()
    }

    pub fn kind(&self) -> &'static str {
        OutcomeKind::from(self).as_str()
    }

    /// Whether both answers were compared (the outcome is a match or a mismatch).
    pub fn is_compared(&self) -> bool {
        matches!(self, Outcome::Match | Outcome::Mismatch)
    }
}

/// How reports name an outcome: its kind, and for a skip its reason (`skipped:request_too_large`).
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Skipped(reason) => write!(f, "skipped:{}", reason.as_str()),
            other => f.write_str(other.kind()),
        }
    }
}

/// Why a mirrored request was not compared. Serialised as the `reason` of a `skipped` outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The request body was over `shadow.max_body_bytes`.
    RequestTooLarge,
    /// An answer (the client's or the copy's) was over `shadow.max_body_bytes`.
    ResponseTooLarge,
    /// The client's own request failed, so there is nothing to compare against.
    PrimaryFailed,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::RequestTooLarge => "request_too_large",
            SkipReason::ResponseTooLarge => "response_too_large",
            SkipReason::PrimaryFailed => "primary_failed",
        }
    }
}

/// One path's side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SideReport {
    /// `None` when no answer came back.
    pub status: Option<u16>,
    pub latency_ms: f64,
    /// The activation's `waitTime` annotation, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_time_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the answer says about the path, classified once when the record was made, with the
    /// body at hand (a `502` is the action's failure or the scheduler's capacity drop by its body).
    /// Records written before it was stored lack it: see [`SideReport::class`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<AnswerClass>,
}

impl SideReport {
    /// The answer's class: the stored one, or for a record written without it, the class its
    /// status alone gives (a `502` then counts as the action's failure).
    pub fn class(&self) -> AnswerClass {
        self.class.unwrap_or_else(|| AnswerClass::of(self.status, false, b""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialised_as_in_schema_1() {
        let skipped = Outcome::Skipped(SkipReason::ResponseTooLarge);
        assert_eq!(serde_json::to_string(&skipped).unwrap(), r#"{"kind":"skipped","reason":"response_too_large"}"#);
        assert_eq!(serde_json::to_string(&Outcome::Match).unwrap(), r#"{"kind":"match"}"#);
        let back: Outcome = serde_json::from_str(r#"{"kind":"skipped","reason":"primary_failed"}"#).unwrap();
        assert_eq!(back, Outcome::Skipped(SkipReason::PrimaryFailed));
        assert_eq!(skipped.to_string(), "skipped:response_too_large");
        assert_eq!(skipped.kind(), "skipped");
        assert_eq!(Outcome::Timeout.to_string(), "timeout");
    }
}

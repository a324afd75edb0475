//! What one OpenWhisk answer says about the path that produced it. The one classification of
//! answers: the comparison, the proxy's metrics and alerts, and the ramp's gates all use it.
//!
//! The status code alone misleads on the scheduler path (see the project's OpenWhisk notes): a call
//! its queue dropped for the namespace's container limit comes back as a `502` record, like an
//! action's own failure, and a path without invokers answers a blocking caller `202` as a slow
//! action would. So a `502` is told apart by its record (a bounded prefix of the body), and a `202`
//! to a blocking call counts as queued.

use serde_json::Value;

/// The error of a call the scheduler's queue dropped for the namespace's container limit
/// (`scheduler/queue/MemoryQueue.scala`, `Messages.tooManyConcurrentRequests`).
pub const THROTTLE_DROP_MESSAGE: &str = "Too many concurrent requests in flight.";

/// Bytes of a `502` body read to classify it. A record the system writes is small; a body longer
/// than this is the action's own result, so the action ran and failed.
pub const CLASSIFY_PREFIX_BYTES: usize = 4096;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    strum::EnumIter,
    strum::EnumCount,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AnswerClass {
    /// A result or record (2xx), an accepted non-blocking call or trigger fire.
    Ok,
    /// A blocking invoke answered `202`: the wait ran out while the activation was queued or ran.
    Queued,
    /// `429`: a throttle refused the call.
    Throttled,
    /// A `502` the action caused (application error, developer error, a web action's bad answer).
    ActionFailure,
    /// A `502` record the scheduler wrote when it dropped the call for the namespace's container
    /// limit: a capacity failure of the path, though the status says "action".
    CapacityDrop,
    /// `500`, `503`, `504`, any other `5xx`, a `502` record the system wrote, or no answer at all
    /// (connect failures, resets).
    PlatformFailure,
    /// Another `4xx`: the caller's request was refused (auth, missing action, bad input).
    Refused,
    /// `1xx`, `3xx`: nothing to say about the path.
    Other,
}

impl AnswerClass {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Counts against the path: the platform failed the call or had no capacity for it.
    pub fn is_platform_failure(self) -> bool {
        matches!(self, AnswerClass::PlatformFailure | AnswerClass::CapacityDrop)
    }

    /// A limit refused or dropped the call (`429`, or the scheduler's capacity drop).
    pub fn is_throttling(self) -> bool {
        matches!(self, AnswerClass::Throttled | AnswerClass::CapacityDrop)
    }

    /// Whether classifying an answer with this status needs its body (a bounded prefix of it).
    pub fn needs_body(status: u16) -> bool {
        status == 502
    }

    /// Classifies one answer. `status` is `None` when none came back; `blocking` says whether the
    /// call waited for its result; `body` is at most [`CLASSIFY_PREFIX_BYTES`] of a `502` body
    /// (other answers are classified by status alone).
    pub fn of(status: Option<u16>, blocking: bool, body: &[u8]) -> AnswerClass {
        match status {
            None => AnswerClass::PlatformFailure,
            Some(202) if blocking => AnswerClass::Queued,
            Some(200..=299) => AnswerClass::Ok,
            Some(429) => AnswerClass::Throttled,
            Some(400..=499) => AnswerClass::Refused,
            Some(502) => classify_502(body),
            Some(500..=599) => AnswerClass::PlatformFailure,
            Some(_) => AnswerClass::Other,
        }
    }
}

/// A `502` is the action's failure unless its record says the system wrote it.
fn classify_502(body: &[u8]) -> AnswerClass {
    if body.len() > CLASSIFY_PREFIX_BYTES {
        return AnswerClass::ActionFailure;
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return AnswerClass::ActionFailure;
    };
    let record = value.get("response").is_some() && value.get("activationId").is_some();
    let result = if record { &value["response"]["result"] } else { &value };
    if result.get("error").and_then(Value::as_str) == Some(THROTTLE_DROP_MESSAGE)
        && result.as_object().is_some_and(|o| o.len() == 1)
    {
        return AnswerClass::CapacityDrop;
    }
    if record && system_written(&value) {
        return AnswerClass::PlatformFailure;
    }
    AnswerClass::ActionFailure
}

/// A record the system wrote for an activation that never ran: no `waitTime` annotation (every
/// invoker run has one) and `duration` 0, or the legacy invoker's `kind` "unknown".
pub fn system_written(record: &Value) -> bool {
    let annotations = record["annotations"].as_array().map(Vec::as_slice).unwrap_or_default();
    let annotation = |key: &str| annotations.iter().find(|a| a["key"] == key).map(|a| &a["value"]);
    annotation("kind").is_some_and(|k| k == "unknown")
        || (annotation("waitTime").is_none() && record["duration"].as_u64() == Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn statuses() {
        assert_eq!(AnswerClass::of(Some(200), true, b""), AnswerClass::Ok);
        assert_eq!(AnswerClass::of(Some(202), false, b""), AnswerClass::Ok, "a non-blocking call is accepted");
        assert_eq!(AnswerClass::of(Some(202), true, b""), AnswerClass::Queued);
        assert_eq!(AnswerClass::of(Some(429), true, b""), AnswerClass::Throttled);
        assert_eq!(AnswerClass::of(Some(404), true, b""), AnswerClass::Refused);
        for s in [500, 503, 504] {
            assert_eq!(AnswerClass::of(Some(s), true, b""), AnswerClass::PlatformFailure);
        }
        assert_eq!(AnswerClass::of(None, true, b""), AnswerClass::PlatformFailure);
    }

    #[test]
    fn a_502_is_read_from_its_record() {
        let ran = body(json!({"activationId": "a", "duration": 12, "response": {"status": "application error",
            "result": {"error": "bad input"}}, "annotations": [{"key": "waitTime", "value": 3}, {"key": "kind", "value": "nodejs:20"}]}));
        assert_eq!(AnswerClass::of(Some(502), true, &ran), AnswerClass::ActionFailure);
        let dropped = body(json!({"activationId": "a", "duration": 0, "response": {"status": "action developer error",
            "result": {"error": THROTTLE_DROP_MESSAGE}}, "annotations": [{"key": "kind", "value": "nodejs:20"}]}));
        assert_eq!(AnswerClass::of(Some(502), true, &dropped), AnswerClass::CapacityDrop);
        let result_only = body(json!({"error": THROTTLE_DROP_MESSAGE}));
        assert_eq!(AnswerClass::of(Some(502), true, &result_only), AnswerClass::CapacityDrop);
        let invoker = body(json!({"activationId": "a", "duration": 0, "response": {"status": "action developer error",
            "result": {"error": "image pull failed"}}, "annotations": [{"key": "kind", "value": "unknown"}]}));
        assert_eq!(AnswerClass::of(Some(502), true, &invoker), AnswerClass::PlatformFailure);
        let big = vec![b' '; CLASSIFY_PREFIX_BYTES + 1];
        assert_eq!(AnswerClass::of(Some(502), true, &big), AnswerClass::ActionFailure);
        assert_eq!(AnswerClass::of(Some(502), true, b"not json"), AnswerClass::ActionFailure);
        let own = body(json!({"error": THROTTLE_DROP_MESSAGE, "detail": 1}));
        assert_eq!(AnswerClass::of(Some(502), true, &own), AnswerClass::ActionFailure, "an action's own richer error");
    }
}

//! Comparing the two paths' answers to one request.

use serde_json::Value;

use crate::answer::AnswerClass;
use crate::diff::{diff_json, DiffKind, Difference};
use crate::normalize::{normalize, Normalized, Shape};
use crate::outcome::{Outcome, SideReport};

/// What one path answered (or how it failed).
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// `None` when no answer came back.
    pub status: Option<u16>,
    pub body: &'a [u8],
    pub latency_ms: f64,
    pub timed_out: bool,
    /// Why no answer came back (connection refused, reset...).
    pub error: Option<String>,
    /// The answer's `X-Request-ID`: the controller's transaction id, which it also puts in the
    /// `code` of its own error bodies.
    pub transaction_id: Option<&'a str>,
    /// Whether the caller waited for the result (a `202` then means the call was still queued).
    pub blocking: bool,
}

/// The comparison of one request on both paths.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub outcome: Outcome,
    pub differences: Vec<Difference>,
    pub legacy: SideReport,
    pub scheduler: SideReport,
}

/// Pseudo-paths for what is not in the body.
pub const STATUS_PATH: &str = "#status";
pub const ANNOTATIONS_PATH: &str = "#annotations";

fn side(o: &Observed<'_>, n: Option<&Normalized>) -> SideReport {
    SideReport {
        status: o.status,
        latency_ms: (o.latency_ms * 1000.0).round() / 1000.0,
        wait_time_ms: n.and_then(|n| n.wait_time_ms),
        error: if o.timed_out { Some("timeout".into()) } else { o.error.clone() },
        class: Some(AnswerClass::of(o.status, o.blocking, o.body)),
    }
}

fn ignored(path: &str, ignore: &[String]) -> bool {
    ignore.iter().any(|p| path == p || path.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('/')))
}

/// Compares the legacy and the scheduler answers. `ignore` lists JSON pointers (and their
/// subtrees) left out of the body comparison.
pub fn compare(legacy: &Observed<'_>, scheduler: &Observed<'_>, ignore: &[String]) -> Comparison {
    let failed = |o: &Observed<'_>| o.timed_out || o.status.is_none();
    if failed(legacy) || failed(scheduler) {
        let outcome = if legacy.timed_out || scheduler.timed_out { Outcome::Timeout } else { Outcome::Error };
        return Comparison {
            outcome,
            differences: Vec::new(),
            legacy: side(legacy, None),
            scheduler: side(scheduler, None),
        };
    }
    let a = normalize(legacy.status.unwrap_or(0), legacy.body, legacy.transaction_id);
    let b = normalize(scheduler.status.unwrap_or(0), scheduler.body, scheduler.transaction_id);
    let (ls, ss) = (side(legacy, Some(&a)), side(scheduler, Some(&b)));
    // The paths count limits differently (per controller vs per container), so a throttled side
    // says nothing about whether the results agree.
    let throttled = |o: &Observed<'_>| AnswerClass::of(o.status, o.blocking, o.body).is_throttling();
    let not_compared = if throttled(legacy) || throttled(scheduler) {
        Some(Outcome::Throttled)
    } else {
        match (a.shape == Shape::Accepted, b.shape == Shape::Accepted) {
            (true, true) => Some(Outcome::Accepted),
            (true, false) | (false, true) => Some(Outcome::Queued),
            (false, false) => None,
        }
    };
    if let Some(outcome) = not_compared {
        return Comparison { outcome, differences: Vec::new(), legacy: ls, scheduler: ss };
    }
    let mut differences = Vec::new();
    if a.status != b.status {
        differences.push(Difference {
            path: STATUS_PATH.into(),
            kind: DiffKind::ValueChanged,
            legacy: Some(Value::from(a.status)),
            scheduler: Some(Value::from(b.status)),
        });
    }
    differences.extend(diff_json(&a.body, &b.body).into_iter().filter(|d| !ignored(&d.path, ignore)));
    if let (Some(x), Some(y)) = (&a.annotations, &b.annotations) {
        let as_value = |m: &std::collections::BTreeMap<String, Value>| Value::Object(m.clone().into_iter().collect());
        for mut d in diff_json(&as_value(x), &as_value(y)) {
            d.path = format!("{ANNOTATIONS_PATH}{}", d.path);
            differences.push(d);
        }
    }
    // Annotation differences are their own category (the paths attach different annotation sets):
    // recorded and reported, but they do not make a mismatch.
    let outcome = if differences.iter().any(|d| !d.path.starts_with(ANNOTATIONS_PATH)) {
        Outcome::Mismatch
    } else {
        Outcome::Match
    };
    Comparison { outcome, differences, legacy: ls, scheduler: ss }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obs(status: u16, body: &Value) -> (u16, Vec<u8>) {
        (status, serde_json::to_vec(body).unwrap())
    }

    fn run(a: (u16, Vec<u8>), b: (u16, Vec<u8>), ignore: &[String]) -> Comparison {
        let o = |x: &(u16, Vec<u8>)| Observed {
            status: Some(x.0),
            body: &x.1.clone().leak()[..],
            latency_ms: 1.0,
            timed_out: false,
            error: None,
            transaction_id: Some("tid-1"),
            blocking: true,
        };
        compare(&o(&a), &o(&b), ignore)
    }

    #[test]
    fn results_statuses_and_annotations() {
        let same = run(obs(200, &json!({"x": 1})), obs(200, &json!({"x": 1})), &[]);
        assert_eq!(same.outcome, Outcome::Match);
        let status = run(obs(200, &json!({"x": 1})), obs(502, &json!({"x": 1})), &[]);
        assert_eq!(status.differences[0].path, STATUS_PATH);
        let ignored =
            run(obs(200, &json!({"x": 1, "ts": 5})), obs(200, &json!({"x": 1, "ts": 6})), &["/ts".to_string()]);
        assert_eq!(ignored.outcome, Outcome::Match);
        let queued = run(obs(202, &json!({"activationId": "a"})), obs(200, &json!({"x": 1})), &[]);
        assert_eq!(queued.outcome, Outcome::Queued, "only one path answered 202");
        let accepted = run(obs(202, &json!({"activationId": "a"})), obs(202, &json!({"activationId": "b"})), &[]);
        assert_eq!(accepted.outcome, Outcome::Accepted);
    }

    #[test]
    fn throttling_is_never_a_mismatch() {
        let ok = obs(200, &json!({"x": 1}));
        let limited = obs(429, &json!({"error": "Too many requests", "code": "tid-1"}));
        assert_eq!(run(ok.clone(), limited.clone(), &[]).outcome, Outcome::Throttled);
        assert_eq!(run(limited, ok.clone(), &[]).outcome, Outcome::Throttled);
        let dropped = obs(
            502,
            &json!({"activationId": "a", "duration": 0, "response": {"status": "action developer error",
                "success": false, "result": {"error": crate::THROTTLE_DROP_MESSAGE}}, "annotations": []}),
        );
        let c = run(ok, dropped, &[]);
        assert_eq!((c.outcome, c.differences.len()), (Outcome::Throttled, 0));
    }

    #[test]
    fn an_actions_own_error_and_code_are_compared() {
        let own = |code: u64| obs(502, &json!({"error": "bad input", "code": code}));
        let c = run(own(41), own(42), &[]);
        assert_eq!(c.outcome, Outcome::Mismatch);
        assert_eq!(c.differences[0].path, "/code");
        let controller = |tid: &str| obs(404, &json!({"error": "The requested resource does not exist.", "code": tid}));
        assert_eq!(run(controller("tid-1"), controller("tid-1"), &[]).outcome, Outcome::Match);
    }

    #[test]
    fn annotation_differences_are_their_own_category() {
        let rec = |annotations: Value| {
            obs(200, &json!({"activationId": "a", "response": {"result": {"x": 1}}, "annotations": annotations}))
        };
        let c = run(
            rec(
                json!([{"key": "kind", "value": "nodejs:20"}, {"key": "timeout", "value": false}, {"key": "waitTime", "value": 40}]),
            ),
            rec(json!([{"key": "kind", "value": "nodejs:20"}, {"key": "waitTime", "value": 2}])),
            &[],
        );
        assert_eq!(c.outcome, Outcome::Match, "annotations alone do not make a mismatch");
        assert_eq!(c.differences.len(), 1);
        assert_eq!(
            (c.differences[0].path.as_str(), c.differences[0].kind),
            ("#annotations/timeout", DiffKind::Missing)
        );
    }

    #[test]
    fn failures_are_their_own_outcomes() {
        let ok = Observed {
            status: Some(200),
            body: b"{}",
            latency_ms: 1.0,
            timed_out: false,
            error: None,
            transaction_id: None,
            blocking: true,
        };
        let slow = Observed {
            status: None,
            body: b"",
            latency_ms: 5000.0,
            timed_out: true,
            error: None,
            transaction_id: None,
            blocking: true,
        };
        let refused = Observed {
            status: None,
            body: b"",
            latency_ms: 1.0,
            timed_out: false,
            error: Some("connection refused".into()),
            transaction_id: None,
            blocking: true,
        };
        assert_eq!(compare(&ok, &slow, &[]).outcome, Outcome::Timeout);
        assert_eq!(compare(&refused, &ok, &[]).outcome, Outcome::Error);
    }
}

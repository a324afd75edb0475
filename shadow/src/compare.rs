//! Comparing the two paths' answers to one request.

use serde_json::Value;

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
    let a = normalize(legacy.status.unwrap_or(0), legacy.body);
    let b = normalize(scheduler.status.unwrap_or(0), scheduler.body);
    let (ls, ss) = (side(legacy, Some(&a)), side(scheduler, Some(&b)));
    if a.shape == Shape::Accepted || b.shape == Shape::Accepted {
        return Comparison { outcome: Outcome::Accepted, differences: Vec::new(), legacy: ls, scheduler: ss };
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
        let accepted = run(obs(202, &json!({"activationId": "a"})), obs(200, &json!({"x": 1})), &[]);
        assert_eq!(accepted.outcome, Outcome::Accepted);
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
        let ok = Observed { status: Some(200), body: b"{}", latency_ms: 1.0, timed_out: false, error: None };
        let slow = Observed { status: None, body: b"", latency_ms: 5000.0, timed_out: true, error: None };
        let refused = Observed {
            status: None,
            body: b"",
            latency_ms: 1.0,
            timed_out: false,
            error: Some("connection refused".into()),
        };
        assert_eq!(compare(&ok, &slow, &[]).outcome, Outcome::Timeout);
        assert_eq!(compare(&refused, &ok, &[]).outcome, Outcome::Error);
    }
}

//! Turns a controller's answer into what is worth comparing: per-call values (ids, timestamps,
//! durations, `waitTime`/`initTime`, error `code`) are dropped, annotations are set aside as their
//! own category, and non-JSON bodies become a length and a hash.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// Annotations whose values differ on every call.
pub const PER_CALL_ANNOTATIONS: &[&str] = &["waitTime", "initTime"];
/// Top-level activation record fields that differ on every call.
const PER_CALL_FIELDS: &[&str] = &["activationId", "start", "end", "duration"];

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A full activation record (blocking, `result=false`).
    Activation,
    /// `202 {"activationId": ...}`: non-blocking, or a blocking call that waited too long.
    Accepted,
    /// The controller's `{"error": ..., "code": <transaction id>}`.
    ErrorBody,
    /// Any other JSON (e.g. `result=true`, web actions, arrays).
    Json,
    /// Not JSON: compared by length and hash.
    Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub status: u16,
    pub shape: Shape,
    /// The comparable body.
    pub body: Value,
    /// Annotation key → value, without the per-call ones (activation records only).
    pub annotations: Option<BTreeMap<String, Value>>,
    /// The `waitTime` annotation: the per-path queueing delay.
    pub wait_time_ms: Option<u64>,
}

/// `transaction_id` is the answer's `X-Request-ID`, when it had one.
pub fn normalize(status: u16, body: &[u8], transaction_id: Option<&str>) -> Normalized {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        let digest = xxhash_rust::xxh3::xxh3_64(body);
        return Normalized {
            status,
            shape: Shape::Bytes,
            body: json!({"bytes": body.len(), "xxh3": format!("{digest:016x}")}),
            annotations: None,
            wait_time_ms: None,
        };
    };
    match value {
        Value::Object(map) if status == 202 && map.contains_key("activationId") && map.len() == 1 => {
            Normalized { status, shape: Shape::Accepted, body: Value::Null, annotations: None, wait_time_ms: None }
        }
        Value::Object(map) if map.contains_key("activationId") && map.contains_key("response") => {
            activation(status, map)
        }
        Value::Object(mut map) if is_controller_error(&map, transaction_id) => {
            map.remove("code");
            Normalized {
                status,
                shape: Shape::ErrorBody,
                body: Value::Object(map),
                annotations: None,
                wait_time_ms: None,
            }
        }
        other => Normalized { status, shape: Shape::Json, body: other, annotations: None, wait_time_ms: None },
    }
}

fn is_controller_error(map: &Map<String, Value>, transaction_id: Option<&str>) -> bool {
    map.len() == 2
        && map.contains_key("error")
        && transaction_id.is_some_and(|tid| map.get("code").and_then(Value::as_str) == Some(tid))
}

fn activation(status: u16, mut map: Map<String, Value>) -> Normalized {
    for field in PER_CALL_FIELDS {
        map.remove(*field);
    }
    // Blocking answers always carry `"logs": []`; nothing to compare.
    map.remove("logs");
    let mut annotations = BTreeMap::new();
    let mut wait_time_ms = None;
    if let Some(Value::Array(list)) = map.remove("annotations") {
        for item in list {
            let (Some(key), Some(value)) = (item.get("key").and_then(Value::as_str), item.get("value")) else {
                continue;
            };
            if key == "waitTime" {
                wait_time_ms = value.as_u64();
            }
            if !PER_CALL_ANNOTATIONS.contains(&key) {
                annotations.insert(key.to_string(), value.clone());
            }
        }
    }
    Normalized {
        status,
        shape: Shape::Activation,
        body: Value::Object(map),
        annotations: Some(annotations),
        wait_time_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, start: u64, wait: u64, result: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "namespace": "guest", "name": "hello", "version": "0.0.1", "subject": "guest",
            "activationId": id, "start": start, "end": start + 7, "duration": 7, "publish": false, "logs": [],
            "response": {"status": "success", "success": true, "result": result, "size": 24},
            "annotations": [{"key": "path", "value": "guest/hello"}, {"key": "waitTime", "value": wait},
                            {"key": "kind", "value": "nodejs:20"}, {"key": "initTime", "value": 210}]
        }))
        .unwrap()
    }

    #[test]
    fn per_call_values_are_dropped() {
        let a = normalize(200, &record("aaaa", 1000, 35, json!({"x": 1})), None);
        let b = normalize(200, &record("bbbb", 2000, 3, json!({"x": 1})), None);
        assert_eq!(a.shape, Shape::Activation);
        assert_eq!(a.body, b.body);
        assert_eq!(a.annotations, b.annotations);
        assert_eq!((a.wait_time_ms, b.wait_time_ms), (Some(35), Some(3)));
        assert!(a.annotations.unwrap().contains_key("kind"));
    }

    #[test]
    fn shapes() {
        assert_eq!(normalize(202, br#"{"activationId":"abc"}"#, None).shape, Shape::Accepted);
        let e = normalize(404, br#"{"error":"boom","code":"tid-1"}"#, Some("tid-1"));
        assert_eq!((e.shape, e.body), (Shape::ErrorBody, json!({"error": "boom"})));
        let own = normalize(502, br#"{"error":"boom","code":42}"#, Some("tid-1"));
        assert_eq!(
            (own.shape, own.body),
            (Shape::Json, json!({"error": "boom", "code": 42})),
            "an action's own result"
        );
        assert_eq!(normalize(502, br#"{"error":"boom","code":"x"}"#, None).shape, Shape::Json);
        assert_eq!(normalize(200, b"[1,2]", None).shape, Shape::Json);
        let bytes = normalize(200, b"<p>hi</p>", None);
        assert_eq!(bytes.shape, Shape::Bytes);
        assert_eq!(bytes.body["bytes"], 9);
    }
}

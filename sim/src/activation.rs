//! Activation ids and records shaped like the controller's.

use rand::Rng;
use serde_json::{json, Map, Value};

use crate::config::{ActionProfile, Flavor, ResultSpec};

/// 32 lowercase hex digits, like OpenWhisk's `ActivationId`.
pub fn new_activation_id() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// A transaction id for requests that came without `X-Request-ID`.
pub fn new_transaction_id() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

pub fn now_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// How a run ended, as `response.status` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    ApplicationError,
    DeveloperError,
}

impl Outcome {
    pub fn status(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ApplicationError => "application error",
            Outcome::DeveloperError => "action developer error",
        }
    }

    pub fn status_code(self) -> u64 {
        match self {
            Outcome::Success => 0,
            Outcome::ApplicationError => 1,
            Outcome::DeveloperError => 2,
        }
    }

    /// HTTP status of a blocking invoke that ended this way.
    pub fn http_status(self) -> u16 {
        match self {
            Outcome::Success => 200,
            _ => 502,
        }
    }
}

/// The result an action computes from its parameters.
pub fn compute_result(profile: &ActionProfile, params: &Map<String, Value>) -> Value {
    let mut result = match &profile.result {
        ResultSpec::Greeting => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or("stranger");
            json!({ "payload": format!("Hello, {name}!") })
        }
        ResultSpec::Echo => Value::Object(params.clone()),
        ResultSpec::Fixed(v) => v.clone(),
        ResultSpec::Array => Value::Array(params.keys().map(|k| json!(k)).collect()),
    };
    if let (Some(Value::Object(patch)), Value::Object(obj)) = (&profile.result_patch, &mut result) {
        for (k, v) in patch {
            obj.insert(k.clone(), v.clone());
        }
    }
    result
}

pub struct RunFacts<'a> {
    pub namespace: &'a str,
    /// `""` outside a package.
    pub package: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub activation_id: &'a str,
    pub start: u64,
    pub duration_ms: u64,
    pub wait_time_ms: u64,
    pub init_time_ms: Option<u64>,
    pub outcome: Outcome,
    pub result: Value,
}

/// A full activation record as the controller returns it for a blocking invoke.
pub fn activation_record(profile: &ActionProfile, flavor: Flavor, facts: &RunFacts<'_>) -> Value {
    let path = if facts.package.is_empty() {
        format!("{}/{}", facts.namespace, facts.action)
    } else {
        format!("{}/{}/{}", facts.namespace, facts.package, facts.action)
    };
    let mut annotations = vec![
        json!({"key": "path", "value": path}),
        json!({"key": "waitTime", "value": facts.wait_time_ms}),
        json!({"key": "kind", "value": profile.kind}),
        json!({"key": "timeout", "value": facts.outcome == Outcome::DeveloperError && facts.duration_ms >= profile.timeout_ms}),
        json!({"key": "limits", "value": {"concurrency": 1, "logs": 10, "memory": profile.memory_mb, "timeout": profile.timeout_ms}}),
    ];
    if flavor == Flavor::Scheduler {
        // The scheduler path leaves out the `timeout` annotation on activations that did not time
        // out: a per-path difference the comparison must file under annotations, not results.
        annotations.retain(|a| a["key"] != "timeout" || a["value"] == true);
    }
    if let Some(init) = facts.init_time_ms {
        annotations.push(json!({"key": "initTime", "value": init}));
    }
    let size = serde_json::to_vec(&facts.result).map(|v| v.len()).unwrap_or(0);
    json!({
        "namespace": facts.namespace,
        "name": facts.action,
        "version": "0.0.1",
        "subject": facts.subject,
        "activationId": facts.activation_id,
        "start": facts.start,
        "end": facts.start + facts.duration_ms,
        "duration": facts.duration_ms,
        "publish": false,
        "logs": [],
        "response": {
            "status": facts.outcome.status(),
            "statusCode": facts.outcome.status_code(),
            "success": facts.outcome == Outcome::Success,
            "result": facts.result,
            "size": size,
        },
        "annotations": annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_openwhisk_ids() {
        let id = new_activation_id();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(id, new_activation_id());
    }

    #[test]
    fn result_patch_is_merged_into_the_result() {
        let profile = ActionProfile { result_patch: Some(json!({"v": 2})), ..ActionProfile::default() };
        let params = Map::new();
        assert_eq!(compute_result(&ActionProfile::default(), &params), json!({"payload": "Hello, stranger!"}));
        assert_eq!(compute_result(&profile, &params), json!({"payload": "Hello, stranger!", "v": 2}));
    }
}

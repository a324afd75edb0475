//! Activation ids and records shaped like the controller's.

use rand::Rng;
use serde_json::{json, Map, Value};

use crate::config::{ActionProfile, ResultSpec};

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
    WhiskError,
}

impl Outcome {
    pub fn status(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ApplicationError => "application error",
            Outcome::DeveloperError => "action developer error",
            Outcome::WhiskError => "whisk internal error",
        }
    }

    /// The outcome a record's `response.status` names.
    pub fn from_status(status: &str) -> Option<Outcome> {
        [Outcome::Success, Outcome::ApplicationError, Outcome::DeveloperError, Outcome::WhiskError]
            .into_iter()
            .find(|o| o.status() == status)
    }

    /// HTTP status of a blocking invoke that ended this way (`controller/Actions.scala`).
    pub fn http_status(self) -> u16 {
        match self {
            Outcome::Success => 200,
            Outcome::ApplicationError | Outcome::DeveloperError => 502,
            Outcome::WhiskError => 500,
        }
    }
}

/// The error text of a call the scheduler's queue dropped for the namespace's container limit
/// (`http/Messages.scala`, `tooManyConcurrentRequests`).
pub const THROTTLE_DROP_MESSAGE: &str = "Too many concurrent requests in flight.";

/// Which component wrote a record the action never produced. Each writes a different `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemWriter {
    /// The legacy invoker (`invoker/InvokerReactive.scala`): `kind` "unknown", no `limits`.
    LegacyInvoker,
    /// The scheduler's per-action queue (`scheduler/queue/MemoryQueue.scala`): the action's real
    /// `kind` and its `limits`.
    MemoryQueue,
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

/// Who ran what, for the record.
pub struct RunFacts<'a> {
    pub namespace: &'a str,
    /// `""` outside a package.
    pub package: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub activation_id: &'a str,
    /// The sequence activation this one is a component of.
    pub cause: Option<&'a str>,
}

impl RunFacts<'_> {
    fn path(&self) -> String {
        if self.package.is_empty() {
            format!("{}/{}", self.namespace, self.action)
        } else {
            format!("{}/{}/{}", self.namespace, self.package, self.action)
        }
    }

    fn record(
        &self,
        start: u64,
        duration_ms: u64,
        response: Value,
        annotations: Vec<Value>,
        logs: Vec<Value>,
    ) -> Value {
        let mut record = json!({
            "namespace": self.namespace,
            "name": self.action,
            "version": "0.0.1",
            "subject": self.subject,
            "activationId": self.activation_id,
            "start": start,
            "end": start + duration_ms,
            "duration": duration_ms,
            "publish": false,
            "logs": logs,
            "response": response,
            "annotations": annotations,
        });
        if let Some(cause) = self.cause {
            record["cause"] = json!(cause);
        }
        record
    }

    fn caused_by(&self, annotations: &mut Vec<Value>) {
        if self.cause.is_some() {
            annotations.push(json!({"key": "causedBy", "value": "sequence"}));
        }
    }
}

/// What the run itself measured.
pub struct RunTimes {
    pub start: u64,
    pub duration_ms: u64,
    pub wait_time_ms: u64,
    pub init_time_ms: Option<u64>,
}

fn limits(profile: &ActionProfile) -> Value {
    json!({"concurrency": 1, "logs": 10, "memory": profile.memory_mb, "timeout": profile.timeout_ms})
}

/// `response` as the REST API shows it (`ActivationResponse.toExtendedJson`): no `statusCode`;
/// `size` only when the action produced the result.
pub(crate) fn response(outcome: Outcome, result: Value, with_size: bool) -> Value {
    let mut response = json!({"status": outcome.status(), "success": outcome == Outcome::Success, "result": result});
    if with_size {
        let size = serde_json::to_vec(&response["result"]).map(|v| v.len()).unwrap_or(0);
        response["size"] = json!(size);
    }
    response
}

/// The record of a run an invoker carried out. Both paths' invokers build it the same way, with
/// the same annotations (`containerpool/ContainerProxy.scala`,
/// `containerpool/v2/FunctionPullingContainerProxy.scala`).
pub fn activation_record(
    profile: &ActionProfile,
    facts: &RunFacts<'_>,
    times: &RunTimes,
    outcome: Outcome,
    result: Value,
) -> Value {
    let timed_out = outcome == Outcome::DeveloperError && times.duration_ms >= profile.timeout_ms;
    let mut annotations = vec![
        json!({"key": "path", "value": facts.path()}),
        json!({"key": "waitTime", "value": times.wait_time_ms}),
        json!({"key": "kind", "value": profile.kind}),
        json!({"key": "timeout", "value": timed_out}),
        json!({"key": "limits", "value": limits(profile)}),
    ];
    if let Some(init) = times.init_time_ms {
        annotations.push(json!({"key": "initTime", "value": init}));
    }
    facts.caused_by(&mut annotations);
    facts.record(times.start, times.duration_ms, response(outcome, result, true), annotations, Vec::new())
}

/// A record the system wrote for an activation that did not run: `duration` 0, no `waitTime`,
/// `timeout` or `initTime`, no `size`, and the writer's own `kind`.
pub fn system_record(
    profile: &ActionProfile,
    facts: &RunFacts<'_>,
    writer: SystemWriter,
    outcome: Outcome,
    message: &str,
) -> Value {
    let mut annotations = vec![json!({"key": "path", "value": facts.path()})];
    match writer {
        SystemWriter::LegacyInvoker => annotations.push(json!({"key": "kind", "value": "unknown"})),
        SystemWriter::MemoryQueue => {
            annotations.push(json!({"key": "kind", "value": profile.kind}));
            annotations.push(json!({"key": "limits", "value": limits(profile)}));
        }
    }
    facts.caused_by(&mut annotations);
    facts.record(now_millis(), 0, response(outcome, json!({"error": message}), false), annotations, Vec::new())
}

/// The record of a sequence (`actions/SequenceActions.scala`): the last component's response,
/// `logs` listing the components' activation ids, `kind` "sequence", `topmost`.
pub fn sequence_record(facts: &RunFacts<'_>, times: &RunTimes, last_response: Value, components: &[String]) -> Value {
    let annotations = vec![
        json!({"key": "topmost", "value": true}),
        json!({"key": "path", "value": facts.path()}),
        json!({"key": "kind", "value": "sequence"}),
        json!({"key": "waitTime", "value": times.wait_time_ms}),
    ];
    let logs = components.iter().map(|id| json!(id)).collect();
    facts.record(times.start, times.duration_ms, last_response, annotations, logs)
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

//! The controller's REST API: routing by path and the behaviour of each endpoint.
// Handlers return `Err(reply)` to answer early; the reply is sent at once, so boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::activation::{self, Outcome, RunFacts, RunTimes, SystemWriter};
use crate::capacity::Slot;
use crate::config::{ActionProfile, Flavor};
use crate::state::{RequestKind, SimState};
use crate::sync::lock;

pub(crate) type Reply = Response<Full<Bytes>>;

/// The controller rejects requests over 50 MB.
pub(crate) const MAX_REQUEST_BYTES: usize = 50 * 1024 * 1024;
/// A blocking invoke waits at most this long before answering 202.
const MAX_BLOCKING_WAIT_MS: u64 = 60_000;

/// One parsed request, with the transaction id every answer echoes.
pub(crate) struct Call {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub tid: String,
}

impl Call {
    fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find_map(|(k, v)| (k == name).then(|| percent_decode(v)))
    }

    /// The namespace owning the Basic credentials, `None` if absent or unknown.
    fn authenticated(&self, state: &SimState) -> Option<(String, String)> {
        let header = self.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
        let encoded = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic "))?;
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
        let creds = String::from_utf8(decoded).ok()?;
        let namespace = state.keys.get(&creds)?.clone();
        let subject = creds.split(':').next().unwrap_or_default().to_string();
        Some((namespace, subject))
    }
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() => {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) << 4 | hex(bytes[i + 2]));
                i += 3;
                continue;
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn json_reply(status: u16, body: &Value, tid: &str) -> Reply {
    let mut resp = Response::new(Full::new(Bytes::from(serde_json::to_vec(body).unwrap_or_default())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    decorate(h, tid);
    resp
}

/// Headers every controller answer carries.
fn decorate(h: &mut HeaderMap, tid: &str) {
    if let Ok(v) = HeaderValue::from_str(tid) {
        h.insert("x-request-id", v);
    }
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
}

fn error_reply(status: u16, message: &str, tid: &str) -> Reply {
    json_reply(status, &json!({"error": message, "code": tid}), tid)
}

fn with_activation_header(mut resp: Reply, id: &str) -> Reply {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-openwhisk-activation-id", v);
    }
    resp
}

fn unauthorized(tid: &str) -> Reply {
    let mut resp = error_reply(401, "The supplied authentication is invalid.", tid);
    resp.headers_mut().insert("www-authenticate", HeaderValue::from_static("Basic realm=\"OpenWhisk secure realm\""));
    resp
}

fn forbidden(ns: &str, tid: &str) -> Reply {
    error_reply(403, &format!("The supplied authentication is not authorized to access '{ns}'."), tid)
}

/// Routes one request. Counts it before answering.
pub(crate) async fn handle(state: Arc<SimState>, call: Call) -> Reply {
    let shadow = call.headers.contains_key("x-switchyard-shadow");
    let segments: Vec<String> = call.path.trim_matches('/').split('/').map(percent_decode).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let count = |kind| state.count(kind, shadow, Some(&call.tid));
    match seg.as_slice() {
        ["ping"] if call.method == Method::GET => {
            count(RequestKind::Ping);
            let mut resp = Response::new(Full::new(Bytes::from_static(b"pong")));
            decorate(resp.headers_mut(), &call.tid);
            resp
        }
        ["api", "v1", "namespaces", ns, "actions", rest @ ..]
            if call.method == Method::POST && matches!(rest.len(), 1 | 2) =>
        {
            count(RequestKind::Invoke);
            let (pkg, action) = if rest.len() == 2 { (rest[0], rest[1]) } else { ("", rest[0]) };
            invoke(&state, &call, ns, pkg, action).await
        }
        ["api", "v1", "namespaces", ns, "triggers", trigger] if call.method == Method::POST => {
            count(RequestKind::TriggerFire);
            fire(&state, &call, ns, trigger)
        }
        ["api", "v1", "web", ns, pkg, action, rest @ ..] => {
            count(RequestKind::WebAction);
            web_action(&state, &call, ns, pkg, action, rest).await
        }
        ["api", "v1", "namespaces", ns, "activations", rest @ ..] if call.method == Method::GET => {
            count(RequestKind::Activations);
            activations(&state, &call, ns, rest)
        }
        ["api", "v1", "namespaces", ns, collection @ ("actions" | "packages" | "rules" | "triggers"), rest @ ..] => {
            count(RequestKind::Entity);
            entity(&state, &call, ns, collection, rest)
        }
        ["api", "v1", "namespaces"] | ["api", "v1", "namespaces", _] if call.method == Method::GET => {
            count(RequestKind::Namespaces);
            match call.authenticated(&state) {
                Some((ns, _)) => json_reply(200, &json!([ns]), &call.tid),
                None => unauthorized(&call.tid),
            }
        }
        _ => {
            count(RequestKind::Other);
            error_reply(404, "The requested resource does not exist.", &call.tid)
        }
    }
}

/// Resolves `_` and checks the caller may act in `ns`. `Err` is the reply to send.
fn authorize(state: &SimState, call: &Call, ns: &str) -> Result<(String, String), Reply> {
    let Some((own, subject)) = call.authenticated(state) else {
        return Err(unauthorized(&call.tid));
    };
    if ns != "_" && ns != own {
        return Err(forbidden(ns, &call.tid));
    }
    Ok((own, subject))
}

fn qualified(ns: &str, pkg: &str, action: &str) -> String {
    if pkg.is_empty() {
        format!("{ns}/{action}")
    } else {
        format!("{ns}/{pkg}/{action}")
    }
}

fn parse_params(call: &Call) -> Result<Map<String, Value>, Reply> {
    if call.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&call.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(error_reply(400, "The request content was malformed:\nexpected a JSON object", &call.tid)),
    }
}

/// How one simulated run goes: chosen up front so blocking and non-blocking paths agree.
struct Run {
    activation_id: String,
    outcome: Outcome,
    wait_ms: u64,
    init_ms: Option<u64>,
    duration_ms: u64,
}

impl Run {
    fn plan(state: &SimState, profile: &ActionProfile, name: &str) -> Run {
        let mut rng = rand::rng();
        let (lo, hi) = state.config.wait_time_range();
        let wait_ms = rng.random_range(lo..=hi);
        let lat = &profile.latency;
        let mut duration = if lat.slow_probability > 0.0 && rng.random_bool(lat.slow_probability.clamp(0.0, 1.0)) {
            lat.slow_ms
        } else if lat.max_ms > lat.min_ms {
            rng.random_range(lat.min_ms..=lat.max_ms)
        } else {
            lat.min_ms
        };
        let cold = state.is_cold(name, Duration::from_secs_f64(profile.keep_warm_s.max(0.0)));
        let init_ms = (cold && profile.cold_start_ms > 0.0).then_some(profile.cold_start_ms as u64);
        let roll: f64 = rng.random();
        let mut outcome = if roll < profile.whisk_error_rate {
            Outcome::WhiskError
        } else if roll < profile.whisk_error_rate + profile.developer_error_rate {
            Outcome::DeveloperError
        } else if roll < profile.whisk_error_rate + profile.developer_error_rate + profile.application_error_rate {
            Outcome::ApplicationError
        } else {
            Outcome::Success
        };
        if duration >= profile.timeout_ms as f64 && outcome != Outcome::WhiskError {
            duration = profile.timeout_ms as f64;
            outcome = Outcome::DeveloperError;
        }
        Run {
            activation_id: activation::new_activation_id(),
            outcome,
            wait_ms,
            init_ms,
            duration_ms: duration.max(0.0) as u64,
        }
    }

    /// What the client waits for: queueing, cold start, then the run itself.
    fn total(&self) -> Duration {
        Duration::from_millis(self.wait_ms + self.init_ms.unwrap_or(0) + self.duration_ms)
    }
}

/// Waits the simulated time. A zero wait returns at once: tokio's timer would still round it up
/// to its 1 ms tick, which would dominate a benchmark of an instant action.
async fn pause(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

fn run_result(profile: &ActionProfile, run: &Run, params: &Map<String, Value>) -> Value {
    match run.outcome {
        Outcome::Success => activation::compute_result(profile, params),
        Outcome::ApplicationError => json!({"error": "the action reported an error"}),
        Outcome::DeveloperError if run.duration_ms >= profile.timeout_ms => {
            json!({"error": format!("The action exceeded its time limits of {} milliseconds.", profile.timeout_ms)})
        }
        Outcome::DeveloperError => json!({"error": "The action did not return a dictionary."}),
        Outcome::WhiskError => json!({"error": WHISK_ERROR_MESSAGE}),
    }
}

/// What the system says when it could not run the action (a container that failed to start).
const WHISK_ERROR_MESSAGE: &str = "Failed to run container with image.";

/// The HTTP status of a blocking invoke answered with this record (`controller/Actions.scala`).
fn status_of(record: &Value) -> u16 {
    record["response"]["status"].as_str().and_then(Outcome::from_status).map_or(500, Outcome::http_status)
}

/// One activation on its way through the path.
struct Activation {
    namespace: String,
    package: String,
    action: String,
    subject: String,
    id: String,
    profile: ActionProfile,
    params: Map<String, Value>,
    /// The sequence this activation is a component of.
    cause: Option<String>,
}

impl Activation {
    fn facts(&self) -> RunFacts<'_> {
        RunFacts {
            namespace: &self.namespace,
            package: &self.package,
            action: &self.action,
            subject: &self.subject,
            activation_id: &self.id,
            cause: self.cause.as_deref(),
        }
    }
}

/// Carries one activation to its record and stores it: through the scheduler's queue on that
/// flavor (`slot` is a legacy call's in-flight count, held until the run ends), the run itself,
/// or the components of a sequence. A task of its own, so it goes on after a blocking caller's
/// wait runs out, as on a real path.
fn activate(
    state: Arc<SimState>,
    a: Activation,
    slot: Option<Slot>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Value> + Send>> {
    Box::pin(async move {
        let record = if a.profile.sequence.is_empty() {
            run_action(&state, &a, slot).await
        } else {
            run_sequence(&state, &a).await
        };
        state.store_activation(a.id.clone(), record.clone());
        record
    })
}

async fn run_action(state: &Arc<SimState>, a: &Activation, slot: Option<Slot>) -> Value {
    let name = qualified(&a.namespace, &a.package, &a.action);
    let flavor = state.config.flavor;
    let (slot, queued) = match flavor {
        Flavor::Legacy => (slot, Duration::ZERO),
        Flavor::Scheduler => {
            match state.capacity.container(&state.config, &a.namespace, &name, a.profile.instances).await {
                Ok((slot, queued)) => (Some(slot), queued),
                Err(dropped) => {
                    return activation::system_record(
                        &a.profile,
                        &a.facts(),
                        SystemWriter::MemoryQueue,
                        dropped.outcome,
                        &dropped.message,
                    )
                }
            }
        }
    };
    let run = Run::plan(state, &a.profile, &name);
    let start = activation::now_millis() + run.wait_ms;
    pause(run.total()).await;
    drop(slot);
    if run.outcome == Outcome::WhiskError {
        let writer = match flavor {
            Flavor::Legacy => SystemWriter::LegacyInvoker,
            Flavor::Scheduler => SystemWriter::MemoryQueue,
        };
        return activation::system_record(&a.profile, &a.facts(), writer, run.outcome, WHISK_ERROR_MESSAGE);
    }
    let times = RunTimes {
        start,
        duration_ms: run.duration_ms,
        wait_time_ms: run.wait_ms + queued.as_millis() as u64,
        init_time_ms: run.init_ms,
    };
    let result = run_result(&a.profile, &run, &a.params);
    // An action that returns `{"error": ...}` failed, whatever it computed it from.
    let outcome = if run.outcome == Outcome::Success && result.get("error").is_some() {
        Outcome::ApplicationError
    } else {
        run.outcome
    };
    activation::activation_record(&a.profile, &a.facts(), &times, outcome, result)
}

/// Runs the components in turn, each on the previous one's result; stops at the first failure.
/// The controller skips its throttles for components; on the scheduler path they still wait for
/// containers like any activation (apache/openwhisk#5257).
async fn run_sequence(state: &Arc<SimState>, a: &Activation) -> Value {
    let began = std::time::Instant::now();
    let start = activation::now_millis();
    let mut params = a.params.clone();
    let mut ids = Vec::new();
    let mut last = activation::response(Outcome::Success, json!({}), true);
    for component in &a.profile.sequence {
        let name = if component.contains('/') { component.clone() } else { format!("{}/{component}", a.namespace) };
        let Some(profile) = state.profile(&name).cloned() else {
            last = activation::response(
                Outcome::DeveloperError,
                json!({"error": "Sequence component does not exist."}),
                false,
            );
            break;
        };
        let mut parts = name.splitn(3, '/').skip(1);
        let (package, action) = match (parts.next(), parts.next()) {
            (Some(pkg), Some(action)) => (pkg.to_string(), action.to_string()),
            (Some(action), None) => (String::new(), action.to_string()),
            _ => (String::new(), name.clone()),
        };
        state.count_action(&name);
        let id = activation::new_activation_id();
        let component = Activation {
            namespace: a.namespace.clone(),
            package,
            action,
            subject: a.subject.clone(),
            id: id.clone(),
            profile,
            params,
            cause: Some(a.id.clone()),
        };
        let record = activate(Arc::clone(state), component, None).await;
        ids.push(id);
        last = record["response"].clone();
        if last["success"] != true {
            break;
        }
        params = last["result"].as_object().cloned().unwrap_or_default();
    }
    let times =
        RunTimes { start, duration_ms: began.elapsed().as_millis() as u64, wait_time_ms: 0, init_time_ms: None };
    activation::sequence_record(&a.facts(), &times, last, &ids)
}

async fn invoke(state: &Arc<SimState>, call: &Call, ns: &str, pkg: &str, action: &str) -> Reply {
    let (own_ns, subject) = match authorize(state, call, ns) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    let blocking = call.query_param("blocking").is_some_and(|v| v == "true");
    let result_only = call.query_param("result").is_some_and(|v| v == "true");
    let wait_limit = match call.query_param("timeout") {
        None => MAX_BLOCKING_WAIT_MS,
        Some(t) => match t.parse::<u64>() {
            Ok(ms) if ms > 0 && ms <= MAX_BLOCKING_WAIT_MS => ms,
            _ => {
                return error_reply(400, "Timeout must be number of milliseconds up to 60000.", &call.tid);
            }
        },
    };
    let name = qualified(&own_ns, pkg, action);
    let Some(profile) = state.profile(&name).cloned() else {
        return error_reply(404, "The requested resource does not exist.", &call.tid);
    };
    let params = match parse_params(call) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    if let Some(status) = state.config.fault(state.started.elapsed().as_millis() as u64) {
        let message =
            if status == 503 { crate::config::UNAVAILABLE_MESSAGE } else { "The server encountered an error." };
        return error_reply(status, message, &call.tid);
    }
    let slot = match state.capacity.admit(&state.config, &own_ns, &name) {
        Ok(slot) => slot,
        Err(refused) => return error_reply(refused.status, &refused.message, &call.tid),
    };
    state.count_action(&name);
    let id = activation::new_activation_id();
    let activation = Activation {
        namespace: own_ns,
        package: pkg.to_string(),
        action: action.to_string(),
        subject,
        id: id.clone(),
        profile,
        params,
        cause: None,
    };
    let mut task = tokio::spawn(activate(Arc::clone(state), activation, slot));
    let accepted = || with_activation_header(json_reply(202, &json!({"activationId": id}), &call.tid), &id);
    if !blocking {
        return accepted();
    }
    let record = match tokio::time::timeout(Duration::from_millis(wait_limit), &mut task).await {
        Ok(Ok(record)) => record,
        Ok(Err(_)) => return error_reply(500, "The activation failed.", &call.tid),
        // The run goes on; its record appears once it ends.
        Err(_) => return accepted(),
    };
    let status = status_of(&record);
    let body = if result_only { record["response"]["result"].clone() } else { record };
    // Since OpenWhisk PR #5290 an array result comes back bare even when result=false.
    let body = if body.get("response").is_some_and(|r| r["result"].is_array()) {
        body["response"]["result"].clone()
    } else {
        body
    };
    with_activation_header(json_reply(status, &body, &call.tid), &id)
}

fn fire(state: &SimState, call: &Call, ns: &str, trigger: &str) -> Reply {
    let (own_ns, _) = match authorize(state, call, ns) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    let key = format!("{own_ns}/triggers/{trigger}");
    let entities = lock(&state.entities);
    if !entities.contains_key(&key) && !state.config.implicit_actions {
        return error_reply(404, "The requested resource does not exist.", &call.tid);
    }
    let fully = format!("/{own_ns}/{trigger}");
    let has_active_rule = entities.iter().any(|(k, v)| {
        k.starts_with(&format!("{own_ns}/rules/"))
            && v["status"] != "inactive"
            && (v["trigger"] == fully || v["trigger"] == trigger || v["trigger"]["name"] == trigger)
    });
    drop(entities);
    if !has_active_rule {
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::NO_CONTENT;
        decorate(resp.headers_mut(), &call.tid);
        return resp;
    }
    if let Err((count, allowed)) = state.capacity.admit_per_minute(&state.config, &own_ns) {
        return error_reply(
            429,
            &format!("Too many requests in the last minute (count: {count}, allowed: {allowed})."),
            &call.tid,
        );
    }
    let id = activation::new_activation_id();
    with_activation_header(json_reply(202, &json!({"activationId": id}), &call.tid), &id)
}

async fn web_action(state: &Arc<SimState>, call: &Call, ns: &str, pkg: &str, action_ext: &str, rest: &[&str]) -> Reply {
    let (action, ext) = match action_ext.rsplit_once('.') {
        Some((a, e)) if matches!(e, "http" | "json" | "html" | "svg" | "text") => (a, e),
        _ => (action_ext, "http"),
    };
    let pkg = if pkg == "default" { "" } else { pkg };
    let name = qualified(ns, pkg, action);
    let Some(profile) = state.profile(&name).cloned() else {
        return error_reply(404, "The requested resource does not exist.", &call.tid);
    };
    let mut params = match parse_params(call) {
        Ok(p) => p,
        Err(_) => Map::new(),
    };
    for kv in call.query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        params.insert(percent_decode(k), json!(percent_decode(v)));
    }
    params.insert("__ow_method".into(), json!(call.method.as_str().to_ascii_lowercase()));
    params.insert(
        "__ow_path".into(),
        json!(if rest.is_empty() { String::new() } else { format!("/{}", rest.join("/")) }),
    );
    if let Err((count, allowed)) = state.capacity.admit_per_minute(&state.config, ns) {
        return error_reply(
            429,
            &format!("Too many requests in the last minute (count: {count}, allowed: {allowed})."),
            &call.tid,
        );
    }
    state.count_action(&name);
    let run = Run::plan(state, &profile, &name);
    pause(run.total()).await;
    let result = run_result(&profile, &run, &params);
    let reply = if run.outcome == Outcome::WhiskError {
        error_reply(500, WHISK_ERROR_MESSAGE, &call.tid)
    } else if run.outcome != Outcome::Success {
        error_reply(502, "Response is not valid 'application/json'.", &call.tid)
    } else {
        web_reply(ext, &result, &call.tid)
    };
    with_activation_header(reply, &run.activation_id)
}

/// Projects a web action's result onto an HTTP response by extension, as the controller does.
fn web_reply(ext: &str, result: &Value, tid: &str) -> Reply {
    let text_reply = |content_type: &'static str, field: &str| match result.get(field).and_then(Value::as_str) {
        Some(text) => {
            let mut resp = Response::new(Full::new(Bytes::from(text.to_string())));
            resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            decorate(resp.headers_mut(), tid);
            resp
        }
        None => error_reply(400, "Response type in header did not match generated content type.", tid),
    };
    match ext {
        "json" => json_reply(200, result, tid),
        "html" => text_reply("text/html", "html"),
        "svg" => text_reply("image/svg+xml", "svg"),
        "text" => text_reply("text/plain", "text"),
        _ => {
            let has_http_shape = ["statusCode", "headers", "body"].iter().any(|k| result.get(*k).is_some());
            if !has_http_shape {
                return json_reply(200, result, tid);
            }
            let status = result["statusCode"].as_u64().unwrap_or(200) as u16;
            let body = match &result["body"] {
                Value::String(s) => Bytes::from(s.clone()),
                Value::Null => Bytes::new(),
                other => Bytes::from(serde_json::to_vec(other).unwrap_or_default()),
            };
            let mut resp = Response::new(Full::new(body));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if let Some(headers) = result["headers"].as_object() {
                for (k, v) in headers {
                    if let (Ok(name), Some(Ok(value))) =
                        (http::HeaderName::from_bytes(k.as_bytes()), v.as_str().map(HeaderValue::from_str))
                    {
                        resp.headers_mut().insert(name, value);
                    }
                }
            }
            decorate(resp.headers_mut(), tid);
            resp
        }
    }
}

fn activations(state: &SimState, call: &Call, ns: &str, rest: &[&str]) -> Reply {
    let (own_ns, _) = match authorize(state, call, ns) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    let missing = || error_reply(404, "The requested resource does not exist.", &call.tid);
    match rest {
        [] => {
            let limit = call.query_param("limit").and_then(|l| l.parse().ok()).unwrap_or(30usize).min(200);
            json_reply(200, &Value::Array(state.recent_activations(&own_ns, limit)), &call.tid)
        }
        [id, tail @ ..] => match (state.activation(id), tail) {
            (Some(record), _) if record["namespace"] != own_ns.as_str() => missing(),
            (Some(record), []) => json_reply(200, &record, &call.tid),
            (Some(record), ["result"]) => json_reply(200, &record["response"], &call.tid),
            (Some(record), ["logs"]) => json_reply(200, &json!({"logs": record["logs"]}), &call.tid),
            _ => missing(),
        },
    }
}

/// Entity CRUD kept in memory, enough for pass-through tests: PUT stores, GET reads or lists,
/// DELETE removes, POST on a rule sets its status.
fn entity(state: &SimState, call: &Call, ns: &str, collection: &str, rest: &[&str]) -> Reply {
    let (own_ns, _) = match authorize(state, call, ns) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    let missing = || error_reply(404, "The requested resource does not exist.", &call.tid);
    let prefix = format!("{own_ns}/{collection}/");
    let mut entities = lock(&state.entities);
    if rest.is_empty() {
        if call.method != Method::GET {
            return error_reply(405, "The requested method is not allowed.", &call.tid);
        }
        let list: Vec<Value> =
            entities.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, v)| v.clone()).collect();
        return json_reply(200, &Value::Array(list), &call.tid);
    }
    let name = rest.join("/");
    let key = format!("{prefix}{name}");
    match call.method {
        Method::GET | Method::HEAD => match entities.get(&key) {
            Some(v) => json_reply(200, v, &call.tid),
            None => missing(),
        },
        Method::PUT => {
            let overwrite = call.query_param("overwrite").is_some_and(|v| v == "true");
            if entities.contains_key(&key) && !overwrite {
                return error_reply(409, "resource already exists", &call.tid);
            }
            let mut doc = match serde_json::from_slice::<Value>(&call.body) {
                Ok(Value::Object(map)) => Value::Object(map),
                _ if call.body.is_empty() => json!({}),
                _ => return error_reply(400, "The request content was malformed:\nexpected a JSON object", &call.tid),
            };
            doc["namespace"] = json!(own_ns);
            doc["name"] = json!(name);
            doc["version"] = json!("0.0.1");
            if collection == "rules" && doc.get("status").is_none() {
                doc["status"] = json!("active");
            }
            entities.insert(key, doc.clone());
            json_reply(200, &doc, &call.tid)
        }
        Method::DELETE => match entities.remove(&key) {
            Some(v) => json_reply(200, &v, &call.tid),
            None => missing(),
        },
        Method::POST if collection == "rules" => match entities.get_mut(&key) {
            Some(v) => {
                let status = serde_json::from_slice::<Value>(&call.body)
                    .ok()
                    .and_then(|b| b["status"].as_str().map(str::to_string));
                if let Some(status) = status {
                    v["status"] = json!(status);
                }
                json_reply(200, v, &call.tid)
            }
            None => missing(),
        },
        _ => error_reply(405, "The requested method is not allowed.", &call.tid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("x+y"), "x y");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%é"), "%é");
        assert_eq!(percent_decode("%C3%BC"), "ü");
    }
}

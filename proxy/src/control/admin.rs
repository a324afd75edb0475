//! The admin listener: health, readiness, Prometheus metrics, and the rules (read, replace,
//! kill switch). Served by hyper on the control-plane runtime, apart from client traffic.
//!
//! Read-only calls are open (the listener is on loopback by default). Mutating calls need
//! `Authorization: Bearer <admin.token>`; with no token configured they are refused with 403.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use switchyard_rules::{RulesFormat, MAX_RULES_BYTES};
use tokio::net::TcpListener;

use crate::control::rules::{ActiveRules, Applied, RampCallError, RulesStatus};
use crate::control::slots::Slots;
use crate::control::source::RuleSource;
use crate::ops::config::AdminToken;
use crate::ops::metrics::unix_seconds;
use crate::state::Shared;

type Reply = Response<Full<Bytes>>;

const ENDPOINTS: &[&str] = &[
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /rules",
    "GET /rules/status",
    "PUT /rules",
    "POST /rules/kill",
    "POST /rules/unkill",
    "GET /shadow/report",
    "GET /shadow/report.html",
    "GET /ramp",
    "POST /ramp/resume",
    "POST /ramp/approve",
    "POST /ramp/hold",
    "POST /ramp/release",
];

/// The largest body of `POST /ramp/hold` (`{"reason": "..."}`).
const MAX_HOLD_BODY: usize = 4 * 1024;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    resp
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    let mut text = serde_json::to_vec_pretty(body).unwrap_or_default();
    text.push(b'\n');
    reply(status, "application/json", text)
}

fn error_reply(status: StatusCode, message: &str) -> Reply {
    json_reply(status, &json!({ "error": message }))
}

struct Admin {
    shared: Arc<Shared>,
    token: AdminToken,
}

/// Admin connections open at once; past it a new client takes the slot of the oldest one not
/// serving a request (see [`Slots`]).
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send its request header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may stay open, idle or not (a scrape or a rules PUT takes far less).
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts admin connections until the task is dropped. Bounded so that slow or idle clients
/// cannot hold the control plane: connection slots that a newcomer can take from an idle or slow
/// client, a header timeout, a lifetime limit, and a pause after a failed accept (at the
/// descriptor limit, `accept` fails at once, again and again).
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, token: AdminToken) {
    let admin = Arc::new(Admin { shared, token });
    let slots = Slots::new(MAX_CONNECTIONS);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                crate::data::listener::pause_after_failed_accept(&e, "admin").await;
                continue;
            }
        };
        // Every slot busy answering: close the newcomer rather than queue it unbounded.
        let Some(slot) = slots.admit() else { continue };
        let (admin, slots) = (Arc::clone(&admin), Arc::clone(&slots));
        tokio::spawn(async move {
            let conn = Arc::clone(&slot.conn);
            let service = service_fn(move |req: Request<Incoming>| {
                let (admin, serving) = (Arc::clone(&admin), conn.serving());
                // A call that changes something needs leave, so reads always find a slot.
                let reads = matches!(*req.method(), Method::GET | Method::HEAD);
                let permit = (!reads).then(|| slots.write_permit());
                async move {
                    let reply = match permit {
                        Some(None) => error_reply(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "too many calls that change something are in progress; try again",
                        ),
                        _ => admin.route(req).await,
                    };
                    drop((serving, permit));
                    Ok::<_, std::convert::Infallible>(reply)
                }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection) => {}
                _ = slot.conn.evicted() => {}
            }
        });
    }
}

/// Compares in time that depends only on the lengths, not on where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

impl Admin {
    async fn route(&self, req: Request<Incoming>) -> Reply {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        match (&method, path.as_str()) {
            (&Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", "ok\n"),
            (&Method::GET, "/readyz") => readiness(&self.shared),
            (&Method::GET, "/metrics") => {
                reply(StatusCode::OK, "text/plain; version=0.0.4", self.shared.metrics.render())
            }
            (&Method::GET, "/rules") => json_reply(StatusCode::OK, &describe(&self.shared.rules.snapshot())),
            (&Method::GET, "/rules/status") => json_reply(StatusCode::OK, &status(&self.shared.rules.status())),
            // Building a report is CPU work proportional to its size: off the control thread,
            // which also runs health checks and the shadow workers.
            (&Method::GET, "/shadow/report") => {
                let shadow = Arc::clone(&self.shared.shadow);
                match tokio::task::spawn_blocking(move || shadow.report_json()).await {
                    Ok(report) => json_reply(StatusCode::OK, &report),
                    Err(_) => error_reply(StatusCode::INTERNAL_SERVER_ERROR, "the report could not be built"),
                }
            }
            (&Method::GET, "/shadow/report.html") => {
                let shadow = Arc::clone(&self.shared.shadow);
                let marks = self.shared.rules.ramp_marks();
                match tokio::task::spawn_blocking(move || shadow.report_html(&marks)).await {
                    Ok(page) => reply(StatusCode::OK, "text/html; charset=utf-8", page),
                    Err(_) => error_reply(StatusCode::INTERNAL_SERVER_ERROR, "the report could not be built"),
                }
            }
            (&Method::GET, "/ramp") => match self.shared.rules.ramp_status(crate::ops::clock::now_ms()) {
                Some(status) => json_reply(StatusCode::OK, &status),
                None => error_reply(StatusCode::NOT_FOUND, "the active rules have no ramp"),
            },
            (&Method::PUT, "/rules")
            | (
                &Method::POST,
                "/rules/kill" | "/rules/unkill" | "/ramp/resume" | "/ramp/approve" | "/ramp/hold" | "/ramp/release",
            ) => {
                if let Err(denied) = self.authorize(req.headers()) {
                    return denied;
                }
                let rules = &self.shared.rules;
                // Which ramp a ramp call is for: `?scope=<override name>`; without it the global
                // ramp (or the only one).
                let scope = req.uri().query().and_then(|q| {
                    form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "scope").map(|(_, v)| v.into_owned())
                });
                let scope = scope.as_deref();
                let answer = match path.as_str() {
                    "/rules" => return self.put_rules(req).await,
                    "/rules/kill" => return self.kill(true),
                    "/rules/unkill" => return self.kill(false),
                    "/ramp/resume" => {
                        rules.resume_ramp(scope, "admin API").map(|share| json!({"resumed": true, "share": share}))
                    }
                    "/ramp/approve" => rules.approve_ramp(scope, "admin API").map(|step| json!({"approved": step})),
                    "/ramp/release" => rules.release_ramp(scope, "admin API").map(|()| json!({"released": true})),
                    _ => match hold_reason(req).await {
                        Ok(reason) => rules
                            .hold_ramp(scope, &reason, "admin API")
                            .map(|()| json!({"held": true, "reason": reason})),
                        Err(refused) => return refused,
                    },
                };
                match answer {
                    Ok(body) => json_reply(StatusCode::OK, &body),
                    Err(RampCallError::Reason) => {
                        error_reply(StatusCode::BAD_REQUEST, &RampCallError::Reason.to_string())
                    }
                    Err(unknown @ RampCallError::UnknownScope { .. }) => {
                        error_reply(StatusCode::NOT_FOUND, &unknown.to_string())
                    }
                    Err(why) => error_reply(StatusCode::CONFLICT, &why.to_string()),
                }
            }
            (_, p) if ENDPOINTS.iter().any(|e| e.ends_with(p)) => {
                error_reply(StatusCode::METHOD_NOT_ALLOWED, &format!("{method} is not allowed on {p}"))
            }
            _ => json_reply(StatusCode::NOT_FOUND, &json!({"error": "not found", "endpoints": ENDPOINTS})),
        }
    }

    /// `Err` carries the refusal to send (sent at once, so not worth boxing).
    #[allow(clippy::result_large_err)]
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Reply> {
        let token = match self.token.current() {
            Ok(Some(token)) => token,
            Ok(None) => {
                return Err(error_reply(
                    StatusCode::FORBIDDEN,
                    "mutating admin calls are disabled: set admin.token or admin.token_file in the config, or the \
                     SWITCHYARD_ADMIN__TOKEN environment variable, and send it as `Authorization: Bearer <token>`",
                ))
            }
            Err(problem) => {
                tracing::error!(problem = %problem, "the admin token file is unusable; mutating calls are refused");
                return Err(error_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the admin token file is unusable; see the log",
                ));
            }
        };
        // The scheme name is case-insensitive (RFC 9110).
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        match presented {
            Some(p) if constant_time_eq(p.as_bytes(), token.as_bytes()) => Ok(()),
            _ => {
                let mut denied = error_reply(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
                denied
                    .headers_mut()
                    .insert("www-authenticate", http::HeaderValue::from_static("Bearer realm=\"switchyard admin\""));
                Err(denied)
            }
        }
    }

    /// `PUT /rules`: validates and applies a rule document; with `?dry_run=true`, validates it
    /// and answers its plan (what it would move now) without applying it.
    async fn put_rules(&self, req: Request<Incoming>) -> Reply {
        let dry_run = match req.uri().query().map(dry_run) {
            None => false,
            Some(Ok(on)) => on,
            Some(Err(refused)) => return refused,
        };
        let content_type = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let Some(format) = RulesFormat::from_media_type(content_type) else {
            return error_reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the rules as application/toml, application/yaml or application/json",
            );
        };
        let body = match Limited::new(req.into_body(), MAX_RULES_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return error_reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("rule documents are limited to {MAX_RULES_BYTES} bytes"),
                )
            }
        };
        let rules = Arc::clone(&self.shared.rules);
        // Parsing and compiling a large rule set (and weighing it with the traffic) is blocking work.
        let outcome = tokio::task::spawn_blocking(move || {
            let source = RuleSource::AdminApi;
            let candidate = switchyard_rules::parse_rules(&body, format, &source.error_name());
            if dry_run {
                return rules.plan(candidate, source).map(Offered::Planned);
            }
            rules.offer(candidate, source).map(Offered::Applied)
        })
        .await;
        match outcome {
            Ok(Ok(Offered::Planned(plan))) => json_reply(StatusCode::OK, &json!({"status": "plan", "plan": plan})),
            Ok(Ok(Offered::Applied(applied))) => {
                json_reply(StatusCode::OK, &serde_json::to_value(applied).unwrap_or_default())
            }
            Ok(Err(rejected)) => json_reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({
                    "status": "rejected",
                    "errors": rejected.errors,
                    "more_errors": rejected.more,
                    "message": rejected.to_string(),
                }),
            ),
            Err(_) => error_reply(StatusCode::INTERNAL_SERVER_ERROR, "the rules check did not finish"),
        }
    }

    fn kill(&self, on: bool) -> Reply {
        let version = self.shared.rules.set_kill_latch(on, "admin API");
        json_reply(StatusCode::OK, &json!({"kill_switch_latch": on, "effective_version": version}))
    }
}

/// What a `PUT /rules` did: applied (or found unchanged), or only planned.
enum Offered {
    Applied(Applied),
    Planned(switchyard_rules::Plan),
}

/// `dry_run=true|false` in `PUT /rules`'s query; any other parameter is refused, so that a typo
/// never applies what was meant as a dry run.
#[allow(clippy::result_large_err)]
fn dry_run(query: &str) -> Result<bool, Reply> {
    let mut on = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("dry_run", "true") => on = true,
            ("dry_run", "false") => on = false,
            _ => {
                return Err(error_reply(
                    StatusCode::BAD_REQUEST,
                    "PUT /rules takes one query parameter, dry_run=true or dry_run=false",
                ))
            }
        }
    }
    Ok(on)
}

/// The reason of `POST /ramp/hold`: `{"reason": "..."}`, at most [`MAX_HOLD_BODY`] bytes.
async fn hold_reason(req: Request<Incoming>) -> Result<String, Reply> {
    let bad = |why: &str| error_reply(StatusCode::BAD_REQUEST, why);
    let body = match Limited::new(req.into_body(), MAX_HOLD_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(bad("the body is larger than 4 KiB or was cut")),
    };
    let value: Value = serde_json::from_slice(&body).map_err(|_| bad("send {\"reason\": \"...\"} as JSON"))?;
    value["reason"].as_str().map(str::to_string).ok_or_else(|| bad("send {\"reason\": \"...\"} as JSON"))
}

/// Ready once rules are loaded (always true after start) and the default pool has a healthy
/// controller (before that, traffic could only fail or fall back), until a stop begins.
fn readiness(shared: &Shared) -> Reply {
    let active = shared.rules.snapshot();
    let default_pool = active.rules.default_pool;
    let pools: serde_json::Map<String, Value> = shared
        .pools
        .all()
        .iter()
        .map(|p| {
            let members: Vec<Value> = p
                .members()
                .iter()
                .map(|m| json!({"address": m.endpoint.addr.to_string(), "healthy": m.is_healthy()}))
                .collect();
            (p.pool.as_str().to_string(), json!({"healthy": p.healthy_count(), "members": members}))
        })
        .collect();
    // A stopping instance is taken out of rotation at once, while it still serves.
    let draining = shared.lifecycle.is_draining();
    let ready = !draining && shared.pools.get(default_pool).healthy_count() > 0;
    let k = shared.kafka.view();
    // Reported, never part of readiness: Kafka being down must not take traffic away.
    let kafka = json!({
        "records": {
            "healthy": k.records_healthy,
            "delivered": k.delivered,
            "failed": k.failed,
            "dropped": k.dropped,
        },
        "rules_topic_error": k.rules_topic_error,
    });
    let body = json!({
        "ready": ready,
        "draining": draining,
        "rules_version": active.rules.version,
        "default_pool": default_pool.as_str(),
        "pools": pools,
        "kafka": kafka,
    });
    json_reply(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body)
}

/// `GET /rules`: the effective rules in canonical form with their provenance.
fn describe(active: &ActiveRules) -> Value {
    json!({
        "version": active.rules.version,
        "source": active.source.to_string(),
        "loaded_at": unix_seconds(active.loaded_at),
        "kill_switch": active.rules.kill_switch,
        "rules": active.rules.to_document(),
    })
}

/// `GET /rules/status`: the active version and its provenance, the kill latch, the last rejection.
fn status(s: &RulesStatus) -> Value {
    json!({
        "active": {
            "version": s.effective.rules.version,
            "accepted_version": s.accepted.rules.version,
            "source": s.accepted.source.to_string(),
            "loaded_at": unix_seconds(s.accepted.loaded_at),
            "kill_switch": s.effective.rules.kill_switch,
        },
        "kill_latch": s.kill_latch.as_ref().map(|l| json!({"since": unix_seconds(l.since), "by": l.by})),
        "last_rejected": s.last_rejected.as_ref().map(|r| json!({
            "source": r.source,
            "at": unix_seconds(r.at),
            "errors": r.rejected.errors,
            "more_errors": r.rejected.more,
        })),
        "ramp": s.ramp,
    })
}

/// Binds the admin listener with `SO_REUSEPORT`, so that a new process taking over the proxy's
/// sockets (`switchyard run --upgrade`) can serve the admin API beside the old one until it exits.
/// (Linux lets only the same user share the port.)
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret-token-123", b"secret-token-123"));
        assert!(!constant_time_eq(b"secret-token-123", b"secret-token-124"));
        assert!(!constant_time_eq(b"secret-token-123", b"secret-token-12"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}

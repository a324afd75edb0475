//! The pingora service: classify, route by the rules, pick a controller, fall back, measure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::{HttpPeer, Peer};
use switchyard_rules::{Decision, DecisionReason, Invocation, Pool};
use switchyard_shadow::{AnswerClass, SkipReason, CLASSIFY_PREFIX_BYTES};

use crate::control::rules::ActiveRules;
use crate::data::classify::{classify, RequestKind};
use crate::data::credential::BasicCredential;
use crate::data::request_id::{self, REQUEST_ID_HEADER};
use crate::lifecycle::InFlight;
use crate::ops::config::TimeoutsConfig;
use crate::ops::metrics::FallbackReason;
use crate::shadow::tee::{sampled, Tee, SHADOW_HEADER};
use crate::state::Shared;

pub const POOL_HEADER: &str = "x-switchyard-pool";
pub const RULES_VERSION_HEADER: &str = "x-switchyard-rules-version";

pub struct SwitchyardProxy {
    pub shared: Arc<Shared>,
    pub timeouts: TimeoutsConfig,
}

/// Per-request state, created by pingora for each request.
pub struct RequestCtx {
    started: Instant,
    kind: RequestKind,
    /// The rules this request was routed by: one snapshot for its whole life.
    rules: Option<Arc<ActiveRules>>,
    /// The pool the rules chose, and the pool actually used (they differ after a fallback).
    chosen: Pool,
    pool: Pool,
    reason: DecisionReason,
    /// Set once the request has been redirected to the other pool; it never bounces back.
    fell_back: bool,
    /// Connections that could not be opened for this request (each to another member).
    connect_failures: usize,
    /// The controller of the last attempt.
    member: Option<SocketAddr>,
    request_id: String,
    /// An invoke that waits for its result: its 202 means "queued past the wait".
    blocking: bool,
    /// The first bytes of an invocation's 502 answer, read to tell the action's failure from a
    /// record the system wrote (`None` for any other answer: those are never buffered).
    error_prefix: Option<Vec<u8>>,
    /// Set when this invocation is mirrored for shadow comparison.
    shadow: Option<Tee>,
    /// Counts the request as in flight (a stop waits for it) until the context is dropped.
    _in_flight: InFlight,
}

impl SwitchyardProxy {
    fn peer(&self, addr: SocketAddr) -> Box<HttpPeer> {
        let mut peer = HttpPeer::new(addr, false, String::new());
        let o = &mut peer.options;
        o.connection_timeout = Some(self.timeouts.connect());
        o.read_timeout = Some(Duration::from_millis(self.timeouts.read_ms));
        o.write_timeout = Some(Duration::from_millis(self.timeouts.write_ms));
        o.idle_timeout = Some(Duration::from_millis(self.timeouts.idle_ms));
        Box::new(peer)
    }

    /// Counts a failure of the request's controller against its health.
    fn answer_failed(&self, ctx: &RequestCtx) {
        let pools = &self.shared.pools;
        let Some(m) = ctx.member.and_then(|addr| pools.get(ctx.pool).member(addr)) else { return };
        if m.answer_failed(&pools.health) {
            tracing::warn!(pool = %ctx.pool, member = %m.addr, "controller failed requests after accepting them; out of rotation until its health check passes");
        }
    }
}

/// Whether an invoke waits for its result (`blocking=true`; OpenWhisk's default is false).
fn is_blocking(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair.eq_ignore_ascii_case("blocking=true")))
}

#[async_trait]
impl ProxyHttp for SwitchyardProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            kind: RequestKind::Other,
            rules: None,
            chosen: Pool::Legacy,
            pool: Pool::Legacy,
            reason: DecisionReason::DefaultPool,
            fell_back: false,
            connect_failures: 0,
            member: None,
            request_id: String::new(),
            blocking: false,
            error_prefix: None,
            shadow: None,
            _in_flight: self.shared.lifecycle.request(),
        }
    }

    /// Runs first for every request: takes the rules snapshot, classifies the request, resolves a
    /// `_` namespace (waiting at most `namespaces.wait_ms`, usually answered from the cache), decides
    /// the pool and whether to mirror, and settles the `X-Request-ID`. Returns `Ok(false)`: the
    /// request always proceeds.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let active = self.shared.rules.snapshot();
        let req = session.req_header();
        let class = classify(req.method.as_str(), req.uri.path());
        ctx.kind = class.kind;
        ctx.blocking = class.kind == RequestKind::Invoke && is_blocking(req.uri.query());
        if class.kind.is_invocation() {
            // `_` is the caller's own namespace: resolved before routing, so a namespace pin holds
            // for default-namespace callers; when it cannot be resolved, legacy (the safe side).
            let resolved = if class.namespace == "_" && class.kind != RequestKind::WebAction {
                let credential = req.headers.get(http::header::AUTHORIZATION).map(http::HeaderValue::as_bytes);
                Some(self.shared.namespaces.resolve(credential).await)
            } else {
                None
            };
            let namespace: &str = match &resolved {
                Some(Some(ns)) => ns,
                _ => &class.namespace,
            };
            let subject = active
                .uses_subject
                .then(|| {
                    req.headers.get(http::header::AUTHORIZATION).and_then(|v| BasicCredential::parse(v.as_bytes()))
                })
                .flatten()
                .map(|c| c.user);
            let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
            let decision = match resolved {
                Some(None) => Decision::unresolved_namespace(),
                _ => active.rules.decide(&Invocation {
                    namespace,
                    package: &class.package,
                    action: &class.action,
                    subject: subject.as_deref(),
                    header: Some(&header),
                }),
            };
            ctx.chosen = decision.pool;
            ctx.reason = decision.reason;
            // Trigger fires are not mirrored: their rule-driven invocations run on the controller's
            // own path, and a 202 with an activation id is all there would be to compare.
            if let (RequestKind::Invoke | RequestKind::WebAction, DecisionReason::Override(i)) =
                (class.kind, decision.reason)
            {
                let state = &self.shared.shadow;
                // Only what is safe to run twice, unless the policy lists more: blocking invokes, and
                // GET and HEAD web actions.
                let safe = |p: &switchyard_rules::ShadowPolicy| match class.kind {
                    RequestKind::Invoke => p.mirrors_invoke(ctx.blocking),
                    _ => p.mirrors_web_method(req.method.as_str()),
                };
                let policy = active.rules.overrides[i].shadow.as_ref().filter(|p| safe(p) && sampled(p.sample));
                ctx.shadow = policy.map(|policy| {
                    let action = if class.package.is_empty() {
                        format!("{namespace}/{}", class.action)
                    } else {
                        format!("{namespace}/{}/{}", class.package, class.action)
                    };
                    let path =
                        req.uri.path_and_query().map_or_else(|| req.uri.path().to_string(), |p| p.as_str().to_string());
                    let mut tee = Tee::new(policy.clone(), action, req.method.clone(), path, state.max_body);
                    let header = |name| {
                        req.headers.get(name).and_then(|v: &http::HeaderValue| v.to_str().ok()).map(str::to_string)
                    };
                    tee.content_type = header(http::header::CONTENT_TYPE);
                    tee.authorization = header(http::header::AUTHORIZATION);
                    tee
                });
            }
        } else {
            let decision = active.rules.decide_default();
            ctx.chosen = decision.pool;
            ctx.reason = decision.reason;
        }
        ctx.pool = ctx.chosen;
        self.shared.metrics.decision(ctx.chosen, ctx.reason);
        ctx.rules = Some(active);

        ctx.request_id = session
            .req_header()
            .headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| request_id::accept(v.as_bytes()))
            .unwrap_or_else(request_id::generate);
        Ok(false)
    }

    /// Runs on the request header just before it goes to a controller (after pingora removed the
    /// hop-by-hop headers, which a client can extend with `Connection: ..., X-Request-ID`): sets
    /// the request id the client will see, and removes a shadow marker the client sent, which
    /// would make the controller's logs count the call as a shadow copy.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream_request.insert_header(REQUEST_ID_HEADER, ctx.request_id.as_str())?;
        upstream_request.remove_header(SHADOW_HEADER);
        Ok(())
    }

    /// Runs before each connection attempt (again after a connect failure): picks a healthy
    /// member of the current pool, moving to the other pool only if this one has none, so a
    /// dead controller does not move its share of the canary to the other path.
    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let pools = &self.shared.pools;
        let member = match pools.get(ctx.pool).pick_healthy() {
            Some(m) => m,
            None => match pools.get(ctx.pool.other()).pick_healthy().filter(|_| !ctx.fell_back) {
                Some(m) => {
                    let reason = if ctx.connect_failures > 0 {
                        FallbackReason::ConnectFailed
                    } else {
                        FallbackReason::NoHealthyMember
                    };
                    self.shared.metrics.fallback(ctx.pool, reason);
                    ctx.fell_back = true;
                    ctx.pool = ctx.pool.other();
                    m
                }
                // Nothing is known healthy: health may lag reality, so try anyway.
                None => pools.get(ctx.pool).pick_any(),
            },
        };
        ctx.member = Some(member.addr);
        Ok(self.peer(member.addr))
    }

    /// Runs when connecting failed. The request was never delivered, so it is safe to try again:
    /// the failed member leaves rotation until its health check passes, and the next attempt goes
    /// to another member (of the other pool when this one has none left). At most one attempt
    /// per controller of both pools.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(addr) = peer.address().as_inet() {
            if let Some(m) = self.shared.pools.get(ctx.pool).member(*addr) {
                m.mark_unreachable();
            }
        }
        ctx.connect_failures += 1;
        let members: usize = self.shared.pools.all().iter().map(|p| p.members.len()).sum();
        e.set_retry(ctx.connect_failures < members);
        e
    }

    /// Runs for each request body chunk on its way to the controller: keeps a copy for the mirror.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let (Some(tee), Some(chunk)) = (ctx.shadow.as_mut(), body.as_ref()) {
            tee.request_chunk(chunk);
        }
        Ok(())
    }

    /// Runs for each response body chunk on its way to the client: keeps a copy for the comparison.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        if let Some(chunk) = body.as_ref() {
            if let Some(tee) = ctx.shadow.as_mut() {
                tee.response_chunk(chunk);
            }
            if let Some(prefix) = ctx.error_prefix.as_mut() {
                // One byte past the bound is enough to know the body is longer.
                let room = (CLASSIFY_PREFIX_BYTES + 1).saturating_sub(prefix.len());
                prefix.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
        }
        Ok(None)
    }

    /// Runs on the response header before it goes to the client: says which pool and which rules
    /// version served it, keeps the request id visible, and starts keeping the prefix of an
    /// invocation's 502 for its classification.
    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(tee) = ctx.shadow.as_mut() {
            tee.response_status = Some(resp.status.as_u16());
            tee.response_transaction_id =
                resp.headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        }
        if ctx.kind.is_invocation() && AnswerClass::needs_body(resp.status.as_u16()) {
            ctx.error_prefix = Some(Vec::new());
        }
        if self.shared.pool_header {
            resp.insert_header(POOL_HEADER, ctx.pool.as_str())?;
            if let Some(active) = &ctx.rules {
                resp.insert_header(RULES_VERSION_HEADER, active.version_header.clone())?;
            }
        }
        if resp.headers.get(REQUEST_ID_HEADER).is_none() {
            resp.insert_header(REQUEST_ID_HEADER, ctx.request_id.as_str())?;
        }
        Ok(())
    }

    /// Runs when the request failed for good: answers in OpenWhisk's error shape
    /// (`{"error": ..., "code": <request id>}`) instead of pingora's HTML page.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => 504,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code > 0 {
            let message = match code {
                502 => "No controller of either pool could be reached.",
                504 => "The controller did not answer in time.",
                400 => "The request could not be read.",
                _ => "The proxy failed to forward the request.",
            };
            let body = Bytes::from(
                serde_json::to_vec(&serde_json::json!({"error": message, "code": ctx.request_id})).unwrap_or_default(),
            );
            if let Ok(mut resp) = ResponseHeader::build(code, Some(6)) {
                let _ = resp.insert_header(http::header::CONTENT_TYPE, "application/json");
                let _ = resp.insert_header(http::header::CONTENT_LENGTH, body.len());
                let _ = resp.insert_header(REQUEST_ID_HEADER, ctx.request_id.as_str());
                if self.shared.pool_header {
                    let _ = resp.insert_header(POOL_HEADER, ctx.pool.as_str());
                }
                if let Err(err) = session.write_error_response(resp, body).await {
                    tracing::debug!(error = %err, "could not send the error response");
                }
            }
        }
        FailToProxy { error_code: code, can_reuse_downstream: false }
    }

    /// Runs last for every request, after the response went out or failed: records metrics.
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map(|r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        self.shared.metrics.request(ctx.pool, ctx.kind, status, elapsed.as_secs_f64());
        // A client that went away says nothing about the path; any other failure means the pool
        // gave no usable answer, whatever error page the proxy then wrote.
        let client_gone = e.is_some_and(|e| *e.esource() == ErrorSource::Downstream);
        if ctx.kind.is_invocation() && !(client_gone && status.is_none()) {
            let answered = if e.is_some() && !client_gone { None } else { status };
            let class = AnswerClass::of(answered, ctx.blocking, ctx.error_prefix.as_deref().unwrap_or_default());
            self.shared.metrics.invocation(ctx.pool, ctx.kind, class);
            self.shared.live.answer(ctx.pool, class, elapsed.as_secs_f64());
        }
        if let Some(e) = e {
            tracing::warn!(request_id = %ctx.request_id, pool = %ctx.pool, kind = ctx.kind.as_str(), error = %e, "request failed");
            if failed_mid_answer(e) {
                self.answer_failed(ctx);
            }
        }
        if let Some(mut tee) = ctx.shadow.take() {
            if e.is_some() {
                tee.give_up(SkipReason::PrimaryFailed);
            }
            self.shared.shadow.submit(tee, ctx.pool, std::mem::take(&mut ctx.request_id), elapsed);
        }
    }

    /// Errors are logged by `logging` with the request id; pingora's own line would repeat them.
    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        true
    }
}

/// The controller accepted the connection, then failed the request: reset, closed, timed out or
/// garbled before its whole answer (a refused connection is handled when connecting).
fn failed_mid_answer(e: &Error) -> bool {
    *e.esource() == ErrorSource::Upstream
        && matches!(
            e.etype(),
            ErrorType::ReadError
                | ErrorType::WriteError
                | ErrorType::ReadTimedout
                | ErrorType::WriteTimedout
                | ErrorType::ConnectionClosed
                | ErrorType::H1Error
                | ErrorType::InvalidHTTPHeader
        )
}

#[cfg(test)]
mod tests {
    #[test]
    fn blocking_is_read_from_the_query() {
        assert!(super::is_blocking(Some("blocking=true&result=true")));
        assert!(super::is_blocking(Some("result=true&blocking=TRUE")));
        assert!(!super::is_blocking(Some("blocking=false")));
        assert!(!super::is_blocking(Some("nonblocking=true")));
        assert!(!super::is_blocking(None));
    }
}

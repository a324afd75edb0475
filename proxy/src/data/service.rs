//! The data plane's per-request flow: classify, route by the rules, pick a controller, forward,
//! fall back, answer, measure. pingora reads and writes the client side (parsing, validation,
//! keep-alive); the controller side is the one client to the controllers (`upstream`, on hyper's
//! HTTP/1 connection), which sends each request in one write and skips pingora's per-request
//! proxy machinery.
//!
//! The phases keep pingora's `ProxyHttp` vocabulary, each documented by when it runs:
//! [`SwitchyardProxy::request_filter`] → [`SwitchyardProxy::forward`] (`upstream_peer`,
//! connect, `fail_to_connect`, the request body, the answer and its body) →
//! [`SwitchyardProxy::fail_to_proxy`] → [`SwitchyardProxy::logging`].

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http_body_util::BodyExt;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use pingora::{Error, ErrorType};
use switchyard_rules::{escape_controls, Decision, DecisionReason, Invocation, Pool, ShadowPolicy};
use switchyard_shadow::{AnswerClass, SkipReason, CLASSIFY_PREFIX_BYTES};

use crate::control::rules::ActiveRules;
use crate::data::classify::{classify, Classified, RequestKind};
use crate::data::credential::BasicCredential;
use crate::data::pools::Member;
use crate::data::request_id::{self, REQUEST_ID_FIELD, REQUEST_ID_HEADER};
use crate::data::traffic::{FallbackReason, Traffic};
use crate::data::upstream::fields::{self, ClientFraming, Framing};
use crate::data::upstream::{BodySender, Client, Fault, Lane, Lease, Limits, RequestBody, RetryReason};
use crate::lifecycle::InFlight;
use crate::ops::clock::now_ms;
use crate::ops::config::TimeoutsConfig;
use crate::shadow::tee::{sampled, Tee};
use crate::state::Shared;

pub const POOL_HEADER: &str = "x-switchyard-pool";
pub const RULES_VERSION_HEADER: &str = "x-switchyard-rules-version";

/// The fields switchyard adds to answers, made once (not parsed per request).
const POOL_FIELD: HeaderName = HeaderName::from_static(POOL_HEADER);
const RULES_VERSION_FIELD: HeaderName = HeaderName::from_static(RULES_VERSION_HEADER);
/// `x-switchyard-pool`'s values, by [`Pool::index`].
const POOL_VALUES: [HeaderValue; 2] = [HeaderValue::from_static("legacy"), HeaderValue::from_static("scheduler")];

/// How much of a request body is read before the request goes out: a body this size or smaller
/// leaves in the same write as the head. A larger body streams on after it.
pub const BUFFERED_BODY: usize = 64 * 1024;

/// How long a client may pause while sending its request body or reading its answer (the same
/// bound pingora gives an idle connection).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// After an answer that came before the client finished its body: how long the rest of the body
/// is read and dropped before the connection closes (see [`SwitchyardProxy::linger`]).
pub const LINGER: Duration = Duration::from_secs(2);

pub struct SwitchyardProxy {
    shared: Arc<Shared>,
    client: Client,
    traffic: Traffic,
}

/// Per-request state, created once the request head was read.
pub struct RequestCtx {
    started: Instant,
    kind: RequestKind,
    /// The rules this request was routed by: one snapshot for its whole life.
    rules: Option<Arc<ActiveRules>>,
    /// The pool the rules chose, and the pool actually used (they differ after a fallback).
    chosen: Pool,
    pool: Pool,
    reason: DecisionReason,
    /// The counters of the ramped override that decided it, if one did (its gates read them).
    ramp_slot: Option<usize>,
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

/// Why a request was not answered by a controller.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Between switchyard and the controller.
    #[error(transparent)]
    Upstream(#[from] Fault),
    /// Reading from or writing to the client.
    #[error("client: {0}")]
    Client(Box<Error>),
    /// A `Transfer-Encoding` other than `chunked`: no controller could be sent the body.
    #[error("the request's Transfer-Encoding is not chunked alone")]
    UnsupportedCoding,
}

impl Failure {
    /// The status switchyard answers with (0: none, the client is gone), and the message.
    fn answer(&self) -> (u16, &'static str) {
        match self {
            Failure::Upstream(f) if f.is_timeout() && !f.before_delivery() => {
                (504, "The controller did not answer in time.")
            }
            Failure::Upstream(Fault::ConnectTimeout) => (504, "No controller of either pool answered in time."),
            Failure::Upstream(Fault::Connect(_)) => (502, "No controller of either pool could be reached."),
            Failure::Upstream(Fault::NoMember) => {
                (502, "No controller is known: the pools' names resolve to no address.")
            }
            Failure::Upstream(_) => (502, "The controller failed the request before its whole answer."),
            Failure::Client(e) => match e.etype() {
                ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed => (0, ""),
                ErrorType::ReadTimedout => (408, "The request was not received in time."),
                _ => (400, "The request could not be read."),
            },
            Failure::UnsupportedCoding => {
                (501, "The request's Transfer-Encoding is not supported: send it chunked or with a Content-Length.")
            }
        }
    }

    /// The controller accepted the connection, then failed the request: reset, closed, timed out
    /// or garbled before its whole answer (a refused connection is handled when connecting).
    fn failed_mid_answer(&self) -> bool {
        matches!(self, Failure::Upstream(f) if !f.before_delivery())
    }
}

/// Whether an invoke waits for its result (`blocking=true`; OpenWhisk's default is false).
fn is_blocking(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair.eq_ignore_ascii_case("blocking=true")))
}

/// The request body read before the request goes out (see [`BUFFERED_BODY`]).
struct Body {
    pieces: Vec<Bytes>,
    len: usize,
    /// All of it was read.
    complete: bool,
}

impl SwitchyardProxy {
    pub fn new(shared: Arc<Shared>, timeouts: &TimeoutsConfig) -> SwitchyardProxy {
        let client =
            Client::new(Lane::Data, Limits::from(timeouts), Duration::from_millis(timeouts.idle_ms), &shared.metrics);
        let traffic = Traffic::new(&shared.metrics);
        SwitchyardProxy { shared, client, traffic }
    }

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            kind: RequestKind::Other,
            rules: None,
            chosen: Pool::Legacy,
            pool: Pool::Legacy,
            reason: DecisionReason::DefaultPool,
            ramp_slot: None,
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

    /// Runs first for every request, once its head was read: takes the rules snapshot, classifies
    /// the request, routes it ([`Self::route`]), decides whether to mirror it ([`Self::mirror`])
    /// and settles the `X-Request-ID`.
    async fn request_filter(&self, session: &ServerSession, ctx: &mut RequestCtx) {
        let active = self.shared.rules.snapshot();
        let req = session.req_header();
        let mut class = classify(req.method.as_str(), req.uri.path());
        ctx.kind = class.kind;
        ctx.blocking = class.kind == RequestKind::Invoke && is_blocking(req.uri.query());
        let decision = if class.kind.is_invocation() {
            let decision = self.route(req, &mut class, &active).await;
            ctx.shadow = self.mirror(req, &class, decision.reason, &active, ctx.blocking);
            decision
        } else {
            active.rules.decide_default()
        };
        (ctx.chosen, ctx.pool, ctx.reason) = (decision.pool, decision.pool, decision.reason);
        if let DecisionReason::Override(i) = decision.reason {
            ctx.ramp_slot = active.rules.ramp_slot(i);
        }
        if let Some(tee) = ctx.shadow.as_mut() {
            // Only an override mirrors: its ramp's mismatch gate reads the comparison.
            tee.ramp_slot = ctx.ramp_slot;
        }
        self.shared.metrics.decision(ctx.chosen, ctx.reason);
        if decision.reason == DecisionReason::Forced {
            tracing::info!(namespace = %escape_controls(&class.namespace), action = %escape_controls(&class.action),
                pool = decision.pool.as_str(), "path chosen by a listed caller's header");
        }
        ctx.rules = Some(active);
        ctx.request_id = req
            .headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| request_id::accept(v.as_bytes()))
            .unwrap_or_else(request_id::generate);
    }

    /// Decides an invocation's pool by the rules. `_` is the caller's own namespace: resolved
    /// first (waiting at most `namespaces.wait_ms`, usually answered from the cache) and written
    /// into `class`, so a namespace pin holds for default-namespace callers; a `_` that cannot be
    /// resolved goes to legacy, the safe side.
    async fn route(&self, req: &RequestHeader, class: &mut Classified<'_>, active: &ActiveRules) -> Decision {
        if class.namespace == "_" && class.kind != RequestKind::WebAction {
            let credential = req.headers.get(http::header::AUTHORIZATION).map(http::HeaderValue::as_bytes);
            match self.shared.namespaces.resolve(credential).await {
                Some(namespace) => class.namespace = Cow::Owned(namespace.to_string()),
                None => return Decision::unresolved_namespace(),
            }
        }
        let subject = active
            .uses_subject
            .then(|| req.headers.get(http::header::AUTHORIZATION).and_then(|v| BasicCredential::parse(v.as_bytes())))
            .flatten()
            .map(|c| c.user);
        self.shared.recent.record(now_ms(), &class.namespace, &class.package, &class.action);
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        active.rules.decide(&Invocation {
            namespace: &class.namespace,
            package: &class.package,
            action: &class.action,
            subject: subject.as_deref(),
            header: Some(&header),
        })
    }

    /// Whether an invocation is mirrored: its override has a shadow policy that allows this
    /// call, and the sample picks it. Only what is safe to run twice unless the policy lists more:
    /// blocking invokes, and GET and HEAD web actions. Trigger fires never: their rule-driven
    /// invocations run on the controller's own path, and a 202 with an activation id is all there
    /// would be to compare.
    fn mirror(
        &self,
        req: &RequestHeader,
        class: &Classified<'_>,
        reason: DecisionReason,
        active: &ActiveRules,
        blocking: bool,
    ) -> Option<Tee> {
        let DecisionReason::Override(i) = reason else { return None };
        let safe = |p: &ShadowPolicy| match class.kind {
            RequestKind::Invoke => p.mirrors_invoke(blocking),
            RequestKind::WebAction => p.mirrors_web_method(req.method.as_str()),
            _ => false,
        };
        let policy = active.rules.overrides[i].shadow.as_ref().filter(|p| safe(p) && sampled(p.sample))?;
        Some(Tee::for_request(policy.clone(), class, req, blocking, self.shared.shadow.max_body))
    }

    /// Runs before each connection attempt (again after a connect failure): picks a healthy
    /// member of the current pool, moving to the other pool only if this one has none, so a
    /// dead controller does not move its share of the canary to the other path.
    fn upstream_peer(&self, ctx: &mut RequestCtx) -> Option<Arc<Member>> {
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
                    self.traffic.fallback(ctx.pool, reason);
                    ctx.fell_back = true;
                    ctx.pool = ctx.pool.other();
                    m
                }
                // Nothing is known healthy: health may lag reality, so try anyway.
                None => pools.get(ctx.pool).pick_any()?,
            },
        };
        ctx.member = Some(member.endpoint.addr);
        Some(member)
    }

    /// Runs when connecting failed. The request was never delivered, so it is safe to try again:
    /// the failed member leaves rotation until its health check passes, and the next attempt goes
    /// to another member (of the other pool when this one has none left). At most one attempt
    /// per controller of both pools; false when none is left.
    fn fail_to_connect(&self, member: &Member, ctx: &mut RequestCtx) -> bool {
        member.mark_unreachable();
        ctx.connect_failures += 1;
        ctx.connect_failures < self.shared.pools.len()
    }

    /// Reads the request body up to [`BUFFERED_BODY`] (answering `Expect: 100-continue` first,
    /// to HTTP/1.1 clients only: an HTTP/1.0 client does not know the interim answer), keeping a
    /// copy for the mirror.
    async fn request_body(&self, session: &mut ServerSession, ctx: &mut RequestCtx) -> Result<Body, Failure> {
        let mut body = Body { pieces: Vec::new(), len: 0, complete: false };
        if session.is_body_empty() {
            body.complete = true;
            return Ok(body);
        }
        // switchyard reads the body itself, so it answers the client's wait; the controller gets
        // no `Expect` (see `fields::request_fields`).
        let req = session.req_header();
        if req.version == http::Version::HTTP_11
            && req.headers.get(http::header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
        {
            session.write_continue_response().await.map_err(Failure::Client)?;
        }
        while body.len <= BUFFERED_BODY {
            match request_chunk(session, &mut ctx.shadow).await? {
                Some(chunk) => {
                    body.len += chunk.len();
                    body.pieces.push(chunk);
                }
                None => {
                    body.complete = true;
                    break;
                }
            }
        }
        Ok(body)
    }

    /// Sends the request to a controller and relays its answer to the client.
    async fn forward(&self, session: &mut ServerSession, ctx: &mut RequestCtx) -> Result<(), Failure> {
        let client = ClientFraming::of(session.req_header());
        if !client.supported() {
            return Err(Failure::UnsupportedCoding);
        }
        let body = self.request_body(session, ctx).await?;
        let req = session.req_header();
        let mut headers = fields::request_fields(req, &ctx.request_id);
        // The testers' path header is switchyard's, whoever sent it: no controller sees it.
        if let Some(force) = ctx.rules.as_ref().and_then(|active| active.rules.force.as_ref()) {
            headers.remove(force.header.as_str());
        }
        Framing::for_request(client, body.complete.then_some(body.len)).apply(&mut headers);
        if let Some(tee) = ctx.shadow.as_mut() {
            // The copy is the primary's twin: the same fields.
            tee.fields = headers.clone();
        }
        let (request_body, sender) = if body.complete {
            (RequestBody::whole(body.pieces), None)
        } else {
            let (request_body, sender) = RequestBody::streaming(body.pieces);
            (request_body, Some(sender))
        };
        let mut request = http::Request::new(request_body);
        *request.method_mut() = req.method.clone();
        // Origin form, as the client sent it (an absolute-form target loses its scheme and host).
        *request.uri_mut() = match req.uri.path_and_query() {
            Some(_) if req.uri.scheme().is_none() => req.uri.clone(),
            Some(path) => http::Uri::from(path.clone()),
            None => http::Uri::from_static("/"),
        };
        *request.headers_mut() = headers;
        let mut tee = ctx.shadow.take();
        let result = self.exchange(session, ctx, &mut tee, request, sender).await;
        ctx.shadow = tee;
        result
    }

    /// Sends the request (the rest of a large body streamed on as the client sends it) and
    /// relays the answer. An answer that arrives before the body was sent whole is relayed at
    /// once and the rest of the body is not sent (a `413` or `401` refusing the body).
    async fn exchange(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
        tee: &mut Option<Tee>,
        request: http::Request<RequestBody>,
        sender: Option<BodySender>,
    ) -> Result<(), Failure> {
        let limits = *self.client.limits();
        // Whether the body was handed over whole; when not, the client's connection cannot carry
        // another request (the rest of its body is still on it).
        let mut body_sent = sender.is_none();
        let answer = {
            // A body handed over whole: the wait for the answer is timed from there, on the
            // connection's own timer.
            let answer_within = body_sent.then_some(limits.read);
            let mut send = std::pin::pin!(self.send_request(ctx, request, answer_within));
            let early_answer = if let Some(feed) = sender.as_ref() {
                // Ok(false): the connection ended first; its failure or answer comes through `send`.
                // Boxed: only a large body streams, and its state would otherwise make every
                // request's future larger.
                let feeding = Box::pin(async {
                    while let Some(piece) = request_chunk(session, tee).await? {
                        match pingora::time::timeout(limits.write, feed.send(piece)).await {
                            Ok(true) => {}
                            Ok(false) => return Ok::<bool, Failure>(false),
                            Err(_) => return Err(Fault::WriteTimeout.into()),
                        }
                    }
                    pingora::time::timeout(limits.write, feed.finish()).await.map_err(|_| Fault::WriteTimeout.into())
                });
                // The answer is awaited while the body goes out: one that comes first ends the
                // feeding at once (an early answer).
                tokio::select! {
                    biased;
                    answer = &mut send => Some(answer),
                    fed = feeding => {
                        body_sent = fed?;
                        None
                    }
                }
            } else {
                None
            };
            match early_answer {
                Some(answer) => answer,
                None if answer_within.is_some() => send.await,
                // The body was streamed to its end: the controller has `read` to answer from now.
                None => match pingora::time::timeout(limits.read, &mut send).await {
                    Ok(answer) => answer,
                    Err(_) => Err(Fault::Timeout.into()),
                },
            }
        };
        let (response, lease) = answer?;
        // The controller answered before the whole body: the sender is kept (and nothing more
        // sent) until the answer was read, then dropped, which closes the connection.
        let early = !body_sent;
        let result = self.relay_answer(session, ctx, tee, response, lease, early).await;
        if early {
            drop(sender);
            self.linger(session).await;
        }
        result
    }

    /// Picks a controller and hands it the request; connects again, to another controller, when a
    /// connection could not be opened (the request was not delivered).
    async fn send_request(
        &self,
        ctx: &mut RequestCtx,
        mut request: http::Request<RequestBody>,
        answer_within: Option<Duration>,
    ) -> Result<(http::Response<hyper::body::Incoming>, Lease), Failure> {
        loop {
            let Some(member) = self.upstream_peer(ctx) else {
                return Err(Fault::NoMember.into());
            };
            match self.client.send(&member.endpoint, request, answer_within).await {
                Ok(answer) => return Ok(answer),
                Err(no) => match no.unsent {
                    // None of it reached the wire: another controller may be tried.
                    Some(back) if self.fail_to_connect(&member, ctx) => {
                        tracing::debug!(member = %member.endpoint.addr, error = %no.fault, "connect failed; trying another controller");
                        self.client.retried(RetryReason::ConnectFailed);
                        request = back;
                    }
                    _ => return Err(no.fault.into()),
                },
            }
        }
    }

    /// Relays the answer: its head with the body already read along with it in one write when
    /// that is the whole body (the usual case), else the body streamed on as the controller sends
    /// it. The connection is kept only when the answer was read to the end of its framing, the
    /// controller keeps it open, and the request was sent whole.
    async fn relay_answer(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
        tee: &mut Option<Tee>,
        response: http::Response<hyper::body::Incoming>,
        lease: Lease,
        early: bool,
    ) -> Result<(), Failure> {
        let (mut head, mut body) = response.into_parts();
        let read = self.client.limits().read;
        let keeps = fields::answer_head(&mut head);
        let (pieces, done) = read_ready(&mut body).map_err(Fault::Exchange)?;
        let whole = done.then(|| pieces.iter().map(Bytes::len).sum());
        let req = session.req_header();
        client_framing(&mut head, whole, req.method == http::Method::HEAD, req.version);
        if early {
            // The client is still sending a body no one will read: this connection ends here.
            session.set_keepalive(None);
        }
        self.response_filter(&mut head, ctx, tee);
        for piece in &pieces {
            self.response_chunk(piece, ctx, tee);
        }
        // The fields were set in hyper's head, not through pingora's `insert_header`, which
        // copies and parses every name again for a header-case map this head does not have.
        session.write_response_header(Box::new(ResponseHeader::from(head))).await.map_err(Failure::Client)?;
        let first = match pieces.len() {
            0 => Bytes::new(),
            1 => pieces.into_iter().next().unwrap_or_default(),
            _ => pieces.concat().into(),
        };
        session.write_response_body(first, done).await.map_err(Failure::Client)?;
        if !done {
            loop {
                let frame = match pingora::time::timeout(read, body.frame()).await {
                    Ok(Some(frame)) => frame.map_err(Fault::Exchange)?,
                    Ok(None) => break,
                    Err(_) => return Err(Fault::Timeout.into()),
                };
                let Ok(piece) = frame.into_data() else { continue };
                self.response_chunk(&piece, ctx, tee);
                session.write_response_body(piece, false).await.map_err(Failure::Client)?;
            }
            session.write_response_body(Bytes::new(), true).await.map_err(Failure::Client)?;
        }
        lease.release(!early && keeps);
        Ok(())
    }

    /// After an early answer: reads and drops what the client still sends of its body, for at
    /// most [`LINGER`], so closing does not reset the connection before the client read the
    /// answer (a close with unread data sends a reset, which can discard the answer in flight).
    async fn linger(&self, session: &mut ServerSession) {
        let drain = async { while let Ok(Some(_)) = session.read_request_body().await {} };
        let _ = pingora::time::timeout(LINGER, drain).await;
    }

    /// Runs on the answer head before it goes to the client: says which pool and which rules
    /// version served it, keeps the request id visible, and starts keeping the prefix of an
    /// invocation's 502 for its classification.
    fn response_filter(&self, head: &mut http::response::Parts, ctx: &mut RequestCtx, tee: &mut Option<Tee>) {
        if let Some(tee) = tee.as_mut() {
            tee.response_status = Some(head.status.as_u16());
            tee.response_transaction_id =
                head.headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        }
        if ctx.kind.is_invocation() && AnswerClass::needs_body(head.status.as_u16()) {
            ctx.error_prefix = Some(Vec::new());
        }
        let fields = &mut head.headers;
        if self.shared.pool_header {
            fields.insert(POOL_FIELD, POOL_VALUES[ctx.pool.index()].clone());
            if let Some(active) = &ctx.rules {
                fields.insert(RULES_VERSION_FIELD, active.version_header.clone());
            }
        }
        if let header::Entry::Vacant(entry) = fields.entry(REQUEST_ID_FIELD) {
            // A request id is a short token (`request_id`), always a valid field value.
            if let Ok(id) = HeaderValue::from_str(&ctx.request_id) {
                entry.insert(id);
            }
        }
    }

    /// Runs for each answer body chunk on its way to the client: keeps a copy for the comparison
    /// and the prefix of an invocation's 502.
    fn response_chunk(&self, chunk: &Bytes, ctx: &mut RequestCtx, tee: &mut Option<Tee>) {
        if let Some(tee) = tee.as_mut() {
            tee.response_chunk(chunk);
        }
        if let Some(prefix) = ctx.error_prefix.as_mut() {
            // One byte past the bound is enough to know the body is longer.
            let room = (CLASSIFY_PREFIX_BYTES + 1).saturating_sub(prefix.len());
            prefix.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }

    /// Runs when the request failed for good, unless the answer had already started: answers in
    /// OpenWhisk's error shape (`{"error": ..., "code": <request id>}`).
    async fn fail_to_proxy(&self, session: &mut ServerSession, failure: &Failure, ctx: &RequestCtx) {
        let (code, message) = failure.answer();
        if code == 0 || session.response_written().is_some() {
            return;
        }
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

    /// Runs last for every request, after the answer went out or failed: records metrics, counts
    /// a controller's failure against its health, hands the mirror job to the shadow queue.
    fn logging(&self, session: &ServerSession, failure: Option<&Failure>, ctx: &mut RequestCtx) {
        let status = session.response_written().map(|r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        self.traffic.request(ctx.pool, ctx.kind, status, elapsed.as_secs_f64());
        // A client that went away says nothing about the path; any other failure means the pool
        // gave no usable answer, whatever error page the proxy then wrote.
        let client_gone = matches!(failure, Some(Failure::Client(_)));
        if ctx.kind.is_invocation() && !(client_gone && status.is_none()) {
            let answered = if failure.is_some() && !client_gone { None } else { status };
            let class = AnswerClass::of(answered, ctx.blocking, ctx.error_prefix.as_deref().unwrap_or_default());
            self.traffic.invocation(ctx.pool, ctx.kind, class);
            self.shared.live.answer(ctx.ramp_slot, ctx.pool, class, elapsed.as_secs_f64());
        }
        if let Some(failure) = failure {
            tracing::warn!(request_id = %ctx.request_id, pool = %ctx.pool, kind = ctx.kind.as_str(), error = %failure, "request failed");
            if failure.failed_mid_answer() {
                self.answer_failed(ctx);
            }
        }
        if let Some(mut tee) = ctx.shadow.take() {
            if failure.is_some() {
                tee.give_up(SkipReason::PrimaryFailed);
            }
            self.shared.shadow.submit(tee, ctx.pool, std::mem::take(&mut ctx.request_id), elapsed);
        }
    }

    /// Counts a failure of the request's controller against its health.
    fn answer_failed(&self, ctx: &RequestCtx) {
        let pools = &self.shared.pools;
        let Some(m) = ctx.member.and_then(|addr| pools.get(ctx.pool).member(addr)) else { return };
        if m.answer_failed(&pools.health) {
            tracing::warn!(pool = %ctx.pool, member = %m.endpoint.addr, "controller failed requests after accepting them; out of rotation until its health check passes");
        }
    }
}

/// Runs for each request body chunk on its way to the controller: keeps a copy for the mirror.
async fn request_chunk(session: &mut ServerSession, tee: &mut Option<Tee>) -> Result<Option<Bytes>, Failure> {
    let chunk = session.read_request_body().await.map_err(Failure::Client)?;
    if let (Some(tee), Some(chunk)) = (tee.as_mut(), chunk.as_ref()) {
        tee.request_chunk(chunk);
    }
    Ok(chunk)
}

/// The answer body hyper has already read, without waiting for more: its pieces, and whether
/// they are the whole body.
fn read_ready(body: &mut hyper::body::Incoming) -> Result<(Vec<Bytes>, bool), hyper::Error> {
    use futures::FutureExt;
    let mut pieces = Vec::new();
    loop {
        if hyper::body::Body::is_end_stream(body) {
            return Ok((pieces, true));
        }
        match body.frame().now_or_never() {
            Some(Some(frame)) => {
                if let Ok(piece) = frame?.into_data() {
                    pieces.push(piece);
                }
            }
            Some(None) => return Ok((pieces, true)),
            None => return Ok((pieces, false)),
        }
    }
}

/// Frames the answer for the client (pingora's writer follows the fields): a body read whole with
/// the head gets its length, so it goes out in the same write; one still streaming keeps the
/// controller's length, or is chunked (HTTP/1.0 clients: delimited by the close). An answer
/// without a body by its status or the request's method keeps its fields as the controller wrote
/// them (a HEAD's length describes what a GET would get).
fn client_framing(head: &mut http::response::Parts, whole: Option<usize>, head_request: bool, client: http::Version) {
    if head_request || matches!(head.status.as_u16(), 204 | 304) || head.headers.contains_key(header::CONTENT_LENGTH) {
        return;
    }
    match whole {
        Some(len) => {
            head.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        None if client == http::Version::HTTP_11 => {
            head.headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        }
        None => {}
    }
}

/// Reads the next request head. False: the client closed or sent garbage (answered 400), or the
/// service is stopping and no request had started.
async fn read_request(session: &mut ServerSession, shutdown: &ShutdownWatch) -> bool {
    let mut stopping = shutdown.clone();
    let read = tokio::select! {
        // A request already buffered is served even when a stop begins.
        biased;
        read = session.read_request() => read,
        _ = stopping.wait_for(|stop| *stop) => return false,
    };
    match read {
        Ok(true) => {}
        Ok(false) => return false,
        Err(e) => {
            if matches!(e.etype(), ErrorType::InvalidHTTPHeader) {
                let _ = session.respond_error(400).await;
            }
            session.shutdown().await;
            return false;
        }
    }
    // As pingora's proxy: a CONNECT tunnel is not an API call.
    if session.req_header().method == http::Method::CONNECT {
        let _ = session.respond_error(405).await;
        session.shutdown().await;
        return false;
    }
    true
}

#[async_trait]
impl HttpServerApp for SwitchyardProxy {
    /// Runs for each request on a client connection (the connection loop is `idle::Parked`):
    /// the phases in order, then the connection goes back to the loop if it can be kept.
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        if !read_request(&mut session, shutdown).await {
            return None;
        }
        if *shutdown.borrow() {
            // Stopping: answer this request, then close.
            session.set_keepalive(None);
        }
        session.set_read_timeout(Some(CLIENT_TIMEOUT));
        session.set_write_timeout(Some(CLIENT_TIMEOUT));
        let mut ctx = self.new_ctx();
        self.request_filter(&session, &mut ctx).await;
        let result = self.forward(&mut session, &mut ctx).await;
        if let Err(failure) = &result {
            self.fail_to_proxy(&mut session, failure, &ctx).await;
        }
        self.logging(&session, result.as_ref().err(), &mut ctx);
        if result.is_err() {
            // What the connection carries next is unknown (an unread body, a cut answer).
            return None;
        }
        let settings = HttpPersistentSettings::for_session(&session);
        let reusable = session.finish().await.ok().flatten()?;
        Some(ReusedHttpStream::from_reusable_stream(reusable, settings))
    }
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

//! The one client for every exchange with a controller: primaries, shadow copies, `_` lookups and
//! health checks. hyper's HTTP/1 connection (`hyper::client::conn::http1`) writes the requests and
//! parses the answers; switchyard keeps the connections per controller ([`pool`]) and decides only
//! policy: which fields cross ([`fields`]), when a connection may be kept, and when a request may
//! be sent again.
//!
//! Two promises hold here. **A request reaches a controller once**: it goes again on another
//! connection only when hyper hands it back unsent (none of it reached the wire), never once the
//! controller may have read it. **An answer reaches the request that asked**: a connection goes
//! back to the pool only when its answer ended exactly at its framing, and an idle connection that
//! receives anything is closed by hyper at once.

pub mod body;
pub mod fields;
pub mod pool;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::{Builder, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Sleep;

pub use body::{BodySender, RequestBody};
pub use pool::Endpoint;

use crate::ops::config::TimeoutsConfig;
use crate::ops::metrics::{Counters, Metrics, UPSTREAM_RETRIES};

/// The largest answer head read from a controller (hyper's read buffer; the fields in it are
/// hyper's default limit, 100).
pub const MAX_ANSWER_HEAD: usize = 64 * 1024;

/// What went wrong between switchyard and a controller.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("connecting to the controller: {0}")]
    Connect(io::Error),
    #[error("connecting to the controller timed out")]
    ConnectTimeout,
    /// The connection closed before any of the request was written.
    #[error("the connection closed before the request was sent: {0}")]
    NotSent(hyper::Error),
    /// The exchange failed once the request may have reached the controller: a reset or close
    /// before the whole answer, or an answer hyper could not parse.
    #[error("the controller failed the exchange: {0}")]
    Exchange(hyper::Error),
    #[error("the controller did not answer in time")]
    Timeout,
    #[error("the controller did not take the request body in time")]
    WriteTimeout,
    #[error("the controller switched protocols, which switchyard never asks for")]
    Upgrade,
    /// Neither pool has a member: their names resolved to no address yet.
    #[error("no controller is known (the pools' names resolve to no address)")]
    NoMember,
}

impl Fault {
    /// None of the request reached the controller: another controller may be tried.
    pub fn before_delivery(&self) -> bool {
        matches!(self, Fault::Connect(_) | Fault::ConnectTimeout | Fault::NotSent(_) | Fault::NoMember)
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Fault::ConnectTimeout | Fault::Timeout | Fault::WriteTimeout)
    }

    /// A short cause, for records and reports (no address, no value from the exchange).
    pub fn cause(&self) -> &'static str {
        match self {
            Fault::Connect(_) | Fault::ConnectTimeout | Fault::NotSent(_) | Fault::NoMember => "connect failed",
            Fault::Timeout | Fault::WriteTimeout => "timeout",
            Fault::Exchange(e) if e.is_parse() => "bad answer",
            Fault::Exchange(_) => "request failed",
            Fault::Upgrade => "bad answer",
        }
    }
}

/// A request that got no answer: why, and the request itself when none of it reached the wire
/// (only then may it go to another controller).
pub struct NoAnswer {
    pub fault: Fault,
    pub unsent: Option<Request<RequestBody>>,
}

impl From<NoAnswer> for Fault {
    fn from(no: NoAnswer) -> Fault {
        no.fault
    }
}

/// Which of a controller's kept connections a client uses. The data plane's requests run on
/// pingora's threads (each keeps its own, see [`pool`]) and the rest (copies, lookups, health
/// checks) mostly on the control runtime: health checks never take a connection a request was
/// about to reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Data,
    Control,
}

/// The per-operation limits of an exchange.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connect: Duration,
    /// The longest wait for the answer head once the request was sent, and for each piece of
    /// the answer body.
    pub read: Duration,
    /// The longest wait for the controller to take a piece of the request body.
    pub write: Duration,
}

impl From<&TimeoutsConfig> for Limits {
    fn from(t: &TimeoutsConfig) -> Limits {
        Limits {
            connect: Duration::from_millis(t.connect_ms),
            read: Duration::from_millis(t.read_ms),
            write: Duration::from_millis(t.write_ms),
        }
    }
}

/// One open connection to a controller: hyper's sender, its connection task (aborted when the
/// connection is dropped, so a connection not kept is closed at once), and its timer for the
/// answers ([`Conn::answer`]).
pub struct Conn {
    sender: SendRequest<RequestBody>,
    task: tokio::task::AbortHandle,
    answer_timer: Option<Pin<Box<Sleep>>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Conn {
    async fn open(addr: SocketAddr, connect: Duration) -> Result<Conn, Fault> {
        let stream = match tokio::time::timeout(connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(Fault::Connect(e)),
            Err(_) => return Err(Fault::ConnectTimeout),
        };
        // A request goes out whole in one write; Nagle would only delay the next one.
        stream.set_nodelay(true).map_err(Fault::Connect)?;
        // hyper's own limit on the fields of an answer head (100) holds; it keeps them on the stack.
        let (sender, connection) = Builder::new()
            .max_buf_size(MAX_ANSWER_HEAD)
            .allow_spaces_after_header_name_in_responses(true)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(Fault::NotSent)?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "controller connection ended");
            }
        })
        .abort_handle();
        Ok(Conn { sender, task, answer_timer: None })
    }

    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Waits for `answer` at most `limit`; `None`: the time passed first. The connection keeps one
    /// timer for this, made at its first answer and moved to the new deadline at each one after:
    /// tokio moves a deadline later in place (one atomic update), and with one limit per client
    /// each deadline is later than the last. A timeout made per request (pingora's allocates and
    /// looks its slot up under a lock; tokio's enters and leaves the timer wheel) cost about 600
    /// instructions more per request.
    ///
    /// The timer belongs to the runtime it was made on: only the data plane uses this, whose
    /// connections stay with the worker thread, hence the runtime, that opened them (see [`pool`]).
    async fn answer<F: Future>(&mut self, limit: Duration, answer: F) -> Option<F::Output> {
        let deadline = tokio::time::Instant::now() + limit;
        let timer = match &mut self.answer_timer {
            Some(timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => self.answer_timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        tokio::select! {
            // An answer that came wins over a deadline that passed meanwhile.
            biased;
            out = answer => Some(out),
            () = timer.as_mut() => None,
        }
    }
}

/// A `GET` of `path` (origin form): what the lookups and the health checks send.
pub fn get(path: &'static str) -> Request<RequestBody> {
    let mut req = Request::new(RequestBody::empty());
    *req.uri_mut() = http::Uri::from_static(path);
    req
}

/// The connection an answer is being read from. [`Lease::release`] keeps it for the next request
/// when the exchange ended cleanly; dropped otherwise, the connection closes.
pub struct Lease {
    conn: Conn,
    /// Owned: a member taken out of its pool meanwhile still gets its connection back (and closes it).
    endpoint: Arc<Endpoint>,
    lane: Lane,
    idle: Duration,
}

impl Lease {
    /// Ends the exchange. `clean`: the request body was sent whole, the answer body was read to
    /// the end of its framing, and the answer keeps the connection ([`fields::keeps_connection`]).
    pub fn release(self, clean: bool) {
        if clean && self.conn.is_open() {
            self.endpoint.keep(self.lane, self.conn, self.idle);
        }
    }
}

/// Why a request went again on another connection (the `reason` label of
/// `switchyard_upstream_retries_total`). Both mean none of it had reached the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum RetryReason {
    /// A kept connection turned out closed; hyper handed the request back unwritten.
    KeptConnectionClosed,
    /// Connecting to a controller failed; the next attempt goes to another one.
    ConnectFailed,
}

/// The client to the controllers. Cheap to hold per user (primaries, mirror, lookups, health):
/// the connections themselves are kept per controller, in its [`Endpoint`].
pub struct Client {
    lane: Lane,
    limits: Limits,
    /// How long an idle connection is kept.
    idle: Duration,
    retries: Counters<RetryReason>,
}

impl Client {
    pub fn new(lane: Lane, limits: Limits, idle: Duration, metrics: &Metrics) -> Client {
        Client { lane, limits, idle, retries: Counters::new(metrics, UPSTREAM_RETRIES, &[], "reason") }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Counts a request sent again on another connection.
    pub fn retried(&self, reason: RetryReason) {
        self.retries.count(reason);
    }

    /// Sends `req` to the controller at `endpoint`, on a kept connection when one is open, else on
    /// a new one, and waits for the answer head: at most `answer_within` once the request was
    /// handed to the connection (a body sent whole), or as long as it takes when `None` (the caller
    /// bounds the wait: a streaming body's starts only once it was sent). When hyper hands the
    /// request back unwritten (the kept connection was closed), it goes once more on a new
    /// connection. A request without `Host` gets the controller's address.
    pub async fn send(
        &self,
        endpoint: &Arc<Endpoint>,
        mut req: Request<RequestBody>,
        answer_within: Option<Duration>,
    ) -> Result<(Response<Incoming>, Lease), NoAnswer> {
        if !req.headers().contains_key(http::header::HOST) {
            if let Ok(host) = http::HeaderValue::from_str(&endpoint.addr.to_string()) {
                req.headers_mut().insert(http::header::HOST, host);
            }
        }
        let pool = endpoint.idle(self.lane);
        let mut kept = pool.take(self.idle);
        loop {
            let reused = kept.is_some();
            let mut conn = match kept.take() {
                Some(conn) => conn,
                // Boxed: opening is rare next to reusing, and its state would otherwise make every
                // request's future larger (moved by value, copied on each move).
                None => match Box::pin(Conn::open(endpoint.addr, self.limits.connect)).await {
                    Ok(conn) => conn,
                    Err(fault) => return Err(NoAnswer { fault, unsent: Some(req) }),
                },
            };
            if reused {
                // A kept connection is ready at once unless hyper is still finishing its last
                // exchange (then it soon is); a closed one errs.
                let ready = match futures::FutureExt::now_or_never(conn.sender.ready()) {
                    Some(ready) => ready.is_ok(),
                    None => {
                        let wait = Box::pin(tokio::time::timeout(self.limits.connect, conn.sender.ready()));
                        matches!(wait.await, Ok(Ok(())))
                    }
                };
                if !ready {
                    kept = pool.take(self.idle);
                    continue;
                }
            }
            let sent = conn.sender.try_send_request(req);
            let answer = match answer_within {
                Some(limit) => match conn.answer(limit, sent).await {
                    Some(answer) => answer,
                    None => return Err(NoAnswer { fault: Fault::Timeout, unsent: None }),
                },
                None => sent.await,
            };
            match answer {
                Ok(resp) if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS => {
                    return Err(NoAnswer { fault: Fault::Upgrade, unsent: None })
                }
                Ok(resp) => {
                    let endpoint = Arc::clone(endpoint);
                    return Ok((resp, Lease { conn, endpoint, lane: self.lane, idle: self.idle }));
                }
                Err(mut e) => match e.take_message() {
                    Some(back) if reused => {
                        self.retried(RetryReason::KeptConnectionClosed);
                        req = back;
                    }
                    Some(back) => return Err(NoAnswer { fault: Fault::NotSent(e.into_error()), unsent: Some(back) }),
                    None => return Err(NoAnswer { fault: Fault::Exchange(e.into_error()), unsent: None }),
                },
            }
        }
    }

    /// Sends a request without a streaming body and reads its whole answer, all within
    /// `timeout`: for the mirror, the lookups and the health checks. `Ok((head, None))`: the
    /// answer body is larger than `max_body` (not read further; the connection is closed).
    pub async fn exchange(
        &self,
        endpoint: &Arc<Endpoint>,
        req: Request<RequestBody>,
        max_body: usize,
        timeout: Duration,
    ) -> Result<(http::response::Parts, Option<Bytes>), Fault> {
        let run = async {
            let (resp, lease) = self.send(endpoint, req, None).await?;
            let (parts, mut body) = resp.into_parts();
            let keep = fields::keeps_connection(parts.version, &parts.headers);
            let mut out = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame.map_err(Fault::Exchange)?.into_data() else { continue };
                if out.len() + data.len() > max_body {
                    return Ok((parts, None));
                }
                out.extend_from_slice(&data);
            }
            lease.release(keep);
            Ok((parts, Some(out.freeze())))
        };
        tokio::time::timeout(timeout, run).await.unwrap_or(Err(Fault::Timeout))
    }
}

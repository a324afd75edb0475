//! Idle client connections, parked cheaply. pingora serves each request of an HTTP/1 connection
//! in a boxed future sized for the whole proxy flow, and starts the next one, still empty, as soon
//! as the previous answer went out: an idle keep-alive client holds it (about 20 KB) for as long
//! as it is idle, so 10,000 idle clients cost about 250 MB. This runs pingora's HTTP/1 connection
//! loop itself and waits for each request's first byte in a future of a few hundred bytes before
//! starting the proxy's. That loop runs in a task of its own on the runtime of the worker that
//! accepted the connection (`listener`), so an idle client costs its socket, its buffers and this
//! small task.
//!
//! Seeing every connection first, it also caps how many are open at once: past
//! `max_client_connections` in all, or `max_client_connections_per_ip` from one address, a new one
//! is closed at once and counted, so a flood of idle or slow clients has a bounded cost and one
//! client cannot hold every slot.
//!
//! Only what the proxy listener uses is handled: plain-text HTTP/1 (no TLS, no h2c, pipelining
//! not enabled), exactly as pingora's own loop does it otherwise. A stop does not wait for the
//! connection tasks (pingora never waited for its own either): the requests in flight are drained
//! by the lifecycle's count, not by the tasks that carry them.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use tokio::io::AsyncReadExt;
use tokio::time::{Instant, Sleep};

use crate::ops::metrics::{Counters, Metrics, CLIENT_CONNECTIONS_REFUSED};
use crate::sync::lock;

/// How long a connection may wait for its next request: pingora's own keep-alive and first-read
/// timeouts (60 s), so parking changes no client-visible limit.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How many client connections may be open at once.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionCaps {
    pub total: usize,
    /// From one client address.
    pub per_ip: usize,
}

/// Why a client connection was closed at once (the `reason` label of
/// `switchyard_client_connections_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Refusal {
    /// `max_client_connections` were open.
    Total,
    /// `max_client_connections_per_ip` were open from the same address.
    PerIp,
}

pub struct Parked<A> {
    app: Arc<A>,
    open: AtomicUsize,
    /// Connections open per client address (only addresses with one open). The lock is taken
    /// when a connection opens and when it closes, never per request.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    caps: ConnectionCaps,
    metrics: Arc<Metrics>,
    refused: Counters<Refusal>,
}

impl<A> Parked<A> {
    pub fn new(app: A, caps: ConnectionCaps, metrics: Arc<Metrics>) -> Parked<A> {
        let refused = Counters::new(&metrics, CLIENT_CONNECTIONS_REFUSED, &[], "reason");
        Parked { app: Arc::new(app), open: AtomicUsize::new(0), per_ip: Mutex::default(), caps, metrics, refused }
    }

    /// Counts a new connection from `peer` in, unless the caps are reached.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Admitted<A>> {
        let total = self.caps.total;
        if self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < total).then_some(n + 1)).is_err() {
            self.refused.count(Refusal::Total);
            return None;
        }
        // Counted in from here: dropped on the way out, the guard gives the slot back.
        let mut admitted = Admitted { parked: Arc::clone(self), peer: None, counted: false };
        let mut per_ip = lock(&self.per_ip);
        let n = per_ip.entry(peer).or_insert(0);
        if *n >= self.caps.per_ip {
            drop(per_ip);
            self.refused.count(Refusal::PerIp);
            return None;
        }
        *n += 1;
        drop(per_ip);
        admitted.peer = Some(peer);
        self.metrics.client_connections.increment(1.0);
        admitted.counted = true;
        Some(admitted)
    }
}

/// An open connection, counted until dropped.
struct Admitted<A> {
    parked: Arc<Parked<A>>,
    /// The client address it is counted under (none if refused before it was).
    peer: Option<IpAddr>,
    /// Counted in the open connections gauge (it was admitted, not refused on the way).
    counted: bool,
}

impl<A> Drop for Admitted<A> {
    fn drop(&mut self) {
        self.parked.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.peer {
            let mut per_ip = lock(&self.parked.per_ip);
            if let Some(n) = per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        if self.counted {
            self.parked.metrics.client_connections.decrement(1.0);
        }
    }
}

/// Waits until the client sends its next request. False: idle past the timeout, or the read
/// failed. During a shutdown pingora decides what an idle connection gets, so it is handed over at
/// once.
///
/// The wait is a read of nothing: through the stream's read buffer it returns once that buffer
/// holds the request's first bytes (or the client closed, which the session then sees) and takes
/// none of them, so the session reads the request as if it had waited itself, in the same single
/// `recv`, with nothing allocated. Without a read buffer (`read_buffer_bytes = 0`) it returns once
/// the socket is readable.
///
/// `idle` is the connection's one timer, moved to a later deadline at each wait: tokio does that
/// in place (one atomic update). A timer made for each wait was put in tokio's timer wheel and
/// taken out again (a lock each time, about 660 instructions per request), and when the wheel had
/// been empty it woke the event loop through its eventfd, a system call. A request served longer
/// than the timeout lets the timer fire meanwhile: that only wakes the task once for nothing, and
/// the next wait sets it again.
async fn next_request(stream: &mut Stream, shutdown: &mut ShutdownWatch, mut idle: Pin<&mut Sleep>) -> bool {
    // Checked first: once a stop began, `changed` has nothing more to say.
    if *shutdown.borrow() {
        return true;
    }
    idle.as_mut().reset(Instant::now() + IDLE_TIMEOUT);
    tokio::select! {
        // A request already arrived wins over a deadline that passed meanwhile.
        biased;
        read = stream.read(&mut []) => read.is_ok(),
        _ = shutdown.changed() => true,
        _ = idle => false,
    }
}

impl<A: HttpServerApp> Parked<A> {
    /// Serves one admitted connection, request after request, parked between them. Runs in a task
    /// of its own (see the module's comment): everything it holds while a client is idle is its
    /// state, kept to a few hundred bytes.
    async fn connection(admitted: Admitted<A>, mut stream: Stream, mut shutdown: ShutdownWatch) {
        let parked = &admitted.parked;
        let (mut first, mut settings) = (true, None);
        let mut idle = std::pin::pin!(tokio::time::sleep(IDLE_TIMEOUT));
        loop {
            if !next_request(&mut stream, &mut shutdown, idle.as_mut()).await {
                return;
            }
            let serving = parked.serve(stream, settings.take(), first, &shutdown);
            first = false;
            let Some(reused) = serving.await else { return };
            (stream, settings) = reused.consume();
        }
    }

    /// Starts the app on the request that arrived. A plain function rather than inline in
    /// `connection`: a session moved into the app's future would otherwise keep its size (about
    /// 500 bytes) reserved in the state of every parked connection.
    fn serve<'a>(
        &'a self,
        stream: Stream,
        settings: Option<HttpPersistentSettings>,
        first: bool,
        shutdown: &'a ShutdownWatch,
    ) -> Pin<Box<dyn Future<Output = Option<ReusedHttpStream>> + Send + 'a>> {
        let mut session = ServerSession::new_http1(stream);
        if let Some(settings) = settings {
            HttpPersistentSettings::apply_to_session(settings, &mut session);
        } else if first {
            // As pingora's loop: no reuse once a shutdown began, else 60 s keep-alive.
            session.set_keepalive(if *shutdown.borrow() { None } else { Some(60) });
            session.set_keepalive_reuses_remaining(self.app.server_options().and_then(|o| o.keepalive_request_limit));
        }
        self.app.process_new_http(session, shutdown)
    }
}

impl<A: HttpServerApp + Send + Sync + 'static> Parked<A> {
    /// Runs when a worker accepted a connection from `peer`: past a cap it is closed here, before
    /// any of it is read; otherwise it is served by a task of its own on the worker's runtime.
    pub fn accept(self: &Arc<Self>, stream: Stream, peer: IpAddr, shutdown: &ShutdownWatch) {
        if let Some(admitted) = self.admit(peer) {
            tokio::spawn(Self::connection(admitted, stream, shutdown.clone()));
        }
    }

    /// Runs when a worker stopped accepting: pingora's app ends the keep-alive waits it holds.
    pub async fn cleanup(&self) {
        self.app.http_cleanup().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use pingora::protocols::l4::stream::Stream as L4Stream;

    const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    struct Closes;

    #[async_trait]
    impl HttpServerApp for Closes {
        async fn process_new_http(self: &Arc<Self>, _: ServerSession, _: &ShutdownWatch) -> Option<ReusedHttpStream> {
            None
        }
    }

    /// The state every idle client holds, beside its socket and buffers: 10,000 idle clients
    /// multiply it. It was 848 bytes while the session's slot stayed reserved in it; 520 since it
    /// is a task's whole state (it owns its connection's slot and stop signal), where it was 464
    /// beside pingora's task of about 2.3 KB; 552 since its timer is kept across waits.
    #[tokio::test]
    async fn a_parked_connection_holds_a_few_hundred_bytes_of_state() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let caps = ConnectionCaps { total: 10, per_ip: 10 };
        let parked = Arc::new(Parked::new(Closes, caps, Arc::new(Metrics::default())));
        let admitted = parked.admit(LOCALHOST).unwrap();
        let connection = Parked::connection(admitted, Box::new(L4Stream::from(client)), shutdown);
        let size = std::mem::size_of_val(&connection);
        assert!(size <= 560, "a parked connection's state is {size} bytes");
    }

    /// Answers every request with a 204 and keeps the connection.
    struct Answers;

    #[async_trait]
    impl HttpServerApp for Answers {
        async fn process_new_http(
            self: &Arc<Self>,
            mut session: ServerSession,
            _: &ShutdownWatch,
        ) -> Option<ReusedHttpStream> {
            if !session.read_request().await.ok()? {
                return None;
            }
            let answer = pingora::http::ResponseHeader::build(204, None).ok()?;
            session.write_response_header(Box::new(answer)).await.ok()?;
            let settings = HttpPersistentSettings::for_session(&session);
            let reusable = session.finish().await.ok().flatten()?;
            Some(ReusedHttpStream::from_reusable_stream(reusable, settings))
        }
    }

    /// The keep-alive time counts from a connection's last request, however many it carried
    /// (its one timer is moved on at each wait, never left at its first deadline).
    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_closes_once_the_keep_alive_time_passed_since_its_last_request() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let caps = ConnectionCaps { total: 1, per_ip: 1 };
        let parked = Arc::new(Parked::new(Answers, caps, Arc::new(Metrics::default())));
        parked.accept(Box::new(L4Stream::from(server)), LOCALHOST, &shutdown);
        let step = IDLE_TIMEOUT * 3 / 4;
        let mut answer = [0u8; 256];
        for _ in 0..3 {
            // Each request comes three quarters of the keep-alive time after the one before: past
            // the first deadline from the second on, yet always within the time since the last.
            tokio::time::sleep(step).await;
            client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
            let n = client.read(&mut answer).await.unwrap();
            assert!(answer[..n].starts_with(b"HTTP/1.1 204"), "{:?}", String::from_utf8_lossy(&answer[..n]));
        }
        assert_eq!(parked.open.load(Ordering::Acquire), 1);
        tokio::time::sleep(step).await;
        assert_eq!(parked.open.load(Ordering::Acquire), 1, "closed before its keep-alive time had passed");
        tokio::time::sleep(IDLE_TIMEOUT - step + Duration::from_secs(1)).await;
        assert_eq!(client.read(&mut answer).await.unwrap(), 0, "the connection was closed");
        assert_eq!(parked.open.load(Ordering::Acquire), 0, "its slot was given back");
    }

    /// An accepted connection is served by its own task (the accept loop goes on at once), and
    /// counted as open until that task ends.
    #[tokio::test]
    async fn a_connection_is_served_by_its_own_task_and_counted_until_it_ends() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let caps = ConnectionCaps { total: 1, per_ip: 1 };
        let parked = Arc::new(Parked::new(Closes, caps, Arc::new(Metrics::default())));
        parked.accept(Box::new(L4Stream::from(server)), LOCALHOST, &shutdown);
        assert_eq!(parked.open.load(Ordering::Acquire), 1, "counted while its task serves it");
        // The client sends a request and closes; the app (`Closes`) ends the connection.
        use tokio::io::AsyncWriteExt;
        let mut client = client;
        client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while parked.open.load(Ordering::Acquire) != 0 {
            assert!(std::time::Instant::now() < deadline, "the connection's slot was never given back");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

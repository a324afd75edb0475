//! Idle client connections, parked cheaply. pingora serves each request of an HTTP/1 connection
//! in a boxed future sized for the whole proxy flow, and starts the next one, still empty, as soon
//! as the previous answer went out: an idle keep-alive client holds it (about 20 KB) for as long
//! as it is idle, so 10,000 idle clients cost about 250 MB. This app runs pingora's HTTP/1
//! connection loop itself and waits for each request's first byte in a future of a few hundred
//! bytes before starting the proxy's: an idle client costs its socket and buffers (about 5 KB).
//!
//! Only what the proxy listener uses is handled: plain-text HTTP/1 (no TLS, no h2c, pipelining
//! not enabled), exactly as pingora's own loop does it otherwise.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;

/// How long a connection may wait for its next request: pingora's own keep-alive and first-read
/// timeouts (60 s), so parking changes no client-visible limit.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Parked<A> {
    app: Arc<A>,
}

impl<A> Parked<A> {
    pub fn new(app: A) -> Parked<A> {
        Parked { app: Arc::new(app) }
    }
}

/// Waits until the client sends its next request (its first byte stays in the stream). False:
/// closed, or idle past the timeout. During a shutdown pingora decides what an idle connection
/// gets, so it is handed over at once.
async fn next_request(stream: &mut Stream, shutdown: &ShutdownWatch) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    let mut shutting_down = shutdown.clone();
    let mut first = [0u8; 1];
    tokio::select! {
        // `Ok(false)`: peeking unsupported, let the session read.
        peeked = tokio::time::timeout(IDLE_TIMEOUT, stream.try_peek(&mut first)) => matches!(peeked, Ok(Ok(_))),
        _ = shutting_down.changed() => true,
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for Parked<A> {
    async fn process_new(self: &Arc<Self>, mut stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let (mut first, mut settings) = (true, None);
        loop {
            if !next_request(&mut stream, shutdown).await {
                return None;
            }
            let mut session = ServerSession::new_http1(stream);
            if let Some(settings) = settings.take() {
                HttpPersistentSettings::apply_to_session(settings, &mut session);
            } else if first {
                // As pingora's loop: no reuse once a shutdown began, else 60 s keep-alive.
                session.set_keepalive(if *shutdown.borrow() { None } else { Some(60) });
                session
                    .set_keepalive_reuses_remaining(self.app.server_options().and_then(|o| o.keepalive_request_limit));
            }
            first = false;
            let reused = self.app.process_new_http(session, shutdown).await?;
            (stream, settings) = reused.consume();
        }
    }

    async fn cleanup(&self) {
        self.app.http_cleanup().await
    }
}

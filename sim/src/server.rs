//! The HTTP/1.1 server around the API, on a runtime of its own.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::activation::new_transaction_id;
use crate::api::{self, Call, Reply, MAX_REQUEST_BYTES};
use crate::config::{Outage, SimConfig};
use crate::state::{SimState, SimStats};

pub struct Simulator;

/// A running simulator. Dropping it stops the server and joins its thread.
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<SimState>,
    stop: watch::Sender<bool>,
    /// Taken by the first `stop()` (or the drop), which joins it.
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Simulator {
    /// Binds `addr` (port 0 picks a free port) and serves on a new thread until the handle drops.
    pub fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("whisk-sim")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState::new(config));
        let (stop, stopped) = watch::channel(false);
        let served = Arc::clone(&state);
        let thread = std::thread::Builder::new().name(format!("whisk-sim-{}", addr.port())).spawn(move || {
            runtime.block_on(serve(listener, served, stopped));
            // Waits for the workers to drop every connection task (closing its socket); an
            // action still sleeping is dropped with its task.
            runtime.shutdown_timeout(Duration::from_secs(5));
        })?;
        Ok(SimHandle { addr, state, stop, thread: Mutex::new(Some(thread)) })
    }
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    /// Whether a request with this `X-Request-ID` reached this controller (the most recent 20,000
    /// ids are remembered).
    pub fn saw_request_id(&self, id: &str) -> bool {
        self.state.saw_request_id(id)
    }

    /// Takes part of the fleet down (or brings it back with `Outage::None`); see [`Outage`] for
    /// what each flavor then answers.
    pub fn set_outage(&self, outage: Outage) {
        self.state.capacity.set_outage(outage);
    }

    /// Stops serving, as when a controller process dies: returns once the listener is closed
    /// (a connect is refused) and every open connection is dropped. Counters stay readable.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        self.join();
    }

    /// Blocks until the server stops (for the binary).
    pub fn wait(self) {
        self.join();
    }

    fn join(&self) {
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listener: TcpListener, state: Arc<SimState>, mut stopped: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let mut stop_conn = stopped.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, std::convert::Infallible>(respond(state, req).await) }
            });
            let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = stop_conn.changed() => {}
            }
        });
    }
}

async fn respond(state: Arc<SimState>, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    // The controller adopts the caller's id unless it starts with `sid_`.
    let tid = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && !v.starts_with("sid_"))
        .map(str::to_string)
        .unwrap_or_else(new_transaction_id);
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return api::json_reply(
                413,
                &serde_json::json!({"error": "The request content was too large.", "code": tid}),
                &tid,
            )
        }
    };
    let call = Call {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts.headers,
        body,
        tid,
    };
    api::handle(state, call).await
}

//! A controller that misbehaves on demand: a TCP forwarder in front of a real (simulated)
//! controller whose fault can be switched while traffic runs. Faults act on the connections
//! already open too (the proxy pools its upstream connections), as a failing process would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the controller behaves from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwards both ways.
    None,
    /// The process is gone: the listener is closed (connections are refused) and every open
    /// connection is dropped.
    Killed,
    /// Accepts connections and reads requests, never answers.
    Blackhole,
    /// Sends the first half of each answer's first chunk, then resets the connection.
    ResetMidResponse,
    /// Answers everything this much later.
    Slow(Duration),
}

pub struct ChaosController {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    requests: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

impl ChaosController {
    /// Starts forwarding from a free loopback port to `upstream`.
    pub fn start(upstream: SocketAddr) -> ChaosController {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let (fault, watch) = watch::channel(Fault::None);
        let requests = Arc::new(AtomicU64::new(0));
        runtime.spawn(accept_loop(Some(listener), addr, upstream, watch, Arc::clone(&requests)));
        ChaosController { addr, fault, requests, _runtime: runtime }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Invocations (`POST` requests) forwarded so far.
    pub fn invocations(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

async fn accept_loop(
    mut listener: Option<TcpListener>,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut watch: watch::Receiver<Fault>,
    requests: Arc<AtomicU64>,
) {
    loop {
        let Some(l) = listener.as_ref() else {
            // Killed: nothing listens until the fault changes, then the same port is bound again.
            if watch.changed().await.is_err() {
                return;
            }
            if *watch.borrow() != Fault::Killed {
                while listener.is_none() {
                    listener = TcpListener::bind(addr).await.ok();
                    if listener.is_none() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => {
                if let Ok((client, _)) = accepted {
                    tokio::spawn(connection(client, upstream, watch.clone(), Arc::clone(&requests)));
                }
            }
            changed = watch.changed() => {
                if changed.is_err() {
                    return;
                }
                if *watch.borrow() == Fault::Killed {
                    listener = None;
                }
            }
        }
    }
}

async fn connection(client: TcpStream, upstream: SocketAddr, watch: watch::Receiver<Fault>, requests: Arc<AtomicU64>) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut killed = watch.clone();
    tokio::select! {
        _ = requests_to_server(client_read, server_write, watch.clone(), requests) => {}
        _ = answers_to_client(server_read, client_write, watch) => {}
        _ = killed.wait_for(|f| *f == Fault::Killed) => {}
    }
}

async fn requests_to_server(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    watch: watch::Receiver<Fault>,
    requests: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let fault = *watch.borrow();
        match fault {
            Fault::Blackhole => continue,
            Fault::Slow(d) => tokio::time::sleep(d).await,
            _ => {}
        }
        if buf[..n].starts_with(b"POST ") {
            requests.fetch_add(1, Ordering::Relaxed);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn answers_to_client(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, watch: watch::Receiver<Fault>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if *watch.borrow() == Fault::ResetMidResponse {
            let _ = to.write_all(&buf[..n / 2]).await;
            // A zero linger turns the close into a reset.
            let _ = to.as_ref().set_zero_linger();
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

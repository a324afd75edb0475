//! The proxy's listening socket, accepted on by every worker thread.
//!
//! pingora's own listener accepts on one thread and starts each connection on a thread picked at
//! random, while the connection's socket stays registered with the accepting thread's event loop:
//! every readiness event of a connection started elsewhere was handed across threads (an eventfd
//! write and a wake-up, about 0.5 per request with two threads, more with more). Here each worker
//! thread runs its own event loop with its own copy of the one listening socket (a `dup`), accepts
//! on it, and serves what it accepted on that same loop, as nginx's workers do by default: a new
//! connection wakes the idle workers, and one of them takes it. Its controller connections stay on
//! that loop too (`upstream::pool`).
//!
//! The socket is bound before the data plane starts, so a port in use is a startup error at once;
//! on `run --upgrade` it is the one the old process sent (`handover`). It is put in pingora's table
//! of listening sockets under its address, as pingora's own listener put it, so that SIGQUIT hands
//! it to the next process the same way.

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::HttpServerApp;
use pingora::server::{ListenFds, ShutdownWatch};
use tokio::net::TcpListener;

use crate::data::client_stream::ClientStream;
use crate::data::idle::Parked;
use crate::sync::lock;

/// pingora's listen backlog (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 65535;

/// How long a listener waits after a failed `accept`: at the descriptor limit it fails at once,
/// again and again, and would otherwise spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Binds a listening socket as pingora did (`SO_REUSEADDR`, its backlog), closed on exec.
pub fn bind(addr: SocketAddr) -> io::Result<StdTcpListener> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let family = if addr.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
    let socket = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    rustix::net::sockopt::set_socket_reuseaddr(&socket, true)?;
    rustix::net::bind(&socket, &addr)?;
    rustix::net::listen(&socket, BACKLOG)?;
    let listener = StdTcpListener::from(socket);
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Waits after a failed `accept` (see [`ACCEPT_PAUSE`]); `what` names the listener in the log.
pub async fn pause_after_failed_accept(error: &io::Error, what: &'static str) {
    tracing::warn!(error = %error, listener = what, "cannot accept a connection; pausing");
    tokio::time::sleep(ACCEPT_PAUSE).await;
}

/// The one listening socket, shared out to the workers as they start.
pub struct Listening {
    addr: SocketAddr,
    /// The socket, until the last worker to start takes it (the others take copies), and how
    /// many workers took theirs.
    socket: Mutex<(Option<StdTcpListener>, usize)>,
    workers: usize,
    /// Workers accepting.
    started: AtomicUsize,
    read_buffer: usize,
    write_buffer: usize,
}

impl Listening {
    /// `socket` is listening on `addr` (bound, or handed over) and is shared by `workers` workers;
    /// each connection gets buffers of these sizes.
    pub fn new(
        socket: StdTcpListener,
        workers: usize,
        read_buffer: usize,
        write_buffer: usize,
    ) -> io::Result<Arc<Self>> {
        Ok(Arc::new(Listening {
            addr: socket.local_addr()?,
            socket: Mutex::new((Some(socket), 0)),
            workers,
            started: AtomicUsize::new(0),
            read_buffer,
            write_buffer,
        }))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every worker accepts.
    pub fn all_accepting(&self) -> bool {
        self.started.load(Ordering::Acquire) >= self.workers
    }

    /// A worker's own socket: a copy, or the socket itself for the last one, so that the socket
    /// closes once every worker has stopped accepting. True with the socket itself.
    fn take(&self) -> io::Result<(StdTcpListener, bool)> {
        let mut handout = lock(&self.socket);
        let (slot, taken) = &mut *handout;
        let socket = slot.as_ref().ok_or_else(|| io::Error::other("every worker has its socket already"))?;
        let copy = if *taken + 1 >= self.workers { None } else { Some(socket.try_clone()?) };
        *taken += 1;
        Ok(match copy {
            Some(copy) => (copy, false),
            None => (slot.take().expect("checked above"), true),
        })
    }

    /// The name pingora's table knows the socket by: its address, as pingora's listener named it,
    /// so that a handover works between versions.
    fn name(&self) -> String {
        self.addr.to_string()
    }
}

/// A pingora service: one worker's accept loop, on the worker's own runtime (`threads` threads:
/// one, or all of them when work stealing is on, with one worker in all).
pub struct Worker<A> {
    pub listening: Arc<Listening>,
    pub parked: Arc<Parked<A>>,
    pub name: String,
    pub threads: usize,
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> pingora::services::Service for Worker<A> {
    /// Runs on the worker's runtime when pingora starts it, until pingora tells the listeners to
    /// stop. A worker that cannot get its socket panics, as pingora's listener does; the start
    /// reports it.
    async fn start_service(&mut self, fds: Option<ListenFds>, mut shutdown: ShutdownWatch, _: usize) {
        let listening = &self.listening;
        let (socket, original) = listening.take().expect("cannot copy the proxy's listening socket");
        if let (Some(fds), true) = (fds, original) {
            use std::os::fd::AsRawFd;
            fds.lock().add(listening.name(), socket.as_raw_fd());
        }
        let listener = TcpListener::from_std(socket).expect("cannot register the proxy's listening socket");
        listening.started.fetch_add(1, Ordering::AcqRel);
        loop {
            let accepted = tokio::select! {
                biased;
                changed = shutdown.changed() => match changed {
                    Ok(()) if !*shutdown.borrow() => continue,
                    _ => break,
                },
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((socket, peer)) => {
                    // As pingora's listener: an answer written in two pieces (its head, then a
                    // body larger than the write buffer) must not wait for the client's delayed
                    // acknowledgement of the first (Nagle's algorithm, about 40 ms).
                    if let Err(e) = socket.set_nodelay(true) {
                        tracing::debug!(error = %e, "cannot set TCP_NODELAY on a client connection");
                    }
                    let stream = ClientStream::new(socket, peer, listening.read_buffer, listening.write_buffer);
                    self.parked.accept(Box::new(stream), peer.ip(), &shutdown);
                }
                Err(e) => pause_after_failed_accept(&e, "proxy").await,
            }
        }
        drop(listener);
        self.parked.cleanup().await;
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn threads(&self) -> Option<usize> {
        Some(self.threads)
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        Some(vec![self.listening.name()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    /// Each worker accepts on a socket of its own, the last one on the socket itself (the one
    /// pingora's table names, for a handover); a connection waits for whichever worker takes it,
    /// and the port closes only once every worker has let go of its socket.
    #[test]
    fn every_worker_gets_its_own_copy_and_the_port_closes_with_the_last() {
        let socket = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let original = {
            use std::os::fd::AsRawFd;
            socket.as_raw_fd()
        };
        let listening = Listening::new(socket, 3, 512, 512).unwrap();
        let addr = listening.addr();
        let mut taken = Vec::new();
        for worker in 0..3 {
            assert!(!listening.all_accepting());
            let (socket, is_original) = listening.take().unwrap();
            assert_eq!(is_original, worker == 2, "only the last worker takes the socket itself");
            assert_eq!(socket.local_addr().unwrap(), addr);
            listening.started.fetch_add(1, Ordering::AcqRel);
            taken.push(socket);
        }
        assert!(listening.all_accepting());
        assert!(listening.take().is_err(), "a fourth worker gets nothing");
        {
            use std::os::fd::AsRawFd;
            assert_eq!(taken[2].as_raw_fd(), original);
            assert_ne!(taken[0].as_raw_fd(), taken[1].as_raw_fd());
        }
        let client = TcpStream::connect(addr).unwrap();
        let (accepted, peer) = loop {
            if let Some(got) = taken.iter().find_map(|socket| socket.accept().ok()) {
                break got;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(peer, client.local_addr().unwrap());
        drop(accepted);
        taken.truncate(1);
        assert!(TcpStream::connect(addr).is_ok(), "open while a worker still holds a copy");
        drop(taken);
        assert!(TcpStream::connect(addr).is_err(), "closed once every worker let go");
    }
}

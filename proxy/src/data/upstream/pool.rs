//! Idle connections to one controller, kept for the next request: newest first (the likeliest to
//! still be open and warm), each at most the configured idle time, at most [`MAX_IDLE`] of them per
//! list.
//!
//! A connection is only put here when its last answer ended exactly at its framing (see
//! [`super::Lease::release`]). While it idles, hyper's connection task keeps reading it: a byte the
//! controller sends unasked, or its close, ends that task and the connection at once, so a stray
//! answer can never be taken for the next request's.
//!
//! The data plane keeps one list per worker thread. A connection's task runs on the runtime of the
//! thread that opened it (each of pingora's threads runs its own): a request on another thread
//! would wake that runtime to write the request and again to hand the answer back, two system
//! calls and two cross-thread wake-ups per request. Kept per thread, a connection is only ever
//! used where it is driven.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use thread_local::ThreadLocal;

use super::Conn;
use super::Lane;
use crate::sync::lock;

/// One controller as the client sees it: its address and the connections kept to it, per [`Lane`]
/// (the data plane's per worker thread).
pub struct Endpoint {
    pub addr: SocketAddr,
    data: ThreadLocal<IdleConnections>,
    control: IdleConnections,
    /// Out of its pool (its name no longer resolves to it): no connection is kept any more.
    retired: AtomicBool,
}

impl Endpoint {
    pub fn new(addr: SocketAddr) -> Endpoint {
        Endpoint {
            addr,
            data: ThreadLocal::new(),
            control: IdleConnections::default(),
            retired: AtomicBool::new(false),
        }
    }

    /// The idle connections a client of `lane` on this thread takes from and gives back to.
    pub fn idle(&self, lane: Lane) -> &IdleConnections {
        match lane {
            Lane::Data => self.data.get_or_default(),
            Lane::Control => &self.control,
        }
    }

    /// Every list of idle connections, of every lane and thread.
    fn all_idle(&self) -> impl Iterator<Item = &IdleConnections> {
        self.data.iter().chain(std::iter::once(&self.control))
    }

    /// Keeps a connection whose last exchange ended cleanly, unless the endpoint was retired.
    pub fn keep(&self, lane: Lane, conn: Conn, max_idle: Duration) {
        if !self.retired.load(Relaxed) {
            self.idle(lane).put(conn, max_idle);
        }
    }

    /// Takes the endpoint out of service: its idle connections close now, and those of the
    /// requests still in flight close when they end.
    pub fn retire(&self) {
        self.retired.store(true, Relaxed);
        for idle in self.all_idle() {
            idle.close_all();
        }
    }

    /// Closes the connections idle longer than `max_idle` or closed by the controller, in every
    /// list (called by the health loop, so a pool with no traffic does not keep them either).
    pub fn sweep(&self, max_idle: Duration) {
        for idle in self.all_idle() {
            idle.sweep(max_idle);
        }
    }
}

/// The most idle connections kept per controller in one list (the control plane's, or one data
/// plane thread's); past it the oldest is closed.
pub const MAX_IDLE: usize = 256;

#[derive(Default)]
pub struct IdleConnections {
    /// Oldest at the front. The lock is held for a push or a pop only, never across an await.
    conns: Mutex<VecDeque<(Conn, Instant)>>,
}

impl IdleConnections {
    /// The newest idle connection that is still open and younger than `max_idle`; older or
    /// closed ones met on the way are dropped (closed).
    pub fn take(&self, max_idle: Duration) -> Option<Conn> {
        let mut conns = lock(&self.conns);
        while let Some((conn, since)) = conns.pop_back() {
            if since.elapsed() < max_idle && conn.is_open() {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps a connection whose last exchange ended cleanly.
    pub fn put(&self, conn: Conn, max_idle: Duration) {
        let now = Instant::now();
        let mut conns = lock(&self.conns);
        if conns.len() >= MAX_IDLE {
            conns.pop_front();
        }
        // The oldest is the first to outlive the idle time: one check per release keeps the
        // pool from holding connections the controller has long closed.
        if conns.front().is_some_and(|(_, since)| now.duration_since(*since) >= max_idle) {
            conns.pop_front();
        }
        conns.push_back((conn, now));
    }

    fn close_all(&self) {
        lock(&self.conns).clear();
    }

    fn sweep(&self, max_idle: Duration) {
        let mut conns = lock(&self.conns);
        conns.retain(|(conn, since)| since.elapsed() < max_idle && conn.is_open());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Arc;

    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// A data plane connection kept on one worker thread is taken only there (where its task is
    /// driven); a sweep or a retirement from any other thread still reaches it.
    #[test]
    fn each_worker_thread_keeps_its_own_data_connections_and_a_sweep_reaches_them_all() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = Arc::new(Endpoint::new(listener.local_addr().unwrap()));
        let (to_worker, steps) = mpsc::channel::<()>();
        let (to_main, done) = mpsc::channel::<Option<bool>>();
        let worker = {
            let endpoint = Arc::clone(&endpoint);
            std::thread::spawn(move || {
                runtime().block_on(async {
                    let conn = Conn::open(endpoint.addr, Duration::from_secs(5)).await.unwrap();
                    endpoint.keep(Lane::Data, conn, LONG);
                    to_main.send(None).unwrap();
                    // After each step of the main thread: is the connection still here?
                    while steps.recv().is_ok() {
                        let kept = endpoint.idle(Lane::Data).take(LONG);
                        let found = kept.is_some();
                        if let Some(conn) = kept {
                            endpoint.keep(Lane::Data, conn, LONG);
                        }
                        to_main.send(Some(found)).unwrap();
                    }
                })
            })
        };
        assert_eq!(done.recv().unwrap(), None, "kept on the worker");
        let _accepted = listener.accept().unwrap();
        runtime().block_on(async {
            assert!(endpoint.idle(Lane::Data).take(LONG).is_none(), "another thread does not see it");
        });
        to_worker.send(()).unwrap();
        assert_eq!(done.recv().unwrap(), Some(true), "its own thread takes it");
        endpoint.sweep(Duration::ZERO);
        to_worker.send(()).unwrap();
        assert_eq!(done.recv().unwrap(), Some(false), "the sweep from another thread closed it");
        drop(to_worker);
        worker.join().unwrap();
    }
}

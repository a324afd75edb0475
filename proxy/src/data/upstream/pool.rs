//! Idle connections to one controller, kept for the next request: newest first (the likeliest to
//! still be open and warm), each at most the configured idle time, at most [`MAX_IDLE`] of them.
//!
//! A connection is only put here when its last answer ended exactly at its framing (see
//! [`super::Lease::release`]). While it idles, hyper's connection task keeps reading it: a byte the
//! controller sends unasked, or its close, ends that task and the connection at once, so a stray
//! answer can never be taken for the next request's.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Conn;
use super::Lane;
use crate::sync::lock;

/// One controller as the client sees it: its address and the connections kept to it, per [`Lane`].
pub struct Endpoint {
    pub addr: SocketAddr,
    idle: [IdleConnections; 2],
    /// Out of its pool (its name no longer resolves to it): no connection is kept any more.
    retired: AtomicBool,
}

impl Endpoint {
    pub fn new(addr: SocketAddr) -> Endpoint {
        Endpoint { addr, idle: Default::default(), retired: AtomicBool::new(false) }
    }

    pub fn idle(&self, lane: Lane) -> &IdleConnections {
        &self.idle[lane as usize]
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
        for idle in &self.idle {
            idle.close_all();
        }
    }
}

/// The most idle connections kept per controller; past it the oldest is closed.
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

    /// Closes the connections idle longer than `max_idle` or closed by the controller (called by
    /// the health loop, so a pool with no traffic does not keep them either).
    pub fn sweep(&self, max_idle: Duration) {
        let mut conns = lock(&self.conns);
        conns.retain(|(conn, since)| since.elapsed() < max_idle && conn.is_open());
    }
}

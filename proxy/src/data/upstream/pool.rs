//! Idle connections to one controller, kept for the next request: newest first (the likeliest to
//! still be open and warm), each at most the configured idle time, at most [`MAX_IDLE`] of them.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Connection;

/// The most idle connections kept per controller; past it the oldest is closed.
pub const MAX_IDLE: usize = 256;

/// A connection idle this long is probed before use (one non-blocking read); a younger one is
/// taken as it is: one the controller closed in the meantime fails before any answer byte, and
/// the request goes again on a fresh connection (see `service::forward`).
const PROBE_AFTER: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct IdleConnections {
    /// Oldest at the front. The lock is held for a push or a pop only, never across an await.
    conns: Mutex<VecDeque<(Connection, Instant)>>,
}

impl IdleConnections {
    /// The newest idle connection that is still quiet and younger than `max_idle`; older or
    /// closed ones met on the way are dropped (closed). `probe`: check even a young one (for a
    /// request that could not be sent again).
    pub fn take(&self, max_idle: Duration, probe: bool) -> Option<Connection> {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((conn, since)) = conns.pop_back() {
            let idle = since.elapsed();
            if idle < max_idle && ((idle < PROBE_AFTER && !probe) || conn.is_quiet()) {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps a connection whose last answer was read whole.
    pub fn put(&self, mut conn: Connection, max_idle: Duration) {
        conn.finish_exchange();
        let now = Instant::now();
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
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

    /// Closes the connections idle longer than `max_idle` (called by the health loop, so a pool
    /// with no traffic does not keep them either).
    pub fn sweep(&self, max_idle: Duration) {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.retain(|(conn, since)| since.elapsed() < max_idle && conn.is_quiet());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::upstream::Limits;

    const LIMITS: Limits =
        Limits { connect: Duration::from_secs(1), read: Duration::from_secs(1), write: Duration::from_secs(1) };

    #[tokio::test]
    async fn the_newest_open_connection_is_taken_and_closed_or_old_ones_are_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pool = IdleConnections::default();
        let mut peers = Vec::new();
        for _ in 0..3 {
            let conn = Connection::open(addr, &LIMITS).await.unwrap();
            peers.push(listener.accept().await.unwrap().0);
            pool.put(conn, Duration::from_secs(60));
        }
        // The newest first; the one whose peer closed is found out by the probe and dropped.
        drop(peers.pop());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(pool.take(Duration::from_secs(60), true).is_some());
        assert!(pool.take(Duration::from_secs(60), true).is_some());
        assert!(pool.take(Duration::from_secs(60), true).is_none(), "the closed one was handed out");
        // Past the idle time none is handed out.
        pool.put(Connection::open(addr, &LIMITS).await.unwrap(), Duration::from_secs(60));
        let _peer = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(pool.take(Duration::from_millis(10), false).is_none());
    }
}

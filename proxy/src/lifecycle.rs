//! The process's life: whether it is draining (readiness turns 503 at once on a stop), and the
//! requests in flight that a stop waits for.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// How an instance is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Not asked.
    Running,
    /// SIGTERM or SIGINT: serve through the grace period, close the listeners, drain.
    Terminate,
    /// SIGQUIT: hand the listening sockets to a new process started with `--upgrade`, then drain.
    Upgrade,
}

#[derive(Default)]
pub struct Lifecycle {
    /// pingora's main loop runs: it is what hears a stop.
    started: AtomicBool,
    draining: AtomicBool,
    /// pingora told its listeners to stop accepting (after the grace period or the handover).
    listeners_closed: AtomicBool,
    in_flight: AtomicUsize,
}

impl Lifecycle {
    pub fn start(&self) {
        self.started.store(true, Relaxed);
    }

    pub fn is_started(&self) -> bool {
        self.started.load(Relaxed)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    pub fn close_listeners(&self) {
        self.listeners_closed.store(true, Relaxed);
    }

    pub fn listeners_closed(&self) -> bool {
        self.listeners_closed.load(Relaxed)
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(Arc::clone(self))
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Relaxed)
    }
}

/// One request in flight (see [`Lifecycle::request`]).
pub struct InFlight(Arc<Lifecycle>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

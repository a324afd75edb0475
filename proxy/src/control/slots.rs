//! Connection slots for the admin listener: at most a fixed number of connections, and a new
//! client takes the slot of the oldest connection that is not serving a request (idle between
//! requests, or still sending its header). So slow or idle clients can hold every slot only until
//! someone else connects: a Prometheus scrape or an operator's `curl` always gets in, unless every
//! slot is busy answering. And calls that change something (`PUT`, `POST`) may keep at most all
//! but [`RESERVED_FOR_READS`] slots busy: slow authorised writes cannot shut out the scrapes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// Slots that calls that change something can never all take: kept for reads (scrapes, health).
pub const RESERVED_FOR_READS: usize = 8;

pub struct Slots {
    max: usize,
    next_id: AtomicU64,
    /// Calls that change something being served now.
    writing: AtomicUsize,
    /// Open connections, oldest first.
    open: Mutex<VecDeque<(u64, Arc<Conn>)>>,
}

/// One connection's state, shared between its task and the slots.
#[derive(Default)]
pub struct Conn {
    busy: AtomicBool,
    evict: Notify,
}

/// A held slot: released when dropped.
pub struct Slot {
    id: u64,
    pub conn: Arc<Conn>,
    slots: Arc<Slots>,
}

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max,
            next_id: AtomicU64::new(0),
            writing: AtomicUsize::new(0),
            open: Mutex::new(VecDeque::new()),
        })
    }

    /// Leave to serve a call that changes something; `None` when all but [`RESERVED_FOR_READS`]
    /// slots are already busy with such calls (the call is then refused at once).
    pub fn write_permit(self: &Arc<Slots>) -> Option<WritePermit> {
        let limit = self.max.saturating_sub(RESERVED_FOR_READS).max(1);
        self.writing.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1)).ok()?;
        Some(WritePermit(Arc::clone(self)))
    }

    /// A slot for a new connection, evicting the oldest one not serving a request when all are
    /// taken; `None` when every slot is busy answering (the new connection is then closed).
    pub fn admit(self: &Arc<Slots>) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() >= self.max {
            let idle = open.iter().position(|(_, c)| !c.busy.load(Ordering::Relaxed))?;
            let (_, evicted) = open.remove(idle)?;
            // A permit is kept if the task is not waiting yet, so the eviction is never missed.
            evicted.evict.notify_one();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::default());
        open.push_back((id, Arc::clone(&conn)));
        Some(Slot { id, conn, slots: Arc::clone(self) })
    }

    fn release(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = open.iter().position(|(x, _)| *x == id) {
            open.remove(i);
        }
    }
}

impl Conn {
    /// Marks the connection as serving a request until the guard drops.
    pub fn serving(self: &Arc<Conn>) -> Serving {
        self.busy.store(true, Ordering::Relaxed);
        Serving(Arc::clone(self))
    }

    /// Resolves when a newer client took this connection's slot.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }
}

pub struct Serving(Arc<Conn>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Relaxed);
    }
}

/// A call that changes something, counted until dropped.
pub struct WritePermit(Arc<Slots>);

impl Drop for WritePermit {
    fn drop(&mut self) {
        self.0.writing.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.release(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_client_evicts_the_oldest_idle_connection_never_a_busy_one() {
        let slots = Slots::new(2);
        let (first, second) = (slots.admit().unwrap(), slots.admit().unwrap());
        let busy = first.conn.serving();
        let third = slots.admit().expect("the idle second connection makes room");
        assert!(futures::FutureExt::now_or_never(second.conn.evicted()).is_some(), "the second was evicted");
        assert!(futures::FutureExt::now_or_never(first.conn.evicted()).is_none(), "the busy first stays");
        drop(second);
        let _both_busy = third.conn.serving();
        assert!(slots.admit().is_none(), "every slot busy: the newcomer is refused");
        drop(busy);
        assert!(slots.admit().is_some(), "the first is idle again");
    }

    #[test]
    fn writes_never_take_the_slots_kept_for_reads() {
        let slots = Slots::new(10);
        let held: Vec<WritePermit> = (0..10 - RESERVED_FOR_READS).map(|_| slots.write_permit().unwrap()).collect();
        assert!(slots.write_permit().is_none(), "a write past the share was let in");
        drop(held);
        assert!(slots.write_permit().is_some());
    }
}

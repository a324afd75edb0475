//! Who may run now: each flavor's throttles, and the scheduler's per-action queues.
//!
//! Legacy (`entitlement/Entitlement.scala`, `ActivationThrottler`, `RateThrottler`): a controller
//! counts a namespace's calls in flight and per minute by itself, against its share of the limits;
//! a call over either is refused with 429 before it goes anywhere.
//!
//! Scheduler (`entitlement/FPCEntitlement.scala`, `scheduler/queue/MemoryQueue.scala`): the limit
//! is on containers, not calls. A call waits in its action's queue for a container; an action whose
//! queue is full is throttled (429 "Too many requests"); a call for an action that has no container
//! while the namespace has used up its containers is dropped with a 502 record (`action developer
//! error`, "Too many concurrent requests in flight."); a call that waits longer than the retention
//! time fails with a 500 record. Per-action `instances` caps one action's containers. Containers are
//! modelled as busy or free (one activation each), not kept warm.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::activation::{Outcome, THROTTLE_DROP_MESSAGE};
use crate::config::{Flavor, Outage, SimConfig};
use crate::sync::lock;

/// Why a call was refused by the controller (answered at once with this status and message).
pub(crate) struct Refused {
    pub status: u16,
    pub message: String,
}

impl Refused {
    fn new(status: u16, message: impl Into<String>) -> Refused {
        Refused { status, message: message.into() }
    }
}

/// Why a queued activation never ran: the system writes its record.
pub(crate) struct Dropped {
    pub outcome: Outcome,
    pub message: String,
}

/// Busy containers of the scheduler path.
#[derive(Default)]
pub(crate) struct Containers {
    by_namespace: HashMap<String, u32>,
    by_action: HashMap<String, u32>,
    queued: HashMap<String, usize>,
}

/// What limits a controller's calls, and what is down.
#[derive(Default)]
pub(crate) struct Capacity {
    containers: Mutex<Containers>,
    /// Woken whenever a container is released.
    freed: Notify,
    /// Legacy: calls in flight by namespace.
    in_flight: Mutex<HashMap<String, u32>>,
    /// Calls admitted in the last minute, by namespace.
    minute_window: Mutex<HashMap<String, VecDeque<Instant>>>,
    outage: Mutex<Outage>,
}

/// A call's hold on capacity (a legacy in-flight count, or a scheduler container), given back on drop.
pub(crate) struct Slot {
    capacity: Arc<Capacity>,
    namespace: String,
    /// Set for a scheduler container.
    action: Option<String>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let capacity = &self.capacity;
        match &self.action {
            None => {
                if let Some(n) = lock(&capacity.in_flight).get_mut(&self.namespace) {
                    *n = n.saturating_sub(1);
                }
            }
            Some(action) => {
                let mut c = lock(&capacity.containers);
                if let Some(n) = c.by_namespace.get_mut(&self.namespace) {
                    *n = n.saturating_sub(1);
                }
                if let Some(n) = c.by_action.get_mut(action) {
                    *n = n.saturating_sub(1);
                }
                drop(c);
                capacity.freed.notify_waiters();
            }
        }
    }
}

impl Capacity {
    pub fn outage(&self) -> Outage {
        *lock(&self.outage)
    }

    pub fn set_outage(&self, outage: Outage) {
        *lock(&self.outage) = outage;
    }

    /// Counts an invocation against the namespace's per-minute window. `Err((count, allowed))`
    /// when it is over the limit (the call is then not counted).
    pub fn admit_per_minute(&self, config: &SimConfig, namespace: &str) -> Result<(), (usize, u32)> {
        let allowed = config.own_limit(config.invocations_per_minute);
        if allowed == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut windows = lock(&self.minute_window);
        let window = windows.entry(namespace.to_string()).or_default();
        while window.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60)) {
            window.pop_front();
        }
        if window.len() >= allowed as usize {
            return Err((window.len(), allowed));
        }
        window.push_back(now);
        Ok(())
    }

    /// The controller's checks before it hands a call on. Legacy takes an in-flight slot here.
    pub(crate) fn admit(
        self: &Arc<Capacity>,
        config: &SimConfig,
        namespace: &str,
        action: &str,
    ) -> Result<Option<Slot>, Refused> {
        if let Err((count, allowed)) = self.admit_per_minute(config, namespace) {
            return Err(Refused::new(
                429,
                format!("Too many requests in the last minute (count: {count}, allowed: {allowed})."),
            ));
        }
        let outage = self.outage();
        match config.flavor {
            Flavor::Legacy => {
                let allowed = config.own_limit(config.concurrent_invocations);
                let mut in_flight = lock(&self.in_flight);
                let n = in_flight.entry(namespace.to_string()).or_insert(0);
                if allowed > 0 && *n >= allowed {
                    return Err(Refused::new(
                        429,
                        format!("Too many concurrent requests in flight (count: {n}, allowed: {allowed})."),
                    ));
                }
                if outage != Outage::None {
                    return Err(Refused::new(503, crate::config::UNAVAILABLE_MESSAGE));
                }
                *n += 1;
                Ok(Some(Slot { capacity: Arc::clone(self), namespace: namespace.to_string(), action: None }))
            }
            Flavor::Scheduler => {
                if outage == Outage::Unreachable {
                    return Err(Refused::new(503, crate::config::UNAVAILABLE_MESSAGE));
                }
                let queued = lock(&self.containers).queued.get(action).copied().unwrap_or(0);
                if queued >= config.queue_retention_size {
                    return Err(Refused::new(429, "Too many requests"));
                }
                Ok(None)
            }
        }
    }

    /// Scheduler: waits in the action's queue for a container.
    pub(crate) async fn container(
        self: &Arc<Capacity>,
        config: &SimConfig,
        namespace: &str,
        action: &str,
        instances: Option<u32>,
    ) -> Result<(Slot, Duration), Dropped> {
        let began = Instant::now();
        let retention = Duration::from_millis(config.queue_retention_ms);
        let ns_limit = config.concurrent_invocations;
        let mut queued = false;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            {
                let mut c = lock(&self.containers);
                let ns_busy = c.by_namespace.get(namespace).copied().unwrap_or(0);
                let action_busy = c.by_action.get(action).copied().unwrap_or(0);
                let ns_full = ns_limit > 0 && ns_busy >= ns_limit;
                let action_full = instances.is_some_and(|i| action_busy >= i);
                let invokers = self.outage() != Outage::NoInvokers;
                if invokers && !ns_full && !action_full {
                    if queued {
                        dequeue(&mut c, action);
                    }
                    *c.by_namespace.entry(namespace.to_string()).or_insert(0) += 1;
                    *c.by_action.entry(action.to_string()).or_insert(0) += 1;
                    let slot = Slot {
                        capacity: Arc::clone(self),
                        namespace: namespace.to_string(),
                        action: Some(action.to_string()),
                    };
                    return Ok((slot, began.elapsed()));
                }
                if invokers && ns_full && action_busy == 0 {
                    if queued {
                        dequeue(&mut c, action);
                    }
                    return Err(Dropped {
                        outcome: Outcome::DeveloperError,
                        message: THROTTLE_DROP_MESSAGE.to_string(),
                    });
                }
                if !queued {
                    *c.queued.entry(action.to_string()).or_insert(0) += 1;
                    queued = true;
                }
                freed.as_mut().enable();
            }
            let left = retention.saturating_sub(began.elapsed());
            // A container may come free, or an outage may end (polled: it has no event of its own).
            let tick = left.min(Duration::from_millis(100));
            if left.is_zero() || tokio::time::timeout(tick, freed).await.is_err() && began.elapsed() >= retention {
                dequeue(&mut lock(&self.containers), action);
                return Err(Dropped {
                    outcome: Outcome::WhiskError,
                    message: format!("Activation processing is not initiated for {} ms", config.queue_retention_ms),
                });
            }
        }
    }
}

fn dequeue(c: &mut Containers, action: &str) {
    if let Some(n) = c.queued.get_mut(action) {
        *n = n.saturating_sub(1);
    }
}

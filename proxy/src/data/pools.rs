//! The two controller pools: members, round robin over the healthy ones, and active health checks
//! on `GET /ping` (passive marking on connect failures too).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use switchyard_rules::Pool;

use crate::data::upstream::{self, Client, Endpoint};
use crate::ops::config::HealthConfig;
use crate::ops::metrics::Metrics;

/// The largest `/ping` answer read (a controller answers `pong`).
const PING_ANSWER: usize = 4 * 1024;

pub struct Member {
    /// Its address and the connections kept to it.
    pub endpoint: Endpoint,
    healthy: AtomicBool,
    failures: AtomicU32,
    successes: AtomicU32,
}

impl Member {
    fn new(addr: SocketAddr) -> Member {
        // Optimistic until the first check, which runs before the proxy accepts traffic.
        Member {
            endpoint: Endpoint::new(addr),
            healthy: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            successes: AtomicU32::new(0),
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records one health observation; returns true when the member's state flipped.
    fn observe(&self, ok: bool, health: &HealthConfig) -> bool {
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            let n = self.successes.fetch_add(1, Ordering::Relaxed) + 1;
            n >= health.healthy_after && !self.healthy.swap(true, Ordering::Relaxed)
        } else {
            self.successes.store(0, Ordering::Relaxed);
            let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            n >= health.unhealthy_after && self.healthy.swap(false, Ordering::Relaxed)
        }
    }

    /// A request failed on this member after its connection opened (reset, closed or timed out
    /// before the whole answer): counts like a failed health check, so a controller failing its
    /// live traffic leaves rotation without waiting for two checks. Returns true when it did.
    pub fn answer_failed(&self, health: &HealthConfig) -> bool {
        self.observe(false, health)
    }

    /// A connection to this member was refused or timed out: take it out of rotation now rather
    /// than at the next health check.
    pub fn mark_unreachable(&self) {
        self.successes.store(0, Ordering::Relaxed);
        self.healthy.store(false, Ordering::Relaxed);
    }
}

pub struct PoolMembers {
    pub pool: Pool,
    pub members: Vec<Member>,
    next: AtomicUsize,
}

impl PoolMembers {
    pub fn new(pool: Pool, addrs: &[SocketAddr]) -> PoolMembers {
        PoolMembers { pool, members: addrs.iter().copied().map(Member::new).collect(), next: AtomicUsize::new(0) }
    }

    pub fn healthy_count(&self) -> usize {
        self.members.iter().filter(|m| m.is_healthy()).count()
    }

    /// Round robin over healthy members; `None` when none is healthy.
    pub fn pick_healthy(&self) -> Option<&Member> {
        let n = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| &self.members[(start + i) % n]).find(|m| m.is_healthy())
    }

    /// Round robin over all members, for when health says nothing is up (it may be stale).
    pub fn pick_any(&self) -> &Member {
        &self.members[self.next.fetch_add(1, Ordering::Relaxed) % self.members.len()]
    }

    pub fn member(&self, addr: SocketAddr) -> Option<&Member> {
        self.members.iter().find(|m| m.endpoint.addr == addr)
    }
}

/// Both pools, indexed by [`Pool::index`].
pub struct Pools {
    pools: [PoolMembers; 2],
    pub health: HealthConfig,
}

impl Pools {
    pub fn new(legacy: &[SocketAddr], scheduler: &[SocketAddr], health: HealthConfig) -> Pools {
        Pools { pools: [PoolMembers::new(Pool::Legacy, legacy), PoolMembers::new(Pool::Scheduler, scheduler)], health }
    }

    pub fn get(&self, pool: Pool) -> &PoolMembers {
        &self.pools[pool.index()]
    }

    pub fn all(&self) -> &[PoolMembers; 2] {
        &self.pools
    }
}

/// Checks every member once, concurrently; updates health and the pool gauges.
pub async fn check_all(pools: &Pools, client: &Client, metrics: &Metrics) {
    let health = &pools.health;
    let timeout = Duration::from_millis(health.timeout_ms);
    let checks = pools.all().iter().flat_map(|p| p.members.iter().map(move |m| (p.pool, m))).map(|(pool, m)| async move {
        let ok = match client.exchange(&m.endpoint, upstream::get("/ping"), PING_ANSWER, timeout).await {
            Ok((head, body)) => head.status.is_success() && body.is_some(),
            Err(_) => false,
        };
        if m.observe(ok, health) {
            if ok {
                tracing::info!(pool = %pool, member = %m.endpoint.addr, "controller is healthy again");
            } else {
                tracing::warn!(pool = %pool, member = %m.endpoint.addr, "controller failed its health check; out of rotation");
            }
        }
    });
    futures::future::join_all(checks).await;
    for p in pools.all() {
        metrics.pool_health(p.pool, p.members.len(), p.healthy_count());
    }
}

//! The two controller pools: members, round robin over the healthy ones, and active health checks
//! on `GET /ping` (passive marking on connect failures too). A member given as a name stands for
//! the addresses it resolves to; `data::dns` changes them as the answer changes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use switchyard_rules::Pool;

use crate::data::upstream::{self, Client, Endpoint};
use crate::ops::config::{HealthConfig, Target};
use crate::ops::metrics::Metrics;

/// The largest `/ping` answer read (a controller answers `pong`).
const PING_ANSWER: usize = 4 * 1024;

pub struct Member {
    /// Its address and the connections kept to it (shared with the requests in flight to it).
    pub endpoint: Arc<Endpoint>,
    healthy: AtomicBool,
    failures: AtomicU32,
    successes: AtomicU32,
}

impl Member {
    /// A member known at start: optimistic until the first check, which runs before the proxy
    /// accepts traffic.
    fn new(addr: SocketAddr) -> Member {
        Member {
            endpoint: Arc::new(Endpoint::new(addr)),
            healthy: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            successes: AtomicU32::new(0),
        }
    }

    /// A member that appeared while serving (its name resolved to a new address): out of
    /// rotation until a health check passes. One is enough: the name vouches for it.
    fn unproven(addr: SocketAddr, health: &HealthConfig) -> Member {
        let member = Member::new(addr);
        member.healthy.store(false, Ordering::Relaxed);
        member.successes.store(health.healthy_after.saturating_sub(1), Ordering::Relaxed);
        member
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

/// The members of one pool now.
pub type Members = Arc<Vec<Arc<Member>>>;

pub struct PoolMembers {
    pub pool: Pool,
    /// The members as configured: addresses, and names that stand for what they resolve to.
    pub targets: Vec<Target>,
    /// Swapped whole when a name's addresses change; a request works on the set it loaded.
    members: ArcSwap<Vec<Arc<Member>>>,
    next: AtomicUsize,
}

impl PoolMembers {
    /// The addresses given as such are members at once; names add theirs once resolved.
    pub fn new(pool: Pool, targets: &[Target]) -> PoolMembers {
        let members = targets
            .iter()
            .filter_map(|t| match t {
                Target::Addr(a) => Some(Arc::new(Member::new(*a))),
                Target::Name { .. } => None,
            })
            .collect();
        PoolMembers {
            pool,
            targets: targets.to_vec(),
            members: ArcSwap::from_pointee(members),
            next: AtomicUsize::new(0),
        }
    }

    pub fn members(&self) -> Members {
        self.members.load_full()
    }

    pub fn len(&self) -> usize {
        self.members.load().len()
    }

    pub fn healthy_count(&self) -> usize {
        self.members.load().iter().filter(|m| m.is_healthy()).count()
    }

    /// Round robin over healthy members; `None` when none is healthy.
    pub fn pick_healthy(&self) -> Option<Arc<Member>> {
        let members = self.members.load();
        let n = members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| &members[(start + i) % n]).find(|m| m.is_healthy()).cloned()
    }

    /// Round robin over all members, for when health says nothing is up (it may be stale);
    /// `None` when the pool has no member at all (its names resolved to nothing yet).
    pub fn pick_any(&self) -> Option<Arc<Member>> {
        let members = self.members.load();
        (!members.is_empty()).then(|| Arc::clone(&members[self.next.fetch_add(1, Ordering::Relaxed) % members.len()]))
    }

    pub fn member(&self, addr: SocketAddr) -> Option<Arc<Member>> {
        self.members.load().iter().find(|m| m.endpoint.addr == addr).cloned()
    }

    /// Makes `addrs` the members: one still there keeps its health and its connections, a new one
    /// waits for a passing health check ([`Member::unproven`]), one gone takes no new request and
    /// its connections close (requests in flight to it finish). Returns the new members.
    pub fn set_addresses(&self, addrs: &[SocketAddr], health: &HealthConfig) -> Vec<Arc<Member>> {
        let old = self.members.load_full();
        let mut added = Vec::new();
        let members: Vec<Arc<Member>> = addrs
            .iter()
            .map(|a| match old.iter().find(|m| m.endpoint.addr == *a) {
                Some(m) => Arc::clone(m),
                None => {
                    let m = Arc::new(Member::unproven(*a, health));
                    added.push(Arc::clone(&m));
                    m
                }
            })
            .collect();
        self.members.store(Arc::new(members));
        for gone in old.iter().filter(|m| !addrs.contains(&m.endpoint.addr)) {
            gone.endpoint.retire();
        }
        added
    }
}

/// Both pools, indexed by [`Pool::index`].
pub struct Pools {
    pools: [PoolMembers; 2],
    pub health: HealthConfig,
}

impl Pools {
    pub fn new(members: &[Vec<Target>; 2], health: HealthConfig) -> Pools {
        let [legacy, scheduler] = members;
        Pools { pools: [PoolMembers::new(Pool::Legacy, legacy), PoolMembers::new(Pool::Scheduler, scheduler)], health }
    }

    pub fn get(&self, pool: Pool) -> &PoolMembers {
        &self.pools[pool.index()]
    }

    pub fn all(&self) -> &[PoolMembers; 2] {
        &self.pools
    }

    /// Members of both pools now.
    pub fn len(&self) -> usize {
        self.pools.iter().map(PoolMembers::len).sum()
    }
}

/// Checks `member` once; updates its health.
async fn check(pool: Pool, member: &Member, client: &Client, health: &HealthConfig) {
    let timeout = Duration::from_millis(health.timeout_ms);
    let ok = match client.exchange(&member.endpoint, upstream::get("/ping"), PING_ANSWER, timeout).await {
        Ok((head, body)) => head.status.is_success() && body.is_some(),
        Err(_) => false,
    };
    if member.observe(ok, health) {
        if ok {
            tracing::info!(pool = %pool, member = %member.endpoint.addr, "controller is healthy");
        } else {
            tracing::warn!(pool = %pool, member = %member.endpoint.addr, "controller failed its health check; out of rotation");
        }
    }
}

/// Checks `members` of `pool` once, concurrently (the new members of a name, at once).
pub async fn check_members(pools: &Pools, pool: Pool, members: &[Arc<Member>], client: &Client, metrics: &Metrics) {
    futures::future::join_all(members.iter().map(|m| check(pool, m, client, &pools.health))).await;
    let p = pools.get(pool);
    metrics.pool_health(pool, p.len(), p.healthy_count());
}

/// Checks every member once, concurrently; updates health and the pool gauges.
pub async fn check_all(pools: &Pools, client: &Client, metrics: &Metrics) {
    let snapshot: Vec<(Pool, Members)> = pools.all().iter().map(|p| (p.pool, p.members())).collect();
    let checks = snapshot.iter().flat_map(|(pool, members)| members.iter().map(move |m| (*pool, m)));
    futures::future::join_all(checks.map(|(pool, m)| check(pool, m, client, &pools.health))).await;
    for p in pools.all() {
        metrics.pool_health(p.pool, p.len(), p.healthy_count());
    }
}

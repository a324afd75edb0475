//! Pool members given as names. Each name stands for every address it resolves to (A and AAAA):
//! resolved before the proxy serves, then again every `dns.refresh_s`, sooner when an answer's TTL
//! ends first. A name that fails to resolve, or answers with no address, keeps the addresses it
//! had: a pool never empties because DNS blinked. New addresses take traffic once a health check
//! passes; addresses gone take no new request (see [`PoolMembers::set_addresses`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, TokioResolver};
use strum::IntoEnumIterator;
use switchyard_rules::Pool;

use crate::data::pools::{self, Member, PoolMembers, Pools};
use crate::data::upstream::Client;
use crate::ops::config::{Dns, Target};
use crate::ops::metrics::{Counters, Metrics, DNS_RESOLUTIONS};

/// The soonest a name is resolved again, whatever its TTL says.
const MIN_REFRESH: Duration = Duration::from_secs(1);

/// How resolving one name went (the `result` label of `switchyard_dns_resolutions_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Resolution {
    /// One address or more.
    Ok,
    /// No address (no such name, or no A or AAAA record): the last known addresses stay.
    Empty,
    /// No answer (timeout, refused, unreachable server): the last known addresses stay.
    Failed,
}

/// Resolves the pools' names and keeps their members in step with the answers.
pub struct Follower {
    resolver: TokioResolver,
    refresh: Duration,
    /// The last addresses each name resolved to, per pool.
    known: [HashMap<(String, u16), Vec<SocketAddr>>; 2],
    results: Vec<Counters<Resolution>>,
}

impl Follower {
    /// `None` when no member is given as a name (nothing to follow).
    pub fn new(dns: &Dns, pools: &Pools, metrics: &Metrics) -> Result<Option<Follower>, ResolveError> {
        let named = pools.all().iter().flat_map(|p| &p.targets).any(|t| matches!(t, Target::Name { .. }));
        if !named {
            return Ok(None);
        }
        let mut builder = if dns.nameservers.is_empty() {
            TokioResolver::builder_tokio()?
        } else {
            let mut config = ResolverConfig::new();
            for ns in &dns.nameservers {
                config.add_name_server(NameServerConfig::new(*ns, Protocol::Udp));
                // For answers too large for one datagram.
                config.add_name_server(NameServerConfig::new(*ns, Protocol::Tcp));
            }
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        };
        let opts = builder.options_mut();
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.timeout = dns.timeout;
        // The resolver's cache never holds an answer past the next refresh.
        opts.positive_max_ttl = Some(dns.refresh);
        opts.negative_max_ttl = Some(dns.refresh);
        let results =
            Pool::iter().map(|p| Counters::new(metrics, DNS_RESOLUTIONS, &[("pool", p.as_str())], "result")).collect();
        Ok(Some(Follower { resolver: builder.build(), refresh: dns.refresh, known: Default::default(), results }))
    }

    /// Resolves every name once and updates the pools. Returns when to resolve again and the
    /// members that appeared (to be health-checked before they take traffic).
    pub async fn refresh(&mut self, pools: &Pools) -> (Duration, Vec<(Pool, Vec<Arc<Member>>)>) {
        let mut next = self.refresh;
        let mut added = Vec::new();
        for p in pools.all() {
            for target in &p.targets {
                let Target::Name { host, port } = target else { continue };
                let (result, valid_for) = self.resolve(p.pool, host, *port).await;
                self.results[p.pool.index()].count(result);
                next = next.min(valid_for.unwrap_or(self.refresh));
            }
            let new = self.update(p, &pools.health);
            if !new.is_empty() {
                added.push((p.pool, new));
            }
        }
        (next.max(MIN_REFRESH), added)
    }

    /// Resolves one name; remembers its addresses when there are any.
    async fn resolve(&mut self, pool: Pool, host: &str, port: u16) -> (Resolution, Option<Duration>) {
        let known = &mut self.known[pool.index()];
        match self.resolver.lookup_ip(host).await {
            Ok(lookup) => {
                let valid_for = lookup.valid_until().saturating_duration_since(Instant::now());
                let mut addrs: Vec<SocketAddr> = lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect();
                addrs.sort_unstable();
                addrs.dedup();
                if addrs.is_empty() {
                    return (Resolution::Empty, None);
                }
                known.insert((host.to_string(), port), addrs);
                (Resolution::Ok, Some(valid_for))
            }
            Err(e) => {
                let result = if e.is_no_records_found() { Resolution::Empty } else { Resolution::Failed };
                let kept = known.get(&(host.to_string(), port)).map_or(0, Vec::len);
                tracing::warn!(pool = %pool, name = host, error = %e, kept_addresses = kept, "a controller name did not resolve; keeping its last addresses");
                (result, None)
            }
        }
    }

    /// Sets the pool's members to its addresses and its names' last answers, when they changed.
    fn update(&self, p: &PoolMembers, health: &crate::ops::config::HealthConfig) -> Vec<Arc<Member>> {
        let known = &self.known[p.pool.index()];
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for target in &p.targets {
            let these = match target {
                Target::Addr(a) => std::slice::from_ref(a),
                Target::Name { host, port } => known.get(&(host.clone(), *port)).map_or(&[][..], Vec::as_slice),
            };
            for a in these {
                if !addrs.contains(a) {
                    addrs.push(*a);
                }
            }
        }
        let now: Vec<SocketAddr> = p.members().iter().map(|m| m.endpoint.addr).collect();
        let same = now.len() == addrs.len() && now.iter().all(|a| addrs.contains(a));
        if same {
            return Vec::new();
        }
        let (gone, new): (Vec<_>, Vec<_>) = (
            now.iter().filter(|a| !addrs.contains(a)).map(ToString::to_string).collect(),
            addrs.iter().filter(|a| !now.contains(a)).map(ToString::to_string).collect(),
        );
        tracing::info!(pool = %p.pool, added = ?new, removed = ?gone, "pool members changed with DNS");
        p.set_addresses(&addrs, health)
    }
}

/// Follows the names for as long as the proxy runs: resolves them again when due, and checks the
/// health of each member that appeared at once (it takes traffic when the check passes).
pub async fn follow(
    mut follower: Follower,
    first_wait: Duration,
    pools: Arc<Pools>,
    client: Client,
    metrics: Arc<Metrics>,
) {
    let mut wait = first_wait;
    loop {
        tokio::time::sleep(wait).await;
        let (next, added) = follower.refresh(&pools).await;
        for (pool, members) in added {
            pools::check_members(&pools, pool, &members, &client, &metrics).await;
        }
        wait = next;
    }
}

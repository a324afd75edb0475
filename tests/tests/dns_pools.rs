//! Pools that follow names: the legacy pool is one name, answered by a DNS server on loopback,
//! standing for two controllers on the same port, one on 127.0.0.1 (an A record) and one on ::1
//! (AAAA). What the proxy promises: every address of a name is a member; an address added takes
//! traffic after one passing health check, one removed takes no new request, with no failed
//! request under load; a DNS server that goes quiet or answers empty changes nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::dns::{Answering, LocalDns};
use switchyard_tests::*;
use whisk_sim::{Flavor, RequestKind, SimConfig, SimHandle, Simulator};

const NAME: &str = "controllers.switchyard.test";
const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
/// Every invocation to legacy: the pool the name stands for.
const ALL_LEGACY: &str = "version = \"dns\"\nscheduler_share = 0\n";

/// Two legacy controllers on one port, at 127.0.0.1 and ::1.
fn controllers_on_one_port() -> (SimHandle, SimHandle) {
    for _ in 0..20 {
        let v4 = Simulator::start(SimConfig::with_flavor(Flavor::Legacy), "127.0.0.1:0".parse().unwrap()).unwrap();
        let port = v4.addr().port();
        if let Ok(v6) = Simulator::start(SimConfig::with_flavor(Flavor::Legacy), SocketAddr::new(V6, port)) {
            return (v4, v6);
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1");
}

/// Two controllers, a DNS server answering `NAME` with `addrs`, and a switchyard with `rules`
/// whose legacy pool is that name. Dropped in reverse: the proxy first.
fn named_pool(addrs: &[IpAddr], rules: &str) -> (SimHandle, SimHandle, LocalDns, LocalFleet) {
    let (v4, v6) = controllers_on_one_port();
    let dns = LocalDns::start();
    dns.set(NAME, addrs);
    let fleet = fleet_with(&dns, v4.addr().port(), rules);
    (v4, v6, dns, fleet)
}

fn fleet_with(dns: &LocalDns, port: u16, rules: &str) -> LocalFleet {
    let (nameserver, member) = (dns.addr().to_string(), format!("{NAME}:{port}"));
    let mut spec = FleetSpec::new(rules);
    spec.tweak = Some(Box::new(move |c| {
        c.pools.legacy.members = vec![member];
        c.dns.nameservers = vec![nameserver];
        c.dns.refresh_s = 1;
        c.dns.timeout_ms = 300;
    }));
    LocalFleet::start(spec).expect("fleet")
}

fn invocations(sim: &SimHandle) -> u64 {
    sim.stats().kind(RequestKind::Invoke)
}

/// The legacy pool's members as `GET /readyz` lists them.
async fn legacy_members(admin: &str) -> Vec<String> {
    let ready: Value = client().get(format!("{admin}/readyz")).send().await.unwrap().json().await.unwrap();
    let members = ready["pools"]["legacy"]["members"].as_array().cloned().unwrap_or_default();
    let mut addrs: Vec<String> =
        members.iter().map(|m| m["address"].as_str().unwrap_or_default().to_string()).collect();
    addrs.sort();
    addrs
}

/// Polls `done` every 50 ms for at most `limit`; returns how long it took.
async fn within(limit: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

#[test]
fn a_name_stands_for_every_address_it_resolves_to_ipv4_and_ipv6() {
    let (v4, v6, _dns, fleet) = named_pool(&[V4, V6], ALL_LEGACY);
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    block_on(async {
        let port = v4.addr().port();
        assert_eq!(legacy_members(&admin).await, [format!("127.0.0.1:{port}"), format!("[::1]:{port}")]);
        let c = client();
        for i in 0..40 {
            let resp = invoke(&c, &base, &format!("spread-{i}"), json!({})).send().await.unwrap();
            assert_eq!(resp.status(), 200);
        }
        // Round robin over the two members.
        assert_eq!((invocations(&v4), invocations(&v6)), (20, 20));
        let text = metrics_text(&admin).await;
        assert_eq!(metric(&text, "switchyard_pool_members", &[("pool", "legacy")]), 2.0);
        assert!(metric(&text, "switchyard_dns_resolutions_total", &[("pool", "legacy"), ("result", "ok")]) >= 1.0);
    });
}

#[test]
fn an_address_added_takes_traffic_after_one_check_and_one_removed_takes_none_with_no_failed_request() {
    let (v4, v6, dns, fleet) = named_pool(&[V4], ALL_LEGACY);
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    let load = Load::start(&base, "follow", 20, 4, "blocking=true");
    block_on(async {
        within(Duration::from_secs(5), "load on the first address", async || invocations(&v4) > 20).await;
        assert_eq!(invocations(&v6), 0, "::1 is not a member yet");

        dns.set(NAME, &[V4, V6]);
        // refresh_s (1 s) plus one health check (every 200 ms), with room for a slow machine.
        let took = within(Duration::from_secs(5), "traffic to the added address", async || invocations(&v6) > 0).await;
        println!("the added address took traffic {took:?} after the DNS change");

        dns.set(NAME, &[V6]);
        let port = v6.addr().port();
        within(Duration::from_secs(5), "the removed address leaves the pool", async || {
            legacy_members(&admin).await == [format!("[::1]:{port}")]
        })
        .await;
        // Requests that picked it before the change finish there; none starts after.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (before_v4, before_v6) = (invocations(&v4), invocations(&v6));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(invocations(&v4), before_v4, "a removed address took new requests");
        assert!(invocations(&v6) > before_v6 + 20, "the remaining address serves the load");
    });
    let answers = load.stop();
    let failed: Vec<_> = answers.iter().filter(|a| !a.ok()).collect();
    assert!(answers.len() > 200, "load ran: {} answers", answers.len());
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        answers.len(),
        &failed[..failed.len().min(5)]
    );
}

#[test]
fn a_dns_server_that_goes_quiet_or_answers_empty_leaves_the_pool_as_it_was() {
    let (v4, v6, dns, fleet) = named_pool(&[V4, V6], ALL_LEGACY);
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    block_on(async {
        let both = legacy_members(&admin).await;
        assert_eq!(both.len(), 2);
        for (how, result) in [(Answering::Silent, "failed"), (Answering::Empty, "empty")] {
            dns.answering(how);
            let counted = async || {
                let text = metrics_text(&admin).await;
                metric(&text, "switchyard_dns_resolutions_total", &[("pool", "legacy"), ("result", result)]) >= 2.0
            };
            within(Duration::from_secs(10), &format!("{how:?}: resolutions counted as {result}"), counted).await;
            assert_eq!(legacy_members(&admin).await, both, "{how:?}: the members stay");
            let (before_v4, before_v6) = (invocations(&v4), invocations(&v6));
            let c = client();
            for i in 0..10 {
                let resp = invoke(&c, &base, &format!("quiet-{i}"), json!({})).send().await.unwrap();
                assert_eq!(resp.status(), 200, "{how:?}");
            }
            assert_eq!(
                (invocations(&v4) - before_v4, invocations(&v6) - before_v6),
                (5, 5),
                "{how:?}: both still serve"
            );
        }
        let text = metrics_text(&admin).await;
        assert_eq!(metric(&text, "switchyard_pool_members", &[("pool", "legacy")]), 2.0);
    });
    assert!(dns.queries() > 4, "the proxy kept asking");
}

#[test]
fn the_pool_an_action_goes_to_does_not_move_when_members_come_and_go() {
    let (_v4, _v6, dns, fleet) = named_pool(&[V4, V6], "version = \"half\"\nscheduler_share = 50\n");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    block_on(async {
        let c = client();
        let pools = async || {
            let mut seen = Vec::new();
            for i in 0..30 {
                seen.push(pool_of(&invoke(&c, &base, &format!("sticky-{i}"), json!({})).send().await.unwrap()));
            }
            seen
        };
        let before = pools().await;
        assert!(before.contains(&"legacy".to_string()) && before.contains(&"scheduler".to_string()), "{before:?}");
        dns.set(NAME, &[V4]);
        within(Duration::from_secs(5), "::1 leaves the pool", async || legacy_members(&admin).await.len() == 1).await;
        assert_eq!(pools().await, before, "a member change moved actions between paths");
    });
}

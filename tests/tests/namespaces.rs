//! `_` is the caller's namespace: resolved through the controller, cached per credential, and
//! routed to legacy (counted) when it cannot be resolved in time.

use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_tests::*;
use whisk_sim::RequestKind;

fn invoke_as(c: &reqwest::Client, base: &str, ns: &str, action: &str, key: (&str, &str)) -> reqwest::RequestBuilder {
    c.post(format!("{base}/api/v1/namespaces/{ns}/actions/{action}?blocking=true&result=true"))
        .basic_auth(key.0, Some(key.1))
        .json(&json!({}))
}

#[test]
fn underscore_and_the_explicit_name_are_one_sticky_key() {
    let fleet = LocalFleet::start(FleetSpec::new("version = \"half\"\nscheduler_share = 50\n")).expect("fleet");
    let base = fleet.proxy_url();
    block_on(async {
        let c = client();
        let mut both = [0, 0];
        for i in 0..60 {
            let action = format!("act-{i}");
            let explicit = invoke_as(&c, &base, "guest", &action, guest_credentials()).send().await.unwrap();
            let default = invoke_as(&c, &base, "_", &action, guest_credentials()).send().await.unwrap();
            assert_eq!(pool_of(&explicit), pool_of(&default), "{action}: `_` and `guest` split");
            both[usize::from(pool_of(&default) == "scheduler")] += 1;
        }
        assert!(both[0] > 0 && both[1] > 0, "a 50 % share used both pools: {both:?}");
        let text = metrics_text(&fleet.admin_url()).await;
        assert_eq!(metric(&text, "switchyard_namespace_lookups_total", &[("result", "resolved")]), 1.0);
        assert_eq!(metric(&text, "switchyard_namespace_lookups_total", &[("result", "cached")]), 59.0);
    });
    let lookups =
        fleet.legacy.stats().kind(RequestKind::Namespaces) + fleet.scheduler.stats().kind(RequestKind::Namespaces);
    assert_eq!(lookups, 1, "a cached credential adds no request to the controller");
}

#[test]
fn a_credential_that_fails_auth_is_not_cached_and_routes_to_legacy() {
    let fleet = LocalFleet::start(FleetSpec::new("version = \"all\"\nscheduler_share = 100\n")).expect("fleet");
    let base = fleet.proxy_url();
    let wrong = ("23bc46b1-71f6-4ed5-8c54-816aa4f8c502", "not-the-key");
    block_on(async {
        let c = client();
        for _ in 0..2 {
            let resp = invoke_as(&c, &base, "_", "hello", wrong).send().await.unwrap();
            assert_eq!(resp.status(), 401, "the controller still answers the caller");
            assert_eq!(pool_of(&resp), "legacy", "unresolved: the safe side");
        }
        let text = metrics_text(&fleet.admin_url()).await;
        assert_eq!(metric(&text, "switchyard_namespace_lookups_total", &[("result", "unauthorized")]), 2.0);
        assert_eq!(metric(&text, "switchyard_decisions_total", &[("reason", "unresolved_namespace")]), 2.0);
    });
    let lookups =
        fleet.legacy.stats().kind(RequestKind::Namespaces) + fleet.scheduler.stats().kind(RequestKind::Namespaces);
    assert_eq!(lookups, 2, "a refused credential is asked again, never cached");
}

/// A controller that answers `/ping` and invocations at once but takes 3 s for the namespace
/// lookup: the request waits only `namespaces.wait_ms`, goes to legacy, and the lookup finishes in
/// the background for the next requests.
#[test]
fn a_slow_lookup_is_waited_for_only_briefly() {
    let slow = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_addr = slow.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in slow.incoming().take(200).flatten() {
            std::thread::spawn(move || serve_slow_namespaces(stream));
        }
    });
    let mut spec = FleetSpec::new("version = \"all\"\nscheduler_share = 100\n");
    spec.tweak = Some(Box::new(move |c| {
        c.pools.legacy.members = vec![slow_addr.to_string()];
        c.namespaces.wait_ms = 300;
        c.namespaces.lookup_timeout_ms = 5_000;
    }));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let base = fleet.proxy_url();
    block_on(async {
        let c = client();
        let started = Instant::now();
        let resp = invoke_as(&c, &base, "_", "hello", guest_credentials()).send().await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(1_500), "waited {:?}", started.elapsed());
        assert_eq!(pool_of(&resp), "legacy", "not resolved in time: the safe side");
        let text = metrics_text(&fleet.admin_url()).await;
        assert_eq!(metric(&text, "switchyard_namespace_lookups_total", &[("result", "timeout")]), 1.0);
        // The lookup went on; once it lands, the credential routes by its namespace.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let resp = invoke_as(&c, &base, "_", "hello", guest_credentials()).send().await.unwrap();
            if pool_of(&resp) == "scheduler" {
                break;
            }
            assert!(Instant::now() < deadline, "the background lookup never landed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// Minimal HTTP/1.1 for the test above: `/ping` and anything else at once, the namespace list
/// after 3 s.
fn serve_slow_namespaces(mut stream: std::net::TcpStream) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let answer = if request_line.contains("/api/v1/namespaces ") {
            std::thread::sleep(Duration::from_secs(3));
            "[\"guest\"]"
        } else if request_line.contains("/ping") {
            "pong"
        } else {
            "{\"payload\":\"hi\"}"
        };
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\r\n{answer}",
            answer.len()
        );
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// Every spelling of a pinned invocation goes where its canonical form goes (the README's table),
/// while the path reaches the controller unchanged.
#[test]
fn every_spelling_obeys_a_pin() {
    let rules = "version = \"pin\"\ndefault_pool = \"scheduler\"\nscheduler_share = 100\n\
                 [[overrides]]\nnamespace = \"billing\"\nshare = 0\n";
    let fleet = LocalFleet::start(FleetSpec::new(rules)).expect("fleet");
    // Raw requests: an HTTP client library would normalise the dot segments before sending.
    let (user, key) = guest_credentials();
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{user}:{key}"));
    let pool_for = |path: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(fleet.proxy.proxy_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "POST {path}?blocking=true HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-switchyard-pool:").map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("{path}: no pool header in {answer}"))
    };
    {
        for path in [
            "/api/v1/namespaces/billing/actions/pay",
            "/api/v1/namespaces/billing/actions/pay/",
            "/api/v1/namespaces/billing//actions/pay",
            "/api/v1//namespaces/billing/actions/pay",
            "/api/v1/namespaces/billing/actions/./pay",
            "/api/v1/namespaces/billing/actions/pkg/../pay",
            "/api/v1/namespaces/bill%69ng/actions/pay",
            "/api/v1/namespaces/billing/triggers/t/",
        ] {
            assert_eq!(pool_for(path), "legacy", "{path} escaped the pin");
        }
        assert_eq!(pool_for("/api/v1/namespaces/other/actions/pay"), "scheduler", "the check can fail");
    }
}

/// Many new credentials at once while the controller takes 3 s to name their namespaces: the
/// lookups in flight stop at `namespaces.max_in_flight`; the rest go to legacy at once, counted.
#[test]
fn lookups_in_flight_are_capped() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use switchyard_tests::scripted::{answer_for, Peer, ScriptedController};
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, m) = (Arc::clone(&now), Arc::clone(&most));
    let controller = ScriptedController::start(move |mut peer: Peer| {
        while let Some(head) = peer.next_request() {
            if head.text.starts_with("get /api/v1/namespaces ") {
                let at_once = n.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(at_once, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(3));
                n.fetch_sub(1, Ordering::SeqCst);
                peer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n[\"guest\"]",
                );
            } else {
                peer.write(&answer_for(&head.request_id()));
            }
        }
    });
    let mut spec = FleetSpec::new("version = \"busy\"\nscheduler_share = 0\n");
    let member = controller.addr.to_string();
    spec.tweak = Some(Box::new(move |c| {
        c.pools.legacy.members = vec![member];
        c.namespaces.max_in_flight = 16;
        c.namespaces.wait_ms = 100;
        c.namespaces.lookup_timeout_ms = 5_000;
    }));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let base = fleet.proxy_url();
    block_on(async {
        let c = client();
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..300 {
            let (c, base) = (c.clone(), base.clone());
            calls.spawn(async move {
                let user = format!("user-{i:04}");
                invoke_as(&c, &base, "_", "hello", (&user, "key")).send().await.map(|r| r.status().as_u16())
            });
        }
        while let Some(status) = calls.join_next().await {
            assert!(matches!(status, Ok(Ok(200))), "a call was not answered: {status:?}");
        }
        let text = metrics_text(&fleet.admin_url()).await;
        assert!(metric(&text, "switchyard_namespace_lookups_total", &[("result", "busy")]) >= 100.0, "{text}");
    });
    assert!(most.load(Ordering::SeqCst) <= 16, "{} lookups at once", most.load(Ordering::SeqCst));
}

//! What switchyard promises about each request, against a scripted controller over raw sockets
//! that answers exactly the bytes a case names and records every request it reads:
//!
//! * **once**: a request goes again only when none of it reached the wire (RFC 9110 §9.2.2);
//! * **framing**: an answer is read exactly to its framing (RFC 9112 §6.3) and a connection is kept
//!   only when its answer ended there and nothing more arrived (§9.3, §9.6), so an answer always
//!   reaches the client that asked;
//! * **early answers**: an answer sent while the body is still on its way reaches the client, and
//!   the rest of the body is not sent;
//! * **the edge**: what no controller could be sent is refused before it leaves (501), `Host` is
//!   always forwarded, `100 Continue` goes to HTTP/1.1 clients only;
//! * **health**: only failures without an answer count against a controller, never its 4xx.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::scripted::{answer_for, Peer, ScriptedController};
use switchyard_tests::{
    block_on, client, closed_port, invoke, metric, metrics_text, pool_of, FleetSpec, LocalFleet, GUEST_KEY,
};

/// A proxy whose legacy pool (where everything goes: share 0) is the scripted controller.
fn fleet(controller: &ScriptedController) -> LocalFleet {
    let mut spec = FleetSpec::new("version = \"wire\"\nscheduler_share = 0\n");
    let member = controller.addr.to_string();
    spec.tweak = Some(Box::new(move |c| c.pools.legacy.members = vec![member]));
    LocalFleet::start(spec).expect("fleet")
}

/// Like [`fleet`], with no health check after the first: the health loop also closes idle
/// connections it finds unusable, which would hide what a request finds on a kept connection.
fn fleet_without_health_rounds(controller: &ScriptedController) -> LocalFleet {
    fleet_without_health_rounds_reading(controller, None)
}

/// [`fleet_without_health_rounds`], with `timeouts.read_ms` when given.
fn fleet_without_health_rounds_reading(controller: &ScriptedController, read_ms: Option<u64>) -> LocalFleet {
    let mut spec = FleetSpec::new("version = \"wire\"\nscheduler_share = 0\n");
    let member = controller.addr.to_string();
    spec.tweak = Some(Box::new(move |c| {
        c.pools.legacy.members = vec![member];
        c.health.interval_ms = 600_000;
        if let Some(read_ms) = read_ms {
            c.timeouts.read_ms = read_ms;
        }
    }));
    LocalFleet::start(spec).expect("fleet")
}

/// Like [`fleet`], with several members and health checks that never take a member out (so a dead one is met by
/// requests, not skipped).
fn fleet_blind_to_health(members: Vec<String>) -> LocalFleet {
    let mut spec = FleetSpec::new("version = \"wire\"\nscheduler_share = 0\n");
    spec.tweak = Some(Box::new(move |c| {
        c.pools.legacy.members = members;
        c.health.unhealthy_after = 1_000;
    }));
    LocalFleet::start(spec).expect("fleet")
}

fn guest_auth() -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(GUEST_KEY))
}

/// A blocking invoke of `guest/{action}` with this request id; the status and the body.
async fn call(fleet: &LocalFleet, action: &str, id: &str) -> (u16, String) {
    let resp =
        invoke(&client(), &fleet.proxy_url(), action, json!({})).header("x-request-id", id).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Sends raw bytes to the proxy and reads until it closes (or 10 s).
fn raw(fleet: &LocalFleet, request: &[u8]) -> String {
    let mut s = TcpStream::connect(fleet.proxy.proxy_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).to_string()
}

/// The distinct connections the controller's recorded requests came on, in order.
fn connections(controller: &ScriptedController) -> Vec<usize> {
    let mut c: Vec<usize> = controller.seen().iter().map(|s| s.connection).collect();
    c.dedup();
    c
}

fn retries(text: &str, reason: &str) -> f64 {
    metric(text, "switchyard_upstream_retries_total", &[("reason", reason)])
}

// ---- Once (RFC 9110 §9.2.2) ----

#[test]
fn an_invocation_the_controller_read_is_never_sent_again() {
    // The controller answers a connection's first request, then reads the second whole, works
    // 300 ms and closes without answering (a controller restarting mid-request).
    let controller = ScriptedController::start(|mut peer: Peer| {
        while let Some(head) = peer.next_request() {
            if peer.requests == 1 {
                peer.write(&answer_for(&head.request_id()));
            } else {
                std::thread::sleep(Duration::from_millis(300));
                return;
            }
        }
    });
    let fleet = fleet(&controller);
    block_on(async {
        assert_eq!(call(&fleet, "a", "once-1").await.0, 200);
        let (status, body) = call(&fleet, "a", "once-2").await;
        assert_eq!(status, 502, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "once-2");
        let text = metrics_text(&fleet.admin_url()).await;
        assert_eq!(retries(&text, "kept_connection_closed") + retries(&text, "connect_failed"), 0.0, "{text}");
    });
    assert_eq!(controller.times_seen("once-2"), 1, "the invocation reached the controller again");
}

#[test]
fn a_refused_connection_is_tried_on_another_controller_and_counted() {
    let controller = ScriptedController::echo();
    let fleet = fleet_blind_to_health(vec![closed_port().to_string(), controller.addr.to_string()]);
    block_on(async {
        for i in 0..4 {
            let (status, body) = call(&fleet, "a", &format!("refused-{i}")).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body, format!("{{\"for\":\"refused-{i}\"}}"));
        }
        let text = metrics_text(&fleet.admin_url()).await;
        assert!(retries(&text, "connect_failed") >= 1.0, "{text}");
    });
    for i in 0..4 {
        assert_eq!(controller.times_seen(&format!("refused-{i}")), 1);
    }
}

// ---- Framing and clean reuse (RFC 9112 §6.3, §9.3, §9.6) ----

#[test]
fn a_stray_answer_after_a_complete_one_never_reaches_the_next_client() {
    // The first answer is followed, 100 ms later, by one more complete answer nobody asked for.
    let stray_sent = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stray_sent);
    let controller = ScriptedController::start(move |mut peer: Peer| {
        while let Some(head) = peer.next_request() {
            peer.write(&answer_for(&head.request_id()));
            if !flag.swap(true, Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                peer.write(&answer_for("stray"));
            }
        }
    });
    let fleet = fleet_without_health_rounds(&controller);
    block_on(async {
        for id in ["stray-a", "stray-b", "stray-c", "stray-d"] {
            let (status, body) = call(&fleet, "a", id).await;
            assert_eq!((status, body), (200, format!("{{\"for\":\"{id}\"}}")), "a client got another's answer");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    assert!(stray_sent.load(Ordering::SeqCst));
    for id in ["stray-a", "stray-b", "stray-c", "stray-d"] {
        assert_eq!(controller.times_seen(id), 1, "{id}");
    }
}

#[test]
fn stray_bytes_after_an_answer_do_not_fail_the_next_request() {
    // Bytes that are no answer at all arrive 50 ms after each answer.
    let controller = ScriptedController::start(|mut peer: Peer| {
        while let Some(head) = peer.next_request() {
            peer.write(&answer_for(&head.request_id()));
            std::thread::sleep(Duration::from_millis(50));
            peer.write(b"\r\nstray bytes\r\n");
        }
    });
    let fleet = fleet_without_health_rounds(&controller);
    block_on(async {
        for i in 0..4 {
            let id = format!("bytes-{i}");
            assert_eq!(call(&fleet, "a", &id).await, (200, format!("{{\"for\":\"{id}\"}}")));
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });
    assert_eq!(connections(&controller).len(), 4, "a connection with stray bytes was used again");
}

#[test]
fn a_late_body_after_a_204_or_a_head_answer_does_not_fail_the_next_request() {
    // A body arrives 50 ms after answers that have none by their status or the request's method.
    let controller = ScriptedController::start(|mut peer: Peer| {
        while let Some(head) = peer.next_request() {
            if head.text.starts_with("head ") {
                peer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
            } else if head.request_id().ends_with("-204") {
                peer.write(b"HTTP/1.1 204 No Content\r\n\r\n");
            } else {
                peer.write(&answer_for(&head.request_id()));
                continue;
            }
            std::thread::sleep(Duration::from_millis(50));
            peer.write(b"0123456789");
        }
    });
    let fleet = fleet(&controller);
    block_on(async {
        let c = client();
        let url = format!("{}/api/v1/namespaces/guest/actions/a", fleet.proxy_url());
        let resp = c.head(&url).header("x-request-id", "late-head").send().await.unwrap();
        assert_eq!((resp.status().as_u16(), resp.headers()["content-length"].to_str().unwrap()), (200, "10"));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(call(&fleet, "a", "late-1").await.0, 200);
        assert_eq!(call(&fleet, "a", "late-204").await.0, 204);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(call(&fleet, "a", "late-2").await, (200, "{\"for\":\"late-2\"}".to_string()));
    });
}

#[test]
fn close_wins_over_keep_alive_in_an_answer() {
    // The controller says both and keeps the connection open: the proxy must not use it again.
    let controller = ScriptedController::start(|mut peer: Peer| {
        while let Some(head) = peer.next_request() {
            let id = head.request_id();
            let body = format!("{{\"for\":\"{id}\"}}");
            peer.write(
                format!(
                    "HTTP/1.1 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    let fleet = fleet(&controller);
    block_on(async {
        for i in 0..3 {
            assert_eq!(call(&fleet, "a", &format!("close-{i}")).await.0, 200);
        }
    });
    assert_eq!(connections(&controller).len(), 3);
}

#[test]
fn an_http_1_0_answer_is_never_kept_and_one_with_transfer_encoding_is_faulty() {
    let controller = ScriptedController::start(|mut peer: Peer| {
        while let Some(head) = peer.next_request() {
            if head.request_id().starts_with("chunked") {
                peer.write(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
            } else {
                peer.write(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}");
            }
        }
    });
    let fleet = fleet(&controller);
    block_on(async {
        assert_eq!(call(&fleet, "a", "one-0-a").await, (200, "{}".to_string()));
        assert_eq!(call(&fleet, "a", "one-0-b").await, (200, "{}".to_string()));
        // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
        assert_eq!(call(&fleet, "a", "chunked-1").await.0, 502);
        // That failure counted against the controller; its next health check brings it back.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(call(&fleet, "a", "one-0-c").await, (200, "{}".to_string()));
    });
    assert_eq!(connections(&controller).len(), 4);
}

#[test]
fn a_chunk_size_with_leading_zeros_is_read() {
    let controller = ScriptedController::always(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n",
    );
    let fleet = fleet(&controller);
    block_on(async {
        assert_eq!(call(&fleet, "a", "zeros").await, (200, "hello".to_string()));
    });
}

#[test]
fn transfer_encoding_overrides_content_length_and_such_an_answer_is_not_kept() {
    let controller = ScriptedController::always(
        b"HTTP/1.1 200 OK\r\nContent-Length: 9999\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    );
    let fleet = fleet(&controller);
    block_on(async {
        for i in 0..2 {
            let resp = invoke(&client(), &fleet.proxy_url(), "a", json!({}))
                .header("x-request-id", format!("te-{i}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            assert_ne!(resp.headers().get("content-length").map(|v| v.to_str().unwrap()), Some("9999"));
            assert_eq!(resp.text().await.unwrap(), "{}");
        }
    });
    assert_eq!(connections(&controller).len(), 2, "a message that might be smuggling was used again");
}

#[test]
fn differing_content_lengths_are_a_502() {
    let controller =
        ScriptedController::always(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x");
    let fleet = fleet(&controller);
    block_on(async {
        assert_eq!(call(&fleet, "a", "lengths").await.0, 502);
    });
}

#[test]
fn an_answer_without_length_is_read_until_close_and_not_kept() {
    let controller = ScriptedController::start(|mut peer: Peer| {
        if peer.next_request().is_some() {
            peer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"until\":");
            std::thread::sleep(Duration::from_millis(30));
            peer.write(b"\"close\"}");
            peer.close();
        }
    });
    let fleet = fleet(&controller);
    block_on(async {
        assert_eq!(call(&fleet, "a", "eof-1").await, (200, "{\"until\":\"close\"}".to_string()));
        assert_eq!(call(&fleet, "a", "eof-2").await, (200, "{\"until\":\"close\"}".to_string()));
    });
    assert_eq!(connections(&controller).len(), 2);
}

#[test]
fn an_answer_cut_short_reaches_the_client_cut_short() {
    let controller = ScriptedController::start(|mut peer: Peer| {
        if peer.next_request().is_some() {
            peer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"cut\":");
            std::thread::sleep(Duration::from_millis(30));
            peer.close();
        }
    });
    let fleet = fleet(&controller);
    block_on(async {
        let resp = invoke(&client(), &fleet.proxy_url(), "a", json!({})).send().await.unwrap();
        assert!(resp.text().await.is_err(), "a cut answer was passed on as complete");
    });
}

#[test]
fn a_kept_connection_the_controller_closes_while_idle_is_not_used() {
    // The controller answers, then closes the connection 100 ms later (its keep-alive timeout).
    let controller = ScriptedController::start(|mut peer: Peer| {
        if let Some(head) = peer.next_request() {
            peer.write(&answer_for(&head.request_id()));
            std::thread::sleep(Duration::from_millis(100));
            peer.close();
        }
    });
    let fleet = fleet(&controller);
    block_on(async {
        for i in 0..4 {
            let id = format!("idle-{i}");
            assert_eq!(call(&fleet, "a", &id).await, (200, format!("{{\"for\":\"{id}\"}}")));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    assert_eq!(connections(&controller).len(), 4);
}

#[test]
fn the_wait_for_an_answer_is_timed_from_each_request_on_a_kept_connection() {
    // `read_ms` is 1 s. On one connection the controller answers the first request at once, the
    // second 700 ms after it came (it comes 700 ms after the first answer: past the first
    // request's deadline, within its own), and the third only after 1.5 s, past its own.
    let controller = ScriptedController::start(|mut peer: Peer| {
        while let Some(head) = peer.next_request() {
            let wait = match peer.requests {
                1 => 0,
                2 => 700,
                _ => 1_500,
            };
            std::thread::sleep(Duration::from_millis(wait));
            peer.write(&answer_for(&head.request_id()));
        }
    });
    let fleet = fleet_without_health_rounds_reading(&controller, Some(1_000));
    block_on(async {
        assert_eq!(call(&fleet, "a", "wait-1").await.0, 200);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(call(&fleet, "a", "wait-2").await.0, 200, "timed from the first request, not its own");
        let started = Instant::now();
        let (status, body) = call(&fleet, "a", "wait-3").await;
        let waited = started.elapsed();
        assert_eq!(status, 504, "{body}");
        assert!(waited >= Duration::from_millis(950) && waited < Duration::from_millis(1_450), "{waited:?}");
    });
    assert_eq!(connections(&controller).len(), 1, "all three on one kept connection");
}

#[test]
fn a_request_reaches_the_controller_in_one_write_on_a_kept_connection() {
    let controller = ScriptedController::echo();
    let fleet = fleet(&controller);
    let blob = "x".repeat(2_000);
    block_on(async {
        let c = client();
        for i in 0..20 {
            let resp = invoke(&c, &fleet.proxy_url(), &format!("a{i}"), json!({ "blob": blob })).send().await.unwrap();
            assert_eq!(resp.status(), 200);
        }
    });
    let seen = controller.seen();
    assert_eq!(seen.len(), 20);
    for s in &seen {
        // The head and the whole body came in the controller's first read: one write, one segment.
        assert!(s.first_read.ends_with(&s.body) && s.body.len() > 2_000, "the request came in pieces: {}", s.head);
    }
    // One client, one request at a time: one connection to the controller, kept (RFC 9112 §9.3).
    assert_eq!(connections(&controller).len(), 1);
}

#[test]
fn a_chunked_answer_streams_through_whole_and_the_connection_is_kept() {
    let controller = ScriptedController::start(|mut peer: Peer| {
        while peer.next_request().is_some() {
            peer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"a\":1\r\n");
            std::thread::sleep(Duration::from_millis(20));
            peer.write(b"9\r\n,\"b\":\"xy\"\r\n");
            std::thread::sleep(Duration::from_millis(20));
            peer.write(b"1\r\n}\r\n0\r\n\r\n");
        }
    });
    let fleet = fleet(&controller);
    block_on(async {
        for i in 0..3 {
            let resp = invoke(&client(), &fleet.proxy_url(), &format!("a{i}"), json!({})).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.json::<Value>().await.unwrap(), json!({"a": 1, "b": "xy"}));
        }
    });
    assert_eq!(connections(&controller).len(), 1, "a chunked answer read whole leaves the connection usable");
}

#[test]
fn hop_by_hop_fields_stop_at_the_proxy_both_ways() {
    let controller = ScriptedController::always(
        b"HTTP/1.1 200 OK\r\nConnection: x-private\r\nx-private: secret\r\nx-end: kept\r\nContent-Length: 2\r\n\r\n{}",
    );
    let fleet = fleet(&controller);
    block_on(async {
        let resp = invoke(&client(), &fleet.proxy_url(), "a", json!({}))
            .header("connection", "keep-alive, x-client-private")
            .header("x-client-private", "1")
            .header("keep-alive", "timeout=5")
            .header("x-client-end", "2")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("x-private").is_none(), "{:?}", resp.headers());
        assert_eq!(resp.headers()["x-end"], "kept");
    });
    let head = &controller.seen()[0].head;
    assert!(head.contains("x-client-end: 2"), "{head}");
    for gone in ["x-client-private", "keep-alive", "connection:"] {
        assert!(!head.contains(gone), "{gone} reached the controller: {head}");
    }
}

#[test]
fn a_garbled_answer_is_an_openwhisk_shaped_502_and_counts_against_the_controller() {
    let controller = ScriptedController::start(|mut peer: Peer| {
        if peer.next_request().is_some() {
            peer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n");
            peer.close();
        }
    });
    let fleet = fleet(&controller);
    block_on(async {
        let (status, body) = call(&fleet, "a", "garbled-1").await;
        assert_eq!(status, 502);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "garbled-1");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("controller")), "{body}");
        let metrics = metrics_text(&fleet.admin_url()).await;
        assert_eq!(
            metric(&metrics, "switchyard_invocations_total", &[("pool", "legacy"), ("class", "platform_failure")]),
            1.0,
            "{metrics}"
        );
    });
}

// ---- Early answers ----

/// Answers a body over 1 MiB with `413` after reading 16 KiB of it; `then_close`: closes the
/// connection after, else stops reading and holds it for 5 s. Smaller requests get [`answer_for`].
fn refusing_large_bodies(then_close: bool) -> ScriptedController {
    ScriptedController::start(move |mut peer: Peer| {
        while let Some(head) = peer.next_head() {
            if head.content_length() <= 1 << 20 && !head.chunked() {
                let body = peer.body(&head);
                peer.record(&head, body);
                peer.write(&answer_for(&head.request_id()));
                continue;
            }
            let part = peer.read_raw(16 * 1024);
            peer.record(&head, part);
            let body = r#"{"error":"The request content was malformed:\nrequest entity too large","code":"x"}"#;
            peer.write(
                format!("HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                    .as_bytes(),
            );
            if then_close {
                peer.close();
            } else {
                std::thread::sleep(Duration::from_secs(5));
            }
            return;
        }
    })
}

#[test]
fn an_early_413_is_relayed_and_does_not_count_against_the_controller() {
    let controller = refusing_large_bodies(true);
    let fleet = fleet(&controller);
    let big = "x".repeat(4 << 20);
    block_on(async {
        for i in 0..2 {
            let resp = invoke(&client(), &fleet.proxy_url(), "a", json!({ "blob": big }))
                .header("x-request-id", format!("big-{i}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 413);
            assert!(resp.text().await.unwrap().contains("too large"));
        }
        // The refusals said nothing against the controller: at share 0 the next call stays on legacy.
        let resp = invoke(&client(), &fleet.proxy_url(), "a", json!({})).send().await.unwrap();
        assert_eq!((resp.status().as_u16(), pool_of(&resp)), (200, "legacy".to_string()));
        let text = metrics_text(&fleet.admin_url()).await;
        assert_eq!(metric(&text, "switchyard_pool_healthy_members", &[("pool", "legacy")]), 1.0, "{text}");
        assert_eq!(metric(&text, "switchyard_fallbacks_total", &[]), 0.0, "{text}");
    });
    for i in 0..2 {
        assert_eq!(controller.times_seen(&format!("big-{i}")), 1);
    }
}

#[test]
fn an_early_413_is_relayed_at_once_when_the_controller_stops_reading() {
    let controller = refusing_large_bodies(false);
    let fleet = fleet(&controller);
    let big = "x".repeat(32 << 20);
    block_on(async {
        let started = Instant::now();
        let resp = invoke(&client(), &fleet.proxy_url(), "a", json!({ "blob": big })).send().await.unwrap();
        assert_eq!(resp.status(), 413);
        // Not after the write timeout (70 s): as soon as the controller answered.
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    });
}

// ---- The edge ----

#[test]
fn a_transfer_coding_other_than_chunked_is_refused_with_501() {
    let controller = ScriptedController::echo();
    let fleet = fleet(&controller);
    let auth = guest_auth();
    let answer = raw(
        &fleet,
        format!("POST /api/v1/namespaces/guest/actions/a?blocking=true HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 501"), "{answer}");
    assert!(controller.seen().is_empty(), "the controller was sent a body with a coding it never declared");
}

#[test]
fn host_is_always_forwarded() {
    let controller = ScriptedController::echo();
    let fleet = fleet(&controller);
    let auth = guest_auth();
    let answer = raw(
        &fleet,
        format!("POST /api/v1/namespaces/guest/actions/a?blocking=true HTTP/1.1\r\nHost: whisk.example\r\nAuthorization: {auth}\r\nConnection: host, close\r\nContent-Length: 2\r\n\r\n{{}}").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(controller.seen()[0].field("host"), Some("whisk.example"));
}

#[test]
fn expect_100_continue_is_answered_by_the_proxy_to_http_1_1_clients_only() {
    let controller = ScriptedController::echo();
    let fleet = fleet(&controller);
    let auth = guest_auth();
    for version in ["1.1", "1.0"] {
        let mut s = TcpStream::connect(fleet.proxy.proxy_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        write!(
            s,
            "POST /api/v1/namespaces/guest/actions/a?blocking=true HTTP/{version}\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n"
        )
        .unwrap();
        let mut buf = [0u8; 4096];
        let first = s.read(&mut buf).map(|n| buf[..n].to_vec()).unwrap_or_default();
        if version == "1.1" {
            assert!(first.starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&first));
        } else {
            assert!(first.is_empty(), "an HTTP/1.0 client was sent: {}", String::from_utf8_lossy(&first));
        }
        s.write_all(b"{\"x\":1}").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answer = Vec::new();
        while !answer.ends_with(b"}") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    }
    let seen = controller.seen();
    assert!(seen.iter().all(|s| s.field("expect").is_none()), "the controller was asked to continue");
    assert!(seen.iter().all(|s| s.body == b"{\"x\":1}"));
}

// ---- The copy is the primary's twin ----

#[test]
fn a_shadow_copy_carries_the_primarys_end_to_end_fields() {
    let legacy = ScriptedController::echo();
    let scheduler = ScriptedController::echo();
    let mut spec = FleetSpec::new(switchyard_tests::SHADOW_PURE);
    let members = (legacy.addr.to_string(), scheduler.addr.to_string());
    spec.tweak = Some(Box::new(move |c| {
        c.pools.legacy.members = vec![members.0];
        c.pools.scheduler.members = vec![members.1];
    }));
    let fleet = LocalFleet::start(spec).expect("fleet");
    block_on(async {
        let resp = invoke(&client(), &fleet.proxy_url(), "pure-twin", json!({"n": 1}))
            .header("x-request-id", "twin-1")
            .header("x-client-thing", "a, b")
            .header("accept-language", "fr")
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let deadline = Instant::now() + Duration::from_secs(10);
        while scheduler.times_seen("twin-1") == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let (primary, copy) = (&legacy.seen()[0], &scheduler.seen()[0]);
    let fields = |head: &str| {
        let mut f: Vec<String> =
            head.lines().skip(1).filter(|l| !l.starts_with("x-switchyard-shadow:")).map(str::to_string).collect();
        f.sort();
        f
    };
    assert_eq!(fields(&primary.head), fields(&copy.head), "the copy's fields differ from the primary's");
    assert_eq!(copy.field("x-switchyard-shadow"), Some("1"));
    assert_eq!(primary.body, copy.body);
    assert!(copy.field("x-hop").is_none());
}

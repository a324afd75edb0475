//! switchyard's own client to the controllers, against a scripted controller that speaks raw
//! HTTP/1.1: a request leaves in one write, a kept connection the controller closed is replaced,
//! chunked and HEAD answers arrive intact, hop-by-hop fields stop at the proxy, `Expect:
//! 100-continue` is answered, and a garbled answer becomes an OpenWhisk-shaped 502.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_tests::{block_on, client, invoke, metric, metrics_text, FleetSpec, LocalFleet, GUEST_KEY};

/// What the scripted controller does with one request (not `/ping`, always answered 200).
#[derive(Clone, Copy)]
enum Script {
    /// `200` with a JSON body echoing nothing; the connection stays open.
    Ok,
    /// Answers the first request of each connection, then closes the connection when the next
    /// one arrives without answering it (as a controller closing an idle kept connection).
    OnePerConnection,
    /// A chunked answer written in three pieces, 20 ms apart.
    Chunked,
    /// `200` with `Content-Length: 42` and no body (a HEAD's answer).
    HeadAnswer,
    /// Garbage instead of an answer.
    Garbled,
    /// `200` listing a private field as hop-by-hop.
    HopByHop,
}

/// One request as the controller read it.
#[derive(Clone, Debug)]
struct Seen {
    /// The bytes of the first read of the request.
    first_read: Vec<u8>,
    /// The whole request (head and body).
    whole: Vec<u8>,
    /// Which connection (counted from 0) carried it.
    connection: usize,
}

struct Scripted {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    fn start(script: Script) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            for (connection, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let record = Arc::clone(&record);
                std::thread::spawn(move || serve(stream, connection, script, &record));
            }
        });
        Scripted { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| !s.whole.starts_with(b"GET /ping")).cloned().collect()
    }
}

/// Reads one request (head and `Content-Length` body); `None` when the connection closed.
fn read_request(stream: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut whole = Vec::new();
    let mut first_read = None;
    let mut buf = [0u8; 65536];
    loop {
        if let Some(end) = whole.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&whole[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if whole.len() >= end + 4 + length {
                return Some((first_read.unwrap_or_default(), whole));
            }
        }
        let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
        whole.extend_from_slice(&buf[..n]);
        first_read.get_or_insert_with(|| buf[..n].to_vec());
    }
}

fn serve(mut stream: TcpStream, connection: usize, script: Script, seen: &Mutex<Vec<Seen>>) {
    let mut answered = 0;
    while let Some((first_read, whole)) = read_request(&mut stream) {
        let ping = whole.starts_with(b"GET /ping");
        seen.lock().unwrap().push(Seen { first_read, whole, connection });
        let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
        if ping {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong");
            continue;
        }
        let reply: &[&[u8]] = match script {
            Script::Ok => &[ok.as_bytes()],
            Script::OnePerConnection if answered > 0 => return,
            Script::OnePerConnection => &[ok.as_bytes()],
            Script::Chunked => &[
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"a\":1\r\n",
                b"9\r\n,\"b\":\"xy\"\r\n",
                b"1\r\n}\r\n0\r\n\r\n",
            ],
            Script::HeadAnswer => &[b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"],
            Script::Garbled => &[b"SSH-2.0-OpenSSH_9.2\r\n\r\n"],
            Script::HopByHop => &[b"HTTP/1.1 200 OK\r\nConnection: x-private\r\nx-private: secret\r\nx-end: kept\r\nContent-Length: 2\r\n\r\n{}"],
        };
        for (i, piece) in reply.iter().enumerate() {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
            if stream.write_all(piece).is_err() {
                return;
            }
        }
        answered += 1;
        if matches!(script, Script::Garbled) {
            return;
        }
    }
}

/// A proxy whose legacy pool (where everything goes) is the scripted controller.
fn fleet(controller: &Scripted) -> LocalFleet {
    let mut spec = FleetSpec::new("version = \"wire\"\nscheduler_share = 0\n");
    let addr = controller.addr.to_string();
    spec.tweak = Some(Box::new(move |c| c.pools.legacy.members = vec![addr]));
    LocalFleet::start(spec).expect("fleet")
}

fn head_of(request: &[u8]) -> String {
    let end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(request.len());
    String::from_utf8_lossy(&request[..end]).to_ascii_lowercase()
}

#[test]
fn a_request_reaches_the_controller_in_one_write_on_a_kept_connection() {
    let controller = Scripted::start(Script::Ok);
    let fleet = fleet(&controller);
    let blob = "x".repeat(2_000);
    block_on(async {
        let c = client();
        for i in 0..20 {
            let resp = invoke(&c, &fleet.proxy_url(), &format!("a{i}"), json!({ "blob": blob })).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.json::<Value>().await.unwrap(), json!({"ok": true}));
        }
    });
    let seen = controller.seen();
    assert_eq!(seen.len(), 20);
    for s in &seen {
        // The head and the whole body came in the controller's first read: one write, one segment.
        assert_eq!(s.first_read, s.whole, "the request came in pieces: {}", head_of(&s.whole));
        assert!(s.whole.len() > 2_000);
    }
    // One client, one request at a time: one connection to the controller, kept.
    assert!(
        seen.iter().all(|s| s.connection == seen[0].connection),
        "connections: {:?}",
        seen.iter().map(|s| s.connection).collect::<Vec<_>>()
    );
}

#[test]
fn a_kept_connection_the_controller_closed_is_replaced_and_the_request_served() {
    let controller = Scripted::start(Script::OnePerConnection);
    let fleet = fleet(&controller);
    block_on(async {
        let c = client();
        for i in 0..10 {
            let resp = invoke(&c, &fleet.proxy_url(), &format!("a{i}"), json!({})).send().await.unwrap();
            assert_eq!(resp.status(), 200, "request {i}");
        }
        let metrics = metrics_text(&fleet.admin_url()).await;
        assert_eq!(
            metric(&metrics, "switchyard_invocations_total", &[("pool", "legacy"), ("class", "ok")]),
            10.0,
            "{metrics}"
        );
    });
    // Each answered request had a connection of its own; none went unanswered to the client.
    let seen = controller.seen();
    let mut connections: Vec<usize> = seen.iter().map(|s| s.connection).collect();
    connections.dedup();
    assert!(connections.len() >= 10, "{connections:?}");
}

#[test]
fn a_chunked_answer_streams_through_whole_and_the_connection_is_kept() {
    let controller = Scripted::start(Script::Chunked);
    let fleet = fleet(&controller);
    block_on(async {
        let c = client();
        for i in 0..3 {
            let resp = invoke(&c, &fleet.proxy_url(), &format!("a{i}"), json!({})).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.json::<Value>().await.unwrap(), json!({"a": 1, "b": "xy"}));
        }
    });
    let seen = controller.seen();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|s| s.connection == seen[0].connection),
        "a read chunked answer leaves the connection usable"
    );
}

#[test]
fn a_head_answer_keeps_its_length_and_has_no_body() {
    let controller = Scripted::start(Script::HeadAnswer);
    let fleet = fleet(&controller);
    block_on(async {
        let c = client();
        for _ in 0..3 {
            let resp = c.head(format!("{}/api/v1/namespaces/guest/actions/a", fleet.proxy_url())).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["content-length"], "42");
        }
    });
    assert_eq!(controller.seen().len(), 3);
}

#[test]
fn hop_by_hop_fields_stop_at_the_proxy_both_ways() {
    let controller = Scripted::start(Script::HopByHop);
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
    let head = head_of(&controller.seen()[0].whole);
    assert!(head.contains("x-client-end: 2"), "{head}");
    for gone in ["x-client-private", "keep-alive", "connection:"] {
        assert!(!head.contains(gone), "{gone} reached the controller: {head}");
    }
}

#[test]
fn expect_100_continue_is_answered_by_the_proxy() {
    let controller = Scripted::start(Script::Ok);
    let fleet = fleet(&controller);
    let auth = format!("Basic {}", base64_guest());
    let mut s = TcpStream::connect(fleet.proxy.proxy_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = b"{\"x\":1}";
    write!(
        s,
        "POST /api/v1/namespaces/guest/actions/a?blocking=true HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&buf[..n]));
    s.write_all(body).unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"{\"ok\":true}") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    let seen = controller.seen();
    assert!(!head_of(&seen[0].whole).contains("expect"), "the controller was asked to continue");
    assert!(seen[0].whole.ends_with(body));
}

#[test]
fn a_garbled_answer_is_an_openwhisk_shaped_502_and_counts_against_the_controller() {
    let controller = Scripted::start(Script::Garbled);
    let fleet = fleet(&controller);
    block_on(async {
        let resp = invoke(&client(), &fleet.proxy_url(), "a", json!({}))
            .header("x-request-id", "garbled-1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 502);
        let body: Value = resp.json().await.unwrap();
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

fn base64_guest() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(GUEST_KEY)
}

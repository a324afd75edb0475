//! What a hostile rule document, a hostile client or hostile answers can do to a running
//! switchyard: each is answered by a clean, bounded rejection, and traffic keeps flowing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::*;
use whisk_sim::ActionProfile;

const TOKEN: &str = "hardening-token-0123456789";

fn fleet_with_token(rules: &str) -> LocalFleet {
    let mut spec = FleetSpec::new(rules);
    spec.tweak = Some(Box::new(|c| c.admin.token = Some(TOKEN.to_string())));
    LocalFleet::start(spec).expect("fleet")
}

/// The documents of the hardening report, each with its media type.
fn hostile_documents() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let deep_yaml =
        format!("version: x\nnote:\n{}", (0..3_000).map(|i| format!("{}- \n", " ".repeat(i % 40))).collect::<String>());
    let mut alias_bomb = String::from("version: x\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        alias_bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", ")));
    }
    let many_unknown: String =
        std::iter::once("version = \"x\"\n".to_string()).chain((0..700_000).map(|i| format!("k{i}=1\n"))).collect();
    vec![
        ("path-expression key", "application/toml", b"version = \"x\"\n\"a[1099511627776]\" = 1\n".to_vec()),
        ("capacity overflow key", "application/toml", b"version = \"x\"\n\"a[9223372036854775807]\" = 1\n".to_vec()),
        ("deep YAML", "application/yaml", deep_yaml.into_bytes()),
        ("alias bomb", "application/yaml", alias_bomb.into_bytes()),
        ("700k unknown keys (6 MB)", "application/toml", many_unknown.into_bytes()),
        ("version with a newline", "application/toml", b"version = \"v\\nold_version=forged\"\n".to_vec()),
    ]
}

#[test]
fn hostile_rule_documents_are_rejected_and_the_old_rules_keep_serving() {
    let fleet = fleet_with_token("version = \"good\"\nscheduler_share = 0\n");
    let (base, admin) = (fleet.proxy_url(), fleet.admin_url());
    block_on(async {
        let c = client();
        for (name, media, body) in hostile_documents() {
            let started = Instant::now();
            let resp = c
                .put(format!("{admin}/rules"))
                .bearer_auth(TOKEN)
                .header("content-type", media)
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{name}: the admin API did not answer: {e}"));
            assert_eq!(resp.status(), 422, "{name}");
            let text = resp.text().await.unwrap();
            assert!(text.len() < 64 * 1024, "{name}: a {} byte rejection", text.len());
            assert!(started.elapsed() < Duration::from_secs(10), "{name}: took {:?}", started.elapsed());
            let status: Value = c.get(format!("{admin}/rules/status")).send().await.unwrap().json().await.unwrap();
            assert_eq!(status["active"]["version"], "good", "{name}");
            assert!(status.to_string().len() < 64 * 1024, "{name}: status of {} bytes", status.to_string().len());
            let served = invoke(&c, &base, "hello", json!({})).send().await.unwrap();
            assert_eq!(served.status(), 200, "{name}: traffic stopped");
            assert_eq!(served.headers()["x-switchyard-rules-version"], "good");
        }
        let status: Value = c.get(format!("{admin}/rules/status")).send().await.unwrap().json().await.unwrap();
        let last = &status["last_rejected"];
        assert!(last["errors"].as_array().unwrap().len() <= switchyard_rules::MAX_ERRORS);
        let text = metrics_text(&admin).await;
        assert_eq!(
            metric(&text, "switchyard_rules_reloads_total", &[("source", "admin"), ("result", "rejected")]),
            6.0
        );
    });
    // The 700k-key document is the one rejected last but one: its errors are capped and counted.
    let (_, _, body) = hostile_documents().swap_remove(4);
    let err = switchyard_rules::parse_rules(&body, switchyard_rules::RulesFormat::Toml, "t").unwrap_err();
    assert_eq!((err.errors.len(), err.more), (switchyard_rules::MAX_ERRORS, 700_000 - switchyard_rules::MAX_ERRORS));
}

#[test]
fn a_hostile_rules_file_is_rejected_through_the_watch() {
    let fleet = fleet_with_token("version = \"good\"\nscheduler_share = 0\n");
    let path = fleet.rules_path();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, "version = \"x\"\n\"a[1099511627776]\" = 1\n").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = metrics_text(&fleet.admin_url()).await;
            if metric(&text, "switchyard_rules_reloads_total", &[("source", "file"), ("result", "rejected")]) == 1.0 {
                break;
            }
            assert!(Instant::now() < deadline, "the file change was never seen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let served = invoke(&client(), &fleet.proxy_url(), "hello", json!({})).send().await.unwrap();
        assert_eq!(served.headers()["x-switchyard-rules-version"], "good");
    });
}

#[test]
fn request_ids_are_bounded_and_always_reach_the_controller() {
    let fleet = LocalFleet::start(FleetSpec::new("version = \"r\"\nscheduler_share = 0\n")).expect("fleet");
    let base = fleet.proxy_url();
    block_on(async {
        let c = client();
        // A caller's short token is kept, even when the client lists it as hop-by-hop.
        let resp = invoke(&c, &base, "hello", json!({}))
            .header("x-request-id", "caller-id-1")
            .header("connection", "keep-alive, X-Request-ID")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-request-id"], "caller-id-1");
        assert!(fleet.legacy.saw_request_id("caller-id-1"), "the controller got no id");
        // Too long, or carrying log syntax: replaced by a generated one, which the controller gets.
        for bad in ["x".repeat(10_000), "x pool=scheduler kind=invoke error=\"none\"".to_string()] {
            let resp = invoke(&c, &base, "hello", json!({})).header("x-request-id", bad.as_str()).send().await.unwrap();
            let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
            assert_ne!(id, bad);
            assert_eq!(id.len(), 32, "a generated id");
            assert!(fleet.legacy.saw_request_id(&id));
        }
    });
}

#[test]
fn a_client_cannot_pose_as_a_shadow_copy() {
    let fleet = LocalFleet::start(FleetSpec::new("version = \"s\"\nscheduler_share = 0\n")).expect("fleet");
    block_on(async {
        let resp = invoke(&client(), &fleet.proxy_url(), "hello", json!({}))
            .header("x-switchyard-shadow", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    });
    assert_eq!(fleet.legacy.stats().shadow_marked, 0, "the client's marker reached the controller");
}

#[test]
fn only_the_active_rules_version_is_exported() {
    let fleet = fleet_with_token("version = \"v0\"\nscheduler_share = 0\n");
    block_on(async {
        let c = client();
        for i in 1..=30 {
            let resp = c
                .put(format!("{}/rules", fleet.admin_url()))
                .bearer_auth(TOKEN)
                .header("content-type", "application/toml")
                .body(format!("version = \"v{i}\"\nscheduler_share = {}\n", i % 2))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
        let text = metrics_text(&fleet.admin_url()).await;
        let info: Vec<&str> = text.lines().filter(|l| l.starts_with("switchyard_rules_info")).collect();
        assert_eq!(info, vec!["switchyard_rules_info{version=\"v30\"} 1"]);
    });
}

/// Many distinct actions and a large answer from the shadow copy: the live report stays within
/// its limits (the rest counted as "other"), and the large answer is not read.
#[test]
fn client_traffic_and_answers_cannot_grow_shadow_state() {
    let rules = "version = \"sh\"\nscheduler_share = 0\n[[overrides]]\nnamespace = \"guest\"\naction = \"pure-*\"\nshare = 0\nshadow = { sample = 100 }\n";
    let mut spec = FleetSpec::new(rules);
    spec.scheduler.actions.insert(
        "guest/pure-big".into(),
        ActionProfile { result_patch: Some(json!({"blob": "x".repeat(300_000)})), ..ActionProfile::default() },
    );
    spec.tweak = Some(Box::new(|c| {
        c.shadow.report.max_actions = 10;
        c.shadow.max_body_bytes = 64 * 1024;
    }));
    let fleet = LocalFleet::start(spec).expect("fleet");
    block_on(async {
        let c = client();
        for i in 0..40 {
            let resp = invoke(&c, &fleet.proxy_url(), &format!("pure-{i}"), json!({})).send().await.unwrap();
            assert_eq!(resp.status(), 200);
        }
        let resp = invoke(&c, &fleet.proxy_url(), "pure-big", json!({})).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let deadline = Instant::now() + Duration::from_secs(10);
        let report = loop {
            let report: Value =
                c.get(format!("{}/shadow/report", fleet.admin_url())).send().await.unwrap().json().await.unwrap();
            if report["records"] == 41 {
                break report;
            }
            assert!(Instant::now() < deadline, "records did not arrive: {report}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let actions = report["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 11, "10 actions and the other line");
        let samples: u64 = actions.iter().map(|a| a["samples"].as_u64().unwrap()).sum();
        assert_eq!(samples, 41, "nothing lost");
        let text = metrics_text(&fleet.admin_url()).await;
        assert_eq!(metric(&text, "switchyard_shadow_comparisons_total", &[("outcome", "skipped")]), 1.0);
    });
    let records = std::fs::read_to_string(fleet.shadow_records_path()).unwrap();
    let big = records.lines().find(|l| l.contains("pure-big")).expect("a record for the big answer");
    assert!(big.contains("response_too_large"), "{big}");
}

/// A connection that never finishes its request header is closed; the admin API keeps answering.
#[test]
fn slow_admin_clients_are_cut_off() {
    let fleet = LocalFleet::start(FleetSpec::new("version = \"a\"\n")).expect("fleet");
    let mut slow = TcpStream::connect(fleet.proxy.admin_addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    // Closed (0 bytes, or an error answer then close) well before the read timeout.
    loop {
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) => panic!("still open after {:?}: {e}", started.elapsed()),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(10), "closed after {:?}", started.elapsed());
    block_on(async {
        let resp = client().get(format!("{}/healthz", fleet.admin_url())).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    });
}

/// Past `max_client_connections` open on the proxy port, a new connection is closed at once and
/// counted; once clients leave, new ones are served again.
#[test]
fn client_connections_past_the_cap_are_closed_and_counted() {
    let mut spec = FleetSpec::new("version = \"cap\"\n");
    spec.tweak = Some(Box::new(|c| c.max_client_connections = 20));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let addr = fleet.proxy.proxy_addr;
    let mut idle: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let gauge = || metric(&block_on(metrics_text(&fleet.admin_url())), "switchyard_client_connections", &[]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while gauge() < 20.0 {
        assert!(Instant::now() < deadline, "the 20 connections were not counted: {}", gauge());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut extra = TcpStream::connect(addr).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ =
        extra.write_all(b"POST /api/v1/namespaces/guest/actions/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    let mut buf = [0u8; 64];
    assert!(matches!(extra.read(&mut buf), Ok(0) | Err(_)), "the 21st connection is closed without an answer");
    let text = block_on(metrics_text(&fleet.admin_url()));
    assert!(metric(&text, "switchyard_client_connections_refused_total", &[]) >= 1.0);
    assert_eq!(metric(&text, "switchyard_client_connections", &[]), 20.0);
    idle.truncate(10);
    let deadline = Instant::now() + Duration::from_secs(5);
    while gauge() > 10.0 {
        assert!(Instant::now() < deadline, "closed connections are still counted: {}", gauge());
        std::thread::sleep(Duration::from_millis(20));
    }
    block_on(async {
        let resp = with_guest(
            client().post(format!("{}/api/v1/namespaces/guest/actions/hello?blocking=true", fleet.proxy_url())),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(resp.status(), 200, "served again below the cap");
    });
}

/// Opens a connection to `addr` from the loopback address `from` (127.0.0.x: every one of them is
/// this machine, so each stands for another client).
fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::from((from, 0)))?;
        socket.connect(addr).await?.into_std()
    })?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// One address that opens as many slow connections as it may cannot take the slots of others.
#[test]
fn one_client_cannot_hold_every_connection_slot() {
    let mut spec = FleetSpec::new("version = \"per-ip\"\n");
    spec.tweak = Some(Box::new(|c| {
        c.max_client_connections = 50;
        c.max_client_connections_per_ip = 25;
    }));
    let fleet = LocalFleet::start(spec).expect("fleet");
    let addr = fleet.proxy.proxy_addr;
    // The hostile client: 50 connections, each sending one byte of a request and then nothing.
    let hostile: Vec<TcpStream> = (0..50)
        .filter_map(|_| {
            let mut s = connect_from([127, 0, 0, 2], addr).ok()?;
            let _ = s.write_all(b"P");
            Some(s)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let text = block_on(metrics_text(&fleet.admin_url()));
    assert_eq!(metric(&text, "switchyard_client_connections", &[]), 25.0, "{text}");
    assert!(metric(&text, "switchyard_client_connections_refused_total", &[("reason", "per_ip")]) >= 25.0);
    // The others are served.
    let auth = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(GUEST_KEY)
    };
    let mut served = 0;
    for i in 0..20u8 {
        let Ok(mut s) = connect_from([127, 0, 0, 3 + i % 5], addr) else { continue };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = write!(
            s,
            "POST /api/v1/namespaces/guest/actions/hello?blocking=true HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{{}}"
        );
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        if answer.starts_with("HTTP/1.1 200") {
            served += 1;
        }
    }
    assert_eq!(served, 20, "clients from other addresses were shut out");
    drop(hostile);
}

/// Slow authorised calls that change something cannot shut out the scrapes.
#[test]
fn slow_authorised_writes_leave_slots_for_scrapes() {
    let fleet = fleet_with_token("version = \"slots\"\n");
    let admin = fleet.proxy.admin_addr;
    // 64 PUTs with the token, each sending its header and then its body a byte at a time.
    let slow: Vec<TcpStream> = (0..64)
        .filter_map(|_| {
            let mut s = TcpStream::connect(admin).ok()?;
            let _ = write!(
                s,
                "PUT /rules HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/toml\r\nContent-Length: 1000\r\n\r\nv"
            );
            Some(s)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    block_on(async {
        for _ in 0..5 {
            let resp = client().get(format!("{}/metrics", fleet.admin_url())).send().await.expect("a scrape got in");
            assert_eq!(resp.status(), 200);
        }
    });
    drop(slow);
}

/// Rule text reaches the audit log escaped: a name cannot start a forged line or carry a raw ESC.
#[test]
fn rule_text_cannot_forge_a_log_line_or_carry_terminal_escapes() {
    let logs = captured_logs("info");
    let fleet = fleet_with_token("version = \"clean\"\n");
    // TOML escapes: the name holds a real line break and a real ESC.
    let doc = "version = \"forged\"\n[[overrides]]\nname = \"x\\nFORGED-LINE switchyard::audit: rules changed old_version=evil\\u001b[31m\"\nnamespace = \"guest\"\nshare = 50\n";
    block_on(async {
        let resp = client()
            .put(format!("{}/rules", fleet.admin_url()))
            .bearer_auth(TOKEN)
            .header("content-type", "application/toml")
            .body(doc)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    });
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("new_version=forged"), "the change was not logged: {text}");
    assert!(text.lines().all(|l| !l.starts_with("FORGED-LINE")), "a forged line: {text}");
    assert!(!text.contains('\u{1b}'), "a raw escape reached the log: {text:?}");
}

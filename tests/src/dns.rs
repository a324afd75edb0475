//! A DNS server on loopback, for the pools that follow names: it answers A and AAAA queries over
//! UDP from a table the test changes while the proxy runs, and can be told to stop answering or to
//! answer with no address. Messages are read and written with hickory's protocol types, so the
//! proxy's resolver talks to it as to any DNS server.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answering {
    /// From the table.
    Table,
    /// Not at all: queries are read and dropped (a server that is down or unreachable).
    Silent,
    /// Every name exists with no address (NOERROR, no records).
    Empty,
}

struct State {
    /// Lowercase name without the final dot → its addresses.
    names: HashMap<String, Vec<IpAddr>>,
    answering: Answering,
}

pub struct LocalDns {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    queries: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The TTL of every answer: short, so the resolver's cache never outlives a test's change.
pub const TTL_S: u32 = 1;

impl LocalDns {
    pub fn start() -> LocalDns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback UDP port");
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let addr = socket.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State { names: HashMap::new(), answering: Answering::Table }));
        let (queries, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let thread = {
            let (state, queries, stop) = (Arc::clone(&state), Arc::clone(&queries), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                while !stop.load(Relaxed) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                    queries.fetch_add(1, Relaxed);
                    let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
                    let state = state.lock().unwrap();
                    if let Some(answer) = answer(&query, &state) {
                        let _ = socket.send_to(&answer, from);
                    }
                }
            })
        };
        LocalDns { addr, state, queries, stop, thread: Some(thread) }
    }

    /// Where the proxy's `dns.nameservers` should point.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes `name` resolve to `addrs` (IPv4 as A records, IPv6 as AAAA).
    pub fn set(&self, name: &str, addrs: &[IpAddr]) {
        self.state.lock().unwrap().names.insert(name.trim_end_matches('.').to_ascii_lowercase(), addrs.to_vec());
    }

    pub fn answering(&self, how: Answering) {
        self.state.lock().unwrap().answering = how;
    }

    /// Queries received so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Relaxed)
    }
}

impl Drop for LocalDns {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(query: &Message, state: &State) -> Option<Vec<u8>> {
    if state.answering == Answering::Silent {
        return None;
    }
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    for q in query.queries() {
        reply.add_query(q.clone());
        let name = q.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let known = state.names.get(&name);
        if known.is_none() && state.answering == Answering::Table {
            reply.set_response_code(ResponseCode::NXDomain);
            continue;
        }
        if state.answering == Answering::Empty {
            continue;
        }
        for ip in known.into_iter().flatten() {
            let rdata = match (ip, q.query_type()) {
                (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                _ => continue,
            };
            reply.add_answer(Record::from_rdata(q.name().clone(), TTL_S, rdata));
        }
    }
    reply.to_vec().ok()
}

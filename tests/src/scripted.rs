//! A scripted controller over raw sockets: it reads requests exactly as they arrive, answers
//! exactly the bytes a test names (stray bytes, early answers, closes mid-request included), and
//! records every request it read. `GET /ping` (the proxy's health check) is always answered
//! `200 pong` and not recorded, so a script sees only the traffic under test.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the controller read it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Which connection (counted from 0, in accept order) carried it.
    pub connection: usize,
    /// The head, lowercased (request line and fields).
    pub head: String,
    /// The bytes of the first read of the request.
    pub first_read: Vec<u8>,
    /// The body as read (decoded when chunked); for a request the script answered early, what
    /// had been read of it.
    pub body: Vec<u8>,
}

impl Seen {
    /// The value of a field of the head (lowercased).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::trim))
    }
}

/// One client connection of the controller, as its script sees it.
pub struct Peer {
    stream: TcpStream,
    /// Bytes read and not yet used.
    buf: Vec<u8>,
    pub connection: usize,
    /// Requests (not pings) read on this connection so far.
    pub requests: usize,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A request head the script decides on before its body is read.
pub struct Head {
    pub text: String,
    first_read: Vec<u8>,
}

impl Head {
    pub fn content_length(&self) -> usize {
        self.field("content-length").and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    pub fn chunked(&self) -> bool {
        self.field("transfer-encoding").is_some_and(|v| v.contains("chunked"))
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.text.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::trim))
    }

    /// The request id the proxy sent.
    pub fn request_id(&self) -> String {
        self.field("x-request-id").unwrap_or_default().to_string()
    }
}

impl Peer {
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(n) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    /// Reads the next request head; `None` when the connection closed first.
    pub fn head(&mut self) -> Option<Head> {
        let mut first_read = None;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                self.buf.drain(..end + 4);
                return Some(Head { text, first_read: first_read.unwrap_or_default() });
            }
            if !self.fill() {
                return None;
            }
            first_read.get_or_insert_with(|| self.buf.clone());
        }
    }

    /// Reads `n` bytes of raw body (or what arrives before the connection closes).
    pub fn read_raw(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n && self.fill() {}
        let n = n.min(self.buf.len());
        self.buf.drain(..n).collect()
    }

    /// Reads the whole body the head announces (decoding chunks).
    pub fn body(&mut self, head: &Head) -> Vec<u8> {
        if !head.chunked() {
            return self.read_raw(head.content_length());
        }
        let mut body = Vec::new();
        loop {
            let line = loop {
                if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                    break String::from_utf8_lossy(&line[..end]).to_string();
                }
                if !self.fill() {
                    return body;
                }
            };
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
            if size == 0 {
                // No trailers are sent by the proxy: the empty line ends the body.
                self.read_raw(2);
                return body;
            }
            body.extend(self.read_raw(size));
            self.read_raw(2);
        }
    }

    /// Records a request the script read (or read in part).
    pub fn record(&mut self, head: &Head, body: Vec<u8>) {
        self.requests += 1;
        let seen =
            Seen { connection: self.connection, head: head.text.clone(), first_read: head.first_read.clone(), body };
        self.seen.lock().unwrap().push(seen);
    }

    /// The next request that is not a health check, read whole and recorded; `None` when the
    /// connection closed.
    pub fn next_request(&mut self) -> Option<Head> {
        loop {
            let head = self.head()?;
            let body = self.body(&head);
            if head.text.starts_with("get /ping ") {
                self.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong");
                continue;
            }
            self.record(&head, body);
            return Some(head);
        }
    }

    /// The next request's head (health checks answered and skipped), its body left unread.
    pub fn next_head(&mut self) -> Option<Head> {
        loop {
            let head = self.head()?;
            if head.text.starts_with("get /ping ") {
                let _ = self.body(&head);
                self.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong");
                continue;
            }
            return Some(head);
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Closes the connection after what was written (the write side first, so the client reads
    /// everything before it sees the end).
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Write);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `200` with a JSON body naming the request id it answers, `Content-Length` framing.
pub fn answer_for(id: &str) -> Vec<u8> {
    let body = format!("{{\"for\":\"{id}\"}}");
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-request-id: {id}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub type Script = Arc<dyn Fn(Peer) + Send + Sync>;

pub struct ScriptedController {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl ScriptedController {
    /// Listens on a free loopback port; each connection runs `script` on a thread of its own.
    /// The accept queue holds 1,024 connections: a burst of a few hundred must not overflow it
    /// (std's queue of 128 drops the excess, whose connects then wait a second for a retry).
    pub fn start(script: impl Fn(Peer) + Send + Sync + 'static) -> ScriptedController {
        let listener = {
            use socket2::{Domain, Socket, Type};
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
            socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind");
            socket.listen(1024).expect("listen");
            TcpListener::from(socket)
        };
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (record, script): (_, Script) = (Arc::clone(&seen), Arc::new(script));
        std::thread::spawn(move || {
            for (connection, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let (seen, script) = (Arc::clone(&record), Arc::clone(&script));
                std::thread::spawn(move || script(Peer { stream, buf: Vec::new(), connection, requests: 0, seen }));
            }
        });
        ScriptedController { addr, seen }
    }

    /// Answers every request with [`answer_for`] its request id, keeping connections open.
    pub fn echo() -> ScriptedController {
        ScriptedController::start(|mut peer| {
            while let Some(head) = peer.next_request() {
                peer.write(&answer_for(&head.request_id()));
            }
        })
    }

    /// Answers every request with the same bytes, keeping connections open.
    pub fn always(answer: &'static [u8]) -> ScriptedController {
        ScriptedController::start(move |mut peer| {
            while peer.next_request().is_some() {
                peer.write(answer);
            }
        })
    }

    /// The requests read so far (health checks excluded).
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests carried this request id.
    pub fn times_seen(&self, request_id: &str) -> usize {
        self.seen().iter().filter(|s| s.field("x-request-id") == Some(request_id)).count()
    }
}

//! A webhook receiver on loopback for the notification tests: it records every request (head
//! fields and body) and answers 200, after a delay when told to be slow.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Field names in lowercase.
    pub fields: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

pub struct Webhook {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    delay_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (got, delay_ms, stop) = (Arc::default(), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (g, d, s) = (Arc::clone(&got), Arc::clone(&delay_ms), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !s.load(Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (g, d) = (Arc::clone(&g), Arc::clone(&d));
                        std::thread::spawn(move || serve(conn, &g, &d));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Webhook { addr, got, delay_ms, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers each request only after `delay`.
    pub fn slow(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Relaxed);
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// Reads requests on one connection until it closes; records each and answers 200.
fn serve(conn: TcpStream, got: &Mutex<Vec<Received>>, delay_ms: &AtomicU64) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(conn.try_clone().expect("a second handle"));
    let mut writer = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut fields = HashMap::new();
        loop {
            let mut field = String::new();
            if reader.read_line(&mut field).unwrap_or(0) == 0 {
                return;
            }
            let field = field.trim_end();
            if field.is_empty() {
                break;
            }
            if let Some((name, value)) = field.split_once(':') {
                fields.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
        let len: usize = fields.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        got.lock().unwrap().push(Received { fields, body });
        std::thread::sleep(Duration::from_millis(delay_ms.load(Relaxed)));
        if writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
            return;
        }
    }
}

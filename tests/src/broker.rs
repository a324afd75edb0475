//! A real Kafka-protocol broker for the end-to-end tests: tansu with in-memory storage, on a
//! loopback port, killed when dropped.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

use crate::free_port;

pub struct Tansu {
    pub child: Child,
    /// `host:port` for `bootstrap.servers`.
    pub brokers: String,
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Tansu {
    /// Starts a broker and creates the topics (tansu does not create topics on demand).
    pub fn start(topics: &[&str]) -> Tansu {
        let port = free_port();
        let tansu = Tansu::spawn(port, port);
        create_topics(ClientConfig::new().set("bootstrap.servers", &tansu.brokers), topics);
        tansu
    }

    /// A broker listening on `port` that tells clients to connect to `advertised`.
    pub fn spawn(port: u16, advertised: u16) -> Tansu {
        let (url, advertised_url) = (format!("tcp://127.0.0.1:{port}"), format!("tcp://127.0.0.1:{advertised}"));
        let child = Command::new("tansu")
            .args(["broker", "--storage-engine", "memory://tansu/", "--listener-url", &url])
            .args(["--advertised-listener-url", &advertised_url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`tansu` is needed: cargo install tansu --version 0.6.0 --locked --features dynostore (scripts/test does)");
        crate::wait_accepting(SocketAddr::from(([127, 0, 0, 1], port)), || "tansu did not start".into());
        Tansu { child, brokers: format!("127.0.0.1:{advertised}") }
    }
}

/// Creates single-partition topics through `client`'s brokers.
pub fn create_topics(client: &ClientConfig, topics: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = client.create().expect("admin client");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let new: Vec<NewTopic<'_>> = topics.iter().map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1))).collect();
    let results = rt
        .block_on(admin.create_topics(&new, &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))))
        .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

/// Shadow records to `topic` on `brokers`, each given up after `message_timeout_ms`, with the
/// producer reconnecting quickly once a broker is back (librdkafka backs off up to 10 s by default).
pub fn records_to(c: &mut switchyard::ServerConfig, brokers: String, topic: &str, message_timeout_ms: u64) {
    c.kafka.brokers = brokers;
    c.kafka.records_topic = topic.into();
    c.kafka.message_timeout_ms = message_timeout_ms;
    c.kafka.properties.insert("reconnect.backoff.ms".into(), "100".into());
    c.kafka.properties.insert("reconnect.backoff.max.ms".into(), "500".into());
}

/// Where every shadow record went, from `GET /readyz` and the metrics: delivered to Kafka, failed,
/// dropped, and how many comparisons produced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCounts {
    pub delivered: u64,
    pub failed: u64,
    pub dropped: u64,
    pub compared: u64,
}

impl RecordCounts {
    pub async fn read(admin: &str) -> RecordCounts {
        let ready: serde_json::Value =
            crate::client().get(format!("{admin}/readyz")).send().await.unwrap().json().await.unwrap();
        let r = &ready["kafka"]["records"];
        let metrics = crate::metrics_text(admin).await;
        let compared = crate::comparisons(&metrics);
        let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("readyz without kafka.records.{k}: {ready}"));
        RecordCounts {
            delivered: n("delivered"),
            failed: n("failed"),
            dropped: n("dropped"),
            compared: compared as u64,
        }
    }

    /// Every record produced is delivered, failed or dropped.
    pub fn accounted(&self) -> bool {
        self.delivered + self.failed + self.dropped == self.compared
    }
}

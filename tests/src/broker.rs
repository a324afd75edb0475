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

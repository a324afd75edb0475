//! Helpers shared by the end-to-end scenarios in `tests/`: clients, OpenWhisk calls through the
//! proxy, and reading the proxy's Prometheus metrics.
#![forbid(unsafe_code)]

use std::future::Future;
use std::net::{SocketAddr, TcpListener};

pub use switchyard::fleet::{FleetSpec, LocalFleet};
pub use whisk_sim::GUEST_KEY;

/// Runs async client code from a plain `#[test]`: the fleet's own runtimes must not be started
/// from inside another runtime, so tests start the fleet first and then drive it from here.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime").block_on(f)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().expect("client")
}

/// A loopback address where nothing listens (bound, then released).
pub fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port")
}

/// `POST .../actions/{path}?blocking=true&result=true` with the guest key.
pub fn invoke(client: &reqwest::Client, base: &str, path: &str, params: serde_json::Value) -> reqwest::RequestBuilder {
    let (user, key) = GUEST_KEY.split_once(':').expect("uuid:key");
    client
        .post(format!("{base}/api/v1/namespaces/guest/actions/{path}?blocking=true&result=true"))
        .basic_auth(user, Some(key))
        .json(&params)
}

/// The guest's Basic credentials for other API calls.
pub fn with_guest(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let (user, key) = GUEST_KEY.split_once(':').expect("uuid:key");
    req.basic_auth(user, Some(key))
}

pub fn pool_of(resp: &reqwest::Response) -> String {
    resp.headers().get("x-switchyard-pool").and_then(|v| v.to_str().ok()).unwrap_or("none").to_string()
}

pub async fn metrics_text(fleet_admin: &str) -> String {
    client().get(format!("{fleet_admin}/metrics")).send().await.expect("scrape").text().await.expect("body")
}

/// The value of one sample in Prometheus text, matched by name and a subset of its labels
/// (`[("pool","legacy")]`); 0 when absent.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric_name, label_part) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric_name == name && labels.iter().all(|(k, v)| label_part.contains(&format!("{k}=\"{v}\""))))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

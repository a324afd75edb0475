//! Notifications: what happens to the ramp and the rules, sent to webhooks (`[[notify]]`), so a
//! rollback at 3 a.m. reaches a person. Never on the request path: an event is put on each
//! receiver's bounded queue (a full queue drops it, counted) and a task per receiver sends it, with
//! retries and backoff. A dead or slow receiver costs a counter, nothing else.
//!
//! The JSON format is versioned (`schema`); every replica sends its own copy of a fleet event
//! (a step, a rollback, a rules version) under the same `id`, so a receiver can drop repeats.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::ops::delivery::Delivery;
use crate::ops::metrics::{Counters, Metrics, NOTIFICATIONS};

/// The `schema` of the JSON format.
pub const SCHEMA: &str = "switchyard.event/v1";
/// The header carrying the signature: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "x-switchyard-signature";
/// Events waiting per receiver; past it a new event is dropped (counted).
pub const QUEUE: usize = 256;
/// Attempts per event and receiver, and the wait before the first retry (doubled each time).
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// One attempt's limit.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// What happened (the `event` field; `[[notify]] events` names them).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::EnumIter, strum::EnumString, strum::IntoStaticStr,
)]
pub enum EventKind {
    #[strum(serialize = "ramp.started")]
    RampStarted,
    #[strum(serialize = "ramp.step_advanced")]
    StepAdvanced,
    #[strum(serialize = "ramp.held_by_gate")]
    HeldByGate,
    #[strum(serialize = "ramp.awaiting_approval")]
    AwaitingApproval,
    #[strum(serialize = "ramp.approved")]
    Approved,
    #[strum(serialize = "ramp.held")]
    Held,
    #[strum(serialize = "ramp.released")]
    Released,
    #[strum(serialize = "ramp.would_roll_back")]
    WouldRollBack,
    #[strum(serialize = "ramp.rolled_back")]
    RolledBack,
    #[strum(serialize = "ramp.resumed")]
    Resumed,
    #[strum(serialize = "ramp.completed")]
    Completed,
    #[strum(serialize = "kill_switch.on")]
    KillSwitchOn,
    #[strum(serialize = "kill_switch.off")]
    KillSwitchOff,
    #[strum(serialize = "rules.accepted")]
    RulesAccepted,
    #[strum(serialize = "rules.rejected")]
    RulesRejected,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How a receiver wants its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The documented JSON event (`schema` = [`SCHEMA`]).
    #[default]
    Json,
    /// A Slack incoming-webhook payload (`{"text": ...}`).
    Slack,
}

/// One receiver, as the config resolved it.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub url: reqwest::Url,
    /// `None`: every event.
    pub events: Option<BTreeSet<EventKind>>,
    pub format: Format,
    /// Read at each send, so a rotated secret takes effect without a restart.
    pub secret_file: Option<PathBuf>,
}

/// One event, as every receiver gets it.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    /// The same on every replica for the same fleet event.
    pub id: String,
    pub time_ms: u64,
    pub rules_version: String,
    /// One line for people.
    pub summary: String,
    pub detail: Value,
}

impl Event {
    /// `key` tells this event apart from others of its kind under the same rules version (a step
    /// index, say); the id is derived from the three, so each replica computes the same.
    pub fn new(kind: EventKind, rules_version: &str, key: &str, summary: String, detail: Value) -> Event {
        let id = xxhash_rust::xxh3::xxh3_128(format!("{}\n{rules_version}\n{key}", kind.as_str()).as_bytes());
        Event {
            kind,
            id: format!("{id:032x}"),
            time_ms: crate::ops::clock::now_ms(),
            rules_version: rules_version.to_string(),
            summary,
            detail,
        }
    }

    /// The body for `format`, as sent by `instance`.
    pub fn body(&self, format: Format, instance: &str) -> Value {
        match format {
            Format::Json => json!({
                "schema": SCHEMA,
                "id": self.id,
                "event": self.kind.as_str(),
                "time": switchyard_rules::format_rfc3339(self.time_ms),
                "instance": instance,
                "rules_version": self.rules_version,
                "summary": self.summary,
                "detail": self.detail,
            }),
            Format::Slack => json!({
                "text": format!("*switchyard* `{}` on {instance} (rules {}): {}", self.kind.as_str(), self.rules_version, self.summary),
            }),
        }
    }
}

/// `sha256=<hex>` of HMAC-SHA256 over `body` with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Hands events to the receivers' queues. Cheap to call from anywhere: it never waits.
pub struct Notifier {
    queues: Vec<(Receiver, mpsc::Sender<Arc<Event>>)>,
    results: Arc<Counters<Delivery>>,
}

impl Notifier {
    /// A notifier for `receivers`, and the task that sends (to run on the control runtime).
    pub fn new(
        receivers: Vec<Receiver>,
        instance: String,
        metrics: &Metrics,
    ) -> (Notifier, impl std::future::Future<Output = ()> + Send + 'static) {
        let results = Arc::new(Counters::new(metrics, NOTIFICATIONS, &[], "result"));
        let mut queues = Vec::new();
        let mut senders = Vec::new();
        for receiver in receivers {
            let (tx, rx) = mpsc::channel(QUEUE);
            senders.push(send_all(receiver.clone(), rx, instance.clone(), Arc::clone(&results)));
            queues.push((receiver, tx));
        }
        (Notifier { queues, results }, async move {
            futures::future::join_all(senders).await;
        })
    }

    /// Nobody to tell (tests, and a config without `[[notify]]`).
    pub fn none(metrics: &Metrics) -> Notifier {
        Notifier::new(Vec::new(), String::new(), metrics).0
    }

    pub fn emit(&self, event: Event) {
        let event = Arc::new(event);
        for (receiver, queue) in &self.queues {
            if receiver.events.as_ref().is_some_and(|wanted| !wanted.contains(&event.kind)) {
                continue;
            }
            if queue.try_send(Arc::clone(&event)).is_err() {
                self.results.count(Delivery::Dropped);
            }
        }
    }
}

/// Sends each event of `rx` to `receiver`, in order, until the notifier is gone.
async fn send_all(
    receiver: Receiver,
    mut rx: mpsc::Receiver<Arc<Event>>,
    instance: String,
    results: Arc<Counters<Delivery>>,
) {
    let client = match reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the notification client; notifications are off");
            return;
        }
    };
    while let Some(event) = rx.recv().await {
        let body = event.body(receiver.format, &instance).to_string();
        let mut backoff = FIRST_BACKOFF;
        let mut delivered = false;
        for attempt in 1..=ATTEMPTS {
            match send_once(&client, &receiver, &body).await {
                Ok(()) => {
                    delivered = true;
                    break;
                }
                Err(why) if attempt == ATTEMPTS => {
                    tracing::warn!(receiver = %receiver.url.host_str().unwrap_or("?"), event = event.kind.as_str(), error = %why, "a notification could not be delivered");
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        results.count(if delivered { Delivery::Delivered } else { Delivery::Failed });
    }
}

async fn send_once(client: &reqwest::Client, receiver: &Receiver, body: &str) -> Result<(), String> {
    let mut req = client.post(receiver.url.clone()).header("content-type", "application/json").body(body.to_string());
    if let Some(path) = &receiver.secret_file {
        let secret = switchyard_rules::read_capped_text(path, switchyard_rules::MAX_SECRET_FILE_BYTES)
            .map_err(|e| format!("the secret file: {e}"))?;
        req = req.header(SIGNATURE_HEADER, signature(secret.trim().as_bytes(), body.as_bytes()));
    }
    let resp = req.send().await.map_err(|e| e.without_url().to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", resp.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn every_replica_gives_a_fleet_event_the_same_id() {
        let a = Event::new(EventKind::RolledBack, "v1", "", "on a".into(), Value::Null);
        let b = Event::new(EventKind::RolledBack, "v1", "", "on b, other values".into(), json!({"x": 1}));
        let c = Event::new(EventKind::RolledBack, "v2", "", "another version".into(), Value::Null);
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn event_names_read_back() {
        use std::str::FromStr;
        use strum::IntoEnumIterator;
        for kind in EventKind::iter() {
            assert_eq!(EventKind::from_str(kind.as_str()), Ok(kind));
        }
    }
}

//! The static `[kafka]` settings, the librdkafka clients built from them, and the verify keys
//! signed rule records are checked with.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use serde::{Deserialize, Serialize};

/// Producer settings shared by the record sink and the rules publisher.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `host:port,host:port`; empty turns Kafka off.
    pub brokers: String,
    /// Topic for comparison records; empty: no Kafka record sink.
    pub records_topic: String,
    /// Topic whose newest valid record is the fleet's rule set; empty: rules do not come from Kafka.
    pub rules_topic: String,
    /// `all`, `1` or `0`.
    pub acks: String,
    /// `none`, `gzip`, `snappy`, `lz4` (zstd is not built in).
    pub compression: String,
    /// How long librdkafka retries a record before it counts as failed.
    pub message_timeout_ms: u64,
    /// The local queue: records waiting for the broker; past it new records are dropped.
    pub queue_max_messages: u32,
    /// Passed to librdkafka by name (e.g. `security.protocol`, `sasl.mechanism`, `client.id`).
    pub properties: BTreeMap<String, String>,
    /// ed25519 public keys (standard base64); when set, only rule records signed by one of them
    /// are applied.
    pub rules_verify_keys: Vec<String>,
    /// ed25519 signing key file (as `switchyard rules keygen` writes it) for the rule sets this
    /// replica publishes itself: a ramp rollback. Needed when the replicas verify signatures.
    pub rules_sign_key: Option<PathBuf>,
    /// TLS to the brokers (on when `ca_file` is set).
    pub tls: KafkaTls,
    /// SASL authentication (on when `mechanism` is set).
    pub sasl: KafkaSasl,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaTls {
    /// PEM file of the CA(s) the brokers' certificates are checked against.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for brokers that require client authentication.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// SASL mechanisms this build speaks.
pub const SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: Option<String>,
    pub username: Option<String>,
    /// The password comes from an environment variable or a file (a mounted secret), never from
    /// the config file itself, and is never logged or shown.
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// Why the SASL password could not be had (never the password itself).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the environment variable {0} is not set")]
    Unset(String),
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: switchyard_rules::FileError,
    },
    #[error("set kafka.sasl.password_env or kafka.sasl.password_file")]
    NoSource,
}

impl KafkaSasl {
    /// The password from its source.
    pub fn password(&self) -> Result<String, PasswordError> {
        match (&self.password_env, &self.password_file) {
            (Some(var), _) => std::env::var(var).map_err(|_| PasswordError::Unset(var.clone())),
            (None, Some(file)) => switchyard_rules::read_capped_text(file, switchyard_rules::MAX_SECRET_FILE_BYTES)
                .map(|p| p.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|source| PasswordError::Unreadable { path: file.clone(), source }),
            (None, None) => Err(PasswordError::NoSource),
        }
    }
}

/// Never prints property values that may be secrets (librdkafka takes passwords as properties).
impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| {
                let secret = ["password", "secret", "key"].iter().any(|s| k.contains(s));
                (k.as_str(), if secret { "<redacted>" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("records_topic", &self.records_topic)
            .field("rules_topic", &self.rules_topic)
            .field("acks", &self.acks)
            .field("compression", &self.compression)
            .field("message_timeout_ms", &self.message_timeout_ms)
            .field("queue_max_messages", &self.queue_max_messages)
            .field("properties", &properties)
            .field("rules_verify_keys", &self.rules_verify_keys)
            .field("tls", &self.tls)
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: String::new(),
            records_topic: String::new(),
            rules_topic: String::new(),
            acks: "all".into(),
            compression: "lz4".into(),
            message_timeout_ms: 30_000,
            queue_max_messages: 10_000,
            properties: BTreeMap::new(),
            rules_verify_keys: Vec::new(),
            rules_sign_key: None,
            tls: KafkaTls::default(),
            sasl: KafkaSasl::default(),
        }
    }
}

/// Why a `kafka.rules_verify_keys` entry was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum VerifyKeyError {
    #[error("not the base64 of a 32-byte ed25519 public key")]
    Encoding,
    #[error("not a valid ed25519 public key")]
    Invalid,
}

/// A verify key as the config writes it: the standard base64 of a 32-byte ed25519 public key
/// (`switchyard rules keygen` prints one).
pub fn parse_verify_key(text: &str) -> Result<VerifyingKey, VerifyKeyError> {
    let bytes: [u8; 32] =
        BASE64.decode(text.trim()).ok().and_then(|b| b.try_into().ok()).ok_or(VerifyKeyError::Encoding)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| VerifyKeyError::Invalid)
}

impl KafkaConfig {
    /// The verify keys signed rule records are checked with. Each was checked when the config was
    /// resolved, so none is dropped here.
    pub fn verify_keys(&self) -> Vec<VerifyingKey> {
        self.rules_verify_keys.iter().filter_map(|k| parse_verify_key(k).ok()).collect()
    }

    pub fn enabled(&self) -> bool {
        !self.brokers.trim().is_empty()
    }

    /// A librdkafka client config with the brokers and the pass-through properties.
    pub fn client_config(&self) -> ClientConfig {
        self.with_properties(ClientConfig::new())
    }

    /// A producer with switchyard's settings; `properties` are applied last, so an operator can
    /// override any of them by librdkafka name.
    pub fn producer(&self) -> Result<FutureProducer, KafkaError> {
        let mut c = ClientConfig::new();
        c.set("acks", &self.acks)
            .set("compression.type", &self.compression)
            .set("message.timeout.ms", self.message_timeout_ms.to_string())
            .set("queue.buffering.max.messages", self.queue_max_messages.to_string());
        self.with_properties(c).create()
    }

    fn with_properties(&self, mut c: ClientConfig) -> ClientConfig {
        c.set("bootstrap.servers", &self.brokers);
        let tls = self.tls.ca_file.is_some();
        let sasl = self.sasl.mechanism.is_some();
        let protocol = match (tls, sasl) {
            (false, false) => "plaintext",
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        c.set("security.protocol", protocol);
        let path = |p: &PathBuf| p.display().to_string();
        if let Some(ca) = &self.tls.ca_file {
            c.set("ssl.ca.location", path(ca));
        }
        if let (Some(cert), Some(key)) = (&self.tls.cert_file, &self.tls.key_file) {
            c.set("ssl.certificate.location", path(cert)).set("ssl.key.location", path(key));
        }
        if let Some(mechanism) = &self.sasl.mechanism {
            c.set("sasl.mechanism", mechanism);
            if let Some(user) = &self.sasl.username {
                c.set("sasl.username", user);
            }
            // Checked when the config was resolved; an unreadable source at this point leaves the
            // password out, and the broker refuses the connection (counted like an outage).
            if let Ok(password) = self.sasl.password() {
                c.set("sasl.password", password);
            }
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    /// Every problem with the TLS and SASL settings, each naming its field.
    pub fn security_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let tls = &self.tls;
        for (field, file) in [("ca_file", &tls.ca_file), ("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
            if let Some(file) = file {
                if let Err(e) = std::fs::metadata(file) {
                    problems.push(format!("kafka.tls.{field}: cannot read {}: {e}", file.display()));
                }
            }
        }
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            problems.push("kafka.tls: cert_file and key_file go together".into());
        }
        if (tls.cert_file.is_some() || tls.key_file.is_some()) && tls.ca_file.is_none() {
            problems.push("kafka.tls.ca_file: needed with a client certificate".into());
        }
        let sasl = &self.sasl;
        match &sasl.mechanism {
            Some(m) if !SASL_MECHANISMS.contains(&m.as_str()) => {
                problems.push(format!("kafka.sasl.mechanism: `{m}` is not one of {}", SASL_MECHANISMS.join(", ")))
            }
            Some(_) => {
                if sasl.username.is_none() {
                    problems.push("kafka.sasl.username: needed with a mechanism".into());
                }
                if let Err(e) = sasl.password() {
                    problems.push(format!("kafka.sasl: {e}"));
                }
            }
            None if sasl.username.is_some() || sasl.password_env.is_some() || sasl.password_file.is_some() => {
                problems.push("kafka.sasl.mechanism: missing (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)".into())
            }
            None => {}
        }
        problems
    }
}

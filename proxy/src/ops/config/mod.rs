//! The static server config: listeners, pools, health checks, timeouts. Read once at start from a
//! file (TOML, YAML or JSON by extension) with environment variables layered on top
//! (`SWITCHYARD_LISTEN`, `SWITCHYARD_POOLS__LEGACY__MEMBERS=a:1,b:2`, ...).

use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};

use strum::IntoEnumIterator;
use switchyard_rules::{Pool, RulesFormat};
use switchyard_shadow::{NoiseThresholds, ReportLimits};

use crate::ops::config::kafka::KafkaConfig;
use crate::ops::notify::{EventKind, Format, Receiver};

pub mod kafka;

/// Bad static config: what a person must fix, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{source_name}: {message}")]
    Load { source_name: String, message: String },
    #[error("{source_name}: {}", .problems.join("; "))]
    Invalid { source_name: String, problems: Vec<String> },
}

/// `SWITCHYARD_*` variables that are not config overrides.
const NOT_CONFIG_VARS: &[&str] = &["SWITCHYARD_LOG"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where clients (the OpenWhisk ingress, `wsk`, SDKs) connect.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The rules file; relative paths are relative to the config file.
    pub rules: PathBuf,
    /// Reload the rules when the file changes (the parent directory is watched).
    #[serde(default = "yes")]
    pub watch_rules: bool,
    /// Add `x-switchyard-pool` and `x-switchyard-rules-version` to responses.
    #[serde(default = "yes")]
    pub pool_header: bool,
    /// Worker threads of the proxy (0: one per CPU).
    #[serde(default)]
    pub threads: usize,
    /// Let pingora's worker threads steal each other's work. Off by default: measured about 15 %
    /// more throughput on loopback without it. A process that starts more than one proxy one after
    /// another (tests, the demo) must turn it on: pingora 0.9's per-thread runtime handles outlive
    /// their threads and are picked up by later threads that reuse the thread id.
    #[serde(default)]
    pub work_stealing: bool,
    /// Read buffer per client connection. pingora's default (64 KiB) makes every keep-alive
    /// client cost far more than its request needs; 512 bytes hold a typical invocation's header
    /// (read in one `recv` with the wait for it), and a larger request is simply read in more steps.
    #[serde(default = "default_read_buffer")]
    pub read_buffer_bytes: usize,
    /// Write buffer per client connection: an answer's header and a small body leave in one send.
    #[serde(default = "default_write_buffer")]
    pub write_buffer_bytes: usize,
    /// Client connections open at once on the proxy port; past it a new connection is closed at
    /// once (counted), so a flood of idle or slow clients has a bounded cost.
    #[serde(default = "default_max_client_connections")]
    pub max_client_connections: usize,
    /// Client connections open at once from one address: one client cannot hold every slot.
    /// Behind a load balancer or ingress that does not keep the client's address, raise it to
    /// `max_client_connections`.
    #[serde(default = "default_max_client_connections_per_ip")]
    pub max_client_connections_per_ip: usize,
    #[serde(default)]
    pub admin: AdminConfig,
    pub pools: PoolsConfig,
    #[serde(default)]
    pub health: HealthConfig,
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    #[serde(default)]
    pub shadow: ShadowConfig,
    /// Resolving `_` (the caller's default namespace) before routing.
    #[serde(default)]
    pub namespaces: NamespacesConfig,
    /// Comparison records and rules distribution over Kafka (off unless `brokers` is set).
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// How pool members given as names are followed.
    #[serde(default)]
    pub dns: DnsConfig,
    /// Webhooks told what happens to the ramp and the rules (`[[notify]]`, any number).
    #[serde(default)]
    pub notify: Vec<NotifyConfig>,
}

/// One webhook (`[[notify]]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// `http://` or `https://`.
    pub url: String,
    /// The events it gets (`ramp.rolled_back`, ...); empty: every event.
    #[serde(default)]
    pub events: Vec<String>,
    /// `json` (the documented event) or `slack` (an incoming-webhook payload).
    #[serde(default)]
    pub format: Format,
    /// A file holding the HMAC-SHA256 key; each request then carries `x-switchyard-signature`.
    /// Read at each send. Relative to the config file.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

/// How pool members given as names are resolved and followed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Names are resolved again this often (sooner when their answer's TTL ends first).
    pub refresh_s: u64,
    /// DNS servers, `ip` or `ip:port`, asked instead of the system's (`/etc/resolv.conf`).
    pub nameservers: Vec<String>,
    /// How long one lookup may take.
    pub timeout_ms: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig { refresh_s: 10, nameservers: Vec::new(), timeout_ms: 2_000 }
    }
}

/// Global bounds of shadow comparison (which actions are mirrored is in the rules).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShadowConfig {
    /// Mirrored requests in flight at once; more wait in the queue.
    pub max_in_flight: usize,
    /// Jobs waiting for a slot; when full, new jobs are dropped (and counted), never awaited.
    pub queue: usize,
    /// Largest request or response body kept for a mirror; past it the job is skipped.
    pub max_body_bytes: usize,
    /// How long the shadow copy (and the control copy) may take.
    pub timeout_ms: u64,
    /// The JSON-lines record file (relative to the config file); empty disables it.
    pub records_file: PathBuf,
    /// Rotate the record file past this size...
    pub rotate_bytes: u64,
    /// ...keeping this many old files.
    pub keep_files: usize,
    /// This replica's name in records (default: `$HOSTNAME`, else `switchyard`).
    pub instance: Option<String>,
    /// When learned noise counts as a real difference.
    pub noise: NoiseThresholds,
    /// What the live report keeps: actions, and difference paths per action, one by one.
    pub report: ReportLimits,
    /// Field names whose values are redacted at any depth, beyond the built-in list.
    pub secret_fields: Vec<String>,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            max_in_flight: 64,
            queue: 256,
            max_body_bytes: 1024 * 1024,
            timeout_ms: 10_000,
            records_file: PathBuf::from("shadow-records.jsonl"),
            rotate_bytes: 64 * 1024 * 1024,
            keep_files: 5,
            instance: None,
            noise: NoiseThresholds::default(),
            report: ReportLimits::default(),
            secret_fields: Vec::new(),
        }
    }
}

/// How `_` is resolved (see `data::namespaces`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamespacesConfig {
    /// Credentials whose namespace is remembered; past it the oldest is forgotten.
    pub cache_entries: usize,
    /// How long a resolved namespace is trusted.
    pub ttl_s: u64,
    /// How long a request waits for its credential's lookup before it is routed to legacy.
    pub wait_ms: u64,
    /// How long one lookup may take (it goes on after the request stopped waiting).
    pub lookup_timeout_ms: u64,
    /// Lookups in flight toward the controllers at once; a request whose credential would need
    /// one more is routed to legacy (counted as `busy`), so a flood of new credentials cannot
    /// turn into a flood of calls to the controllers.
    pub max_in_flight: usize,
}

impl Default for NamespacesConfig {
    fn default() -> Self {
        NamespacesConfig {
            cache_entries: 10_000,
            ttl_s: 300,
            wait_ms: 500,
            lookup_timeout_ms: 2_000,
            max_in_flight: 64,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Loopback by default: the admin API is for the operator and Prometheus, not the world.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// Bearer token for mutating calls (`PUT /rules`, kill/unkill). Without one they are refused.
    /// Prefer the environment (`SWITCHYARD_ADMIN__TOKEN`) to writing it in a file.
    #[serde(default)]
    pub token: Option<String>,
    /// Or a file holding the token (a mounted Kubernetes Secret), read again at each mutating call,
    /// so a rotated secret takes effect without a restart. Relative to the config file.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// Never prints the token.
impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .finish()
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: default_admin_listen(), token: None, token_file: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolsConfig {
    pub legacy: PoolConfig,
    pub scheduler: PoolConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Controllers, `host:port` each: an address (IPv6 in brackets), or a name that stands for
    /// every address it resolves to, followed as they change (see [`DnsConfig`]).
    pub members: Vec<String>,
}

/// Where a pool member is: an address as written, or a name followed through DNS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Addr(SocketAddr),
    Name { host: String, port: u16 },
}

impl Target {
    /// `ip:port`, `[ipv6]:port`, or `name:port` with a DNS name (letters, digits, `-`, `_`, dots).
    pub fn parse(text: &str) -> Result<Target, String> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Target::Addr(addr));
        }
        let bad = |why: &str| format!("`{text}` is not a host:port address ({why})");
        let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(|| bad("the port is not 1 to 65535"))?;
        let name = host.strip_suffix('.').unwrap_or(host);
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(bad("not an IP address nor a DNS name"));
        }
        Ok(Target::Name { host: host.to_string(), port })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(a) => write!(f, "{a}"),
            Target::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// How often each controller's `GET /ping` is checked.
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Consecutive failures before a member leaves rotation.
    pub unhealthy_after: u32,
    /// Consecutive successes before it comes back.
    pub healthy_after: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { interval_ms: 1_000, timeout_ms: 500, unhealthy_after: 2, healthy_after: 1 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    pub connect_ms: u64,
    /// Longer than the controller's own request timeout (65 s), so the controller answers first.
    pub read_ms: u64,
    pub write_ms: u64,
    /// How long an idle upstream connection is kept for reuse.
    pub idle_ms: u64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig { connect_ms: 1_000, read_ms: 70_000, write_ms: 70_000, idle_ms: 60_000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// On SIGTERM, keep serving this long with readiness off (load balancers notice the pod
    /// going away)...
    pub grace_period_s: u64,
    /// ...then close the listeners and give requests in flight this long to finish...
    pub drain_timeout_s: u64,
    /// ...then give the shadow queue and the Kafka producer this long to empty.
    pub flush_timeout_s: u64,
    /// The Unix socket over which a new process (`switchyard run --upgrade`) takes over the
    /// listening sockets on SIGQUIT.
    pub upgrade_sock: PathBuf,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace_period_s: 5,
            drain_timeout_s: 65,
            flush_timeout_s: 5,
            upgrade_sock: PathBuf::from("/tmp/switchyard-upgrade.sock"),
        }
    }
}

fn default_listen() -> String {
    "0.0.0.0:8080".to_string()
}
fn default_admin_listen() -> String {
    "127.0.0.1:9090".to_string()
}
fn yes() -> bool {
    true
}

/// The fewest characters an admin token may have.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// Why the admin token file cannot be used (never its content).
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("{} holds fewer than {} characters", path.display(), MIN_ADMIN_TOKEN_CHARS)]
    TooShort { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: switchyard_rules::FileError,
    },
}

/// The admin token in `path` (trimmed), read anew at each call so a rotated secret takes effect.
pub fn read_token_file(path: &Path) -> Result<String, TokenFileError> {
    match switchyard_rules::read_capped_text(path, switchyard_rules::MAX_SECRET_FILE_BYTES) {
        Ok(t) if t.trim().len() >= MIN_ADMIN_TOKEN_CHARS => Ok(t.trim().to_string()),
        Ok(_) => Err(TokenFileError::TooShort { path: path.to_path_buf() }),
        Err(source) => Err(TokenFileError::Unreadable { path: path.to_path_buf(), source }),
    }
}

/// Where the bearer token for mutating admin calls comes from.
#[derive(Debug, Clone)]
pub enum AdminToken {
    /// None configured: mutating calls are refused.
    None,
    Fixed(Arc<str>),
    /// Read at each mutating call (a mounted secret may be rotated).
    File(PathBuf),
}

impl AdminToken {
    /// The token now; `Err` when the file cannot be read (no call is allowed then).
    pub fn current(&self) -> Result<Option<Arc<str>>, TokenFileError> {
        match self {
            AdminToken::None => Ok(None),
            AdminToken::Fixed(t) => Ok(Some(Arc::clone(t))),
            AdminToken::File(path) => read_token_file(path).map(|t| Some(Arc::from(t))),
        }
    }
}

/// DNS settings as the resolver takes them.
#[derive(Debug, Clone)]
pub struct Dns {
    pub refresh: Duration,
    pub timeout: Duration,
    /// Empty: the system's.
    pub nameservers: Vec<SocketAddr>,
}

/// The config as the proxy runs it, built only by [`ServerConfig::resolve`]: addresses parsed,
/// members typed, paths absolute, every value checked. The text it came from is not kept.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub admin_token: AdminToken,
    /// The members of each pool, indexed by `Pool::index`.
    pub members: [Vec<Target>; 2],
    pub dns: Dns,
    pub rules: PathBuf,
    pub watch_rules: bool,
    pub pool_header: bool,
    pub threads: usize,
    pub work_stealing: bool,
    pub read_buffer_bytes: usize,
    pub write_buffer_bytes: usize,
    pub max_client_connections: usize,
    pub max_client_connections_per_ip: usize,
    pub health: HealthConfig,
    pub timeouts: TimeoutsConfig,
    pub shutdown: ShutdownConfig,
    pub shadow: ShadowConfig,
    pub namespaces: NamespacesConfig,
    pub kafka: KafkaConfig,
    pub notify: Vec<Receiver>,
}

impl Resolved {
    pub fn members(&self, pool: Pool) -> &[Target] {
        &self.members[pool.index()]
    }
}

impl ServerConfig {
    /// Loads a config file with `SWITCHYARD_*` environment variables layered on top.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let source_name = path.display().to_string();
        let format = match RulesFormat::from_path(path) {
            Some(RulesFormat::Toml) => FileFormat::Toml,
            Some(RulesFormat::Yaml) => FileFormat::Yaml,
            Some(RulesFormat::Json) => FileFormat::Json,
            None => return Err(ConfigError::Load { source_name, message: RulesFormat::UNKNOWN_EXTENSION.into() }),
        };
        let text = switchyard_rules::read_capped_text(path, switchyard_rules::MAX_CONFIG_BYTES)
            .map_err(|e| ConfigError::Load { source_name: source_name.clone(), message: e.to_string() })?;
        let mut config = Self::from_layers(&text, format, &source_name)?;
        if let Some(dir) = path.parent() {
            let tls = &mut config.kafka.tls;
            let optional = [
                config.admin.token_file.as_mut(),
                tls.ca_file.as_mut(),
                tls.cert_file.as_mut(),
                tls.key_file.as_mut(),
                config.kafka.sasl.password_file.as_mut(),
            ];
            let secrets = config.notify.iter_mut().filter_map(|n| n.secret_file.as_mut());
            let required = [&mut config.rules, &mut config.shadow.records_file];
            for file in required.into_iter().chain(optional.into_iter().flatten()).chain(secrets) {
                if file.is_relative() && !file.as_os_str().is_empty() {
                    *file = dir.join(&*file);
                }
            }
        }
        Ok(config)
    }

    fn from_layers(text: &str, format: FileFormat, source_name: &str) -> Result<ServerConfig, ConfigError> {
        // SWITCHYARD_LOG is the log filter, read by the binary, not a config field.
        let vars =
            std::env::vars().filter(|(k, _)| k.starts_with("SWITCHYARD_") && !NOT_CONFIG_VARS.contains(&k.as_str()));
        let env = Environment::with_prefix("SWITCHYARD")
            .source(Some(vars.collect()))
            .prefix_separator("_")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("pools.legacy.members")
            .with_list_parse_key("pools.scheduler.members")
            .with_list_parse_key("dns.nameservers")
            .try_parsing(true);
        Config::builder()
            .add_source(File::from_str(text, format))
            .add_source(env)
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| ConfigError::Load { source_name: source_name.to_string(), message: e.to_string() })
    }

    /// Resolves addresses and checks values; every problem is reported, each naming its field.
    pub fn resolve(self, source_name: &str) -> Result<Resolved, ConfigError> {
        let mut problems = Vec::new();
        let mut addr = |field: &str, text: &str| -> Option<SocketAddr> {
            match text.to_socket_addrs().map(|mut a| a.next()) {
                Ok(Some(a)) => Some(a),
                Ok(None) | Err(_) => {
                    problems.push(format!("{field}: `{text}` is not a host:port address"));
                    None
                }
            }
        };
        let listen = addr("listen", &self.listen);
        let admin_listen = addr("admin.listen", &self.admin.listen);
        let mut members = |field: &str, pool: &PoolConfig| -> Vec<Target> {
            let targets = pool.members.iter().enumerate().map(|(i, m)| {
                Target::parse(m.trim()).map_err(|e| problems.push(format!("{field}.members[{i}]: {e}"))).ok()
            });
            let mut targets: Vec<Target> = targets.flatten().collect();
            // The same member written twice is one member.
            let mut seen = std::collections::HashSet::new();
            targets.retain(|t| seen.insert(t.clone()));
            targets
        };
        let legacy = members("pools.legacy", &self.pools.legacy);
        let scheduler = members("pools.scheduler", &self.pools.scheduler);
        let nameservers: Vec<SocketAddr> = self
            .dns
            .nameservers
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let parsed =
                    n.parse::<SocketAddr>().or_else(|_| n.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()));
                parsed.map_err(|_| problems.push(format!("dns.nameservers[{i}]: `{n}` is not an ip or ip:port"))).ok()
            })
            .collect();
        let notify: Vec<Receiver> = self
            .notify
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.resolve(&format!("notify[{i}]")).map_err(|e| problems.extend(e)).ok())
            .collect();
        if self.dns.refresh_s == 0 || self.dns.timeout_ms == 0 {
            problems.push("dns.refresh_s / dns.timeout_ms: must be above 0".into());
        }
        for (field, pool) in [("pools.legacy", &self.pools.legacy), ("pools.scheduler", &self.pools.scheduler)] {
            if pool.members.is_empty() {
                problems.push(format!("{field}.members: empty (each pool needs at least one controller)"));
            }
        }
        if self.health.interval_ms == 0 {
            problems.push("health.interval_ms: must be above 0".into());
        }
        if self.health.unhealthy_after == 0 || self.health.healthy_after == 0 {
            problems.push("health.unhealthy_after / health.healthy_after: must be at least 1".into());
        }
        if self.kafka.enabled() && self.kafka.records_topic.is_empty() && self.kafka.rules_topic.is_empty() {
            problems.push("kafka: brokers are set but neither kafka.records_topic nor kafka.rules_topic".into());
        }
        problems.extend(self.kafka.security_problems());
        for (i, key) in self.kafka.rules_verify_keys.iter().enumerate() {
            if let Err(e) = kafka::parse_verify_key(key) {
                problems.push(format!("kafka.rules_verify_keys[{i}]: {e}"));
            }
        }
        if self.shadow.max_in_flight == 0 || self.shadow.queue == 0 {
            problems.push("shadow.max_in_flight / shadow.queue: must be at least 1".into());
        }
        if self.namespaces.cache_entries == 0 || self.namespaces.wait_ms == 0 || self.namespaces.lookup_timeout_ms == 0
        {
            problems.push("namespaces.cache_entries / wait_ms / lookup_timeout_ms: must be above 0".into());
        }
        if self.timeouts.connect_ms == 0 {
            problems.push("timeouts.connect_ms: must be above 0".into());
        }
        if self.max_client_connections == 0 {
            problems.push("max_client_connections: must be at least 1".into());
        }
        if self.max_client_connections_per_ip == 0 {
            problems.push("max_client_connections_per_ip: must be at least 1".into());
        }
        if self.admin.token.as_deref().is_some_and(|t| t.trim().len() < MIN_ADMIN_TOKEN_CHARS) {
            problems
                .push(format!("admin.token: shorter than {MIN_ADMIN_TOKEN_CHARS} characters; use a long random value"));
        }
        if let Some(file) = &self.admin.token_file {
            if self.admin.token.is_some() {
                problems.push("admin.token_file: set either admin.token or admin.token_file, not both".into());
            }
            if let Err(e) = read_token_file(file) {
                problems.push(format!("admin.token_file: {e}"));
            }
        }
        if self.rules.as_os_str().is_empty() {
            problems.push("rules: empty path".into());
        }
        let (Some(listen), Some(admin_listen), true) = (listen, admin_listen, problems.is_empty()) else {
            return Err(ConfigError::Invalid { source_name: source_name.to_string(), problems });
        };
        let admin_token = match (self.admin.token, self.admin.token_file) {
            (Some(t), _) => AdminToken::Fixed(Arc::from(t.trim())),
            (None, Some(file)) => AdminToken::File(file),
            (None, None) => AdminToken::None,
        };
        Ok(Resolved {
            listen,
            admin_listen,
            admin_token,
            members: [legacy, scheduler],
            dns: Dns {
                refresh: Duration::from_secs(self.dns.refresh_s),
                timeout: Duration::from_millis(self.dns.timeout_ms),
                nameservers,
            },
            rules: self.rules,
            watch_rules: self.watch_rules,
            pool_header: self.pool_header,
            threads: self.threads,
            work_stealing: self.work_stealing,
            read_buffer_bytes: self.read_buffer_bytes,
            write_buffer_bytes: self.write_buffer_bytes,
            max_client_connections: self.max_client_connections,
            max_client_connections_per_ip: self.max_client_connections_per_ip,
            health: self.health,
            timeouts: self.timeouts,
            shutdown: self.shutdown,
            shadow: self.shadow,
            namespaces: self.namespaces,
            kafka: self.kafka,
            notify,
        })
    }
}

impl NotifyConfig {
    /// The receiver, or every problem with its field path.
    fn resolve(&self, field: &str) -> Result<Receiver, Vec<String>> {
        let mut problems = Vec::new();
        let url = reqwest::Url::parse(&self.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| problems.push(format!("{field}.url: `{}` is not an http(s) URL", self.url)));
        let mut events = BTreeSet::new();
        for (i, name) in self.events.iter().enumerate() {
            match EventKind::from_str(name) {
                Ok(kind) => {
                    events.insert(kind);
                }
                Err(_) => {
                    let known: Vec<&str> = EventKind::iter().map(EventKind::as_str).collect();
                    problems
                        .push(format!("{field}.events[{i}]: `{name}` is not an event (one of: {})", known.join(", ")));
                }
            }
        }
        if let Some(file) = &self.secret_file {
            match switchyard_rules::read_capped_text(file, switchyard_rules::MAX_SECRET_FILE_BYTES) {
                Ok(t) if t.trim().len() >= MIN_ADMIN_TOKEN_CHARS => {}
                Ok(_) => problems.push(format!("{field}.secret_file: fewer than {MIN_ADMIN_TOKEN_CHARS} characters")),
                Err(e) => problems.push(format!("{field}.secret_file: {e}")),
            }
        }
        match (url, problems.is_empty()) {
            (Ok(url), true) => Ok(Receiver {
                url,
                events: (!events.is_empty()).then_some(events),
                format: self.format,
                secret_file: self.secret_file.clone(),
            }),
            _ => Err(problems),
        }
    }
}

impl ShadowConfig {
    /// This replica's name in records: `shadow.instance`, else a non-empty `$HOSTNAME` (the pod
    /// name on Kubernetes), else `switchyard`.
    pub fn instance_name(&self) -> String {
        self.instance
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "switchyard".to_string())
    }
}

fn default_read_buffer() -> usize {
    512
}

fn default_write_buffer() -> usize {
    512
}

fn default_max_client_connections() -> usize {
    50_000
}

fn default_max_client_connections_per_ip() -> usize {
    10_000
}

impl ServerConfig {
    /// A config for a proxy in front of two local controllers, as the demo and the tests run it:
    /// free loopback ports, fast health checks, a short shutdown, records next to the rules file.
    pub fn local(rules: &Path, legacy: SocketAddr, scheduler: SocketAddr) -> ServerConfig {
        ServerConfig {
            listen: "127.0.0.1:0".into(),
            rules: rules.to_path_buf(),
            pool_header: true,
            threads: 2,
            // Several proxies start one after another in one process there (see the field's doc).
            work_stealing: true,
            read_buffer_bytes: default_read_buffer(),
            write_buffer_bytes: default_write_buffer(),
            max_client_connections: default_max_client_connections(),
            max_client_connections_per_ip: default_max_client_connections_per_ip(),
            admin: AdminConfig { listen: "127.0.0.1:0".into(), token: None, token_file: None },
            watch_rules: true,
            pools: PoolsConfig {
                legacy: PoolConfig { members: vec![legacy.to_string()] },
                scheduler: PoolConfig { members: vec![scheduler.to_string()] },
            },
            health: HealthConfig { interval_ms: 200, timeout_ms: 200, unhealthy_after: 1, healthy_after: 1 },
            timeouts: TimeoutsConfig { connect_ms: 500, ..TimeoutsConfig::default() },
            shutdown: ShutdownConfig {
                grace_period_s: 0,
                drain_timeout_s: 1,
                flush_timeout_s: 1,
                upgrade_sock: rules.parent().unwrap_or(Path::new(".")).join("upgrade.sock"),
            },
            shadow: ShadowConfig {
                records_file: rules.parent().unwrap_or(Path::new(".")).join("shadow-records.jsonl"),
                timeout_ms: 5_000,
                ..ShadowConfig::default()
            },
            namespaces: NamespacesConfig::default(),
            kafka: KafkaConfig::default(),
            dns: DnsConfig::default(),
            notify: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        rules = "rules.toml"
        [pools.legacy]
        members = ["127.0.0.1:1"]
        [pools.scheduler]
        members = ["127.0.0.1:2"]
    "#;

    #[test]
    fn defaults_fill_the_rest() {
        let c = ServerConfig::from_layers(MINIMAL, FileFormat::Toml, "t").unwrap().resolve("t").unwrap();
        assert_eq!(c.admin_listen, "127.0.0.1:9090".parse().unwrap());
        assert!(c.pool_header);
        assert_eq!(c.timeouts.read_ms, 70_000);
    }

    /// The format comes from the extension in any case, as for rules files; another extension
    /// is refused with the formats it could have been.
    #[test]
    fn the_extension_names_the_format_in_any_case() {
        let dir = std::env::temp_dir().join(format!("switchyard-config-ext-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("switchyard.TOML"), MINIMAL).unwrap();
        std::fs::write(dir.join("switchyard.ini"), MINIMAL).unwrap();
        assert!(ServerConfig::load(&dir.join("switchyard.TOML")).is_ok());
        let err = ServerConfig::load(&dir.join("switchyard.ini")).unwrap_err().to_string();
        assert!(err.contains(RulesFormat::UNKNOWN_EXTENSION), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_fields_are_named() {
        let err =
            ServerConfig::from_layers(&format!("{MINIMAL}\n[health]\nintervl_ms = 5"), FileFormat::Toml, "s.toml")
                .unwrap_err()
                .to_string();
        assert!(err.contains("intervl_ms"), "{err}");
        assert!(err.starts_with("s.toml"), "{err}");
    }

    #[test]
    fn every_bad_value_is_reported() {
        let text = r#"
            listen = "nowhere"
            rules = "r.toml"
            [pools.legacy]
            members = []
            [pools.scheduler]
            members = ["bad address"]
        "#;
        let err = ServerConfig::from_layers(text, FileFormat::Toml, "c.toml")
            .unwrap()
            .resolve("c.toml")
            .unwrap_err()
            .to_string();
        for field in ["listen:", "pools.legacy.members: empty", "pools.scheduler.members[0]"] {
            assert!(err.contains(field), "{field} missing in {err}");
        }
    }

    #[test]
    fn a_member_is_an_address_or_a_name_to_follow() {
        let addr = |s: &str| Target::Addr(s.parse().unwrap());
        let name = |h: &str, port| Target::Name { host: h.to_string(), port };
        assert_eq!(Target::parse("10.0.0.1:3233"), Ok(addr("10.0.0.1:3233")));
        assert_eq!(Target::parse("[::1]:3233"), Ok(addr("[::1]:3233")));
        assert_eq!(
            Target::parse("owdev-controller.openwhisk.svc.cluster.local:8080"),
            Ok(name("owdev-controller.openwhisk.svc.cluster.local", 8080))
        );
        assert_eq!(Target::parse("controller.:80"), Ok(name("controller.", 80)));
        for bad in ["bad address:80", "controller", "controller:0", "controller:65536", "a..b:1", ":80", "::1:80x"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        assert!(Target::parse(&format!("{}:1", "a".repeat(64))).is_err(), "a label of 64 characters");
    }

    #[test]
    fn members_written_twice_are_one_and_dns_settings_are_checked() {
        let text = r#"
            rules = "r.toml"
            [pools.legacy]
            members = ["controller:8080", "controller:8080", "10.0.0.1:1"]
            [pools.scheduler]
            members = ["10.0.0.2:1"]
            [dns]
            nameservers = ["127.0.0.1:5353", "::1", "resolver"]
            refresh_s = 0
        "#;
        let config = ServerConfig::from_layers(text, FileFormat::Toml, "c.toml").unwrap();
        let err = config.clone().resolve("c.toml").unwrap_err().to_string();
        for field in ["dns.nameservers[2]: `resolver`", "dns.refresh_s"] {
            assert!(err.contains(field), "{field} missing in {err}");
        }
        let mut config = config;
        config.dns = DnsConfig { nameservers: vec!["127.0.0.1:5353".into(), "::1".into()], ..DnsConfig::default() };
        let resolved = config.resolve("c.toml").unwrap();
        assert_eq!(resolved.members(Pool::Legacy).len(), 2);
        assert_eq!(resolved.dns.nameservers, ["127.0.0.1:5353".parse().unwrap(), "[::1]:53".parse().unwrap()]);
    }
}

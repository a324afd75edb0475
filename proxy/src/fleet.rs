//! A complete local setup on loopback: one simulated controller per path and a switchyard in front
//! of them, on free ports. Used by `switchyard demo` and by the end-to-end tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use whisk_sim::{Flavor, SimConfig, SimHandle, Simulator};

use crate::config::{
    AdminConfig, HealthConfig, PoolConfig, PoolsConfig, ServerConfig, ShadowConfig, ShutdownConfig, TimeoutsConfig,
};
use crate::server::{start, RunningProxy, StartError};

pub struct LocalFleet {
    /// Declared first so it stops before the simulators behind it.
    pub proxy: RunningProxy,
    pub legacy: SimHandle,
    pub scheduler: SimHandle,
    pub dir: PathBuf,
}

/// Adjusts a generated server config before start.
pub type ConfigTweak = Box<dyn FnOnce(&mut ServerConfig)>;

/// What to start: simulator configs (`new` gives each pool its flavor) and the rules text.
pub struct FleetSpec {
    pub legacy: SimConfig,
    pub scheduler: SimConfig,
    /// TOML rules document.
    pub rules: String,
    /// Adjusts the generated server config before start (timeouts, health, extra members).
    pub tweak: Option<ConfigTweak>,
}

impl FleetSpec {
    pub fn new(rules: &str) -> FleetSpec {
        FleetSpec {
            legacy: SimConfig::with_flavor(Flavor::Legacy),
            scheduler: SimConfig::with_flavor(Flavor::Scheduler),
            rules: rules.to_string(),
            tweak: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot start a simulator: {0}")]
    Sim(std::io::Error),
    #[error("cannot write the fleet's files in {dir}: {source}")]
    Files { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    #[error(transparent)]
    Start(#[from] StartError),
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A fresh directory under the system temp dir for this fleet's rules file.
fn scratch_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("switchyard-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl LocalFleet {
    pub fn start(spec: FleetSpec) -> Result<LocalFleet, FleetError> {
        let legacy = Simulator::start(spec.legacy, loopback()).map_err(FleetError::Sim)?;
        let scheduler = Simulator::start(spec.scheduler, loopback()).map_err(FleetError::Sim)?;
        let dir = scratch_dir().map_err(|source| FleetError::Files { dir: std::env::temp_dir(), source })?;
        let rules_path = dir.join("rules.toml");
        std::fs::write(&rules_path, &spec.rules).map_err(|source| FleetError::Files { dir: dir.clone(), source })?;
        let mut config = local_config(&rules_path, legacy.addr(), scheduler.addr());
        if let Some(tweak) = spec.tweak {
            tweak(&mut config);
        }
        let resolved = config.resolve("fleet")?;
        let proxy = start(resolved)?;
        Ok(LocalFleet { proxy, legacy, scheduler, dir })
    }

    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy.proxy_addr)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.proxy.admin_addr)
    }

    pub fn shadow_records_path(&self) -> PathBuf {
        self.dir.join("shadow-records.jsonl")
    }

    pub fn rules_path(&self) -> PathBuf {
        self.dir.join("rules.toml")
    }
}

impl Drop for LocalFleet {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server config for loopback: free ports, fast health checks, short shutdown.
pub fn local_config(rules: &Path, legacy: SocketAddr, scheduler: SocketAddr) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".into(),
        rules: rules.to_path_buf(),
        pool_header: true,
        threads: 2,
        // Several proxies start one after another in one process here (see the field's doc).
        work_stealing: true,
        admin: AdminConfig { listen: "127.0.0.1:0".into(), token: None },
        watch_rules: true,
        pools: PoolsConfig {
            legacy: PoolConfig { members: vec![legacy.to_string()] },
            scheduler: PoolConfig { members: vec![scheduler.to_string()] },
        },
        health: HealthConfig { interval_ms: 200, timeout_ms: 200, unhealthy_after: 1, healthy_after: 1 },
        timeouts: TimeoutsConfig { connect_ms: 500, ..TimeoutsConfig::default() },
        shutdown: ShutdownConfig { grace_period_s: 0, drain_timeout_s: 1 },
        shadow: ShadowConfig {
            records_file: rules.parent().unwrap_or(Path::new(".")).join("shadow-records.jsonl"),
            timeout_ms: 5_000,
            ..ShadowConfig::default()
        },
        kafka: Default::default(),
    }
}

//! Starting and stopping a switchyard instance: the data plane (pingora, on its own thread and
//! runtimes) and the control plane (admin API, health checks, metrics upkeep, on a small tokio
//! runtime of its own). Used the same way by `switchyard run`, the demo and the tests.

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use tokio::sync::watch;

use crate::config::Resolved;
use crate::metrics::Metrics;
use crate::pools::{self, Pools};
use crate::reload::RulesManager;
use crate::service::SwitchyardProxy;
use crate::state::{ActiveRules, FileTrigger, RuleSource, Shared};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Rules(#[from] switchyard_rules::RulesRejected),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("cannot start the control runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Watch(crate::watch::WatchError),
    #[error(transparent)]
    Shadow(crate::shadow::ShadowStartError),
    #[error("bad Kafka settings: {0}")]
    Kafka(rdkafka::error::KafkaError),
    #[error("the proxy did not start accepting connections on {0} within 10 s")]
    NotAccepting(SocketAddr),
}

/// Hands pingora our stop request instead of letting it install its own signal handlers.
///
/// Every stop is pingora's graceful terminate (keep serving for `grace_period_s`, stop accepting,
/// drain for up to `drain_timeout_s`): its fast shutdown does not tell the listeners to stop, and
/// without work stealing their threads then never exit.
struct StopWatch(watch::Receiver<bool>);

#[async_trait]
impl ShutdownSignalWatch for StopWatch {
    async fn recv(&self) -> ShutdownSignal {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
        ShutdownSignal::GracefulTerminate
    }
}

/// A running instance. Dropping it stops it and waits for the drain.
pub struct RunningProxy {
    pub proxy_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub shared: Arc<Shared>,
    control: Option<tokio::runtime::Runtime>,
    stop: watch::Sender<bool>,
    data_plane: Option<JoinHandle<()>>,
}

/// Finds a free loopback port for a listener configured with port 0 (pingora binds by itself and
/// does not report the port it got).
fn resolve_port(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    StdListener::bind(addr)?.local_addr()
}

pub fn start(resolved: Resolved) -> Result<RunningProxy, StartError> {
    let rules = switchyard_rules::load_rules_file(&resolved.rules_path)?;
    let config = &resolved.config;
    let metrics = Arc::new(Metrics::new());
    let source = RuleSource::File { path: resolved.rules_path.clone(), trigger: FileTrigger::Start };
    let active = ActiveRules::new(rules, source);
    let shared = Arc::new(Shared {
        rules: ArcSwap::from_pointee(ActiveRules::new(active.rules.clone(), active.source.clone())),
        reloads: RulesManager::new(ActiveRules::new(active.rules.clone(), active.source.clone())),
        pools: Pools::new(&resolved.legacy, &resolved.scheduler),
        metrics: Arc::clone(&metrics),
        pool_header: config.pool_header,
        shadow: std::sync::OnceLock::new(),
        kafka: Default::default(),
    });
    shared.publish_gauges(&active, None);
    tracing::info!(version = %active.rules.version, source = %active.source, share = %active.rules.scheduler_share,
        overrides = active.rules.overrides.len(), kill_switch = active.rules.kill_switch, "rules loaded");

    let control = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("switchyard-control")
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let admin_listener = control
        .block_on(crate::admin::bind(resolved.admin_listen))
        .map_err(|source| StartError::Listen { what: "admin", addr: resolved.admin_listen, source })?;
    let admin_addr = admin_listener.local_addr().map_err(|source| StartError::Listen {
        what: "admin",
        addr: resolved.admin_listen,
        source,
    })?;
    let _guard = control.enter();
    let kafka_sink = records_sink(config, &shared).map_err(StartError::Kafka)?;
    let shadow = crate::shadow::start(&config.shadow, kafka_sink, Arc::clone(&shared), Arc::clone(&metrics))
        .map_err(StartError::Shadow)?;
    let _ = shared.shadow.set(shadow);
    if config.kafka.enabled() && !config.kafka.rules_topic.is_empty() {
        control.spawn(crate::kafka_rules::follow(Arc::clone(&shared), config.kafka.clone()));
    }
    drop(_guard);
    let token = config.admin.token.as_deref().map(|t| Arc::<str>::from(t.trim()));
    control.spawn(crate::admin::serve(admin_listener, Arc::clone(&shared), token));
    if config.watch_rules {
        let _guard = control.enter();
        crate::watch::spawn(Arc::clone(&shared), resolved.rules_path.clone()).map_err(StartError::Watch)?;
    }
    // One health round before taking traffic, so the first requests avoid dead controllers.
    let health = config.health.clone();
    let pools_shared = Arc::clone(&shared);
    control.block_on(async {
        pools::check_all(&pools_shared.pools, &pools::health_client(), &health, &metrics).await;
    });
    control.spawn(health_loop(Arc::clone(&shared), health));
    let upkeep_metrics = Arc::clone(&metrics);
    control.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep_metrics.upkeep();
        }
    });

    let proxy_addr = resolve_port(resolved.listen).map_err(|source| StartError::Listen {
        what: "proxy",
        addr: resolved.listen,
        source,
    })?;
    let threads =
        if config.threads == 0 { std::thread::available_parallelism().map_or(2, usize::from) } else { config.threads };
    let conf = ServerConf {
        threads,
        work_stealing: config.work_stealing,
        grace_period_seconds: Some(config.shutdown.grace_period_s),
        graceful_shutdown_timeout_seconds: Some(config.shutdown.drain_timeout_s),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        SwitchyardProxy { shared: Arc::clone(&shared), timeouts: config.timeouts.clone() },
        "switchyard",
    );
    service.add_tcp(&proxy_addr.to_string());
    server.add_service(service);
    let (stop, stop_rx) = watch::channel(false);
    let data_plane = std::thread::Builder::new()
        .name("switchyard-proxy".into())
        .spawn(move || server.run(RunArgs { shutdown_signal: Box::new(StopWatch(stop_rx)) }))
        .map_err(StartError::Runtime)?;

    let running =
        RunningProxy { proxy_addr, admin_addr, shared, control: Some(control), stop, data_plane: Some(data_plane) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&proxy_addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline || running.data_plane.as_ref().is_some_and(|t| t.is_finished()) {
            return Err(StartError::NotAccepting(proxy_addr));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    tracing::info!(proxy = %proxy_addr, admin = %admin_addr, "switchyard is serving");
    Ok(running)
}

/// The Kafka record sink, counting every record's fate in the metrics and `/readyz`.
fn records_sink(
    config: &crate::config::ServerConfig,
    shared: &Arc<Shared>,
) -> Result<Option<switchyard_shadow::KafkaSink>, rdkafka::error::KafkaError> {
    use std::sync::atomic::Ordering::Relaxed;
    if !config.kafka.enabled() || config.kafka.records_topic.is_empty() {
        return Ok(None);
    }
    let counters = shared.metrics.kafka_records(&config.kafka.records_topic);
    shared.kafka.records_healthy.store(true, Relaxed);
    let health = Arc::clone(shared);
    let on_result: switchyard_shadow::DeliveryCallback = Arc::new(move |d: switchyard_shadow::Delivery| {
        let k = &health.kafka;
        let (i, count) = match d {
            switchyard_shadow::Delivery::Delivered => (0, &k.records_delivered),
            switchyard_shadow::Delivery::Failed => (1, &k.records_failed),
            switchyard_shadow::Delivery::Dropped => (2, &k.records_dropped),
        };
        counters[i].increment(1);
        count.fetch_add(1, Relaxed);
        k.records_healthy.store(i == 0, Relaxed);
    });
    let instance = config
        .shadow
        .instance
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "switchyard".into());
    switchyard_shadow::KafkaSink::new(&config.kafka, &instance, on_result).map(Some)
}

async fn health_loop(shared: Arc<Shared>, health: crate::config::HealthConfig) {
    let client = pools::health_client();
    let mut tick = tokio::time::interval(Duration::from_millis(health.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        pools::check_all(&shared.pools, &client, &health, &shared.metrics).await;
    }
}

impl RunningProxy {
    /// Runs a future on the control-plane runtime (signal handlers, rule sources).
    pub fn spawn_control<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Some(rt) = &self.control {
            rt.spawn(task);
        }
    }

    /// A handle that stops this instance when `true` is sent, from any thread or task.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// Blocks until the instance stops (after a stop request from a signal or the stopper).
    pub fn wait(mut self) {
        if let Some(t) = self.data_plane.take() {
            let _ = t.join();
        }
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.data_plane.take() {
            let _ = t.join();
        }
        if let Some(rt) = self.control.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

//! Starting and stopping a switchyard instance: the data plane (pingora, on its own thread and
//! runtimes) and the control plane (admin API, health checks, metrics upkeep, on a small tokio
//! runtime of its own). Used the same way by `switchyard run`, the demo and the tests.

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use tokio::sync::watch;

use crate::control::rules::RuleControl;
use crate::control::source::{FileTrigger, RuleSource};
use crate::data::pools::{self, Pools};
use crate::data::service::SwitchyardProxy;
use crate::kafka::health::KafkaHealth;
use crate::kafka::sink::KafkaSink;
use crate::ops::config::{HealthConfig, Resolved};
use crate::ops::metrics::Metrics;
use crate::state::Shared;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Rules(#[from] switchyard_rules::RulesRejected),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("cannot start the control runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Watch(crate::control::watch::WatchError),
    #[error(transparent)]
    Shadow(crate::shadow::pipeline::ShadowStartError),
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

/// Starts an instance in three steps: the shared state (rules, pools, metrics, the shadow
/// pipeline, Kafka), the control plane (admin API, rule sources, health checks), then the data
/// plane (pingora). Returns once the proxy accepts connections.
pub fn start(resolved: Resolved) -> Result<RunningProxy, StartError> {
    let control = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("switchyard-control")
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let shared = {
        // The shadow workers and the Kafka sink spawn their tasks on the control runtime.
        let _guard = control.enter();
        shared_state(&resolved)?
    };
    let admin_addr = start_control_plane(&control, &resolved, &shared)?;
    let (proxy_addr, stop, data_plane) = start_data_plane(&resolved, &shared)?;
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

/// Loads the rules and builds what the data plane and the admin API share.
fn shared_state(resolved: &Resolved) -> Result<Arc<Shared>, StartError> {
    let config = &resolved.config;
    let metrics = Arc::new(Metrics::new());
    let rules = switchyard_rules::load_rules_file(&resolved.rules_path)?;
    let source = RuleSource::File { path: resolved.rules_path.clone(), trigger: FileTrigger::Start };
    let rules = Arc::new(RuleControl::new(rules, source, Arc::clone(&metrics)));
    let pools = Arc::new(Pools::new(&resolved.legacy, &resolved.scheduler));
    let kafka = Arc::new(KafkaHealth::default());
    let records_sink = if config.kafka.enabled() && !config.kafka.records_topic.is_empty() {
        let on_result = kafka.delivery_callback(metrics.kafka_records(&config.kafka.records_topic));
        // The producer connects lazily: an unreachable broker does not stop the start.
        Some(KafkaSink::new(&config.kafka, &config.shadow.instance_name(), on_result).map_err(StartError::Kafka)?)
    } else {
        None
    };
    let shadow = crate::shadow::pipeline::start(&config.shadow, records_sink, Arc::clone(&pools), Arc::clone(&metrics))
        .map_err(StartError::Shadow)?;
    Ok(Arc::new(Shared { rules, pools, metrics, pool_header: config.pool_header, shadow, kafka }))
}

/// The admin API, the rule sources (file watch, Kafka topic) and the health checks, on the
/// control runtime. Returns the admin address.
fn start_control_plane(
    control: &tokio::runtime::Runtime,
    resolved: &Resolved,
    shared: &Arc<Shared>,
) -> Result<SocketAddr, StartError> {
    let config = &resolved.config;
    let listen_error = |source| StartError::Listen { what: "admin", addr: resolved.admin_listen, source };
    let admin_listener = control.block_on(crate::control::admin::bind(resolved.admin_listen)).map_err(listen_error)?;
    let admin_addr = admin_listener.local_addr().map_err(listen_error)?;
    let token = config.admin.token.as_deref().map(|t| Arc::<str>::from(t.trim()));
    control.spawn(crate::control::admin::serve(admin_listener, Arc::clone(shared), token));
    if config.kafka.enabled() && !config.kafka.rules_topic.is_empty() {
        control.spawn(crate::kafka::rules::follow(
            Arc::clone(&shared.rules),
            Arc::clone(&shared.kafka),
            config.kafka.clone(),
        ));
    }
    if config.watch_rules {
        let _guard = control.enter();
        crate::control::watch::spawn(Arc::clone(&shared.rules), resolved.rules_path.clone())
            .map_err(StartError::Watch)?;
    }
    // One health round before taking traffic, so the first requests avoid dead controllers.
    let health = config.health.clone();
    control.block_on(pools::check_all(&shared.pools, &pools::health_client(), &health, &shared.metrics));
    control.spawn(health_loop(Arc::clone(shared), health));
    let metrics = Arc::clone(&shared.metrics);
    control.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            metrics.upkeep();
        }
    });
    Ok(admin_addr)
}

/// Pingora on a thread of its own. Returns the proxy address, the stop handle and the thread.
fn start_data_plane(
    resolved: &Resolved,
    shared: &Arc<Shared>,
) -> Result<(SocketAddr, watch::Sender<bool>, JoinHandle<()>), StartError> {
    let config = &resolved.config;
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
        SwitchyardProxy { shared: Arc::clone(shared), timeouts: config.timeouts.clone() },
        "switchyard",
    );
    service.add_tcp(&proxy_addr.to_string());
    server.add_service(service);
    let (stop, stop_rx) = watch::channel(false);
    let data_plane = std::thread::Builder::new()
        .name("switchyard-proxy".into())
        .spawn(move || server.run(RunArgs { shutdown_signal: Box::new(StopWatch(stop_rx)) }))
        .map_err(StartError::Runtime)?;
    Ok((proxy_addr, stop, data_plane))
}

async fn health_loop(shared: Arc<Shared>, health: HealthConfig) {
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

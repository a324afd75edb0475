//! Starting and stopping a switchyard instance: the data plane (pingora, on its own thread and
//! runtimes) and the control plane (admin API, health checks, metrics upkeep, on a small tokio
//! runtime of its own). Used the same way by `switchyard run`, the demo and the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{ExecutionPhase, RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use tokio::sync::watch;

use crate::control::ramp::window::LiveCounters;
use crate::control::rules::RuleControl;
use crate::control::source::{FileTrigger, RuleSource};
use crate::data::dns::Follower;
use crate::data::handover::{self, HandoverError};
use crate::data::idle::{ConnectionCaps, Parked};
use crate::data::listener::{self, Listening, Worker};
use crate::data::namespaces::NamespaceResolver;
use crate::data::pools::{self, Pools};
use crate::data::recent::RecentTraffic;
use crate::data::service::SwitchyardProxy;
use crate::data::upstream::{Client, Lane, Limits};
use crate::kafka::health::KafkaHealth;
use crate::kafka::sink::KafkaSink;
use crate::lifecycle::{Lifecycle, Stop};
use crate::ops::config::{Resolved, ShutdownConfig};
use crate::ops::metrics::{Counters, Metrics, KAFKA_RECORDS};
use crate::ops::notify::Notifier;
use crate::ops::panics;
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
    #[error("cannot read the system's DNS settings (set dns.nameservers): {0}")]
    Dns(hickory_resolver::ResolveError),
    #[error("the proxy did not start accepting connections on {0} within 10 s")]
    NotAccepting(SocketAddr),
    #[error("cannot take the proxy's socket over from the running process: {0}")]
    Handover(#[from] HandoverError),
    /// Building pingora's runtimes failed, or a worker could not get its copy of the listening
    /// socket (at the descriptor limit, for example): that panics on its own thread, and this
    /// carries its message.
    #[error("the data plane stopped while starting: {0}")]
    DataPlaneStopped(String),
}

/// Hands pingora our stop request instead of letting it install its own signal handlers.
///
/// A terminate turns readiness off at once and keeps serving, listeners open, for
/// `grace_period_s` (load balancers are still removing the instance); only then does pingora
/// close the listeners, and its own grace period (set to `drain_timeout_s`) is the time requests
/// in flight get. An upgrade hands the listening sockets to the new process first. pingora's fast
/// shutdown is never used: it does not tell the listeners to stop, and without work stealing
/// their threads then never exit.
struct StopWatch {
    stop: watch::Receiver<Stop>,
    lifecycle: Arc<Lifecycle>,
    grace: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for StopWatch {
    async fn recv(&self) -> ShutdownSignal {
        let mut rx = self.stop.clone();
        let kind = rx.wait_for(|s| *s != Stop::Running).await.map(|s| *s).unwrap_or(Stop::Terminate);
        self.lifecycle.start_draining();
        match kind {
            Stop::Upgrade => ShutdownSignal::GracefulUpgrade,
            _ => {
                tokio::time::sleep(self.grace).await;
                ShutdownSignal::GracefulTerminate
            }
        }
    }
}

/// How long `run --upgrade` waits for the running process to send its sockets.
const HANDOVER_WAIT: Duration = Duration::from_secs(5);

/// How long pingora keeps accepting after it handed its sockets to a new process (its
/// `CLOSE_TIMEOUT`).
const UPGRADE_CLOSE: Duration = Duration::from_secs(5);

/// How long nothing may be in flight before a drain counts as done.
const DRAIN_SETTLE: Duration = Duration::from_millis(500);

/// A running instance. Dropping it stops it and waits for the drain.
pub struct RunningProxy {
    pub proxy_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub shared: Arc<Shared>,
    control: Option<tokio::runtime::Runtime>,
    stop: watch::Sender<Stop>,
    data_plane: Option<JoinHandle<()>>,
    shutdown: ShutdownConfig,
}

/// Starts an instance in three steps: the shared state (rules, pools, metrics, the shadow
/// pipeline, Kafka), the control plane (admin API, rule sources, health checks), then the data
/// plane (pingora). Returns once the proxy accepts connections.
pub fn start(resolved: Resolved) -> Result<RunningProxy, StartError> {
    start_instance(resolved, false)
}

/// Starts an instance that takes the listening sockets over from a running one (which is then
/// sent SIGQUIT): a restart on one host that refuses no connection. The admin listener is shared
/// with the old instance until it exits.
pub fn take_over(resolved: Resolved) -> Result<RunningProxy, StartError> {
    start_instance(resolved, true)
}

fn start_instance(resolved: Resolved, upgrade: bool) -> Result<RunningProxy, StartError> {
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
    let DataPlane { listening, stop, thread: data_plane } = start_data_plane(&control, &resolved, &shared, upgrade)?;
    let proxy_addr = listening.addr();
    let running = RunningProxy {
        proxy_addr,
        admin_addr,
        shared,
        control: Some(control),
        stop,
        data_plane: Some(data_plane),
        shutdown: resolved.shutdown.clone(),
    };
    let threads = DataPlaneThreads::of(proxy_addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    // Serving once every worker accepts and pingora's main loop, which hears a stop, runs.
    while !(listening.all_accepting() && running.shared.lifecycle.is_started()) {
        // Read before the panics: a thread that ended in a panic recorded it before it finished.
        let finished = running.data_plane.as_ref().is_some_and(|t| t.is_finished());
        if let Some(why) = panics::on_threads(&threads.names()) {
            return Err(StartError::DataPlaneStopped(why));
        }
        if finished {
            return Err(StartError::DataPlaneStopped("pingora's server returned".into()));
        }
        if Instant::now() > deadline {
            return Err(StartError::NotAccepting(proxy_addr));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    tracing::info!(proxy = %proxy_addr, admin = %admin_addr, "switchyard is serving");
    Ok(running)
}

/// Loads the rules and builds what the data plane and the admin API share.
fn shared_state(resolved: &Resolved) -> Result<Arc<Shared>, StartError> {
    let config = resolved;
    let metrics = Arc::new(Metrics::new());
    let rules = switchyard_rules::load_rules_file(&resolved.rules)?;
    let source = RuleSource::File { path: resolved.rules.clone(), trigger: FileTrigger::Start };
    let live = Arc::new(LiveCounters::default());
    let (notifier, notifications) = Notifier::new(resolved.notify.clone(), resolved.shadow.instance_name(), &metrics);
    let notifier = Arc::new(notifier);
    // Entered by the caller: the senders run on the control runtime.
    tokio::spawn(notifications);
    let recent = Arc::new(RecentTraffic::new(crate::ops::clock::now_ms()));
    let rules = Arc::new(RuleControl::new(
        rules,
        source,
        Arc::clone(&metrics),
        Arc::clone(&live),
        notifier,
        Arc::clone(&recent),
    ));
    let pools = Arc::new(Pools::new(&resolved.members, config.health.clone()));
    let kafka = Arc::new(KafkaHealth::default());
    let records_sink = if config.kafka.enabled() && !config.kafka.records_topic.is_empty() {
        let on_result = kafka.delivery_callback(Counters::new(
            &metrics,
            KAFKA_RECORDS,
            &[("topic", &config.kafka.records_topic)],
            "result",
        ));
        // The producer connects lazily: an unreachable broker does not stop the start.
        Some(KafkaSink::new(&config.kafka, &config.shadow.instance_name(), on_result).map_err(StartError::Kafka)?)
    } else {
        None
    };
    let limits = Limits::from(&config.timeouts);
    let idle = Duration::from_millis(config.timeouts.idle_ms);
    let shadow = crate::shadow::pipeline::start(
        &config.shadow,
        limits,
        idle,
        records_sink,
        Arc::clone(&pools),
        Arc::clone(&metrics),
        Arc::clone(&live),
    )
    .map_err(StartError::Shadow)?;
    let lifecycle = Arc::new(Lifecycle::default());
    let namespaces = Arc::new(NamespaceResolver::new(
        Arc::clone(&pools),
        config.namespaces.clone(),
        Client::new(Lane::Control, limits, idle, &metrics),
        &metrics,
    ));
    Ok(Arc::new(Shared {
        rules,
        pools,
        namespaces,
        metrics,
        live,
        recent,
        pool_header: config.pool_header,
        shadow,
        kafka,
        lifecycle,
    }))
}

/// The admin API, the rule sources (file watch, Kafka topic) and the health checks, on the
/// control runtime. Returns the admin address.
fn start_control_plane(
    control: &tokio::runtime::Runtime,
    resolved: &Resolved,
    shared: &Arc<Shared>,
) -> Result<SocketAddr, StartError> {
    let config = resolved;
    let listen_error = |source| StartError::Listen { what: "admin", addr: resolved.admin_listen, source };
    let admin_listener = control.block_on(crate::control::admin::bind(resolved.admin_listen)).map_err(listen_error)?;
    let admin_addr = admin_listener.local_addr().map_err(listen_error)?;
    control.spawn(crate::control::admin::serve(admin_listener, Arc::clone(shared), config.admin_token.clone()));
    if config.kafka.enabled() && !config.kafka.rules_topic.is_empty() {
        control.spawn(crate::kafka::rules::follow(
            Arc::clone(&shared.rules),
            Arc::clone(&shared.kafka),
            config.kafka.clone(),
        ));
    }
    // Operators' ramp calls go to the rules topic, when there is one, so every replica follows.
    if config.kafka.enabled() && !config.kafka.rules_topic.is_empty() {
        let (calls, to_publish) = tokio::sync::mpsc::unbounded_channel();
        shared.rules.share_calls_with(calls);
        control.spawn(crate::kafka::rules::publish_calls(config.kafka.clone(), to_publish));
    }
    // A ramp's rollback goes to the rules topic, when there is one, so every replica follows.
    let rollbacks = (config.kafka.enabled() && !config.kafka.rules_topic.is_empty()).then(|| {
        let (rollbacks, to_publish) = tokio::sync::mpsc::unbounded_channel();
        control.spawn(crate::kafka::rules::publish_rollbacks(config.kafka.clone(), to_publish));
        rollbacks
    });
    control.spawn(crate::control::ramp::driver::drive(Arc::clone(&shared.rules), Arc::clone(&shared.live), rollbacks));
    if config.watch_rules {
        let _guard = control.enter();
        crate::control::watch::spawn(Arc::clone(&shared.rules), resolved.rules.clone()).map_err(StartError::Watch)?;
    }
    // Names resolved, then one health round, before taking traffic: the first requests go to
    // every controller there is, and avoid dead ones.
    let follower = {
        let _guard = control.enter();
        Follower::new(&config.dns, &shared.pools, &shared.metrics).map_err(StartError::Dns)?
    };
    if let Some(mut follower) = follower {
        let (next, _) = control.block_on(follower.refresh(&shared.pools));
        let pools = Arc::clone(&shared.pools);
        let metrics = Arc::clone(&shared.metrics);
        control.spawn(crate::data::dns::follow(follower, next, pools, health_client(config, shared), metrics));
    }
    control.block_on(pools::check_all(&shared.pools, &health_client(config, shared), &shared.metrics));
    control.spawn(health_loop(
        Arc::clone(shared),
        health_client(config, shared),
        Duration::from_millis(config.timeouts.idle_ms),
    ));
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

/// The data plane once started: its listening socket, its stop handle and pingora's thread.
struct DataPlane {
    listening: Arc<Listening>,
    stop: watch::Sender<Stop>,
    thread: JoinHandle<()>,
}

/// Pingora on a thread of its own, with a worker per thread accepting on the proxy's socket.
fn start_data_plane(
    control: &tokio::runtime::Runtime,
    resolved: &Resolved,
    shared: &Arc<Shared>,
    upgrade: bool,
) -> Result<DataPlane, StartError> {
    let config = resolved;
    let listen_error = |source| StartError::Listen { what: "proxy", addr: resolved.listen, source };
    let socket = if upgrade {
        handover::receive(&config.shutdown.upgrade_sock, config.listen, HANDOVER_WAIT)?
    } else {
        listener::bind(config.listen).map_err(listen_error)?
    };
    let threads =
        if config.threads == 0 { std::thread::available_parallelism().map_or(2, usize::from) } else { config.threads };
    // Each worker's own runtime: one thread each, or one work-stealing runtime of them all.
    let (workers, threads_per_worker) = if config.work_stealing { (1, threads) } else { (threads, 1) };
    let listening =
        Listening::new(socket, workers, config.read_buffer_bytes, config.write_buffer_bytes).map_err(listen_error)?;
    let conf = ServerConf {
        threads,
        work_stealing: config.work_stealing,
        // pingora's grace period runs after its listeners closed: the time requests in flight get.
        grace_period_seconds: Some(config.shutdown.drain_timeout_s),
        // Past it pingora cancels what is left; only blocking tasks could use more.
        graceful_shutdown_timeout_seconds: Some(1),
        upgrade_sock: config.shutdown.upgrade_sock.display().to_string(),
        ..ServerConf::default()
    };
    // The handed-over socket is taken above, not by pingora.
    let mut server = Server::new_with_opt_and_conf(Some(Opt::default()), conf);
    server.bootstrap();
    let proxy = SwitchyardProxy::new(Arc::clone(shared), &config.timeouts);
    let caps = ConnectionCaps { total: config.max_client_connections, per_ip: config.max_client_connections_per_ip };
    let parked = Arc::new(Parked::new(proxy, caps, Arc::clone(&shared.metrics)));
    let names = DataPlaneThreads::of(listening.addr());
    panics::remember();
    panics::forget(&names.names());
    for _ in 0..workers {
        server.add_service(Worker {
            listening: Arc::clone(&listening),
            parked: Arc::clone(&parked),
            name: names.service.clone(),
            threads: threads_per_worker,
        });
    }
    // Once pingora's main loop runs, it hears a stop. When pingora has told its listeners to stop
    // (after our grace period, or after handing the sockets over), a stop may start waiting for
    // the requests in flight.
    let mut phases = server.watch_execution_phase();
    let lifecycle = Arc::clone(&shared.lifecycle);
    control.spawn(async move {
        loop {
            match phases.recv().await {
                Ok(ExecutionPhase::Running) => lifecycle.start(),
                Ok(ExecutionPhase::ShutdownStarted) => break lifecycle.close_listeners(),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                _ => {}
            }
        }
    });
    let (stop, stop_rx) = watch::channel(Stop::Running);
    let watch = StopWatch {
        stop: stop_rx,
        lifecycle: Arc::clone(&shared.lifecycle),
        grace: Duration::from_secs(config.shutdown.grace_period_s),
    };
    let data_plane = std::thread::Builder::new()
        .name(names.server)
        .spawn(move || server.run(RunArgs { shutdown_signal: Box::new(watch) }))
        .map_err(StartError::Runtime)?;
    Ok(DataPlane { listening, stop, thread: data_plane })
}

/// The names of the data plane's threads, which carry its address so that a start can tell its
/// own panics from another instance's in the same process.
struct DataPlaneThreads {
    /// pingora names its runtime's threads after the service.
    service: String,
    /// The thread `Server::run` blocks.
    server: String,
}

impl DataPlaneThreads {
    fn of(addr: SocketAddr) -> DataPlaneThreads {
        DataPlaneThreads { service: format!("switchyard {addr}"), server: format!("switchyard-proxy {addr}") }
    }

    fn names(&self) -> [&str; 2] {
        [&self.service, &self.server]
    }
}

/// The client of the health checks: a check that cannot connect within its timeout fails.
fn health_client(config: &Resolved, shared: &Shared) -> Client {
    let mut limits = Limits::from(&config.timeouts);
    limits.connect = limits.connect.min(Duration::from_millis(config.health.timeout_ms));
    Client::new(Lane::Control, limits, Duration::from_millis(config.timeouts.idle_ms), &shared.metrics)
}

/// Health checks every interval; each round also closes the controller connections idle past
/// `idle` (a pool without traffic would otherwise keep them until its next request).
async fn health_loop(shared: Arc<Shared>, client: Client, idle: Duration) {
    let mut tick = tokio::time::interval(Duration::from_millis(shared.pools.health.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        pools::check_all(&shared.pools, &client, &shared.metrics).await;
        for pool in shared.pools.all() {
            for member in pool.members().iter() {
                member.endpoint.sweep(idle);
            }
        }
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

    /// A handle that stops this instance, from any thread or task.
    pub fn stopper(&self) -> watch::Sender<Stop> {
        self.stop.clone()
    }

    /// Blocks until a stop was requested (by a signal or the stopper) and carried out: the grace
    /// period served, the listeners closed (or handed over), the requests in flight finished (up
    /// to `drain_timeout_s`), the shadow queue and the Kafka producer flushed (bounded; what is
    /// left is counted as dropped). The process may exit right after.
    pub fn wait_drained(&self) {
        let Some(control) = &self.control else { return };
        let mut rx = self.stop.subscribe();
        let kind = control.block_on(async { rx.wait_for(|s| *s != Stop::Running).await.map(|s| *s) });
        let listeners_close = match kind {
            Ok(Stop::Upgrade) => UPGRADE_CLOSE,
            _ => Duration::from_secs(self.shutdown.grace_period_s),
        };
        let lifecycle = &self.shared.lifecycle;
        // pingora stops accepting after the grace period (or the handover); the bound only
        // guards against never hearing of it.
        let closed_by = Instant::now() + listeners_close + Duration::from_secs(10);
        while !lifecycle.listeners_closed() && Instant::now() < closed_by {
            std::thread::sleep(Duration::from_millis(20));
        }
        // A connection accepted just before that has no request counted until its header is read:
        // the drain is over only when nothing was in flight for a settling moment.
        let deadline = Instant::now() + Duration::from_secs(self.shutdown.drain_timeout_s);
        let mut idle_since: Option<Instant> = None;
        while Instant::now() < deadline {
            if lifecycle.in_flight() > 0 {
                idle_since = None;
            } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= DRAIN_SETTLE {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let unfinished = self.shared.lifecycle.in_flight();
        let flush = Duration::from_secs(self.shutdown.flush_timeout_s);
        let dropped = control.block_on(self.shared.shadow.flush(flush));
        tracing::info!(requests_unfinished = unfinished, shadow_jobs_dropped = dropped, "stopped");
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(Stop::Terminate);
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

#![forbid(unsafe_code)]
//! The `switchyard` command: wiring only.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::ServerConfig;

#[derive(Parser)]
#[command(version, about = "Canary routing between OpenWhisk's legacy and scheduler controller fleets")]
struct Cli {
    /// Log as JSON lines instead of human-readable text. Level from SWITCHYARD_LOG (default info).
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy with a static config file.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a rules file or a static config (and the rules it names) without starting anything.
    Check {
        #[arg(long, conflicts_with = "config", required_unless_present = "config")]
        rules: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Start two simulated controller fleets and a proxy on loopback and drive traffic through it.
    Demo {
        #[arg(long, default_value_t = 3000)]
        invocations: usize,
        #[arg(long, default_value_t = 300)]
        actions: usize,
        #[arg(long, default_value_t = 48)]
        concurrency: usize,
    },
}

fn init_logs(json: bool, default_level: &str) {
    // pingora logs "failed to acquire reusable stream" at error level when an idle upstream
    // connection is being polled as it is reused; it then opens a new one, so nothing failed.
    let default = format!("{default_level},pingora_core::connectors=off");
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => {
            init_logs(cli.log_json, "info");
            run(&config)
        }
        Command::Check { rules, config } => {
            init_logs(cli.log_json, "warn");
            check(rules, config)
        }
        Command::Demo { invocations, actions, concurrency } => {
            init_logs(cli.log_json, "warn");
            let opts =
                switchyard::demo::DemoOptions { invocations, actions: actions.max(1), concurrency: concurrency.max(1) };
            match switchyard::demo::run(&opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("demo failed: {e}")),
            }
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("switchyard: {message}");
    ExitCode::FAILURE
}

fn load_config(path: &std::path::Path) -> Result<switchyard::Resolved, String> {
    ServerConfig::load(path).and_then(|c| c.resolve(&path.display().to_string())).map_err(|e| e.to_string())
}

fn run(config_path: &std::path::Path) -> ExitCode {
    let resolved = match load_config(config_path) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let config_rules_path = resolved.rules_path.clone();
    let proxy = match switchyard::start(resolved) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    let (shared, rules_path) = (std::sync::Arc::clone(&proxy.shared), config_rules_path);
    proxy.spawn_control(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::error!("cannot install the SIGHUP handler; reload the rules through the file or the admin API");
            return;
        };
        while hangups.recv().await.is_some() {
            let (shared, path) = (std::sync::Arc::clone(&shared), rules_path.clone());
            // The outcome is logged and counted by the reload itself.
            let _ =
                tokio::task::spawn_blocking(move || shared.reload_file(&path, switchyard::state::FileTrigger::Sighup))
                    .await;
        }
    });
    let stopper = proxy.stopper();
    proxy.spawn_control(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            tracing::error!("cannot install signal handlers; stop the process with SIGKILL");
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping: serving through the grace period, then draining (signal again to exit now)");
        let _ = stopper.send(true);
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: exiting without draining");
        std::process::exit(130);
    });
    proxy.wait();
    ExitCode::SUCCESS
}

fn check(rules: Option<PathBuf>, config: Option<PathBuf>) -> ExitCode {
    let rules_path = match (rules, config) {
        (Some(r), _) => r,
        (None, Some(c)) => match load_config(&c) {
            Ok(resolved) => {
                println!(
                    "{}: config OK (listen {}, admin {}, {} legacy and {} scheduler controllers)",
                    c.display(),
                    resolved.listen,
                    resolved.admin_listen,
                    resolved.legacy.len(),
                    resolved.scheduler.len()
                );
                resolved.rules_path
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None) => return fail("give --rules FILE or --config FILE"),
    };
    match switchyard_rules::load_rules_file(&rules_path) {
        Ok(r) => {
            println!(
                "{}: rules OK (version {}, scheduler share {}, {} overrides, kill switch {})",
                rules_path.display(),
                r.version,
                r.scheduler_share,
                r.overrides.len(),
                if r.kill_switch { "ON" } else { "off" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

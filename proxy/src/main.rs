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
    /// Aggregate comparison records into a report (per action: match rate, real differences, noise,
    /// errors, latency per path).
    Report {
        /// A JSON-lines record file (its rotated files are read too).
        #[arg(long)]
        from: PathBuf,
        #[arg(long, value_parser = ["text", "json", "html"], default_value = "text")]
        format: String,
        /// Write the report here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Start two simulated controller fleets and a proxy on loopback and drive traffic through it.
    Demo {
        #[arg(long, default_value_t = 3000)]
        invocations: usize,
        #[arg(long, default_value_t = 300)]
        actions: usize,
        #[arg(long, default_value_t = 48)]
        concurrency: usize,
        /// Where to write the HTML shadow report (the records go next to it, as .jsonl).
        #[arg(long, default_value = "switchyard-demo.html")]
        html_report: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => {
            switchyard::logging::init(cli.log_json, "info");
            run(&config)
        }
        Command::Check { rules, config } => {
            switchyard::logging::init(cli.log_json, "warn");
            check(rules, config)
        }
        Command::Report { from, format, output } => {
            switchyard::logging::init(cli.log_json, "warn");
            report(&from, &format, output.as_deref())
        }
        Command::Demo { invocations, actions, concurrency, html_report } => {
            switchyard::logging::init(cli.log_json, "warn");
            let opts = switchyard::demo::DemoOptions {
                invocations,
                actions: actions.max(1),
                concurrency: concurrency.max(1),
                html_report,
            };
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

fn report(from: &std::path::Path, format: &str, output: Option<&std::path::Path>) -> ExitCode {
    if from.to_string_lossy().starts_with("kafka://") {
        return fail("reading records from Kafka is not available in this build; use the record file");
    }
    let (records, bad) = match switchyard_shadow::read_records(from) {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    if bad > 0 {
        eprintln!("switchyard: {bad} lines of {} were not comparison records and were left out", from.display());
    }
    let mut report = switchyard_shadow::Report::default();
    for r in &records {
        report.add(r);
    }
    let text = match format {
        "json" => serde_json::to_string_pretty(&report.to_json()).unwrap_or_default() + "\n",
        "html" => report.to_html(),
        _ => report.to_text(),
    };
    match output {
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("{}: {e}", path.display())),
        },
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
    }
}

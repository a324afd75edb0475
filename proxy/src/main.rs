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
enum RulesCommand {
    /// Validate a rules file and publish it to the rules topic (refused when invalid). Every
    /// replica following the topic validates and applies it.
    Publish {
        file: PathBuf,
        #[arg(long)]
        brokers: String,
        #[arg(long)]
        topic: String,
    },
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
        /// A JSON-lines record file (its rotated files are read too), or `kafka://HOST:PORT/TOPIC`
        /// for the records of every replica.
        #[arg(long)]
        from: String,
        /// Only records since then: unix seconds, or an age like `30m`, `6h`, `2d`.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_parser = ["text", "json", "html"], default_value = "text")]
        format: String,
        /// Write the report here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Rules distribution over Kafka.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
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
        Command::Report { from, since, format, output } => {
            switchyard::logging::init(cli.log_json, "warn");
            report(&from, since.as_deref(), &format, output.as_deref())
        }
        Command::Rules { command: RulesCommand::Publish { file, brokers, topic } } => {
            switchyard::logging::init(cli.log_json, "warn");
            let config = switchyard_shadow::KafkaConfig { brokers, rules_topic: topic, ..Default::default() };
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return fail(&e.to_string()),
            };
            match runtime.block_on(switchyard::kafka_rules::publish(&config, &file)) {
                Ok(message) => {
                    println!("{message}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
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

/// `--since`: unix seconds, or an age (`30m`, `6h`, `2d`) before now; in milliseconds.
fn since_ms(text: &str) -> Result<u64, String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let bad = || format!("--since {text}: expected unix seconds or an age like 30m, 6h, 2d");
    let secs = match text.char_indices().last() {
        Some((i, unit @ ('s' | 'm' | 'h' | 'd'))) => {
            let n: u64 = text[..i].parse().map_err(|_| bad())?;
            let factor = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => 86_400,
            };
            now.saturating_sub(n * factor)
        }
        _ => text.parse().map_err(|_| bad())?,
    };
    Ok(secs * 1000)
}

fn report(from: &str, since: Option<&str>, format: &str, output: Option<&std::path::Path>) -> ExitCode {
    let since = match since.map(since_ms).transpose() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let loaded = match from.strip_prefix("kafka://") {
        Some(rest) => {
            let Some((brokers, topic)) = rest.split_once('/').filter(|(b, t)| !b.is_empty() && !t.is_empty()) else {
                return fail("--from kafka://HOST:PORT/TOPIC");
            };
            let mut client = rdkafka::ClientConfig::new();
            client.set("bootstrap.servers", brokers);
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("  reading {pos}/{len} records {bar:30}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let result = switchyard_shadow::read_records_from_topic(&client, topic, since, |read, total| {
                bar.set_length(total);
                bar.set_position(read);
            });
            bar.finish_and_clear();
            result.map_err(|e| e.to_string())
        }
        None => switchyard_shadow::read_records(std::path::Path::new(from))
            .map(|(records, bad)| (records.into_iter().filter(|r| since.is_none_or(|s| r.time_ms >= s)).collect(), bad))
            .map_err(|e| e.to_string()),
    };
    let (records, bad) = match loaded {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if bad > 0 {
        eprintln!("switchyard: {bad} messages of {from} were not comparison records and were left out");
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

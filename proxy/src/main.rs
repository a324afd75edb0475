#![forbid(unsafe_code)]
//! The `switchyard` command: argument parsing, then a call into the library (`cli`, `demo`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::cli;

/// jemalloc rather than glibc's allocator: side by side under load it took about 8 % less CPU per
/// request, for the same memory with 10,000 idle clients (the README's benchmarks).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
        /// `host:port,...`; with `--kafka-config`, overrides its brokers.
        #[arg(long, required_unless_present = "kafka_config")]
        brokers: Option<String>,
        #[arg(long)]
        topic: String,
        /// Take the Kafka settings (brokers, TLS, SASL) from this static config's `[kafka]`.
        #[arg(long)]
        kafka_config: Option<PathBuf>,
        /// Sign the record with this ed25519 secret key (from `switchyard rules keygen`).
        #[arg(long)]
        sign_key: Option<PathBuf>,
    },
    /// What a rules file would move if it were applied now: asked of a replica, which validates it
    /// and weighs it with its recent traffic (`PUT /rules?dry_run=true`); nothing is applied.
    Plan(cli::plan::PlanArgs),
    /// Create an ed25519 key pair for signing rule records: the secret key in FILE (owner-only),
    /// the verify key in FILE.pub and on standard output (for `kafka.rules_verify_keys`).
    Keygen { file: PathBuf },
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy with a static config file.
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Take the listening sockets over from a running instance (then send it SIGQUIT): a
        /// restart that refuses no connection.
        #[arg(long)]
        upgrade: bool,
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
    Report(cli::report::ReportArgs),
    /// Show a replica's ramp: its step, share, each gate's value, threshold and samples, and a
    /// rollback's reason (`GET /ramp` on the admin port).
    Ramp(cli::ramp::RampArgs),
    /// Rules: plan a change against a replica's traffic, publish over Kafka, make signing keys.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Start two simulated controller fleets and a proxy on loopback and drive traffic through it.
    /// `demo ramp`: a self-driving ramp, a fault on the scheduler path, and the automatic rollback.
    Demo {
        #[arg(value_enum, default_value = "shadow")]
        scenario: switchyard::Scenario,
        #[arg(long, default_value_t = 3000)]
        invocations: usize,
        #[arg(long, default_value_t = 300)]
        actions: usize,
        #[arg(long, default_value_t = 48)]
        concurrency: usize,
        /// Where to write the HTML shadow report (the records go next to it, as .jsonl).
        #[arg(long, default_value = "switchyard-demo.html")]
        html_report: PathBuf,
        /// `demo ramp`: a step that waits for an approval (the demo shows the command, and approves
        /// itself after 5 s), and the notifications a webhook on loopback got.
        #[arg(long)]
        approve: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs at info; the one-shot commands only warn, so their own output stays readable.
    let level = if matches!(cli.command, Command::Run { .. }) { "info" } else { "warn" };
    switchyard::init_logging(cli.log_json, level);
    match cli.command {
        Command::Run { config, upgrade } => cli::run(&config, upgrade),
        Command::Check { rules, config } => cli::check(rules, config),
        Command::Report(args) => cli::report::report(&args),
        Command::Rules { command: RulesCommand::Publish { file, brokers, topic, kafka_config, sign_key } } => {
            cli::publish_rules(&file, brokers, topic, kafka_config.as_deref(), sign_key.as_deref())
        }
        Command::Rules { command: RulesCommand::Keygen { file } } => cli::keygen(&file),
        Command::Rules { command: RulesCommand::Plan(args) } => cli::plan::plan(&args),
        Command::Ramp(args) => cli::ramp::ramp(&args),
        Command::Demo { scenario, invocations, actions, concurrency, html_report, approve } => {
            let opts = switchyard::DemoOptions {
                invocations,
                actions: actions.max(1),
                concurrency: concurrency.max(1),
                html_report,
                approve,
            };
            cli::demo(scenario, &opts)
        }
    }
}

#![forbid(unsafe_code)]
//! The `switchyard` command: argument parsing, then a call into the library (`cli`, `demo`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::cli;

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
    Plan {
        file: PathBuf,
        /// The replica's admin address.
        #[arg(long, default_value = "http://127.0.0.1:9090")]
        admin: String,
        /// The admin token.
        #[arg(long, env = "SWITCHYARD_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: cli::plan::Format,
    },
    /// Create an ed25519 key pair for signing rule records: the secret key in FILE (owner-only),
    /// the verify key in FILE.pub and on standard output (for `kafka.rules_verify_keys`).
    Keygen { file: PathBuf },
}

/// An operator's call on a replica's ramp (needs the admin token).
#[derive(Subcommand)]
enum RampAction {
    /// Approve the step the ramp waits for (a step with `approve = true`).
    Approve,
    /// Pause the ramp where it stands, with a reason: no step begins until released.
    Hold {
        #[arg(long)]
        reason: String,
    },
    /// Lift a hold.
    Release,
    /// Clear this replica's own rollback: the ramp resumes where its schedule stands.
    Resume,
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
    Ramp {
        /// The replica's admin address.
        #[arg(long, default_value = "http://127.0.0.1:9090", global = true)]
        admin: String,
        /// The admin token, for the calls that change the ramp.
        #[arg(long, env = "SWITCHYARD_ADMIN_TOKEN", hide_env_values = true, global = true)]
        token: Option<String>,
        #[command(subcommand)]
        action: Option<RampAction>,
    },
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
        Command::Rules { command: RulesCommand::Plan { file, admin, token, format } } => {
            cli::plan::plan(&file, &admin, token.as_deref(), format)
        }
        Command::Ramp { admin, token, action } => match action {
            None => cli::ramp::show(&admin),
            Some(RampAction::Approve) => cli::ramp::call(&admin, token.as_deref(), "approve", None),
            Some(RampAction::Hold { reason }) => cli::ramp::call(&admin, token.as_deref(), "hold", Some(&reason)),
            Some(RampAction::Release) => cli::ramp::call(&admin, token.as_deref(), "release", None),
            Some(RampAction::Resume) => cli::ramp::call(&admin, token.as_deref(), "resume", None),
        },
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

//! The commands of the `switchyard` binary, each a function that returns what the process should
//! exit with; `main.rs` only parses arguments and calls them.

mod admin;
pub mod plan;
pub mod ramp;
pub mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use switchyard_rules::Pool;

use crate::ops::config::kafka::KafkaConfig;
use crate::ops::config::{ConfigError, Resolved, ServerConfig};

/// `switchyard demo [shadow|ramp]`.
pub fn demo(scenario: crate::demo::Scenario, opts: &crate::demo::DemoOptions) -> ExitCode {
    let ran = match scenario {
        crate::demo::Scenario::Shadow => crate::demo::run(opts),
        crate::demo::Scenario::Ramp => crate::demo::ramp::run(opts.approve),
    };
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("demo failed: {e}")),
    }
}

/// Prints `switchyard: <message>` and fails.
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("switchyard: {message}");
    ExitCode::FAILURE
}

fn load_config(path: &Path) -> Result<Resolved, ConfigError> {
    ServerConfig::load(path).and_then(|c| c.resolve(&path.display().to_string()))
}

/// Why a one-shot command has no Kafka settings to work with.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}", .0.join("; "))]
    Security(Vec<String>),
}

/// `switchyard run`: serves until SIGTERM or SIGINT (SIGHUP re-reads the rules file, SIGQUIT
/// hands the listening sockets to a new process). With `upgrade`, takes the sockets over from a
/// running instance instead of binding them.
pub fn run(config_path: &Path, upgrade: bool) -> ExitCode {
    let resolved = match load_config(config_path) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let rules_path = resolved.rules.clone();
    let started = if upgrade { crate::server::take_over(resolved) } else { crate::server::start(resolved) };
    let proxy = match started {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    proxy.spawn_control(crate::control::signals::reload_on_hangup(Arc::clone(&proxy.shared.rules), rules_path));
    proxy.spawn_control(crate::control::signals::stop_on_signal(proxy.stopper()));
    proxy.wait_drained();
    // Everything is drained and flushed; what pingora still waits for would only delay the exit.
    std::process::exit(0)
}

/// `switchyard check`: validates a rules file, or a static config and the rules it names.
pub fn check(rules: Option<PathBuf>, config: Option<PathBuf>) -> ExitCode {
    let rules_path = match (rules, config) {
        (Some(r), _) => r,
        (None, Some(c)) => match load_config(&c) {
            Ok(resolved) => {
                println!(
                    "{}: config OK (listen {}, admin {}, {} legacy and {} scheduler members)",
                    c.display(),
                    resolved.listen,
                    resolved.admin_listen,
                    resolved.members(Pool::Legacy).len(),
                    resolved.members(Pool::Scheduler).len()
                );
                resolved.rules
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
            let ramp = r.ramp.as_ref().map_or(String::new(), |ramp| format!(", ramp {}", ramp.summary()));
            println!(
                "{}: rules OK (version {}, scheduler share {}, {} overrides, kill switch {}{ramp})",
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

/// Kafka settings for a one-shot command: the `[kafka]` of a static config (TLS, SASL, ...) when
/// given, with `brokers` overriding its brokers.
pub fn kafka_settings(config: Option<&Path>, brokers: Option<String>) -> Result<KafkaConfig, KafkaSettingsError> {
    let mut kafka = match config {
        Some(path) => ServerConfig::load(path)?.kafka,
        None => KafkaConfig::default(),
    };
    if let Some(brokers) = brokers {
        kafka.brokers = brokers;
    }
    let problems = kafka.security_problems();
    if !problems.is_empty() {
        return Err(KafkaSettingsError::Security(problems));
    }
    Ok(kafka)
}

/// `switchyard rules publish`: validates, signs when given a key, then publishes to the rules topic.
pub fn publish_rules(
    file: &Path,
    brokers: Option<String>,
    topic: String,
    kafka_config: Option<&Path>,
    sign_key: Option<&Path>,
) -> ExitCode {
    let config = match kafka_settings(kafka_config, brokers) {
        Ok(k) => KafkaConfig { rules_topic: topic, ..k },
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    match runtime.block_on(crate::kafka::rules::publish(&config, file, sign_key)) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `switchyard rules keygen`: a key pair for signed rule records.
pub fn keygen(file: &Path) -> ExitCode {
    match crate::kafka::signing::keygen(file) {
        Ok(public) => {
            println!("{public}");
            eprintln!(
                "switchyard: secret key in {}, verify key in {} (put it in kafka.rules_verify_keys)",
                file.display(),
                file.with_extension("pub").display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

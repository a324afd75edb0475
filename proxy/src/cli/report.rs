//! `switchyard report`: comparison records from a file or a Kafka topic, aggregated into a report.

use std::path::Path;
use std::process::ExitCode;

use std::path::PathBuf;

use switchyard_rules::RulesRejected;
use switchyard_shadow::{NextRulesError, ReadinessRules, Report, ReportLimits, SinkError};

use crate::cli::{fail, KafkaSettingsError};
use crate::kafka::reader::TopicReadError;

/// The report's output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Html,
    /// The next rules change: `--base` plus overrides moving the ready actions to the scheduler.
    Rules,
}

/// `switchyard report`: aggregate comparison records into a report (per action: verdict, match
/// rate, real differences, noise, errors, latency per path).
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A JSON-lines record file (its rotated files are read too), or `kafka://HOST:PORT/TOPIC`
    /// for the records of every replica.
    #[arg(long)]
    pub from: String,
    /// Only records since then: unix seconds, or an age like `30m`, `6h`, `2d`.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Write the report here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// For `kafka://`: the TLS and SASL settings of this static config's `[kafka]`.
    #[arg(long)]
    pub kafka_config: Option<PathBuf>,
    /// Actions reported one by one (the rest are counted as "(other actions)").
    #[arg(long, default_value_t = 1_000)]
    pub max_actions: usize,
    /// Difference paths reported one by one per action (the rest as "(other paths)").
    #[arg(long, default_value_t = 200)]
    pub max_paths: usize,
    /// Ready needs at least this many compared samples.
    #[arg(long, default_value_t = ReadinessRules::default().min_samples)]
    pub ready_min_samples: u64,
    /// Ready needs the scheduler's p50 latency at most this times legacy's.
    #[arg(long, default_value_t = ReadinessRules::default().max_latency_factor)]
    pub ready_latency_factor: f64,
    /// With `--format rules`: the rules file the change starts from (TOML, YAML or JSON).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// With `--format html`: a replica's admin address; its ramp's steps (`GET /ramp`) are
    /// marked on the page's time axis.
    #[arg(long)]
    pub ramp_admin: Option<String>,
}

pub fn report(args: &ReportArgs) -> ExitCode {
    let from = args.from.as_str();
    let since = match args.since.as_deref().map(|s| since_ms(s, now_secs())).transpose() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if args.format == ReportFormat::Rules && args.base.is_none() {
        return fail("--format rules needs --base RULES_FILE: the rules the change starts from");
    }
    let limits = ReportLimits { max_actions: args.max_actions, max_paths: args.max_paths };
    let readiness =
        ReadinessRules { min_samples: args.ready_min_samples, max_latency_factor: args.ready_latency_factor };
    let mut report = Report::new(Default::default(), limits).with_readiness(readiness);
    let bad = match load(from, since, args.kafka_config.as_deref(), &mut report) {
        Ok(bad) => bad,
        Err(e) => return fail(e),
    };
    if bad > 0 {
        eprintln!("switchyard: {bad} messages of {from} were not comparison records and were left out");
    }
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&report.to_json()).unwrap_or_default() + "\n",
        ReportFormat::Html => {
            let marks = match args.ramp_admin.as_deref().map(crate::cli::ramp::marks).transpose() {
                Ok(marks) => marks.unwrap_or_default(),
                Err(e) => return fail(e),
            };
            switchyard_shadow::html::page(&report, &marks)
        }
        ReportFormat::Text => report.to_text(),
        ReportFormat::Rules => match next_rules(&report, args.base.as_deref().unwrap_or(Path::new(""))) {
            Ok(text) => text,
            Err(e) => return fail(e),
        },
    };
    match args.output.as_deref() {
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("{}: {e}", path.display())),
        },
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
    }
}

/// `--format rules`: the next rules change from the base file (see `switchyard_shadow::next_rules`).
pub fn next_rules(report: &Report, base_path: &Path) -> Result<String, ReportError> {
    let base = switchyard_rules::load_rules_file(base_path).map_err(ReportError::Base)?;
    Ok(switchyard_shadow::next_rules(report, &base, &base_path.display().to_string())?)
}

/// Why `switchyard report` could not read its records or write its result.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("--since {0}: expected unix seconds or an age like 30m, 6h, 2d")]
    Since(String),
    #[error("--from kafka://HOST:PORT/TOPIC")]
    KafkaAddress,
    #[error(transparent)]
    File(#[from] SinkError),
    #[error(transparent)]
    KafkaSettings(#[from] KafkaSettingsError),
    #[error(transparent)]
    Topic(#[from] TopicReadError),
    #[error("the base rules are invalid: {0}")]
    Base(RulesRejected),
    #[error(transparent)]
    NextRules(#[from] NextRulesError),
}

/// Adds the records from `kafka://HOST:PORT/TOPIC` (all replicas) or a record file (and its
/// rotated files) to the report; returns the count of messages that were not records. A file is
/// read as a stream: the memory is the report's (bounded by its limits), not the file's.
fn load(
    from: &str,
    since: Option<u64>,
    kafka_config: Option<&Path>,
    report: &mut Report,
) -> Result<usize, ReportError> {
    let Some(rest) = from.strip_prefix("kafka://") else {
        return switchyard_shadow::for_each_record(Path::new(from), |r| {
            if since.is_none_or(|s| r.time_ms >= s) {
                report.add(&r);
            }
        })
        .map_err(ReportError::File);
    };
    let Some((brokers, topic)) = rest.split_once('/').filter(|(b, t)| !b.is_empty() && !t.is_empty()) else {
        return Err(ReportError::KafkaAddress);
    };
    let config = crate::cli::kafka_settings(kafka_config, Some(brokers.to_string()))?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("  reading {pos}/{len} records {bar:30}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let result = crate::kafka::reader::read_records_from_topic(&config.client_config(), topic, since, |read, total| {
        bar.set_length(total);
        bar.set_position(read);
    });
    bar.finish_and_clear();
    let (records, bad) = result?;
    for r in &records {
        report.add(r);
    }
    Ok(bad)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `--since`: unix seconds, or an age (`30m`, `6h`, `2d`) before `now` (unix seconds); in
/// milliseconds.
pub fn since_ms(text: &str, now: u64) -> Result<u64, ReportError> {
    let bad = || ReportError::Since(text.to_string());
    let secs = match text.char_indices().last() {
        Some((i, unit @ ('s' | 'm' | 'h' | 'd'))) => {
            let n: u64 = text[..i].parse().map_err(|_| bad())?;
            let factor = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => 86_400,
            };
            now.saturating_sub(n.saturating_mul(factor))
        }
        _ => text.parse().map_err(|_| bad())?,
    };
    Ok(secs.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::since_ms;

    #[test]
    fn since_takes_seconds_or_an_age() {
        assert_eq!(since_ms("1700000000", 0).ok(), Some(1_700_000_000_000));
        assert_eq!(since_ms("30m", 10_000).ok(), Some((10_000 - 1_800) * 1000));
        assert_eq!(since_ms("2d", 1_000_000).ok(), Some((1_000_000 - 172_800) * 1000));
        assert_eq!(since_ms("99999999999d", 5).ok(), Some(0), "an age before the epoch is the epoch");
        assert!(since_ms("6x", 0).is_err());
        assert!(since_ms("h", 0).is_err());
    }
}

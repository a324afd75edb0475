//! `switchyard report`: comparison records from a file or a Kafka topic, aggregated into a report.

use std::path::Path;
use std::process::ExitCode;

use switchyard_shadow::{ComparisonRecord, Report, ReportLimits};

use crate::cli::fail;

/// The report's output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Html,
}

/// Where the records come from.
pub struct Source<'a> {
    /// A record file, or `kafka://HOST:PORT/TOPIC`.
    pub from: &'a str,
    /// `--since`: unix seconds or an age.
    pub since: Option<&'a str>,
    /// A static config whose `[kafka]` (TLS, SASL) applies to `kafka://`.
    pub kafka_config: Option<&'a Path>,
}

pub fn report(source: &Source<'_>, limits: ReportLimits, format: ReportFormat, output: Option<&Path>) -> ExitCode {
    let from = source.from;
    let since = match source.since.map(|s| since_ms(s, now_secs())).transpose() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let (records, bad) = match load(from, since, source.kafka_config) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if bad > 0 {
        eprintln!("switchyard: {bad} messages of {from} were not comparison records and were left out");
    }
    let mut report = Report::new(Default::default(), limits);
    for r in &records {
        report.add(r);
    }
    let text = match format {
        ReportFormat::Json => serde_json::to_string_pretty(&report.to_json()).unwrap_or_default() + "\n",
        ReportFormat::Html => report.to_html(),
        ReportFormat::Text => report.to_text(),
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

/// Records from `kafka://HOST:PORT/TOPIC` (all replicas) or a record file (and its rotated files),
/// with the count of messages that were not records.
fn load(from: &str, since: Option<u64>, kafka_config: Option<&Path>) -> Result<(Vec<ComparisonRecord>, usize), String> {
    let Some(rest) = from.strip_prefix("kafka://") else {
        let (records, bad) = switchyard_shadow::read_records(Path::new(from)).map_err(|e| e.to_string())?;
        return Ok((records.into_iter().filter(|r| since.is_none_or(|s| r.time_ms >= s)).collect(), bad));
    };
    let Some((brokers, topic)) = rest.split_once('/').filter(|(b, t)| !b.is_empty() && !t.is_empty()) else {
        return Err("--from kafka://HOST:PORT/TOPIC".into());
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
    result.map_err(|e| e.to_string())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `--since`: unix seconds, or an age (`30m`, `6h`, `2d`) before `now` (unix seconds); in
/// milliseconds.
pub fn since_ms(text: &str, now: u64) -> Result<u64, String> {
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
        assert_eq!(since_ms("1700000000", 0), Ok(1_700_000_000_000));
        assert_eq!(since_ms("30m", 10_000), Ok((10_000 - 1_800) * 1000));
        assert_eq!(since_ms("2d", 1_000_000), Ok((1_000_000 - 172_800) * 1000));
        assert_eq!(since_ms("99999999999d", 5), Ok(0), "an age before the epoch is the epoch");
        assert!(since_ms("6x", 0).is_err());
        assert!(since_ms("h", 0).is_err());
    }
}

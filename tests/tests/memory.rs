//! Memory that client traffic can grow: the live shadow report after 100,000 distinct action
//! names and 10,000 distinct difference paths stays within a stated bound. A binary of its own, so
//! no other test's allocations share the process while it measures.

use serde_json::json;
use switchyard_shadow::{
    ComparisonRecord, DiffKind, Difference, NoiseThresholds, Outcome, Report, ReportLimits, SideReport, SCHEMA_VERSION,
};

/// The bound stated in the README: the report's growth over the idle process.
const BOUND_BYTES: u64 = 64 * 1024 * 1024;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

fn record(action: &str, path: &str) -> ComparisonRecord {
    let side = |latency_ms| SideReport { status: Some(200), latency_ms, wait_time_ms: Some(30), ..Default::default() };
    ComparisonRecord {
        schema: SCHEMA_VERSION,
        time_ms: 0,
        instance: "memory".into(),
        request_id: "0123456789abcdef0123456789abcdef".into(),
        action: action.into(),
        served_by: "legacy".into(),
        outcome: Outcome::Mismatch,
        legacy: side(40.0),
        scheduler: side(8.0),
        differences: vec![Difference {
            path: path.into(),
            kind: DiffKind::ValueChanged,
            legacy: Some(json!("a value of some length on the legacy side")),
            scheduler: Some(json!("a value of some length on the scheduler side")),
        }],
        differences_truncated: 0,
        control_differences: Some(vec![path.into()]),
    }
}

#[test]
fn the_live_report_stays_bounded() {
    let mut report = Report::new(NoiseThresholds::default(), ReportLimits::default());
    let before = rss_bytes();
    for i in 0..100_000 {
        report.add(&record(&format!("tenant-{}/pkg/action-with-a-longish-name-{i}", i % 97), "/response/result/x"));
    }
    for i in 0..10_000 {
        report.add(&record("guest/one-action", &format!("/response/result/field-with-a-longish-name-{i}")));
    }
    let grown = rss_bytes().saturating_sub(before);
    let actions = report.actions();
    println!(
        "report after 100,000 action names and 10,000 paths: {} actions reported, RSS +{:.1} MB (bound {} MB)",
        actions.len(),
        grown as f64 / 1_048_576.0,
        BOUND_BYTES / 1_048_576
    );
    assert_eq!(actions.len(), ReportLimits::default().max_actions + 1);
    assert_eq!(report.records, 110_000);
    assert!(grown < BOUND_BYTES, "RSS grew {grown} bytes");
}

//! Aggregation of comparison records into per-action reports, rendered as text, JSON or a
//! self-contained HTML page. Memory is bounded per action (examples, latency samples and
//! difference signatures are capped), so a live report can run for the life of the process.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strum::IntoEnumIterator;

use crate::diff::DiffKind;
use crate::noise::{NoiseModel, NoiseThresholds};
use crate::outcome::Outcome;
use crate::readiness::{Evidence, Readiness, ReadinessRules, Verdict};
use crate::record::{ComparisonRecord, SCHEMA_VERSION};
use crate::timeline::{Bucket, Timeline};

const MAX_EXAMPLES: usize = 5;
/// Where the records of actions past [`ReportLimits::max_actions`] are counted together.
pub const OTHER_ACTIONS: &str = "(other actions)";
/// Where the differences at paths past [`ReportLimits::max_paths`] of an action are counted.
pub const OTHER_PATHS: &str = "(other paths)";

/// How much a report keeps, so that traffic (distinct action names, distinct difference paths)
/// cannot grow it without bound. What is past a limit is counted under [`OTHER_ACTIONS`] or
/// [`OTHER_PATHS`], never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportLimits {
    /// Actions reported one by one.
    pub max_actions: usize,
    /// Difference paths reported one by one per action.
    pub max_paths: usize,
}

impl Default for ReportLimits {
    fn default() -> Self {
        ReportLimits { max_actions: 1_000, max_paths: 200 }
    }
}
const MAX_LATENCY_SAMPLES: usize = 2_000;
/// Replica names kept for the summary (more are counted, not named).
const MAX_INSTANCES: usize = 1_000;
const MAX_SIGNATURES: usize = 1_000;

/// A bounded, uniform sample of values (reservoir sampling with a fixed-seed generator, so the
/// same records give the same report).
#[derive(Debug, Clone, Default)]
struct Reservoir {
    seen: u64,
    values: Vec<f64>,
    state: u64,
}

impl Reservoir {
    fn push(&mut self, v: f64) {
        self.seen += 1;
        if self.values.len() < MAX_LATENCY_SAMPLES {
            self.values.push(v);
            return;
        }
        self.state = self.state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let slot = (self.state >> 33) % self.seen;
        if (slot as usize) < MAX_LATENCY_SAMPLES {
            self.values[slot as usize] = v;
        }
    }

    fn percentile(&self, p: f64) -> Option<f64> {
        if self.values.is_empty() {
            return None;
        }
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        Some(v[((v.len() - 1) as f64 * p).round() as usize])
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<Value>,
}

#[derive(Debug, Clone, Default)]
struct ActionAgg {
    samples: u64,
    outcomes: BTreeMap<Outcome, u64>,
    noise: NoiseModel,
    kinds: BTreeMap<String, DiffKind>,
    examples: BTreeMap<String, Vec<Example>>,
    /// Sorted difference paths of each mismatch → how many mismatches had exactly those. Past the
    /// cap, new signatures are not kept, so those mismatches stay real (never counted as matches).
    signatures: HashMap<Vec<String>, u64>,
    latency: [Reservoir; 2],
    wait: [Reservoir; 2],
    /// Records where that side (legacy, scheduler) failed: no answer, a timeout, or a platform 5xx.
    failures: [u64; 2],
    /// `#annotations/...` paths → how many compared samples differed there.
    annotations: BTreeMap<String, u64>,
    /// The paths counted one by one (at most `max_paths`); others count as [`OTHER_PATHS`].
    paths: std::collections::HashSet<String>,
}

impl ActionAgg {
    /// The name a difference path is counted under.
    fn admit<'p>(&mut self, path: &'p str, max_paths: usize) -> &'p str {
        if self.paths.contains(path) {
            return path;
        }
        if self.paths.len() < max_paths {
            self.paths.insert(path.to_string());
            return path;
        }
        OTHER_PATHS
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PathCount {
    pub path: String,
    pub kind: Option<DiffKind>,
    pub count: u64,
    /// Share of compared samples with this difference.
    pub rate: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
    /// Control-vs-control occurrences (noise only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_count: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

impl Percentiles {
    fn of(r: &Reservoir) -> Percentiles {
        Percentiles { p50: r.percentile(0.5), p90: r.percentile(0.9), p99: r.percentile(0.99) }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionReport {
    pub action: String,
    pub samples: u64,
    /// Samples with both results compared (match or mismatch).
    pub compared: u64,
    /// Compared samples whose differences, if any, were all noise.
    pub matches: u64,
    pub match_rate: Option<f64>,
    /// Counts by outcome, serialised by name (`match`, `skipped:request_too_large`, ...).
    #[serde(serialize_with = "outcomes_by_name")]
    pub outcomes: BTreeMap<Outcome, u64>,
    pub real_differences: Vec<PathCount>,
    pub noise: Vec<PathCount>,
    /// Differences in the activation's annotation set: reported apart, not counted as mismatches.
    pub annotation_differences: Vec<PathCount>,
    pub control_samples: u64,
    pub latency_ms: BTreeMap<&'static str, Percentiles>,
    pub wait_time_ms: BTreeMap<&'static str, Percentiles>,
    /// Records where that path failed (no answer, timeout, platform 5xx).
    pub failures: BTreeMap<&'static str, u64>,
    pub readiness: Readiness,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub thresholds: NoiseThresholds,
    pub limits: ReportLimits,
    pub readiness: ReadinessRules,
    actions: BTreeMap<String, ActionAgg>,
    pub records: u64,
    /// Records of another schema version, left out.
    pub unknown_schema: u64,
    /// The time span of the records (unix ms).
    pub first_ms: Option<u64>,
    pub last_ms: Option<u64>,
    /// Replicas that wrote records (at most [`MAX_INSTANCES`] named), and how many more.
    pub instances: std::collections::BTreeSet<String>,
    pub more_instances: u64,
    latency: [Reservoir; 2],
    wait: [Reservoir; 2],
    pub timeline: Timeline,
}

/// The whole report's figures, for the page's summary and charts.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub records: u64,
    pub first_ms: Option<u64>,
    pub last_ms: Option<u64>,
    pub replicas: usize,
    pub actions_by_verdict: BTreeMap<&'static str, usize>,
    pub latency_ms: BTreeMap<&'static str, Percentiles>,
    pub wait_time_ms: BTreeMap<&'static str, Percentiles>,
    pub timeline: Vec<Bucket>,
}

impl Report {
    pub fn new(thresholds: NoiseThresholds, limits: ReportLimits) -> Report {
        Report { thresholds, limits, ..Report::default() }
    }

    /// The same, judging readiness by `rules`.
    pub fn with_readiness(self, rules: ReadinessRules) -> Report {
        Report { readiness: rules, ..self }
    }

    pub fn add(&mut self, r: &ComparisonRecord) {
        if r.schema != SCHEMA_VERSION {
            self.unknown_schema += 1;
            return;
        }
        self.records += 1;
        self.first_ms = Some(self.first_ms.map_or(r.time_ms, |t| t.min(r.time_ms)));
        self.last_ms = Some(self.last_ms.map_or(r.time_ms, |t| t.max(r.time_ms)));
        if !self.instances.contains(&r.instance) {
            if self.instances.len() < MAX_INSTANCES {
                self.instances.insert(r.instance.clone());
            } else {
                self.more_instances += 1;
            }
        }
        self.timeline.add(r.time_ms, &r.outcome);
        let known = self.actions.contains_key(&r.action) || self.actions.len() < self.limits.max_actions;
        let name = if known { r.action.as_str() } else { OTHER_ACTIONS };
        let max_paths = self.limits.max_paths;
        let a = self.actions.entry(name.to_string()).or_default();
        a.samples += 1;
        *a.outcomes.entry(r.outcome.clone()).or_default() += 1;
        let compared_answers = !matches!(r.outcome, Outcome::Skipped(_));
        for (i, side) in [&r.legacy, &r.scheduler].into_iter().enumerate() {
            if side.status.is_some() {
                a.latency[i].push(side.latency_ms);
                self.latency[i].push(side.latency_ms);
            }
            if let Some(w) = side.wait_time_ms {
                a.wait[i].push(w as f64);
                self.wait[i].push(w as f64);
            }
            if compared_answers && side.class().is_platform_failure() {
                a.failures[i] += 1;
            }
        }
        if let Some(control) = &r.control_differences {
            let mut paths: Vec<&str> = control.iter().map(|p| a.admit(p, max_paths)).collect();
            paths.sort_unstable();
            paths.dedup();
            a.noise.observe_control(paths.into_iter());
        }
        let (annotation_diffs, result_diffs): (Vec<_>, Vec<_>) =
            r.differences.iter().partition(|d| d.path.starts_with(crate::compare::ANNOTATIONS_PATH));
        for d in annotation_diffs {
            let path = a.admit(&d.path, max_paths).to_string();
            *a.annotations.entry(path.clone()).or_default() += 1;
            a.kinds.entry(path).or_insert(d.kind);
        }
        match r.outcome {
            Outcome::Match => a.noise.observe_candidate(std::iter::empty()),
            Outcome::Mismatch => {
                let mut paths: Vec<String> =
                    result_diffs.iter().map(|d| a.admit(&d.path, max_paths).to_string()).collect();
                paths.sort();
                paths.dedup();
                a.noise.observe_candidate(paths.iter().map(String::as_str));
                for d in result_diffs {
                    let path = a.admit(&d.path, max_paths).to_string();
                    a.kinds.entry(path.clone()).or_insert(d.kind);
                    let examples = a.examples.entry(path).or_default();
                    if examples.len() < MAX_EXAMPLES {
                        examples.push(Example {
                            request_id: r.request_id.clone(),
                            legacy: d.legacy.clone(),
                            scheduler: d.scheduler.clone(),
                        });
                    }
                }
                if a.signatures.len() < MAX_SIGNATURES || a.signatures.contains_key(&paths) {
                    *a.signatures.entry(paths).or_default() += 1;
                }
            }
            _ => {}
        }
    }

    pub fn actions(&self) -> Vec<ActionReport> {
        self.actions.iter().map(|(name, a)| self.action_report(name, a)).collect()
    }

    /// The actions in the order an operator reads them: those that need a look (the heaviest
    /// first), then the ready ones, then those without enough data.
    pub fn actions_by_verdict(&self) -> Vec<ActionReport> {
        let mut actions = self.actions();
        actions.sort_by(|x, y| {
            (x.readiness.verdict, -x.readiness.weight, &x.action)
                .partial_cmp(&(y.readiness.verdict, -y.readiness.weight, &y.action))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        actions
    }

    pub fn summary(&self, actions: &[ActionReport]) -> Summary {
        let mut by_verdict = BTreeMap::new();
        for a in actions {
            *by_verdict.entry(a.readiness.verdict.as_str()).or_default() += 1;
        }
        Summary {
            records: self.records,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            replicas: self.instances.len() + self.more_instances as usize,
            actions_by_verdict: by_verdict,
            latency_ms: BTreeMap::from([
                ("legacy", Percentiles::of(&self.latency[0])),
                ("scheduler", Percentiles::of(&self.latency[1])),
            ]),
            wait_time_ms: BTreeMap::from([
                ("legacy", Percentiles::of(&self.wait[0])),
                ("scheduler", Percentiles::of(&self.wait[1])),
            ]),
            timeline: self.timeline.buckets(),
        }
    }

    fn action_report(&self, name: &str, a: &ActionAgg) -> ActionReport {
        let t = &self.thresholds;
        let count = |outcome: &Outcome| a.outcomes.get(outcome).copied().unwrap_or(0);
        let compared = count(&Outcome::Match) + count(&Outcome::Mismatch);
        let noise_only: u64 =
            a.signatures.iter().filter(|(paths, _)| paths.iter().all(|p| !a.noise.is_real(p, t))).map(|(_, n)| n).sum();
        let matches = count(&Outcome::Match) + noise_only;
        let rate = |n: u64| if compared == 0 { 0.0 } else { n as f64 / compared as f64 };
        let path_count = |path: &String, count: u64| PathCount {
            path: path.clone(),
            kind: a.kinds.get(path).copied(),
            count,
            rate: rate(count),
            examples: Vec::new(),
            control_count: None,
        };
        let mut real = Vec::new();
        let mut noise = Vec::new();
        for (path, n) in &a.noise.candidate {
            let entry = path_count(path, *n);
            if a.noise.is_real(path, t) {
                real.push(PathCount { examples: a.examples.get(path).cloned().unwrap_or_default(), ..entry });
            } else {
                noise.push(PathCount { control_count: Some(a.noise.control.get(path).copied().unwrap_or(0)), ..entry });
            }
        }
        real.sort_by(|x, y| y.count.cmp(&x.count).then(x.path.cmp(&y.path)));
        noise.sort_by(|x, y| y.count.cmp(&x.count).then(x.path.cmp(&y.path)));
        let pct = Percentiles::of;
        let readiness = self.readiness.assess(&Evidence {
            samples: a.samples,
            compared,
            match_rate: (compared > 0).then(|| rate(matches)),
            real_differences: real.iter().map(|d| (d.path.as_str(), d.count)).collect(),
            failures: a.failures,
            p50_ms: [a.latency[0].percentile(0.5), a.latency[1].percentile(0.5)],
        });
        ActionReport {
            action: name.to_string(),
            samples: a.samples,
            compared,
            matches,
            match_rate: (compared > 0).then(|| rate(matches)),
            outcomes: a.outcomes.clone(),
            real_differences: real,
            noise,
            annotation_differences: a.annotations.iter().map(|(path, n)| path_count(path, *n)).collect(),
            control_samples: a.noise.control_samples,
            latency_ms: BTreeMap::from([("legacy", pct(&a.latency[0])), ("scheduler", pct(&a.latency[1]))]),
            wait_time_ms: BTreeMap::from([("legacy", pct(&a.wait[0])), ("scheduler", pct(&a.wait[1]))]),
            failures: BTreeMap::from([("legacy", a.failures[0]), ("scheduler", a.failures[1])]),
            readiness,
        }
    }

    pub fn to_json(&self) -> Value {
        let actions = self.actions_by_verdict();
        serde_json::json!({
            "schema": SCHEMA_VERSION,
            "records": self.records,
            "unknown_schema_records": self.unknown_schema,
            "thresholds": self.thresholds,
            "readiness": self.readiness,
            "summary": self.summary(&actions),
            "actions": actions,
        })
    }

    /// The summary and the actions that need a look (real differences, noise, failures), then one
    /// line per action.
    pub fn to_text(&self) -> String {
        let actions = self.actions();
        let mut out = self.text_summary(&actions);
        let _ = writeln!(
            out,
            "\n{:<40} {:>16} {:>8} {:>8} {:>10} {:>12} {:>12}  other outcomes",
            "action", "verdict", "samples", "match", "real diffs", "legacy p50", "sched. p50"
        );
        for a in &actions {
            let p50 = |side: &str| a.latency_ms[side].p50.map_or("-".to_string(), |v| format!("{v:.1} ms"));
            let _ = writeln!(
                out,
                "{:<40} {:>16} {:>8} {:>8} {:>10} {:>12} {:>12}  {}",
                a.action,
                a.readiness.verdict.as_str(),
                a.samples,
                a.match_rate.map_or("n/a".to_string(), |r| format!("{:.1}%", r * 100.0)),
                a.real_differences.len(),
                p50("legacy"),
                p50("scheduler"),
                other_outcomes(a).join(", ")
            );
        }
        out
    }

    /// The summary and the actions that need a look, without the per-action table.
    pub fn to_text_brief(&self) -> String {
        self.text_summary(&self.actions())
    }

    fn text_summary(&self, actions: &[ActionReport]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "shadow comparison: {} records over {} actions (legacy vs scheduler)",
            self.records,
            actions.len()
        );
        if self.unknown_schema > 0 {
            let _ = writeln!(out, "  ({} records of another schema version left out)", self.unknown_schema);
        }
        let attention: Vec<&ActionReport> = actions
            .iter()
            .filter(|a| !a.real_differences.is_empty() || !a.noise.is_empty() || !other_outcomes(a).is_empty())
            .collect();
        let clean = actions.iter().filter(|a| a.match_rate == Some(1.0) && other_outcomes(a).is_empty()).count();
        let _ = writeln!(out, "  {clean} actions match fully; {} need a look (below)", attention.len());
        let verdicts: Vec<String> = Verdict::iter()
            .map(|v| format!("{} {}", actions.iter().filter(|a| a.readiness.verdict == v).count(), v.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "  readiness: {} (ready: >= {} compared samples, no real difference, no scheduler failure, scheduler p50 <= {} x legacy)",
            verdicts.join(", "),
            self.readiness.min_samples,
            self.readiness.max_latency_factor
        );
        let mut annotations: BTreeMap<&str, (u64, u64, usize)> = BTreeMap::new();
        for a in actions {
            for d in &a.annotation_differences {
                let e = annotations.entry(d.path.as_str()).or_default();
                e.0 += d.count;
                e.1 += a.compared;
                e.2 += 1;
            }
        }
        for (path, (n, of, in_actions)) in annotations {
            let _ = writeln!(out, "  annotation difference {path}: {n} of {of} compared samples, in {in_actions} actions (reported apart, not a mismatch)");
        }
        for a in attention {
            let _ = writeln!(out);
            let rate = a.match_rate.map_or("n/a".to_string(), |r| format!("{:.1} %", r * 100.0));
            let others = other_outcomes(a);
            let _ = writeln!(
                out,
                "{}: {} samples, match {rate} of {} compared{}; {}",
                a.action,
                a.samples,
                a.compared,
                if others.is_empty() { String::new() } else { format!(" ({})", others.join(", ")) },
                a.readiness.verdict.as_str()
            );
            let fmt = |p: &Percentiles| match (p.p50, p.p99) {
                (Some(a), Some(b)) => format!("{a:.1}/{b:.1} ms"),
                _ => "-".to_string(),
            };
            let _ = writeln!(
                out,
                "  latency p50/p99: legacy {}, scheduler {};  waitTime p50/p99: legacy {}, scheduler {}",
                fmt(&a.latency_ms["legacy"]),
                fmt(&a.latency_ms["scheduler"]),
                fmt(&a.wait_time_ms["legacy"]),
                fmt(&a.wait_time_ms["scheduler"])
            );
            for d in &a.real_differences {
                let example = d.examples.first().map_or(String::new(), |e| {
                    format!("  e.g. {} → {}", short(e.legacy.as_ref()), short(e.scheduler.as_ref()))
                });
                let kind = d.kind.map_or(String::new(), |k| format!("{k:?}"));
                let _ = writeln!(
                    out,
                    "  DIFF  {}  {kind}  {} of {} ({:.1} %){example}",
                    d.path,
                    d.count,
                    a.compared,
                    d.rate * 100.0
                );
            }
            for n in &a.noise {
                let _ = writeln!(
                    out,
                    "  noise {}  {} of {} (also {} of {} control pairs)",
                    n.path,
                    n.count,
                    a.compared,
                    n.control_count.unwrap_or(0),
                    a.control_samples
                );
            }
        }
        out
    }
}

fn outcomes_by_name<S: serde::Serializer>(outcomes: &BTreeMap<Outcome, u64>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(outcomes.iter().map(|(o, n)| (o.to_string(), n)))
}

/// Outcomes other than match and mismatch, as `label count`.
pub(crate) fn other_outcomes(a: &ActionReport) -> Vec<String> {
    a.outcomes.iter().filter(|(o, _)| !o.is_compared()).map(|(o, n)| format!("{o} {n}")).collect()
}

pub(crate) fn short(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => {
            let t = v.to_string();
            if t.chars().count() > 80 {
                format!("{}…", t.chars().take(80).collect::<String>())
            } else {
                t
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::AnswerClass;
    use crate::diff::Difference;
    use crate::outcome::SideReport;
    use serde_json::json;

    fn rec(action: &str, outcome: Outcome, diffs: &[&str], control: Option<&[&str]>) -> ComparisonRecord {
        ComparisonRecord {
            schema: SCHEMA_VERSION,
            time_ms: 0,
            instance: "t".into(),
            request_id: "r".into(),
            action: action.into(),
            served_by: "legacy".into(),
            outcome,
            legacy: SideReport { status: Some(200), latency_ms: 10.0, wait_time_ms: Some(50), ..Default::default() },
            scheduler: SideReport { status: Some(200), latency_ms: 2.0, wait_time_ms: Some(3), ..Default::default() },
            differences: diffs
                .iter()
                .map(|p| Difference {
                    path: p.to_string(),
                    kind: DiffKind::ValueChanged,
                    legacy: Some(json!(1)),
                    scheduler: Some(json!(2)),
                })
                .collect(),
            differences_truncated: 0,
            control_differences: control.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn separates_real_differences_from_noise() {
        let mut r = Report::default();
        for i in 0..100 {
            let diffs: &[&str] =
                if i % 2 == 0 { &["/response/result/now", "/response/result/v"] } else { &["/response/result/now"] };
            let control: Option<&[&str]> = if i % 5 == 0 { Some(&["/response/result/now"]) } else { None };
            r.add(&rec("guest/a", Outcome::Mismatch, diffs, control));
            r.add(&rec("guest/b", Outcome::Match, &[], None));
        }
        r.add(&rec("guest/b", Outcome::Timeout, &[], None));
        let actions = r.actions();
        let a = &actions[0];
        assert_eq!(a.real_differences.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), vec!["/response/result/v"]);
        assert_eq!(a.noise.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), vec!["/response/result/now"]);
        assert_eq!(a.matches, 50, "mismatches whose only difference is noise count as matches");
        assert!(a.real_differences[0].examples.len() <= MAX_EXAMPLES);
        let b = &actions[1];
        assert_eq!((b.match_rate, b.outcomes[&Outcome::Timeout]), (Some(1.0), 1));
        assert_eq!(b.latency_ms["scheduler"].p50, Some(2.0));
        let text = r.to_text();
        assert!(text.contains("DIFF  /response/result/v") && text.contains("noise /response/result/now"), "{text}");
        let html = crate::html::page(&r, &[]);
        assert!(html.starts_with("<!doctype html>") && !html.contains("http://") && !html.contains("https://"));
        assert_eq!(r.to_json()["actions"][1]["match_rate"], 1.0);
    }

    /// A `502` the scheduler's queue wrote when it dropped calls for the namespace's container
    /// limit is the path's failure, not the action's: classified when the record was made (with
    /// the body), it keeps the action from being called ready. A record written before the class
    /// was stored is read by its status alone.
    #[test]
    fn a_capacity_drop_counts_against_the_scheduler_not_the_action() {
        let drop = serde_json::to_vec(&json!({"error": crate::THROTTLE_DROP_MESSAGE})).unwrap();
        let observed = |status, body: &'static [u8]| crate::Observed {
            status: Some(status),
            body,
            latency_ms: 2.0,
            timed_out: false,
            error: None,
            transaction_id: None,
            blocking: true,
        };
        let comparison = crate::compare(&observed(200, b"{}"), &observed(502, drop.leak()), &[]);
        assert_eq!(comparison.scheduler.class, Some(AnswerClass::CapacityDrop));
        let mut r = Report::default();
        for _ in 0..30 {
            r.add(&rec("guest/fine", Outcome::Match, &[], None));
            r.add(&ComparisonRecord {
                outcome: comparison.outcome.clone(),
                scheduler: comparison.scheduler.clone(),
                ..rec("guest/dropped", Outcome::Match, &[], None)
            });
        }
        let report = r.to_json();
        let action = |name: &str| report["actions"].as_array().unwrap().iter().find(|a| a["action"] == name).unwrap();
        assert_eq!(action("guest/dropped")["failures"]["scheduler"], 30, "{report}");
        assert_eq!(action("guest/dropped")["readiness"]["verdict"], "needs_look", "{report}");
        assert_eq!(action("guest/fine")["readiness"]["verdict"], "ready", "{report}");
        // As an older replica wrote it: no class, so the status alone, and a 502 is the action's.
        let old: ComparisonRecord = serde_json::from_value({
            let mut v = serde_json::to_value(rec("guest/old", Outcome::Throttled, &[], None)).unwrap();
            v["scheduler"] = json!({"status": 502, "latency_ms": 2.0});
            v
        })
        .unwrap();
        assert_eq!((old.scheduler.class, old.scheduler.class()), (None, AnswerClass::ActionFailure));
    }

    #[test]
    fn escapes_html() {
        let mut r = Report::default();
        r.add(&rec("guest/<script>", Outcome::Match, &[], None));
        assert!(!crate::html::page(&r, &[]).contains("<script>"));
    }

    #[test]
    fn traffic_cannot_grow_the_report_without_bound() {
        let mut r = Report::new(NoiseThresholds::default(), ReportLimits { max_actions: 50, max_paths: 20 });
        for i in 0..10_000 {
            r.add(&rec(&format!("guest/a-{i}"), Outcome::Match, &[], None));
        }
        let paths: Vec<String> = (0..2_000).map(|i| format!("/response/result/k{i}")).collect();
        for p in &paths {
            r.add(&rec("guest/a-1", Outcome::Mismatch, &[p.as_str()], Some(&[p.as_str()])));
        }
        let actions = r.actions();
        assert_eq!(actions.len(), 51, "50 actions and the other line");
        let other = actions.iter().find(|a| a.action == OTHER_ACTIONS).unwrap();
        assert_eq!(other.samples, 10_000 - 50, "nothing is lost");
        let a1 = actions.iter().find(|a| a.action == "guest/a-1").unwrap();
        assert_eq!(a1.samples, 2_001);
        let reported = a1.real_differences.len() + a1.noise.len();
        assert!(reported <= 21, "{reported} paths");
        let counted: u64 = a1.real_differences.iter().chain(&a1.noise).map(|p| p.count).sum();
        assert_eq!(counted, 2_000, "every difference counted, past the limit as {OTHER_PATHS}");
    }
}

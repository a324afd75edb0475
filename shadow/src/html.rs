//! The report as one self-contained page an operator looks at: the verdict first (what needs a
//! look and why, heaviest first; what is ready, with the rules change that moves it; what lacks
//! data), then charts (inline SVG), then each action's differences with examples side by side.
//! No script and no external asset: it reads the same saved, mailed or served.

use std::collections::BTreeMap;
use std::fmt::Write;

use strum::IntoEnumIterator;

use crate::outcome::OutcomeKind;
use crate::readiness::{ReadyOverride, Verdict};
use crate::report::{short, ActionReport, Percentiles, Report};
use crate::svg::{self, esc};

fn anchor(action: &str) -> String {
    action.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.ok{background:#e6f4ea}.bad{background:#fce8e6}.na{background:#f8f8f8}code{font-size:.9em}\
.verdict{display:inline-block;padding:.2em .6em;border-radius:1em;margin-right:.5em;font-weight:bold}\
.v-needs{background:#fce8e6;color:#a50e0e}.v-ready{background:#e6f4ea;color:#137333}.v-none{background:#eee;color:#555}\
.summary{border:1px solid #ccc;border-radius:.5em;padding:1em;margin:1em 0;background:#fafafa}\
.charts{display:flex;flex-wrap:wrap;gap:1em}pre{background:#f6f6f6;padding:1em;overflow:auto}";

fn verdict_badge(v: Verdict, n: usize) -> String {
    let class = match v {
        Verdict::NeedsLook => "v-needs",
        Verdict::Ready => "v-ready",
        Verdict::NotEnoughData => "v-none",
    };
    format!("<span class=\"verdict {class}\">{n} {}</span>", v.as_str())
}

/// The page for a report; `marks` (the ramp's steps, say) are drawn on its time axis.
pub fn page(report: &Report, marks: &[svg::Mark]) -> String {
    let actions = report.actions_by_verdict();
    let summary = report.summary(&actions);
    let of = |v: Verdict| actions.iter().filter(|a| a.readiness.verdict == v).collect::<Vec<_>>();
    let (needs, ready, none) = (of(Verdict::NeedsLook), of(Verdict::Ready), of(Verdict::NotEnoughData));
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>switchyard shadow report</title>\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"><style>{STYLE}</style></head><body>\
<h1>Shadow comparison: legacy vs scheduler</h1>"
    );
    // The verdict first.
    let period = match (summary.first_ms, summary.last_ms) {
        (Some(a), Some(b)) => format!(
            "{} to {} ({:.0} s)",
            switchyard_rules::format_rfc3339(a - a % 1000),
            switchyard_rules::format_rfc3339(b - b % 1000),
            (b - a) as f64 / 1000.0
        ),
        _ => "no records".into(),
    };
    let _ = write!(
        out,
        "<div class=\"summary\"><p>{} records from {} replica{} over {period}; {} actions.</p><p>{}{}{}</p>\
<p><small>Ready: at least {} compared samples, no real difference (learned noise and annotation differences do not count), \
no error or timeout on the scheduler, scheduler p50 latency at most {} × legacy's.</small></p></div>",
        summary.records,
        summary.replicas,
        if summary.replicas == 1 { "" } else { "s" },
        actions.len(),
        verdict_badge(Verdict::NeedsLook, needs.len()),
        verdict_badge(Verdict::Ready, ready.len()),
        verdict_badge(Verdict::NotEnoughData, none.len()),
        report.readiness.min_samples,
        report.readiness.max_latency_factor,
    );
    out.push_str("<h2 id=\"needs-a-look\">Needs a look</h2>");
    if needs.is_empty() {
        out.push_str("<p>Nothing: no real difference, no failure on the scheduler, no slow action.</p>");
    } else {
        out.push_str("<table><tr><th>action</th><th>why</th><th>match</th><th>samples</th><th>failures legacy / scheduler</th><th>p50 ms legacy / scheduler</th></tr>");
        for a in &needs {
            let _ = write!(
                out,
                "<tr class=\"bad\"><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{} / {}</td></tr>",
                anchor(&a.action),
                esc(&a.action),
                a.readiness.reasons.iter().map(|r| esc(r)).collect::<Vec<_>>().join("<br>"),
                a.match_rate.map_or("n/a".into(), |r| format!("{:.1} %", r * 100.0)),
                a.samples,
                a.failures["legacy"],
                a.failures["scheduler"],
                ms(a.latency_ms["legacy"].p50),
                ms(a.latency_ms["scheduler"].p50),
            );
        }
        out.push_str("</table>");
    }
    out.push_str("<h2 id=\"ready\">Ready to move</h2>");
    let overrides: Vec<ReadyOverride> = ready.iter().filter_map(|a| ReadyOverride::for_action(&a.action)).collect();
    if overrides.is_empty() {
        out.push_str("<p>None yet.</p>");
    } else {
        let names: Vec<String> = ready.iter().map(|a| format!("<code>{}</code>", esc(&a.action))).collect();
        let _ =
            write!(out, "<p>{} (<a href=\"#next-rules\">the rules change that moves them</a>)</p>", names.join(", "));
    }
    charts(&mut out, &summary, marks);
    if !overrides.is_empty() {
        let _ = write!(
            out,
            "<h2 id=\"next-rules\">The next rules change</h2><p>These overrides move the ready actions to the scheduler; \
<code>switchyard report --from SOURCE --format rules --base rules.toml</code> writes the whole rules change, validated:</p><pre>{}</pre>",
            esc(&overrides.iter().map(ReadyOverride::to_toml).collect::<Vec<_>>().join("\n"))
        );
    }
    out.push_str("<h2 id=\"not-enough-data\">Not enough data</h2>");
    if none.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        let _ = write!(
            out,
            "<details><summary>{} actions with fewer than {} compared samples (or only other outcomes)</summary>",
            none.len(),
            report.readiness.min_samples
        );
        out.push_str("<table><tr><th>action</th><th>compared</th><th>samples</th><th>other outcomes</th></tr>");
        for a in &none {
            let _ = write!(
                out,
                "<tr class=\"na\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&a.action),
                a.compared,
                a.samples,
                esc(&crate::report::other_outcomes(a).join(", "))
            );
        }
        out.push_str("</table></details>");
    }
    out.push_str("<h2>Each action</h2>");
    for a in &actions {
        action_section(&mut out, a);
    }
    out.push_str("</body></html>\n");
    out
}

fn percentile_groups(p: &BTreeMap<&'static str, Percentiles>) -> [(&'static str, [Option<f64>; 2]); 3] {
    let (l, s) = (&p["legacy"], &p["scheduler"]);
    [("p50", [l.p50, s.p50]), ("p90", [l.p90, s.p90]), ("p99", [l.p99, s.p99])]
}

fn charts(out: &mut String, summary: &crate::report::Summary, marks: &[svg::Mark]) {
    out.push_str("<h2 id=\"charts\">Charts</h2><div class=\"charts\">");
    out.push_str(&svg::grouped_bars(
        "Latency per path (all actions)",
        "latency",
        "ms",
        &percentile_groups(&summary.latency_ms),
    ));
    out.push_str(&svg::grouped_bars(
        "waitTime per path (queueing before the action ran)",
        "waitTime",
        "ms",
        &percentile_groups(&summary.wait_time_ms),
    ));
    let series: Vec<(&str, &str)> = OutcomeKind::iter()
        .map(|k| {
            let colour = match k {
                OutcomeKind::Match => "#34a853",
                OutcomeKind::Mismatch => "#ea4335",
                OutcomeKind::Throttled => "#fbbc04",
                OutcomeKind::Queued | OutcomeKind::Accepted => "#9aa0a6",
                OutcomeKind::Error | OutcomeKind::Timeout => "#a142f4",
                OutcomeKind::Skipped => "#dadce0",
            };
            (k.as_str(), colour)
        })
        .collect();
    let buckets: Vec<(u64, Vec<u64>)> = summary
        .timeline
        .iter()
        .map(|b| (b.start_ms, series.iter().map(|(k, _)| b.outcomes.get(k).copied().unwrap_or(0)).collect()))
        .collect();
    out.push_str(&svg::stacked_over_time("Outcomes over time", "count", &buckets, &series, marks));
    let points: Vec<(u64, Option<f64>)> = summary.timeline.iter().map(|b| (b.start_ms, b.match_rate)).collect();
    out.push_str(&svg::rate_over_time("Match rate over time (compared records)", &points));
    out.push_str("</div>");
}

fn action_section(out: &mut String, a: &ActionReport) {
    let _ = write!(
        out,
        "<h3 id=\"{}\">{} {}</h3><p>{} samples, {} compared, match {}; latency p50/p90/p99 ms: legacy {} / {} / {}, scheduler {} / {} / {}; \
waitTime p50 ms: legacy {}, scheduler {}</p>",
        anchor(&a.action),
        esc(&a.action),
        verdict_badge(a.readiness.verdict, 1).replace(">1 ", ">"),
        a.samples,
        a.compared,
        a.match_rate.map_or("n/a".into(), |r| format!("{:.1} %", r * 100.0)),
        ms(a.latency_ms["legacy"].p50),
        ms(a.latency_ms["legacy"].p90),
        ms(a.latency_ms["legacy"].p99),
        ms(a.latency_ms["scheduler"].p50),
        ms(a.latency_ms["scheduler"].p90),
        ms(a.latency_ms["scheduler"].p99),
        ms(a.wait_time_ms["legacy"].p50),
        ms(a.wait_time_ms["scheduler"].p50),
    );
    if a.real_differences.is_empty() && a.noise.is_empty() && a.annotation_differences.is_empty() {
        return;
    }
    out.push_str("<table><tr><th>path</th><th>kind</th><th>count</th><th>rate</th><th>legacy</th><th>scheduler</th><th>request</th></tr>");
    for d in &a.real_differences {
        for (i, e) in d.examples.iter().enumerate() {
            let head = if i == 0 {
                format!(
                    "<td rowspan=\"{}\"><code>{}</code></td><td rowspan=\"{0}\">{}</td><td rowspan=\"{0}\">{}</td><td rowspan=\"{0}\">{:.1} %</td>",
                    d.examples.len(),
                    esc(&d.path),
                    d.kind.map_or(String::new(), |k| format!("{k:?}")),
                    d.count,
                    d.rate * 100.0
                )
            } else {
                String::new()
            };
            let _ = write!(
                out,
                "<tr class=\"bad\">{head}<td><code>{}</code></td><td><code>{}</code></td><td><small>{}</small></td></tr>",
                esc(&short(e.legacy.as_ref())),
                esc(&short(e.scheduler.as_ref())),
                esc(&e.request_id)
            );
        }
    }
    for (label, list, note) in [
        ("noise", &a.noise, "also between two copies on the same path"),
        ("annotations", &a.annotation_differences, "the paths attach different annotations"),
    ] {
        for d in list {
            let _ = write!(
                out,
                "<tr class=\"na\"><td><code>{}</code></td><td>{label}</td><td>{}</td><td>{:.1} %</td><td colspan=\"3\">{note}</td></tr>",
                esc(&d.path),
                d.count,
                d.rate * 100.0
            );
        }
    }
    out.push_str("</table>");
}

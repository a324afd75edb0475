//! Inline SVG charts for the report page: plain numbers in, one `<svg>` element out, with a title,
//! axis labels and units. No script, no external asset: the page stays one readable file.

use std::fmt::Write;

const W: f64 = 560.0;
const H: f64 = 240.0;
/// Plot area margins: left (y labels), right, top (title), bottom (x labels).
const L: f64 = 60.0;
const R: f64 = 10.0;
const T: f64 = 30.0;
const B: f64 = 40.0;

pub const LEGACY_COLOUR: &str = "#8a6d3b";
pub const SCHEDULER_COLOUR: &str = "#2b6cb0";

/// Escapes text for HTML and SVG.
pub(crate) fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A round upper bound for an axis (1, 2 or 5 times a power of ten).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|m| *m >= v).unwrap_or(10.0 * p)
}

fn frame(out: &mut String, title: &str, y_label: &str, x_label: &str, y_max: f64, unit: &str) {
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{t}\">\
<title>{t}</title><text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{t}</text>",
        W / 2.0,
        t = esc(title)
    );
    let (x0, y0, y1) = (L, H - B, T);
    let _ = write!(out, "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{}\" y2=\"{y0}\" stroke=\"#555\"/>", W - R);
    let _ = write!(out, "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#555\"/>");
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let y = y0 - (y0 - y1) * f64::from(i) / 4.0;
        let label = if y_max >= 10.0 { format!("{v:.0}") } else { format!("{v:.2}") };
        let _ = write!(
            out,
            "<line x1=\"{x0}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\">{label}</text>",
            W - R,
            x0 - 4.0,
            y + 3.0
        );
    }
    let _ = write!(
        out,
        "<text x=\"14\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 14 {})\">{} ({})</text>\
<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        esc(y_label),
        esc(unit),
        (L + W - R) / 2.0,
        H - 6.0,
        esc(x_label)
    );
}

fn legend(out: &mut String, entries: &[(&str, &str)]) {
    for (i, (label, colour)) in entries.iter().enumerate() {
        let x = W - R - 120.0;
        let y = T + 4.0 + i as f64 * 14.0;
        let _ = write!(
            out,
            "<rect x=\"{x}\" y=\"{y}\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\" font-size=\"10\">{}</text>",
            x + 14.0,
            y + 9.0,
            esc(label)
        );
    }
}

/// Grouped bars: one group per label (p50, p90, p99…), one bar per path (legacy, scheduler).
pub fn grouped_bars(title: &str, y_label: &str, unit: &str, groups: &[(&str, [Option<f64>; 2])]) -> String {
    let max = groups.iter().flat_map(|(_, v)| v.iter().flatten()).fold(0.0f64, |m, v| m.max(*v));
    let y_max = nice_max(max);
    let mut out = String::new();
    frame(&mut out, title, y_label, "percentile", y_max, unit);
    let plot_w = W - L - R;
    let group_w = plot_w / groups.len().max(1) as f64;
    let bar_w = group_w / 3.0;
    for (g, (label, values)) in groups.iter().enumerate() {
        let gx = L + g as f64 * group_w;
        for (i, (v, colour)) in values.iter().zip([LEGACY_COLOUR, SCHEDULER_COLOUR]).enumerate() {
            let Some(v) = v else { continue };
            let h = (H - B - T) * v / y_max;
            let x = gx + bar_w * (0.5 + i as f64);
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{} {}: {v:.1} {}</title></rect>",
                H - B - h,
                bar_w * 0.9,
                if i == 0 { "legacy" } else { "scheduler" },
                esc(label),
                esc(unit)
            );
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            gx + group_w / 2.0,
            H - B + 14.0,
            esc(label)
        );
    }
    legend(&mut out, &[("legacy", LEGACY_COLOUR), ("scheduler", SCHEDULER_COLOUR)]);
    out.push_str("</svg>");
    out
}

fn time_label(ms: u64) -> String {
    let secs = ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Stacked bars over time: one bar per bucket, a segment per series (colours given).
/// A moment to mark on a time axis (a ramp step, a rollback): a dashed line with its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub at_ms: u64,
    pub label: String,
}

/// Draws `marks` that fall between the first and the last bucket as dashed vertical lines.
fn time_marks(out: &mut String, first: Option<u64>, last: Option<u64>, marks: &[Mark]) {
    let (Some(first), Some(last)) = (first, last) else { return };
    let span = last.saturating_sub(first).max(1) as f64;
    for m in marks.iter().filter(|m| (first..=last).contains(&m.at_ms)) {
        let x = L + (W - L - R) * (m.at_ms - first) as f64 / span;
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{T}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#555\" stroke-dasharray=\"3,3\"><title>{} {}</title></line>\
<text x=\"{x:.1}\" y=\"{}\" font-size=\"9\" transform=\"rotate(-90 {x:.1} {})\" text-anchor=\"end\">{}</text>",
            H - B,
            time_label(m.at_ms),
            esc(&m.label),
            T + 2.0,
            T + 2.0,
            esc(&m.label)
        );
    }
}

pub fn stacked_over_time(
    title: &str,
    unit: &str,
    buckets: &[(u64, Vec<u64>)],
    series: &[(&str, &str)],
    marks: &[Mark],
) -> String {
    let max = buckets.iter().map(|(_, v)| v.iter().sum::<u64>()).max().unwrap_or(0) as f64;
    let y_max = nice_max(max);
    let mut out = String::new();
    frame(&mut out, title, "records", "time (UTC)", y_max, unit);
    let plot_w = W - L - R;
    let bar_w = plot_w / buckets.len().max(1) as f64;
    for (i, (start, values)) in buckets.iter().enumerate() {
        let mut y = H - B;
        for (v, (name, colour)) in values.iter().zip(series) {
            if *v == 0 {
                continue;
            }
            let h = (H - B - T) * *v as f64 / y_max;
            y -= h;
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{} {}: {v}</title></rect>",
                L + i as f64 * bar_w,
                (bar_w * 0.9).max(0.5),
                time_label(*start),
                esc(name)
            );
        }
    }
    axis_times(&mut out, buckets.first().map(|b| b.0), buckets.last().map(|b| b.0));
    time_marks(&mut out, buckets.first().map(|b| b.0), buckets.last().map(|b| b.0), marks);
    legend(&mut out, series);
    out.push_str("</svg>");
    out
}

fn axis_times(out: &mut String, first: Option<u64>, last: Option<u64>) {
    if let (Some(a), Some(b)) = (first, last) {
        let _ = write!(
            out,
            "<text x=\"{L}\" y=\"{}\" font-size=\"10\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            H - B + 14.0,
            time_label(a),
            W - R,
            H - B + 14.0,
            time_label(b)
        );
    }
}

/// A line over time of a value from 0 to 1 (shown in percent); gaps where a bucket has none.
pub fn rate_over_time(title: &str, points: &[(u64, Option<f64>)]) -> String {
    let mut out = String::new();
    frame(&mut out, title, "match rate", "time (UTC)", 100.0, "%");
    let plot_w = W - L - R;
    let step = plot_w / points.len().max(1) as f64;
    let mut path = String::new();
    let mut pen_down = false;
    for (i, (_, v)) in points.iter().enumerate() {
        match v {
            Some(v) => {
                let x = L + step * (i as f64 + 0.5);
                let y = H - B - (H - B - T) * v.clamp(0.0, 1.0);
                let _ = write!(path, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
                let _ = write!(out, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2\" fill=\"{SCHEDULER_COLOUR}\"><title>{:.1} %</title></circle>", v * 100.0);
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let _ =
        write!(out, "<path d=\"{}\" fill=\"none\" stroke=\"{SCHEDULER_COLOUR}\" stroke-width=\"1.5\"/>", path.trim());
    axis_times(&mut out, points.first().map(|p| p.0), points.last().map(|p| p.0));
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_self_contained_svg_with_titles_and_units() {
        let bars =
            grouped_bars("Latency", "latency", "ms", &[("p50", [Some(40.0), Some(8.0)]), ("p99", [Some(90.0), None])]);
        assert!(bars.starts_with("<svg") && bars.ends_with("</svg>"));
        assert!(bars.contains("<title>Latency</title>") && bars.contains("latency (ms)"));
        let time = stacked_over_time(
            "Outcomes",
            "records",
            &[(0, vec![1, 2]), (1000, vec![0, 3])],
            &[("match", "#0a0"), ("mismatch", "#a00")],
            &[Mark { at_ms: 500, label: "step 1 (25%)".into() }, Mark { at_ms: 5000, label: "outside".into() }],
        );
        assert!(time.contains("time (UTC)") && time.contains("00:00:01 mismatch: 3"));
        assert!(time.contains("stroke-dasharray") && time.contains(">step 1 (25%)</text>"), "a mark in range is drawn");
        assert!(!time.contains("outside"), "a mark outside the time range is not");
        let line = rate_over_time("Match rate", &[(0, Some(1.0)), (1000, None), (2000, Some(0.5))]);
        let d = line.split("<path d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "a gap starts a new segment: {d}");
        assert_eq!(nice_max(73.0), 100.0);
        assert_eq!(nice_max(0.3), 0.5);
    }
}

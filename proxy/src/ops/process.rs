//! Process metrics in the standard Prometheus names (`process_*`), read from `/proc/self` at
//! scrape time. Rendered as text because `process_cpu_seconds_total` is a fractional counter,
//! which the `metrics` crate's integer counters cannot carry. Empty where `/proc` is absent.

use std::fmt::Write;

/// Clock ticks per second for `/proc/self/stat` times; 100 on every Linux architecture in use.
const TICKS_PER_SECOND: f64 = 100.0;

/// The `process_*` block, with HELP and TYPE lines.
pub fn render() -> String {
    let mut out = String::new();
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return out };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return out };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // Indices are the proc(5) field numbers minus 3 (pid and comm are gone, 1-based).
    let (utime, stime, starttime, vsize) = (field(11), field(12), field(19), field(20));
    // VmRSS is in kB, which avoids guessing the page size.
    let rss = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse::<f64>().ok())
    });
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok())));
    let mut metric = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        if let Some(v) = value {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
    };
    metric(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        utime.zip(stime).map(|(u, s)| (u + s) / TICKS_PER_SECOND),
    );
    metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss.map(|kb| kb * 1024.0));
    metric("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vsize);
    metric(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        starttime.zip(boot_time).map(|(st, boot)| boot + st / TICKS_PER_SECOND),
    );
    let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64);
    metric("process_open_fds", "gauge", "Number of open file descriptors.", open_fds);
    let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|l| {
        l.lines()
            .find(|line| line.starts_with("Max open files"))
            .and_then(|line| line.split_whitespace().nth(3)?.parse().ok())
    });
    metric("process_max_fds", "gauge", "Maximum number of open file descriptors.", max_fds);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let text = super::render();
        if std::path::Path::new("/proc/self/stat").exists() {
            for name in [
                "process_cpu_seconds_total",
                "process_resident_memory_bytes",
                "process_open_fds",
                "process_start_time_seconds",
            ] {
                assert!(text.contains(&format!("\n{name} ")), "{name} missing:\n{text}");
            }
        }
    }
}

//! `switchyard ramp`: a replica's ramp (`GET /ramp` on its admin port) as text.

use std::fmt::Write;
use std::process::ExitCode;

use serde_json::Value;

/// Fetches `GET /ramp` from `admin` (`http://host:port`) and prints it.
pub fn show(admin: &str) -> ExitCode {
    let url = format!("{}/ramp", admin.trim_end_matches('/'));
    let fetched =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string()).and_then(|rt| {
            rt.block_on(async {
                let resp = reqwest::Client::new()
                    .get(&url)
                    .timeout(std::time::Duration::from_secs(10))
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                let status = resp.status();
                let body: Value = resp.json().await.map_err(|e| format!("{url}: not JSON: {e}"))?;
                if status.is_success() {
                    Ok(body)
                } else {
                    Err(format!("{url}: {status}: {}", body["error"].as_str().unwrap_or("")))
                }
            })
        });
    match fetched {
        Ok(status) => {
            print!("{}", text(&status));
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(&e),
    }
}

/// The text view: where the ramp stands, what holds it, and each gate over the window.
pub fn text(s: &Value) -> String {
    let mut out = String::new();
    let steps = s["steps"].as_array().map_or(0, Vec::len);
    let share = s["share"].as_str().unwrap_or("?");
    let _ = write!(
        out,
        "ramp of rules {}: {}, global share {share}",
        s["version"].as_str().unwrap_or("?"),
        s["state"].as_str().unwrap_or("?")
    );
    if let Some(step) = s["step"].as_object() {
        let _ = write!(
            out,
            " (step {} of {steps} since {}, {} of {} invocations seen)",
            step["index"].as_u64().unwrap_or(0) + 1,
            step["since"].as_str().unwrap_or("?"),
            step["invocations"],
            step["min_invocations"],
        );
    }
    if let Some(next) = s["next_step_in_s"].as_f64() {
        let _ = write!(out, "; next step possible in {next:.1} s");
    }
    out.push('\n');
    if let Some(rb) = s["rollback"].as_object() {
        let how = if rb["in_rules"] == true { "published in the rules" } else { "decided by this replica" };
        let _ = writeln!(
            out,
            "  rolled back at {} ({how}): {}",
            rb["at"].as_str().unwrap_or("?"),
            rb["reason"].as_str().unwrap_or("?")
        );
    }
    let _ = writeln!(
        out,
        "  {:<17} {:<8} {:>10} {:>10} {:>10} {:>12}",
        "gate", "verdict", "scheduler", "legacy", "threshold", "samples"
    );
    let num = |v: &Value| v.as_f64().map_or("-".to_string(), |v| format!("{v:.4}"));
    for g in s["gates"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {:<17} {:<8} {:>10} {:>10} {:>10} {:>12}",
            g["gate"].as_str().unwrap_or("?"),
            g["verdict"].as_str().unwrap_or("?"),
            num(&g["scheduler"]),
            num(&g["legacy"]),
            num(&g["threshold"]),
            format!("{}/{}", g["samples"], g["min_samples"]),
        );
    }
    let _ = writeln!(
        out,
        "  window {} s; after a rollback the share is {}",
        s["window_s"],
        s["rollback_share"].as_str().unwrap_or("0%")
    );
    out
}

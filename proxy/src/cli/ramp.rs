//! `switchyard ramp`: a replica's ramp (`GET /ramp` on its admin port) as text.

use std::fmt::Write;
use std::process::ExitCode;

use serde_json::Value;

use super::admin::{admin_call, AdminCallError, CallBody};

/// `switchyard ramp`: show a replica's ramps, or make a call on one.
#[derive(Debug, clap::Args)]
pub struct RampArgs {
    /// The replica's admin address.
    #[arg(long, default_value = "http://127.0.0.1:9090", global = true)]
    admin: String,
    /// The admin token, for the calls that change the ramp.
    #[arg(long, env = "SWITCHYARD_ADMIN_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Which ramp a call is for: an override's name (its `name`, else its patterns); without
    /// it, the global ramp (or the only one).
    #[arg(long, global = true)]
    scope: Option<String>,
    #[command(subcommand)]
    action: Option<RampAction>,
}

/// An operator's call on a replica's ramp (needs the admin token).
#[derive(Debug, clap::Subcommand)]
pub enum RampAction {
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

pub fn ramp(args: &RampArgs) -> ExitCode {
    let call = |name: &str, reason: Option<&str>| {
        call(&args.admin, args.token.as_deref(), args.scope.as_deref(), name, reason)
    };
    match &args.action {
        None => show(&args.admin),
        Some(RampAction::Approve) => call("approve", None),
        Some(RampAction::Hold { reason }) => call("hold", Some(reason)),
        Some(RampAction::Release) => call("release", None),
        Some(RampAction::Resume) => call("resume", None),
    }
}

/// Fetches `GET /ramp` from `admin` (`http://host:port`) and prints it.
pub fn show(admin: &str) -> ExitCode {
    match admin_call(reqwest::Method::GET, admin, "/ramp", None, None) {
        Ok(status) => {
            print!("{}", text(&status));
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(e),
    }
}

/// The ramp's history at `admin` as marks for the report page's time axis.
pub fn marks(admin: &str) -> Result<Vec<switchyard_shadow::Mark>, AdminCallError> {
    let status = admin_call(reqwest::Method::GET, admin, "/ramp", None, None)?;
    let history = status["history"].as_array().cloned().unwrap_or_default();
    Ok(history
        .iter()
        .filter_map(|h| {
            let at_ms = switchyard_rules::parse_rfc3339(h["at"].as_str()?).ok()?;
            Some(switchyard_shadow::Mark { at_ms, label: h["label"].as_str()?.to_string() })
        })
        .collect())
}

/// `switchyard ramp approve|hold|release|resume`: `POST /ramp/{action}` with the admin token,
/// then prints where the ramp stands.
fn call(admin: &str, token: Option<&str>, scope: Option<&str>, action: &str, reason: Option<&str>) -> ExitCode {
    let body = reason.map(|r| CallBody::json(&serde_json::json!({ "reason": r })));
    let path = match scope {
        Some(scope) => {
            format!("/ramp/{action}?scope={}", form_urlencoded::byte_serialize(scope.as_bytes()).collect::<String>())
        }
        None => format!("/ramp/{action}"),
    };
    match admin_call(reqwest::Method::POST, admin, &path, token, body) {
        Ok(answer) => {
            println!("switchyard: {action}: {answer}");
            show(admin)
        }
        Err(e) => super::fail(e),
    }
}

/// The text view of every ramp (`GET /ramp`'s `ramps`: the global one, then the overrides').
pub fn text(status: &Value) -> String {
    status["ramps"].as_array().into_iter().flatten().map(ramp_text).collect::<Vec<_>>().join("\n")
}

/// One ramp: where it stands, what holds it, and each gate over the window.
fn ramp_text(s: &Value) -> String {
    let mut out = String::new();
    let steps = s["steps"].as_array().map_or(0, Vec::len);
    let share = s["share"].as_str().unwrap_or("?");
    let (whose, scope_flag) = match s["scope"].as_str() {
        Some("global") | None => ("global share".to_string(), String::new()),
        Some(scope) => (format!("share of override `{scope}`"), format!(" --scope '{scope}'")),
    };
    let _ = write!(
        out,
        "ramp of rules {}: {}, {whose} {share}",
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
    if let Some(awaiting) = s["awaiting_approval"].as_object() {
        let _ = write!(
            out,
            " (waiting since {} for an approval of step {} of {steps}, share {}: `switchyard ramp approve{scope_flag}`)",
            awaiting["since"].as_str().unwrap_or("?"),
            awaiting["index"].as_u64().unwrap_or(0) + 1,
            awaiting["share"].as_str().unwrap_or("?"),
        );
    }
    if let Some(hold) = s["hold"].as_object() {
        let _ = write!(
            out,
            "; HELD since {} by {}: {} (`switchyard ramp release{scope_flag}`)",
            hold["since"].as_str().unwrap_or("?"),
            hold["by"].as_str().unwrap_or("?"),
            hold["reason"].as_str().unwrap_or("?"),
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
            match (g["mode"].as_str(), g["verdict"].as_str().unwrap_or("?")) {
                (Some("observe"), "fail") => "WOULD".to_string(),
                (Some("observe"), v) => format!("({v})"),
                (_, v) => v.to_string(),
            },
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
    let history = s["history"].as_array().map_or(&[][..], Vec::as_slice);
    if !history.is_empty() {
        let _ = writeln!(out, "  timeline on this replica:");
        for h in history {
            let _ = writeln!(
                out,
                "    {}  {:<22} {}",
                h["at"].as_str().unwrap_or("?"),
                h["event"].as_str().unwrap_or("?"),
                h["said"].as_str().unwrap_or("")
            );
        }
    }
    out
}

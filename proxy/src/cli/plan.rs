//! `switchyard rules plan NEW --admin URL`: what a rules change would move, asked of a replica
//! (`PUT /rules?dry_run=true`: validated and planned against its active rules and recent traffic,
//! never applied).

use std::path::PathBuf;
use std::process::ExitCode;

use switchyard_rules::{read_capped, Plan, RulesFormat, MAX_RULES_BYTES};

use super::admin::{admin_call, CallBody};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Why a plan could not be had (before the replica answered).
#[derive(Debug, thiserror::Error)]
enum PlanError {
    #[error("{0}: {unknown}", unknown = RulesFormat::UNKNOWN_EXTENSION)]
    Extension(String),
    #[error("{file}: {source}")]
    Read { file: String, source: switchyard_rules::FileError },
    #[error("the replica's plan did not read: {0}")]
    Answer(serde_json::Error),
}

/// What a rules file would move if it were applied now: asked of a replica, which validates it and
/// weighs it with its recent traffic (`PUT /rules?dry_run=true`); nothing is applied.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    file: PathBuf,
    /// The replica's admin address.
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    admin: String,
    /// The admin token.
    #[arg(long, env = "SWITCHYARD_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub fn plan(args: &PlanArgs) -> ExitCode {
    let (file, admin, token, format) = (&args.file, &args.admin, args.token.as_deref(), args.format);
    let name = file.display().to_string();
    let Some(media_type) = RulesFormat::from_path(file).map(RulesFormat::media_type) else {
        return super::fail(PlanError::Extension(name));
    };
    let bytes = match read_capped(file, MAX_RULES_BYTES) {
        Ok(bytes) => bytes,
        Err(source) => return super::fail(PlanError::Read { file: name, source }),
    };
    let body = CallBody { media_type, bytes };
    let answer = match admin_call(reqwest::Method::PUT, admin, "/rules?dry_run=true", token, Some(body)) {
        Ok(answer) => answer,
        Err(e) => return super::fail(e),
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&answer["plan"]).unwrap_or_default()),
        Format::Text => match serde_json::from_value::<Plan>(answer["plan"].clone()) {
            Ok(plan) => print!("{plan}"),
            Err(e) => return super::fail(PlanError::Answer(e)),
        },
    }
    ExitCode::SUCCESS
}

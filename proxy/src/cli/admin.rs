//! Calls to a replica's admin API from the command line.

use serde_json::Value;

/// Why a call to a replica's admin API gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminCallError {
    #[error("cannot start a runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("{url}: not JSON: {source}")]
    NotJson { url: String, source: reqwest::Error },
    #[error("{url}: {status}: {message}")]
    Refused { url: String, status: reqwest::StatusCode, message: String },
}

/// A request body and its media type.
pub struct CallBody {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

impl CallBody {
    pub fn json(value: &Value) -> CallBody {
        CallBody { media_type: "application/json", bytes: value.to_string().into_bytes() }
    }
}

/// `method` on `admin` + `path`, with the bearer token and a body when given; the answer's JSON
/// when it succeeded.
pub fn admin_call(
    method: reqwest::Method,
    admin: &str,
    path: &str,
    token: Option<&str>,
    body: Option<CallBody>,
) -> Result<Value, AdminCallError> {
    let url = format!("{}{path}", admin.trim_end_matches('/'));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(AdminCallError::Runtime)?;
    runtime.block_on(async {
        let mut req = reqwest::Client::new().request(method, &url).timeout(std::time::Duration::from_secs(10));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, body.media_type).body(body.bytes);
        }
        let resp = req.send().await.map_err(|source| AdminCallError::Unreachable { url: url.clone(), source })?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|source| AdminCallError::NotJson { url: url.clone(), source })?;
        if status.is_success() {
            Ok(body)
        } else {
            // A refusal says why in `error`; refused rules list every problem in `message`.
            let message = body["message"].as_str().or(body["error"].as_str()).unwrap_or_default().to_string();
            Err(AdminCallError::Refused { url, status, message })
        }
    })
}

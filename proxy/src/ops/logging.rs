//! Log setup. Human-readable lines by default, JSON lines on request; the level comes from
//! `SWITCHYARD_LOG` (an `EnvFilter` directive list).
//!
//! Whatever the level asked for, the HTTP libraries underneath stay at `info`: at `debug` pingora
//! logs request and response bodies, and the HTTP clients log headers, which carry API keys.

use tracing_subscriber::EnvFilter;

/// Targets capped at `info`, and why: see the module doc.
const CAPPED: &[&str] = &["pingora_proxy", "pingora_core", "pingora_http", "hyper", "hyper_util", "h2", "reqwest"];

/// The filter for `requested` (e.g. `debug`, `switchyard=debug,info`), with the caps applied.
pub fn filter(requested: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(requested).unwrap_or_else(|_| EnvFilter::new("info"));
    // Only a debug or trace request can reach what the caps hold back; adding them otherwise would
    // raise those targets to info.
    let verbose = requested.contains("debug") || requested.contains("trace");
    for target in CAPPED.iter().filter(|_| verbose) {
        if let Ok(d) = format!("{target}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    // pingora logs "failed to acquire reusable stream" at error level when an idle upstream
    // connection is being polled as it is reused; it then opens a new one, so nothing failed.
    if let Ok(d) = "pingora_core::connectors=off".parse() {
        filter = filter.add_directive(d);
    }
    filter
}

/// Installs the process's log subscriber on standard error.
pub fn init(json: bool, default_level: &str) {
    let requested = std::env::var("SWITCHYARD_LOG").unwrap_or_else(|_| default_level.to_string());
    let builder = tracing_subscriber::fmt().with_env_filter(filter(&requested)).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

//! Operations: the static config, logging, the metrics catalogue and process metrics.

pub mod config;
pub mod logging;
pub mod metrics;
pub mod process;

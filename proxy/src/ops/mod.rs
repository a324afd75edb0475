//! Operations: the static config, logging, the metrics catalogue, process metrics, and the
//! panics a start reads its failure from.

pub mod clock;
pub mod config;
pub mod delivery;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod panics;
pub mod process;

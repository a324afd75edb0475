//! switchyard: a pingora proxy in front of two OpenWhisk controller fleets (legacy Kafka path and
//! the new scheduler) that routes a sticky share of invocations to the new path, shadow-compares
//! results, and hot-swaps its rules.
//!
//! The modules follow the design: the **data plane** (`data`: classification, credentials, pools
//! and health, the per-request flow, the client to the controllers), the **control plane**
//! (`control`: rule control and its sources), the **shadow pipeline** (`shadow`), **Kafka**
//! (`kafka`), **operations** (`ops`: config, logging, metrics), and the process around them
//! (`server` starts an instance, `cli` and `demo` are the binary's commands).
//!
//! The modules are private; what the binary, the tests, the benches and the fuzz targets use is
//! the list below (and the binary's commands in `cli`), so the compiler sees any code nothing uses.
#![forbid(unsafe_code)]

pub mod cli;
mod control;
mod data;
mod demo;
mod kafka;
mod lifecycle;
mod ops;
mod server;
mod shadow;
mod state;
mod sync;

/// Classification of a request by its method and path (the fuzz targets drive it).
pub use data::classify::{classify, RequestKind};
/// The demo's scenarios and options (the binary's `demo` command).
pub use demo::{DemoOptions, Scenario};
/// Reading the records topic, and the Kafka settings it takes (tests read what replicas wrote).
pub use kafka::reader::{read_records_from_topic, read_to_end};
/// The static config, read and resolved.
pub use ops::config::kafka::KafkaConfig;
pub use ops::config::{ConfigError, HealthConfig, Resolved, ServerConfig};
/// Logging as the binary sets it up, and its level filter (the tests capture logs with it).
pub use ops::logging::{filter as log_filter, init as init_logging};
/// Starting an instance in-process, and the handle that stops it.
pub use server::{start, RunningProxy, StartError};

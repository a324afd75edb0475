//! switchyard: a pingora proxy in front of two OpenWhisk controller fleets (legacy Kafka path and
//! the new scheduler) that routes a sticky share of invocations to the new path, shadow-compares
//! results, and hot-swaps its rules.
//!
//! The modules follow the design: the **data plane** (`data`: classification, credentials, pools
//! and health, the per-request flow, the client to the controllers), the **control plane**
//! (`control`: rule control and its sources), the **shadow pipeline** (`shadow`), **Kafka**
//! (`kafka`), **operations** (`ops`: config, logging, metrics), and the process around them
//! (`server` starts an instance, `cli` and `demo` are the binary's commands).
#![forbid(unsafe_code)]

pub mod cli;
pub mod control;
pub mod data;
pub mod demo;
pub mod kafka;
pub mod lifecycle;
pub mod ops;
pub mod server;
pub mod shadow;
pub mod state;
pub mod sync;

pub use ops::config::{ConfigError, Resolved, ServerConfig};
pub use server::{start, RunningProxy, StartError};

//! switchyard: a pingora proxy in front of two OpenWhisk controller fleets (legacy Kafka path and
//! the new scheduler) that routes a sticky share of invocations to the new path.
#![forbid(unsafe_code)]

pub mod admin;
pub mod classify;
pub mod config;
pub mod metrics;
pub mod pools;
pub mod server;
pub mod service;
pub mod state;

pub use config::{ConfigError, Resolved, ServerConfig};
pub use server::{start, RunningProxy, StartError};
pub mod demo;
pub mod fleet;
pub mod kafka_rules;
pub mod logging;
pub mod process;
pub mod reload;
pub mod shadow;
pub mod watch;

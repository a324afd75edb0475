//! whisk-sim: an Apache OpenWhisk controller simulator.
//!
//! It speaks the controller's REST API as described in the project's OpenWhisk notes (status codes,
//! activation records, headers, Basic auth, throttling) with configurable per-action latency, cold
//! starts, results and errors, in one of two flavors: `legacy` (Kafka path) or `scheduler` (FPC).
//! It counts every request it serves so that tests can assert where traffic went. Each simulator
//! runs on its own thread and runtime, so it can be started from synchronous or async code.
#![forbid(unsafe_code)]

mod activation;
mod api;
mod capacity;
mod config;
mod fleet;
mod server;
mod state;
mod sync;

pub use activation::THROTTLE_DROP_MESSAGE;
pub use config::{
    guest_credentials, ActionProfile, AuthKey, Fault, Flavor, Latency, Outage, ResultSpec, SimConfig, GUEST_KEY,
    UNAVAILABLE_MESSAGE,
};
pub use fleet::SimFleet;
pub use server::{SimHandle, Simulator};
pub use state::{RequestKind, SimStats};

//! The control plane: rule control (the one owner of the active rules) and its sources (the
//! rules file watch, signals, the admin API; the Kafka rules topic lives in `kafka::rules`).

pub mod admin;
pub mod rules;
pub mod signals;
pub mod source;
pub mod watch;

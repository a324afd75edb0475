//! The control plane: rule control (the one owner of the active rules), its sources (the rules
//! file watch, signals, the admin API and its connection slots; the Kafka rules topic lives in
//! `kafka::rules`), and the ramp.

pub mod admin;
pub mod ramp;
pub mod rules;
pub mod signals;
pub mod slots;
pub mod source;
pub mod watch;

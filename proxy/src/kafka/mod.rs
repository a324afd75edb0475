//! Kafka, the fleet's bus: the `[kafka]` settings, the comparison-record sink, the rules topic
//! (followed by every replica, published to by `switchyard rules publish`), and reading a topic
//! to its end (fleet-wide reports).

pub mod health;
pub mod reader;
pub mod rules;
pub mod signing;
pub mod sink;

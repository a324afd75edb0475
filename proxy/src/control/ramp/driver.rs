//! The task that runs the ramp: reads the gates every tick and hands the signals to rule control;
//! hands a rollback to whoever publishes it (the server wires the rules topic in), so every replica
//! follows.

use std::sync::Arc;
use std::time::Duration;

use switchyard_rules::RuleSet;
use tokio::sync::mpsc;

use crate::control::ramp::window::{LiveCounters, Windows};
use crate::control::rules::RuleControl;
use crate::ops::clock::now_ms;

/// How often the gates are read and the position moves.
pub const TICK: Duration = Duration::from_millis(250);

/// Reads the gates every [`TICK`] and moves the ramp; sends each rollback's rule set to
/// `rollbacks` when there is a publisher (a replica without a rules topic keeps its rollback).
pub async fn drive(
    rules: Arc<RuleControl>,
    live: Arc<LiveCounters>,
    rollbacks: Option<mpsc::UnboundedSender<RuleSet>>,
) {
    let mut windows = Windows::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = now_ms();
        let signals = windows.push(now, &live, &rules.snapshot().rules);
        let rollback = rules.ramp_tick(now, &signals);
        if let (Some(publisher), Some(next)) = (&rollbacks, rollback) {
            // A publisher gone (the runtime stopping) leaves the rollback on this replica.
            let _ = publisher.send(next);
        }
    }
}

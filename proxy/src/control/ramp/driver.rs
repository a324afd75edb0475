//! The task that runs the ramp: reads the gates every tick and hands the signals to rule control;
//! publishes a rollback on the rules topic so every replica follows.

use std::sync::Arc;
use std::time::Duration;

use switchyard_rules::{Pool, Ramp};

use crate::control::ramp::now_ms;
use crate::control::ramp::window::{LiveCounters, Window};
use crate::control::rules::RuleControl;
use crate::kafka::config::KafkaConfig;

/// How often the gates are read and the position moves.
pub const TICK: Duration = Duration::from_millis(250);

/// Reads the gates every [`TICK`] and moves the ramp; publishes a rollback on the rules topic
/// when one is configured (signed when `kafka.rules_sign_key` is set).
pub async fn drive(rules: Arc<RuleControl>, live: Arc<LiveCounters>, kafka: Option<KafkaConfig>) {
    let mut window = Window::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = now_ms();
        let totals = live.totals();
        let window_s = rules.snapshot().rules.ramp.as_ref().map_or(Ramp::DEFAULT_WINDOW_S, |r| r.window_s);
        let signals = window.push(now, totals.clone(), window_s);
        let rollback = rules.ramp_tick(now, totals.invocations(Pool::Scheduler), &signals);
        if let (Some(config), Some(next)) = (&kafka, rollback) {
            match crate::kafka::rules::publish_rule_set(config, &next).await {
                Ok(done) => tracing::info!(target: "switchyard::audit", %done, "ramp rollback published"),
                Err(e) => {
                    tracing::warn!(error = %e, "the ramp rollback could not be published; this replica stays rolled back")
                }
            }
        }
    }
}

//! Signals for `switchyard run`: SIGHUP re-reads the rules file; SIGTERM or SIGINT stops
//! gracefully, and a second one exits at once.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::control::rules::RuleControl;
use crate::control::source::FileTrigger;

/// Re-reads the rules file on every SIGHUP, until the runtime stops.
pub async fn reload_on_hangup(rules: Arc<RuleControl>, path: PathBuf) {
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler; reload the rules through the file or the admin API");
        return;
    };
    while hangups.recv().await.is_some() {
        let (rules, path) = (Arc::clone(&rules), path.clone());
        // The outcome is logged and counted by rule control.
        let _ = tokio::task::spawn_blocking(move || rules.reload_file(&path, FileTrigger::Sighup)).await;
    }
}

/// On the first SIGTERM or SIGINT sends `true` to `stop` (a graceful stop); on the second exits.
pub async fn stop_on_terminate(stop: watch::Sender<bool>) {
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop the process with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping: serving through the grace period, then draining (signal again to exit now)");
    let _ = stop.send(true);
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::warn!("second signal: exiting without draining");
    std::process::exit(130);
}

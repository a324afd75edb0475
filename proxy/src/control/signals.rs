//! Signals for `switchyard run`: SIGHUP re-reads the rules file; SIGTERM or SIGINT stops
//! gracefully (a second one exits at once); SIGQUIT hands the listening sockets to a new process
//! started with `--upgrade`, then stops gracefully.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::control::rules::RuleControl;
use crate::control::source::FileTrigger;
use crate::lifecycle::Stop;

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

/// On the first SIGTERM or SIGINT requests a graceful stop, on SIGQUIT a handover to a new
/// process; on a second signal exits at once.
pub async fn stop_on_signal(stop: watch::Sender<Stop>) {
    let (Ok(mut term), Ok(mut int), Ok(mut quit)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::quit()))
    else {
        tracing::error!("cannot install signal handlers; stop the process with SIGKILL");
        return;
    };
    let kind = tokio::select! {
        _ = term.recv() => Stop::Terminate,
        _ = int.recv() => Stop::Terminate,
        _ = quit.recv() => Stop::Upgrade,
    };
    if kind == Stop::Upgrade {
        tracing::info!("handing the listening sockets to the new process, then draining");
    } else {
        tracing::info!("stopping: serving through the grace period, then draining (signal again to exit now)");
    }
    let _ = stop.send(kind);
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::warn!("second signal: exiting without draining");
    std::process::exit(130);
}

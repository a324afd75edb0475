//! Watches the rules file for changes. The parent directory is watched, not the file: editors
//! and Kubernetes ConfigMaps replace files by rename or by swapping a `..data` symlink, which a
//! watch on the file itself would miss. Bursts of events are debounced, and a reload happens only
//! when the file's content actually changed. Only events that concern the rules file count.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::control::rules::RuleControl;
use crate::control::source::FileTrigger;

/// Quiet time after the last event before the file is read: long enough for an editor's
/// write-rename-chmod burst, short against the "well under a second" a change may take.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
#[error("cannot watch {dir} for rule changes: {source}")]
pub struct WatchError {
    dir: PathBuf,
    #[source]
    source: notify::Error,
}

/// A digest of the file's content, or `None` when it cannot be read (oversized, not a regular
/// file: the reload then rejects it with the reason).
fn content_digest(path: &Path) -> Option<u64> {
    switchyard_rules::read_capped(path, switchyard_rules::MAX_RULES_BYTES)
        .ok()
        .map(|bytes| xxhash_rust::xxh3::xxh3_64(&bytes))
}

/// Starts watching `path`; changes are offered to rule control on the current tokio runtime.
pub fn spawn(rules: Arc<RuleControl>, path: PathBuf) -> Result<(), WatchError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let (tx, rx) = mpsc::channel(64);
    let name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| concerns_rules(&e, &name)) {
            // A full channel already holds a wake-up; dropping this one loses nothing.
            let _ = tx.try_send(());
        }
    })
    .map_err(|source| WatchError { dir: dir.clone(), source })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(|source| WatchError { dir: dir.clone(), source })?;
    tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        watch_loop(rules, path, rx).await;
    });
    Ok(())
}

/// Whether an event in the rules file's directory can have changed the rules: a change (not a
/// read: the watcher's own reads must not wake it again) of the rules file itself, or of the
/// `..data` symlink a Kubernetes ConfigMap swaps. Other files there (the shadow record file by
/// default) are not the rules.
fn concerns_rules(event: &notify::Event, rules_name: &std::ffi::OsStr) -> bool {
    if matches!(event.kind, notify::EventKind::Access(_)) {
        return false;
    }
    event.paths.iter().any(|p| p.file_name().is_some_and(|n| n == rules_name || n == "..data"))
}

async fn watch_loop(rules: Arc<RuleControl>, path: PathBuf, mut events: mpsc::Receiver<()>) {
    let mut last = content_digest(&path);
    while events.recv().await.is_some() {
        loop {
            match tokio::time::timeout(DEBOUNCE, events.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_quiet) => break,
            }
        }
        let digest = content_digest(&path);
        if digest == last {
            continue;
        }
        last = digest;
        let (rules, path) = (Arc::clone(&rules), path.clone());
        // Reading and compiling a large rule set is blocking work; keep the admin API responsive.
        let _ = tokio::task::spawn_blocking(move || rules.reload_file(&path, FileTrigger::Watch)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::concerns_rules;
    use notify::event::{AccessKind, CreateKind, ModifyKind};
    use notify::{Event, EventKind};

    #[test]
    fn only_changes_of_the_rules_file_count() {
        let event = |kind, path: &str| Event::new(kind).add_path(path.into());
        let name = std::ffi::OsStr::new("rules.toml");
        assert!(concerns_rules(&event(EventKind::Modify(ModifyKind::Any), "/etc/sy/rules.toml"), name));
        assert!(concerns_rules(&event(EventKind::Create(CreateKind::Any), "/etc/sy/..data"), name));
        assert!(!concerns_rules(&event(EventKind::Access(AccessKind::Any), "/etc/sy/rules.toml"), name));
        assert!(!concerns_rules(&event(EventKind::Modify(ModifyKind::Any), "/etc/sy/shadow-records.jsonl"), name));
    }
}

//! Locking that survives a panic elsewhere.

use std::sync::{Mutex, MutexGuard};

/// Locks `m` even if a thread panicked while holding it. Every value switchyard keeps behind a
/// mutex is replaced whole (never left half-written), so a poisoned lock still guards a
/// consistent value, and refusing it would only turn one failed task into a stuck control plane.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

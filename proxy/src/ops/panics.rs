//! Panics remembered by the name of the thread they happened on. pingora builds its runtime and
//! binds its listener on threads of its own and panics there when that fails (at the descriptor
//! limit, for example); its server thread goes on as if nothing happened, so a start learns that
//! it failed, and why, only from the panic.

use std::sync::{Mutex, Once};

/// Panics kept at most: a start looks for the few on its own threads; a process that panics
/// over and over must not grow this.
const KEPT: usize = 16;

/// (thread name, message), oldest first.
static SEEN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Installs the hook once per process. The previous hook still runs (it prints the panic).
pub fn remember() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(name) = std::thread::current().name() {
                let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
                if seen.len() >= KEPT {
                    seen.remove(0);
                }
                seen.push((name.to_string(), message(info.payload())));
            }
            previous(info);
        }));
    });
}

/// The message of the first panic remembered on a thread with one of these names.
pub fn on_threads(names: &[&str]) -> Option<String> {
    let seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    seen.iter().find(|(thread, _)| names.contains(&thread.as_str())).map(|(_, message)| message.clone())
}

/// Forgets the panics on these threads (a new start reuses the names of an earlier one).
pub fn forget(names: &[&str]) {
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).retain(|(thread, _)| !names.contains(&thread.as_str()));
}

/// A panic's payload as text (`panic!` gives a `&str` or a `String`).
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_remembered_by_its_thread_name_until_forgotten() {
        remember();
        let name = "panics-test-thread";
        let joined =
            std::thread::Builder::new().name(name.into()).spawn(|| panic!("bind failed: {}", 24)).unwrap().join();
        assert!(joined.is_err());
        assert_eq!(on_threads(&[name, "another"]).as_deref(), Some("bind failed: 24"));
        assert_eq!(on_threads(&["another"]), None);
        forget(&[name]);
        assert_eq!(on_threads(&[name]), None);
    }
}

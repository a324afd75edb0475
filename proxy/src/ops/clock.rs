//! Wall-clock time as the ramp, the records and the notifications write it.

use std::time::SystemTime;

/// Unix time in milliseconds (0 for a clock before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

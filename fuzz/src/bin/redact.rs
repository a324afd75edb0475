//! AFL++ entry point for the `redact` target (see `switchyard_fuzz::redact`).
fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::redact(data));
}

//! AFL++ entry point for the `diff` target (see `switchyard_fuzz::diff`).
fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::diff(data));
}

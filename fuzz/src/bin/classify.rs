//! AFL++ entry point for the `classify` target (see `switchyard_fuzz::classify`).
fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::classify(data));
}

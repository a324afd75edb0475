//! AFL++ entry point for the `rules` target (see `switchyard_fuzz::rules`).
fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::rules(data));
}

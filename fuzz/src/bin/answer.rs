//! AFL++ entry point for the `answer` target (see `switchyard_fuzz::answer`).
fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::answer(data));
}

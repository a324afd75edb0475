//! `X-Request-ID`: the caller's id is kept when it is a short token, else replaced. The controller
//! adopts it as its transaction id, both paths receive the same one, and it goes into logs,
//! records and the error body, so it must be bounded and unable to carry log syntax.

use rand::Rng;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest caller id kept.
pub const MAX_REQUEST_ID: usize = 128;

/// The caller's id, if it is 1 to [`MAX_REQUEST_ID`] characters of `[A-Za-z0-9._-]`.
pub fn accept(value: &[u8]) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= MAX_REQUEST_ID
        && value.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then(|| String::from_utf8_lossy(value).into_owned())
}

/// 32 lowercase hex digits, the shape OpenWhisk uses for ids.
pub fn generate() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_tokens_are_kept() {
        assert_eq!(accept(b"9f0c-abc_1.2").as_deref(), Some("9f0c-abc_1.2"));
        for bad in [&b""[..], b"x pool=scheduler kind=invoke", b"a\nb", b"caf\xc3\xa9", &[b'a'; 129]] {
            assert_eq!(accept(bad), None, "{bad:?}");
        }
        assert_eq!(accept(&[b'a'; 128]).map(|s| s.len()), Some(128));
        let id = generate();
        assert_eq!(id.len(), 32);
        assert!(accept(id.as_bytes()).is_some());
    }
}

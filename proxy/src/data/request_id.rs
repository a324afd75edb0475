//! `X-Request-ID`: the caller's id is kept when it is a short token, else replaced. The controller
//! adopts it as its transaction id, both paths receive the same one, and it goes into logs,
//! records and the error body, so it must be bounded and unable to carry log syntax.

use http::HeaderName;
use rand::Rng;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The field's name, made once (not parsed per request).
pub const REQUEST_ID_FIELD: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// The longest caller id kept.
pub const MAX_REQUEST_ID: usize = 128;

/// The caller's id, if it is 1 to [`MAX_REQUEST_ID`] characters of `[A-Za-z0-9._-]`.
pub fn accept(value: &[u8]) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= MAX_REQUEST_ID
        && value.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then(|| String::from_utf8_lossy(value).into_owned())
}

/// 32 lowercase hex digits, the shape OpenWhisk uses for ids. Written digit by digit: one is made
/// for nearly every request, and `format!` spent about a thousand instructions on it (pushing
/// `char`s, or a lossy UTF-8 pass over the digits, a few hundred).
pub fn generate() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = rand::rng().random::<u128>();
    let digits: Vec<u8> = (0..32).map(|i| HEX[(n >> (124 - 4 * i)) as usize & 0xf]).collect();
    // ASCII digits: the check always passes.
    String::from_utf8(digits).unwrap_or_default()
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
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{id}");
        assert!(accept(id.as_bytes()).is_some());
        assert_ne!(generate(), id);
    }
}

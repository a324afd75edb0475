//! The caller's credential, as OpenWhisk reads it: HTTP Basic with the namespace UUID as user and
//! the key as password.

use base64::Engine;

/// A decoded `Authorization: Basic ...` value.
pub struct BasicCredential {
    /// The namespace UUID (what the `subject` sticky key hashes).
    pub user: String,
    /// `user:key`, as decoded.
    pub decoded: String,
}

impl BasicCredential {
    /// Decodes a Basic credential (the scheme name in any case); `None` for other schemes or bad
    /// base64 or text.
    pub fn parse(value: &[u8]) -> Option<BasicCredential> {
        let (scheme, encoded) = value.trim_ascii().split_at_checked(6)?;
        if !scheme.eq_ignore_ascii_case(b"basic ") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let user = decoded.split(':').next().unwrap_or_default().to_string();
        Some(BasicCredential { user, decoded })
    }

    /// The key (the part after the colon), if there is one.
    pub fn key(&self) -> Option<&str> {
        self.decoded.split_once(':').map(|(_, key)| key)
    }
}

/// Every form in which the caller's credential could show up in an answer, none of which may
/// reach a record: the whole header value, the part after the scheme (a bearer token, or the
/// base64 of a Basic credential), the decoded `user:key`, and the key alone. Parts shorter than 8
/// characters are left out: they would redact ordinary words.
pub fn secret_forms(authorization: &str) -> Vec<String> {
    let value = authorization.trim();
    let mut forms = vec![value.to_string()];
    if let Some((_, credentials)) = value.split_once(' ') {
        forms.push(credentials.trim().to_string());
    }
    if let Some(basic) = BasicCredential::parse(value.as_bytes()) {
        forms.extend(basic.key().map(str::to_string));
        forms.push(basic.decoded);
    }
    forms.retain(|f| f.len() >= 8);
    forms.dedup();
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_key() {
        let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("uuid-1:secret-key"));
        let c = BasicCredential::parse(header.as_bytes()).unwrap();
        assert_eq!((c.user.as_str(), c.key(), c.decoded.as_str()), ("uuid-1", Some("secret-key"), "uuid-1:secret-key"));
        assert_eq!(BasicCredential::parse(header.replace("Basic", "basic").as_bytes()).unwrap().user, "uuid-1");
        assert!(BasicCredential::parse(b"Bearer x").is_none());
        assert!(BasicCredential::parse(b"Basic !!!").is_none());
        assert!(BasicCredential::parse(b"Bas").is_none());
    }

    #[test]
    fn every_form_of_the_credential() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("uuid-1:secret-key-42");
        let forms = secret_forms(&format!("Basic {encoded}"));
        for f in [format!("Basic {encoded}"), encoded.clone(), "secret-key-42".into(), "uuid-1:secret-key-42".into()] {
            assert!(forms.contains(&f), "{f} missing from {forms:?}");
        }
        assert_eq!(secret_forms("Bearer tok-0123456789"), vec!["Bearer tok-0123456789", "tok-0123456789"]);
        assert_eq!(secret_forms("bearer tok-0123456789")[1], "tok-0123456789");
    }
}

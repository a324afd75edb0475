//! Signed rule records. The rules topic is a way into every replica, so a replica configured with
//! verify keys (`kafka.rules_verify_keys`) applies a record only when it carries a valid ed25519
//! signature by one of them, made after the rules it runs now.
//!
//! The format, so that another tool can produce it: two record headers,
//! * `signed-at`: the signing time, unix milliseconds, as decimal text;
//! * `signature`: the ed25519 signature (RFC 8032), standard base64, over the bytes of
//!   `switchyard-rules-v1\n{signed-at}\n{content-type}\n` followed by the record's payload, where
//!   `{content-type}` is the record's `content-type` header (empty when absent).
//!
//! Keys are 32 bytes, written in standard base64: the secret key file holds the seed, a verify
//! key is the public key.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

pub const SIGNATURE_HEADER: &str = "signature";
pub const SIGNED_AT_HEADER: &str = "signed-at";

fn message(signed_at: u64, content_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut m = format!("switchyard-rules-v1\n{signed_at}\n{content_type}\n").into_bytes();
    m.extend_from_slice(payload);
    m
}

/// Signs a rule record; returns the `signature` header's value.
pub fn sign(key: &SigningKey, signed_at: u64, content_type: &str, payload: &[u8]) -> String {
    BASE64.encode(key.sign(&message(signed_at, content_type, payload)).to_bytes())
}

/// Why a signed record, a key or a key file was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SigningError {
    #[error("unsigned: replicas with verify keys need the `{}` and `{}` headers", SIGNATURE_HEADER, SIGNED_AT_HEADER)]
    Unsigned,
    #[error("`{}` is not unix milliseconds", SIGNED_AT_HEADER)]
    SignedAtNotMillis,
    #[error("the signature is not base64")]
    SignatureNotBase64,
    #[error("the signature is not 64 bytes")]
    SignatureLength,
    #[error("the signature does not verify with any configured key")]
    NoKeyVerifies,
    #[error("{}: not the base64 of a 32-byte ed25519 secret key", path.display())]
    SecretKeyEncoding { path: PathBuf },
    /// A key file that could not be read or written.
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
}

impl SigningError {
    fn file(path: &Path) -> impl FnOnce(&dyn std::fmt::Display) -> SigningError + '_ {
        move |e| SigningError::File { path: path.to_path_buf(), reason: e.to_string() }
    }
}

/// Checks a record's signature against the verify keys; returns its `signed-at`.
pub fn verify(
    keys: &[VerifyingKey],
    signature: Option<&str>,
    signed_at: Option<&str>,
    content_type: &str,
    payload: &[u8],
) -> Result<u64, SigningError> {
    let (Some(signature), Some(signed_at)) = (signature, signed_at) else {
        return Err(SigningError::Unsigned);
    };
    let signed_at: u64 = signed_at.trim().parse().map_err(|_| SigningError::SignedAtNotMillis)?;
    let bytes = BASE64.decode(signature.trim()).map_err(|_| SigningError::SignatureNotBase64)?;
    let signature = Signature::from_slice(&bytes).map_err(|_| SigningError::SignatureLength)?;
    let m = message(signed_at, content_type, payload);
    if keys.iter().any(|k| k.verify(&m, &signature).is_ok()) {
        Ok(signed_at)
    } else {
        Err(SigningError::NoKeyVerifies)
    }
}

/// Reads a secret key file (standard base64 of the 32-byte seed).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, SigningError> {
    let text = switchyard_rules::read_capped_text(path, switchyard_rules::MAX_SECRET_FILE_BYTES)
        .map_err(|e| SigningError::file(path)(&e))?;
    let seed: [u8; 32] = BASE64
        .decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SigningError::SecretKeyEncoding { path: path.to_path_buf() })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// `switchyard rules keygen`: writes a new secret key to `path` (readable by its owner only) and
/// its verify key to `path.pub`; returns the verify key.
pub fn keygen(path: &Path) -> Result<String, SigningError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // rand's thread generator is a CSPRNG seeded from the operating system.
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| SigningError::file(path)(&e))?;
    writeln!(file, "{}", BASE64.encode(key.to_bytes())).map_err(|e| SigningError::file(path)(&e))?;
    let public = BASE64.encode(key.verifying_key().to_bytes());
    let pub_path = path.with_extension("pub");
    std::fs::write(&pub_path, format!("{public}\n")).map_err(|e| SigningError::file(&pub_path)(&e))?;
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_key_time_type_and_payload() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let keys = [other.verifying_key(), key.verifying_key()];
        let sig = sign(&key, 1_000, "application/toml", b"version = \"a\"");
        assert_eq!(verify(&keys, Some(&sig), Some("1000"), "application/toml", b"version = \"a\""), Ok(1_000));
        for (at, ct, payload) in [
            ("1001", "application/toml", &b"version = \"a\""[..]),
            ("1000", "application/json", b"version = \"a\""),
            ("1000", "application/toml", b"version = \"b\""),
        ] {
            assert!(verify(&keys, Some(&sig), Some(at), ct, payload).is_err(), "{at} {ct}");
        }
        assert!(
            verify(&[other.verifying_key()], Some(&sig), Some("1000"), "application/toml", b"version = \"a\"").is_err()
        );
        assert_eq!(verify(&keys, None, None, "", b""), Err(SigningError::Unsigned));
        assert!(SigningError::Unsigned.to_string().starts_with("unsigned: "));
        assert!(crate::ops::config::kafka::parse_verify_key(&BASE64.encode(key.verifying_key().to_bytes())).is_ok());
        assert!(crate::ops::config::kafka::parse_verify_key("bm90IGEga2V5").is_err());
    }
}

//! Secrets never reach a record, a log line or a report: values under secret-named keys at any
//! depth (the whole value, objects and lists included), OpenWhisk API keys by shape anywhere in a
//! string, the caller's own credential by value, and configured JSON pointers.

use std::sync::Arc;

use serde_json::Value;

pub const REDACTED: &str = "[redacted]";

/// Field names whose values are always secrets (compared case-insensitively); the static config
/// can add more.
pub const SECRET_FIELDS: &[&str] = &[
    "authorization",
    "api_key",
    "apikey",
    "authkey",
    "password",
    "secret",
    "token",
    "__ow_headers",
    "cookie",
    "set-cookie",
    "x-api-key",
    "client_secret",
    "private_key",
    "access_token",
    "refresh_token",
    "credentials",
];

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Extra JSON pointers to redact (from the shadow policy), e.g. `/response/result/email`.
    pub paths: Vec<String>,
    /// Secret field names beyond [`SECRET_FIELDS`] (from the static config), lower case.
    pub extra_fields: Arc<[String]>,
}

/// An OpenWhisk key (`<uuid>:<64 alphanumerics>`) anywhere in the text.
fn contains_openwhisk_key(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(37).enumerate().any(|(i, w)| {
        // uuid (36) followed by ':'
        w[36] == b':'
            && w[..36].iter().enumerate().all(|(j, b)| {
                if matches!(j, 8 | 13 | 18 | 23) {
                    *b == b'-'
                } else {
                    b.is_ascii_hexdigit()
                }
            })
            && bytes.get(i + 37..i + 37 + 64).is_some_and(|k| k.iter().all(u8::is_ascii_alphanumeric))
    })
}

impl Redactor {
    pub fn new(paths: Vec<String>) -> Redactor {
        Redactor { paths, extra_fields: Arc::from([]) }
    }

    /// With secret field names beyond the built-in list.
    pub fn with_fields(mut self, extra: Arc<[String]>) -> Redactor {
        self.extra_fields = extra;
        self
    }

    fn is_secret_field(&self, name: &str) -> bool {
        SECRET_FIELDS.iter().any(|f| name.eq_ignore_ascii_case(f))
            || self.extra_fields.iter().any(|f| name.eq_ignore_ascii_case(f))
    }

    /// Whether a string must not be stored: it holds an OpenWhisk key or one of `secrets`.
    pub fn is_secret_text(text: &str, secrets: &[&str]) -> bool {
        contains_openwhisk_key(text) || secrets.iter().any(|s| !s.is_empty() && text.contains(s))
    }

    /// Redacts `value` in place; `pointer` is its JSON pointer in the document.
    pub fn redact(&self, value: &mut Value, pointer: &str, secrets: &[&str]) {
        if self.paths.iter().any(|p| p == pointer || pointer.starts_with(&format!("{p}/"))) {
            *value = Value::String(REDACTED.into());
            return;
        }
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if self.is_secret_field(k) {
                        *v = Value::String(REDACTED.into());
                    } else {
                        self.redact(v, &format!("{pointer}/{}", crate::diff::pointer_key(k)), secrets);
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    self.redact(v, &format!("{pointer}/{i}"), secrets);
                }
            }
            Value::String(s) if Self::is_secret_text(s, secrets) => *s = REDACTED.into(),
            _ => {}
        }
    }

    /// Whether a difference's path points at or into a secret: a configured pointer, or any
    /// segment named like a secret field (`/result/password/v` is inside `password`).
    pub fn covers(&self, path: &str) -> bool {
        self.paths.iter().any(|p| path == p || path.starts_with(&format!("{p}/")))
            || path.split('/').any(|segment| self.is_secret_field(&segment.replace("~1", "/").replace("~0", "~")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str =
        "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

    #[test]
    fn redacts_by_name_shape_value_and_path() {
        let mut v = json!({
            "user": {"authkey": {"api_key": "x"}, "note": format!("key is {KEY}")},
            "Authorization": "Basic abc",
            "echo": "my-session-secret-value",
            "email": "a@b.c",
            "list": [KEY, "fine"],
        });
        Redactor::new(vec!["/email".into()]).redact(&mut v, "", &["my-session-secret-value"]);
        let text = v.to_string();
        assert!(
            !text.contains("123zO3xZCLrMN6v2BK") && !text.contains("Basic abc") && !text.contains("a@b.c"),
            "{text}"
        );
        assert!(!text.contains("my-session-secret-value"), "{text}");
        assert_eq!(v["list"][1], "fine");
    }

    #[test]
    fn nested_secrets_are_redacted_whole() {
        let payload = json!({
            "password": {"v": "hunter2"},
            "token": ["tok-abc"],
            "__ow_headers": {"cookie": "session=s3cr3t"},
            "cfg": {"api_key": "k-123", "Client_Secret": {"x": "cs-1"}, "nested": [{"Set-Cookie": "id=9"}]},
            "custom_pin": "0000",
        });
        let mut v = payload.clone();
        let r = Redactor::new(Vec::new()).with_fields(Arc::from(vec!["custom_pin".to_string()]));
        r.redact(&mut v, "", &[]);
        let text = v.to_string();
        for secret in ["hunter2", "tok-abc", "s3cr3t", "k-123", "cs-1", "id=9", "0000"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let mut again = v.clone();
        r.redact(&mut again, "", &[]);
        assert_eq!(again, v, "redaction is idempotent");
        for path in
            ["/response/result/password/v", "/response/result/cfg/nested/0/Set-Cookie", "/a/__ow_headers/cookie"]
        {
            assert!(r.covers(path), "{path}");
        }
        assert!(!r.covers("/response/result/cfg/name"));
    }
}

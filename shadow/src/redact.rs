//! Secrets never reach a record, a log line or a report: credentials by field name, OpenWhisk API
//! keys by shape, the request's own key by value, and configured JSON pointers.

use serde_json::Value;

pub const REDACTED: &str = "[redacted]";

/// Field names whose values are always secrets (compared case-insensitively).
const SECRET_FIELDS: &[&str] =
    &["authorization", "api_key", "apikey", "authkey", "password", "secret", "token", "__ow_headers"];

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Extra JSON pointers to redact (from the shadow policy), e.g. `/response/result/email`.
    pub paths: Vec<String>,
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
        Redactor { paths }
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
                    if SECRET_FIELDS.iter().any(|f| k.eq_ignore_ascii_case(f)) {
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

    /// Whether a difference's path itself points at a configured secret.
    pub fn covers(&self, path: &str) -> bool {
        self.paths.iter().any(|p| path == p || path.starts_with(&format!("{p}/")))
            || path.rsplit('/').next().is_some_and(|last| SECRET_FIELDS.iter().any(|f| last.eq_ignore_ascii_case(f)))
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
}

//! Redaction, as a property: whatever the document, no value under a secret-named key survives,
//! the caller's credential appears nowhere, and redacting twice changes nothing.

use proptest::prelude::*;
use serde_json::{Map, Value};
use switchyard_shadow::{Redactor, SECRET_FIELDS};

const CREDENTIAL: &str = "s3cr3t-key-material";

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("payload".to_string()),
        Just("Password".to_string()),
        Just("TOKEN".to_string()),
        Just("api_key".to_string()),
        Just("Authorization".to_string()),
        Just("nested".to_string()),
        "[a-z_]{1,8}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        "[ -~]{0,20}".prop_map(Value::from),
        Just(Value::from(format!("Basic {CREDENTIAL}"))),
        Just(Value::from(
            "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"
        )),
        Just(Value::from("[redacted]")),
    ]
}

fn document() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn is_secret_name(k: &str) -> bool {
    SECRET_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(k))
}

/// Every value under a secret-named key, at any depth, is the redaction marker; no string holds
/// the credential or an OpenWhisk key.
fn clean(v: &Value) -> Result<(), String> {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if is_secret_name(k) && child != "[redacted]" {
                    return Err(format!("{k} kept {child}"));
                }
                clean(child)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(clean),
        Value::String(s) if s.contains(CREDENTIAL) || Redactor::is_secret_text(s, &[]) => {
            Err(format!("secret text {s}"))
        }
        _ => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn redaction_leaves_no_secret_and_is_idempotent(doc in document()) {
        let r = Redactor::new(Vec::new());
        let mut once = doc.clone();
        r.redact(&mut once, "", &[CREDENTIAL]);
        prop_assert_eq!(clean(&once), Ok(()));
        let mut twice = once.clone();
        r.redact(&mut twice, "", &[CREDENTIAL]);
        prop_assert_eq!(twice, once);
    }
}

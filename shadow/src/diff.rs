//! A structural JSON diff: objects compared as unordered maps, arrays in order, paths as JSON
//! pointers (RFC 6901).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// Same type, different value.
    ValueChanged,
    /// Different JSON types (e.g. number vs string).
    TypeChanged,
    /// Present on legacy, absent on the scheduler.
    Missing,
    /// Absent on legacy, present on the scheduler.
    Extra,
    /// Arrays of different lengths (elements up to the shorter length are compared too).
    ArrayLength,
}

/// One difference, oriented legacy → scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub path: String,
    pub kind: DiffKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<Value>,
}

/// Escapes a key for a JSON pointer (`~` → `~0`, `/` → `~1`).
pub(crate) fn pointer_key(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn type_name(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// Every difference between `legacy` and `scheduler`, in a stable order.
pub fn diff_json(legacy: &Value, scheduler: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(legacy, scheduler, &mut String::new(), &mut out);
    out
}

fn walk(a: &Value, b: &Value, path: &mut String, out: &mut Vec<Difference>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let len = path.len();
                path.push('/');
                path.push_str(&pointer_key(k));
                match y.get(k) {
                    Some(vb) => walk(va, vb, path, out),
                    None => out.push(Difference {
                        path: path.clone(),
                        kind: DiffKind::Missing,
                        legacy: Some(va.clone()),
                        scheduler: None,
                    }),
                }
                path.truncate(len);
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                out.push(Difference {
                    path: format!("{path}/{}", pointer_key(k)),
                    kind: DiffKind::Extra,
                    legacy: None,
                    scheduler: Some(vb.clone()),
                });
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(Difference {
                    path: path.clone(),
                    kind: DiffKind::ArrayLength,
                    legacy: Some(Value::from(x.len())),
                    scheduler: Some(Value::from(y.len())),
                });
            }
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                walk(va, vb, path, out);
                path.truncate(len);
            }
        }
        _ if a == b => {}
        _ => {
            let kind = if type_name(a) == type_name(b) { DiffKind::ValueChanged } else { DiffKind::TypeChanged };
            out.push(Difference { path: path.clone(), kind, legacy: Some(a.clone()), scheduler: Some(b.clone()) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(a: Value, b: Value) -> Vec<(String, DiffKind)> {
        diff_json(&a, &b).into_iter().map(|d| (d.path, d.kind)).collect()
    }

    #[test]
    fn objects_are_unordered_arrays_ordered() {
        assert!(diff_json(&json!({"a": 1, "b": [1, 2]}), &json!({"b": [1, 2], "a": 1})).is_empty());
        assert_eq!(
            kinds(json!([1, 2]), json!([2, 1])),
            vec![("/0".into(), DiffKind::ValueChanged), ("/1".into(), DiffKind::ValueChanged)]
        );
    }

    #[test]
    fn every_kind_with_pointer_paths() {
        let got = kinds(
            json!({"same": 1, "changed": "x", "typed": 1, "gone": true, "list": [1, 2, 3], "a/b": {"~k": 1}}),
            json!({"same": 1, "changed": "y", "typed": "1", "new": null, "list": [1, 2], "a/b": {"~k": 2}}),
        );
        assert!(got.contains(&("/changed".into(), DiffKind::ValueChanged)));
        assert!(got.contains(&("/typed".into(), DiffKind::TypeChanged)));
        assert!(got.contains(&("/gone".into(), DiffKind::Missing)));
        assert!(got.contains(&("/new".into(), DiffKind::Extra)));
        assert!(got.contains(&("/list".into(), DiffKind::ArrayLength)));
        assert!(got.contains(&("/a~1b/~0k".into(), DiffKind::ValueChanged)));
        assert_eq!(got.len(), 6, "{got:?}");
    }
}

//! How a rule document's fields are read and written: a field keeps its value or the reason it
//! could not be read (so validation reports every problem at once, with its path), the field types
//! every table uses, and the `document!` declaration of a table. The rule document's own tables
//! are in `document.rs` (and a gate's in `gates.rs`).

use serde_json::Value;

use crate::error::Collector;

/// One field of a document.
#[derive(Debug, Clone, Default)]
pub(crate) enum Field<T> {
    #[default]
    Absent,
    Value(T),
    /// Written, but not readable as its type (the reason is already collected).
    Invalid,
}

impl<T> Field<T> {
    /// The value, if the field was written and readable.
    pub(crate) fn value(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn is_invalid(&self) -> bool {
        matches!(self, Field::Invalid)
    }
}

/// How one type of field is read from a parsed document and written back.
pub(crate) trait FieldType: Sized {
    /// What a list of these is called in errors ("expected {LIST}, found ...").
    const LIST: &'static str = "a list";

    /// Reads a value; on failure collects why, at `path`.
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self>;

    fn write(&self) -> Value;
}

pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

/// Reads a string, or collects "expected a string".
pub(crate) fn text<'v>(v: &'v Value, path: &str, c: &mut Collector) -> Option<&'v str> {
    match v {
        Value::String(s) => Some(s),
        other => {
            c.error(path, format!("expected a string, found {}", kind(other)));
            None
        }
    }
}

/// Collects a parse error of a value's own syntax.
pub(crate) fn parsed<T>(result: Result<T, String>, path: &str, c: &mut Collector) -> Option<T> {
    result.map_err(|e| c.error(path, e)).ok()
}

impl FieldType for String {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        text(v, path, c).map(str::to_string)
    }
    fn write(&self) -> Value {
        Value::String(self.clone())
    }
}

impl FieldType for bool {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                c.error(path, format!("expected true or false, found {}", kind(other)));
                None
            }
        }
    }
    fn write(&self) -> Value {
        Value::Bool(*self)
    }
}

/// A hash seed: TOML integers are signed 64-bit, so seeds stop at 2^63 - 1 in every format.
impl FieldType for u64 {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        match v {
            Value::Number(n) if n.as_i64().is_some_and(|s| s >= 0) => n.as_u64(),
            other => {
                c.error(path, format!("expected an integer from 0 to 2^63-1, found {}", kind(other)));
                None
            }
        }
    }
    fn write(&self) -> Value {
        Value::from(*self)
    }
}

/// A non-negative number (a factor, a ratio, milliseconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Number(pub f64);

impl FieldType for Number {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        match v.as_f64() {
            Some(n) if n.is_finite() && n >= 0.0 => Some(Number(n)),
            _ => {
                c.error(path, format!("expected a number of 0 or more, found {}", kind(v)));
                None
            }
        }
    }
    fn write(&self) -> Value {
        serde_json::Number::from_f64(self.0).map_or(Value::Null, Value::Number)
    }
}

/// A list whose items must all be readable.
impl<T: FieldType> FieldType for Vec<T> {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let Value::Array(items) = v else {
            c.error(path, format!("expected {}, found {}", T::LIST, kind(v)));
            return None;
        };
        let read: Vec<Option<T>> =
            items.iter().enumerate().map(|(i, item)| T::read(item, &format!("{path}[{i}]"), c)).collect();
        read.into_iter().collect()
    }
    fn write(&self) -> Value {
        Value::Array(self.iter().map(FieldType::write).collect())
    }
}

/// A list whose readable items are kept even when others are not (each is validated further on
/// its own, so every problem is reported).
#[derive(Debug, Clone, Default)]
pub(crate) struct Each<T>(pub Vec<Option<T>>);

impl<T: FieldType> FieldType for Each<T> {
    fn read(v: &Value, path: &str, c: &mut Collector) -> Option<Self> {
        let Value::Array(items) = v else {
            c.error(path, format!("expected {}, found {}", T::LIST, kind(v)));
            return None;
        };
        Some(Each(items.iter().enumerate().map(|(i, item)| T::read(item, &format!("{path}[{i}]"), c)).collect()))
    }
    fn write(&self) -> Value {
        Value::Array(self.0.iter().flatten().map(FieldType::write).collect())
    }
}

/// Declares a table of the document: its fields with their types (and, for required ones, what
/// the error says when they are missing). Generates the struct of `Field`s, reading (unknown
/// fields named, every field read, missing required fields reported) and writing.
macro_rules! document {
    ($(#[$meta:meta])* $name:ident { $( $(#[$fmeta:meta])* $field:ident : $ty:ty $(=> required $why:literal)? ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default)]
        pub(crate) struct $name {
            $( $(#[$fmeta])* pub $field: $crate::field::Field<$ty>, )*
        }

        impl $name {
            pub(crate) const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];
        }

        impl $crate::field::FieldType for $name {
            const LIST: &'static str = "a list of tables";

            fn read(v: &::serde_json::Value, path: &str, c: &mut $crate::error::Collector) -> Option<Self> {
                let Some(map) = v.as_object() else {
                    c.error(path, format!("expected a table, found {}", $crate::field::kind(v)));
                    return None;
                };
                for key in map.keys().filter(|k| !Self::FIELDS.contains(&k.as_str())) {
                    c.error(&$crate::field::join(path, key), format!("unknown field (expected one of: {})", Self::FIELDS.join(", ")));
                }
                Some($name { $( $field: {
                    let field_path = $crate::field::join(path, stringify!($field));
                    match map.get(stringify!($field)) {
                        Some(v) => <$ty as $crate::field::FieldType>::read(v, &field_path, c).map_or($crate::field::Field::Invalid, $crate::field::Field::Value),
                        None => {
                            $( c.error(&field_path, concat!("missing (", $why, ")")); )?
                            $crate::field::Field::Absent
                        }
                    }
                }, )* })
            }

            fn write(&self) -> ::serde_json::Value {
                let mut map = ::serde_json::Map::new();
                $( if let $crate::field::Field::Value(v) = &self.$field {
                    map.insert(stringify!($field).to_string(), $crate::field::FieldType::write(v));
                } )*
                ::serde_json::Value::Object(map)
            }
        }
    };
}

pub(crate) use document;

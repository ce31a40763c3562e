//! The ordered YAML value tree that lock and `.pvt` files are built from and read into.

/// A YAML value with PyYAML's data model: mappings keep insertion order and have string keys.
///
/// Scalars mean what PyYAML's `safe_load` would make of them (YAML 1.1), so a value read from a
/// file written by the reference compares equal to the value the reference wrote.
#[derive(Clone, Debug, PartialEq)]
pub enum YamlValue {
    Null,
    Bool(bool),
    /// Wide enough for every `i64` and `u64`.
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<YamlValue>),
    Map(Vec<(String, YamlValue)>),
}

impl YamlValue {
    pub fn str(s: impl Into<String>) -> YamlValue {
        YamlValue::Str(s.into())
    }

    /// The value under `key` of a mapping (the last one, as PyYAML keeps the last duplicate).
    pub fn get(&self, key: &str) -> Option<&YamlValue> {
        match self {
            YamlValue::Map(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            YamlValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Converts to JSON. Non-finite floats become `null` (JSON has no spelling for them; this is
    /// what `serde_json::Value::from(f64)` does too), and integers outside `i64`/`u64` become floats.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            YamlValue::Null => Value::Null,
            YamlValue::Bool(b) => Value::Bool(*b),
            YamlValue::Int(i) => {
                if let Ok(v) = i64::try_from(*i) {
                    Value::from(v)
                } else if let Ok(v) = u64::try_from(*i) {
                    Value::from(v)
                } else {
                    Value::from(*i as f64)
                }
            }
            YamlValue::Float(f) => Value::from(*f),
            YamlValue::Str(s) => Value::String(s.clone()),
            YamlValue::Seq(items) => Value::Array(items.iter().map(YamlValue::to_json).collect()),
            YamlValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl From<&serde_json::Value> for YamlValue {
    fn from(v: &serde_json::Value) -> YamlValue {
        use serde_json::Value;
        match v {
            Value::Null => YamlValue::Null,
            Value::Bool(b) => YamlValue::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    YamlValue::Int(i.into())
                } else if let Some(u) = n.as_u64() {
                    YamlValue::Int(u.into())
                } else {
                    YamlValue::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => YamlValue::Str(s.clone()),
            Value::Array(items) => YamlValue::Seq(items.iter().map(YamlValue::from).collect()),
            Value::Object(map) => YamlValue::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), YamlValue::from(v)))
                    .collect(),
            ),
        }
    }
}

impl From<&str> for YamlValue {
    fn from(s: &str) -> YamlValue {
        YamlValue::Str(s.to_owned())
    }
}

impl From<String> for YamlValue {
    fn from(s: String) -> YamlValue {
        YamlValue::Str(s)
    }
}

impl From<bool> for YamlValue {
    fn from(b: bool) -> YamlValue {
        YamlValue::Bool(b)
    }
}

impl From<u64> for YamlValue {
    fn from(i: u64) -> YamlValue {
        YamlValue::Int(i.into())
    }
}

impl From<i64> for YamlValue {
    fn from(i: i64) -> YamlValue {
        YamlValue::Int(i.into())
    }
}

impl From<f64> for YamlValue {
    fn from(f: f64) -> YamlValue {
        YamlValue::Float(f)
    }
}

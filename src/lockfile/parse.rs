//! Reading YAML into a [`YamlValue`] with PyYAML's `safe_load` meaning of plain scalars.
//!
//! serde_yaml does the parsing, but it types plain scalars by YAML 1.2 rules, where `1e3`, `0o17`
//! and `08` are numbers; PyYAML (YAML 1.1) reads them as strings and writes them unquoted, and reads
//! `yes`/`off` as booleans. So the document is read twice: once into `serde_yaml::Value` for its
//! shape (and the syntax error with its line), then again through a seed that follows that shape
//! and asks for every scalar's source text, which `resolve.rs` then types.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::resolve;
use super::YamlValue;

/// A document that is not valid YAML, or holds something pivot's files never do (tags, keys that
/// are collections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line of the error, when the parser knows it.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for YamlError {}

impl From<serde_yaml::Error> for YamlError {
    fn from(err: serde_yaml::Error) -> YamlError {
        YamlError {
            line: err.location().map(|l| l.line()),
            message: err.to_string(),
        }
    }
}

/// Parses one YAML document as PyYAML's `safe_load` would (an empty document, or one that is only
/// comments, is `Null`).
pub fn from_yaml(text: &str) -> Result<YamlValue, YamlError> {
    let shape: serde_yaml::Value = serde_yaml::from_str(text)?;
    // serde_yaml's null spellings (`~`, `null`, `Null`, `NULL`, nothing) are YAML 1.1's too, so a
    // null document needs no second pass, which fails on a document without a node.
    if shape.is_null() {
        return Ok(YamlValue::Null);
    }
    let seed = Node {
        shape: &shape,
        input: text,
    };
    Ok(seed.deserialize(serde_yaml::Deserializer::from_str(text))?)
}

/// Deserializes the node whose shape pass one recorded.
struct Node<'s, 'i> {
    shape: &'s serde_yaml::Value,
    input: &'i str,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = YamlValue;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<YamlValue, D::Error> {
        use serde_yaml::Value;
        match self.shape {
            Value::Mapping(m) => d.deserialize_map(MapVisitor {
                shape: m,
                input: self.input,
            }),
            Value::Sequence(s) => d.deserialize_seq(SeqVisitor {
                shape: s,
                input: self.input,
            }),
            Value::Tagged(_) => Err(de::Error::custom("tagged values are not supported")),
            scalar => {
                let s = d.deserialize_str(ScalarVisitor {
                    input: self.input,
                    typed: !scalar.is_string(),
                })?;
                s.into_value().map_err(de::Error::custom)
            }
        }
    }
}

/// A scalar's text and whether it was quoted (quoted scalars are always strings).
struct Scalar {
    text: String,
    quoted: bool,
}

impl Scalar {
    fn into_value(self) -> Result<YamlValue, String> {
        if self.quoted {
            Ok(YamlValue::Str(self.text))
        } else {
            resolve::construct_plain(&self.text)
        }
    }
}

struct ScalarVisitor<'i> {
    input: &'i str,
    /// Pass one typed it as null, bool or number, which serde_yaml does for plain scalars only.
    typed: bool,
}

impl<'de> Visitor<'de> for ScalarVisitor<'_> {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Scalar, E> {
        let quoted = !self.typed && is_quoted_in(self.input, s);
        Ok(Scalar {
            text: s.to_owned(),
            quoted,
        })
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Scalar, E> {
        // Not a verbatim slice of the input: a quoted scalar with escapes or folded lines, a block
        // scalar, or a plain scalar folded over several lines. Only the last could be typed, and a
        // multi-line plain scalar that means a number or a date is not something pivot reads.
        Ok(Scalar {
            text: s.to_owned(),
            quoted: !self.typed,
        })
    }
}

/// True when `s`, a slice of `input` (serde_yaml lends slices of the source), sits between quotes.
/// A plain scalar can never start right after a quote, so this tells the two apart.
fn is_quoted_in(input: &str, s: &str) -> bool {
    let base = input.as_ptr() as usize;
    let start = s.as_ptr() as usize;
    if start <= base || start + s.len() >= base + input.len() {
        return false;
    }
    let bytes = input.as_bytes();
    let off = start - base;
    let open = bytes[off - 1];
    (open == b'\'' || open == b'"') && bytes[off + s.len()] == open
}

struct MapVisitor<'s, 'i> {
    shape: &'s serde_yaml::Mapping,
    input: &'i str,
}

impl<'de> Visitor<'de> for MapVisitor<'_, '_> {
    type Value = YamlValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YamlValue, A::Error> {
        let mut entries = Vec::with_capacity(self.shape.len());
        for (key_shape, value_shape) in self.shape {
            if key_shape.is_mapping()
                || key_shape.is_sequence()
                || matches!(key_shape, serde_yaml::Value::Tagged(_))
            {
                return Err(de::Error::custom("mapping keys must be scalars"));
            }
            let key = map
                .next_key_seed(KeySeed {
                    input: self.input,
                    typed: !key_shape.is_string(),
                })?
                .ok_or_else(|| de::Error::custom("mapping ended early"))?;
            let value = map.next_value_seed(Node {
                shape: value_shape,
                input: self.input,
            })?;
            entries.push((key, value));
        }
        Ok(YamlValue::Map(entries))
    }
}

/// A mapping key as text: pivot's maps have string keys, so a plain `1:` key is the string "1".
struct KeySeed<'i> {
    input: &'i str,
    typed: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        Ok(d.deserialize_str(ScalarVisitor {
            input: self.input,
            typed: self.typed,
        })?
        .text)
    }
}

struct SeqVisitor<'s, 'i> {
    shape: &'s [serde_yaml::Value],
    input: &'i str,
}

impl<'de> Visitor<'de> for SeqVisitor<'_, '_> {
    type Value = YamlValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YamlValue, A::Error> {
        let mut items = Vec::with_capacity(self.shape.len());
        for shape in self.shape {
            let item = seq
                .next_element_seed(Node {
                    shape,
                    input: self.input,
                })?
                .ok_or_else(|| de::Error::custom("sequence ended early"))?;
            items.push(item);
        }
        Ok(YamlValue::Seq(items))
    }
}

//! Field parsers: what `parse_field` runs on a field, and the registry that
//! names them.
//!
//! A [`FieldParser`] turns the bytes of one field into [`ParsedFields`]:
//! header values (timestamp, severity, host, ...) and attributes. The
//! `parse_field` transform then merges them into the record as its config
//! says. The registry maps the names used in configs (`parser = "json"`) to
//! parsers, and is resolved once at build time, so a typo is a config error.
//!
//! # Plugging in a parser
//!
//! Implement [`FieldParser`] for a type wrapping your parser and register it
//! before building the transforms:
//!
//! ```
//! use killkrill_core::transform::{FieldParseError, FieldParser, ParsedFields, ParserRegistry};
//! use std::sync::Arc;
//!
//! /// `key=value` pairs separated by spaces.
//! struct Logfmt;
//! impl FieldParser for Logfmt {
//!     fn parse(&self, input: &[u8], out: &mut ParsedFields) -> Result<(), FieldParseError> {
//!         let text = std::str::from_utf8(input)
//!             .map_err(|e| FieldParseError::new(format!("byte {}: not UTF-8", e.valid_up_to())))?;
//!         for pair in text.split_whitespace() {
//!             let (k, v) = pair.split_once('=').ok_or_else(|| FieldParseError::new(format!("expected key=value, found {pair:?}")))?;
//!             out.attributes.push((k.to_owned(), v.into()));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let mut parsers = ParserRegistry::with_builtin();
//! parsers.register("logfmt", Arc::new(Logfmt));
//! assert!(parsers.get("logfmt").is_some() && parsers.get("json").is_some());
//! ```
//!
//! The syslog parser plugs in the same way: its wrapper parses an RFC 5424
//! or 3164 line and fills the header fields, `message` and
//! `structured_data` of [`ParsedFields`]; a JSON-log parser that maps `level`
//! and `msg` fills `severity` and `message` as well as the attributes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{Deserializer as _, MapAccess, Visitor};

use crate::event::{Facility, FieldValue, SdElement, Severity, Timestamp};

/// What a parser found in a field. Absent values leave the record alone.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedFields {
    /// Event time.
    pub timestamp: Option<Timestamp>,
    /// Severity.
    pub severity: Option<Severity>,
    /// Facility.
    pub facility: Option<Facility>,
    /// Host.
    pub host: Option<String>,
    /// Application.
    pub app: Option<String>,
    /// Process id.
    pub procid: Option<String>,
    /// Message id.
    pub msgid: Option<String>,
    /// The inner message.
    pub message: Option<Vec<u8>>,
    /// Structured data, appended to the record's.
    pub structured_data: Vec<SdElement>,
    /// Fields, in order; named with the transform's prefix when merged.
    pub attributes: Vec<(String, FieldValue)>,
}

/// A field did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldParseError {
    /// What was wrong and where (`line 1 column 7: expected ...`).
    pub message: String,
}

impl FieldParseError {
    /// An error with this text.
    pub fn new(message: impl Into<String>) -> Self {
        FieldParseError {
            message: message.into(),
        }
    }
}

/// Parses one field's bytes.
pub trait FieldParser: Send + Sync {
    /// Parses `input` into `out` (which starts empty).
    ///
    /// # Errors
    /// [`FieldParseError`] saying where and what was expected; `out` is then
    /// discarded.
    fn parse(&self, input: &[u8], out: &mut ParsedFields) -> Result<(), FieldParseError>;
}

/// Parsers by name.
#[derive(Clone, Default)]
pub struct ParserRegistry {
    parsers: BTreeMap<String, Arc<dyn FieldParser>>,
}

impl fmt::Debug for ParserRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.parsers.keys()).finish()
    }
}

impl ParserRegistry {
    /// No parsers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The parsers this crate ships: `json` (an object into attributes)
    /// and `json_log` (the JSON-log parser: header aliases, flattening).
    pub fn with_builtin() -> Self {
        let mut r = Self::new();
        r.register("json", Arc::new(JsonFieldParser));
        r.register("json_log", Arc::new(super::JsonLogFieldParser::default()));
        r
    }

    /// Adds or replaces a parser.
    pub fn register(&mut self, name: &str, parser: Arc<dyn FieldParser>) {
        self.parsers.insert(name.to_owned(), parser);
    }

    /// The parser called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn FieldParser>> {
        self.parsers.get(name).cloned()
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.parsers.keys().map(String::as_str).collect()
    }
}

/// A JSON object: each key becomes an attribute, in order. Nested objects
/// and arrays become their JSON text; numbers that fit become integers.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonFieldParser;

struct ObjectFields<'a>(&'a mut Vec<(String, FieldValue)>);

impl<'de> Visitor<'de> for ObjectFields<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some((k, v)) = map.next_entry::<String, FieldValue>()? {
            self.0.push((k, v));
        }
        Ok(())
    }
}

impl FieldParser for JsonFieldParser {
    fn parse(&self, input: &[u8], out: &mut ParsedFields) -> Result<(), FieldParseError> {
        let mut de = serde_json::Deserializer::from_slice(input);
        de.deserialize_map(ObjectFields(&mut out.attributes))
            .and_then(|()| de.end())
            .map_err(|e| FieldParseError::new(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_become_ordered_attributes() {
        let mut out = ParsedFields::default();
        JsonFieldParser
            .parse(
                br#"{"z":1,"a":"x","n":null,"o":{"k":[1,2]},"f":1.5}"#,
                &mut out,
            )
            .unwrap();
        assert_eq!(
            out.attributes,
            vec![
                ("z".into(), FieldValue::Int(1)),
                ("a".into(), FieldValue::Str("x".into())),
                ("n".into(), FieldValue::Null),
                ("o".into(), FieldValue::Str(r#"{"k":[1,2]}"#.into())),
                ("f".into(), FieldValue::Float(1.5)),
            ]
        );
    }

    #[test]
    fn json_errors_say_where() {
        for (input, want) in [
            (
                &b"[1,2]"[..],
                "invalid type: sequence, expected a JSON object at line 1 column 0",
            ),
            (b"{\"a\":}", "expected value at line 1 column 6"),
            (b"{} x", "trailing characters at line 1 column 4"),
            (b"", "EOF while parsing a value at line 1 column 0"),
        ] {
            let e = JsonFieldParser
                .parse(input, &mut ParsedFields::default())
                .unwrap_err();
            assert_eq!(e.message, want, "{:?}", String::from_utf8_lossy(input));
        }
    }
}

//! Flattening one field's value into attributes.
//!
//! A log record's attributes are a flat, ordered list of `name = scalar`, so
//! the storage, the token index and `field.x=y` filters never deal with
//! trees. JSON values map onto it as follows:
//!
//! | JSON value                 | attribute(s)                                         |
//! |----------------------------|------------------------------------------------------|
//! | string                     | `Str`                                                |
//! | integer in `i64`           | `Int`                                                |
//! | integer above `i64::MAX`   | `Str` with its decimal digits (as the canonical JSON form does) |
//! | other number               | `Float`                                              |
//! | `true` / `false`           | `Bool`                                               |
//! | `null`                     | `Null`                                               |
//! | object                     | one attribute per leaf, names joined with `.`: `{"http":{"status":500}}` → `http.status = 500` |
//! | empty object `{}`          | `Str("{}")`, so the key is not lost                  |
//! | array                      | `Str` holding the array as compact JSON text (`[1,"a",{"b":null}]`) |
//!
//! Nested objects are walked in input order, so the attributes come out in
//! the order the sender wrote the leaves.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::event::FieldValue;

use super::array_text::ArrayText;
use super::error::Problem;
use super::record::{KeySeed, RecordBuilder};

/// Reads the value at the builder's current path. `depth` is the nesting
/// level of the object that holds it (1 for the record itself).
pub(crate) struct ValueSeed<'b, 'l> {
    pub(crate) b: &'b mut RecordBuilder<'l>,
    pub(crate) depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed<'_, '_> {
    fn scalar<E: de::Error>(self, v: FieldValue) -> Result<(), E> {
        self.b.insert(v, self.depth == 1, true)
    }

    /// Checks that a container one level below this value's holder fits.
    fn enter<E: de::Error>(&mut self) -> Result<usize, E> {
        let level = self.depth + 1;
        let limit = self.b.limits.max_depth;
        if level > limit {
            return Err(self.b.fail(Problem::TooDeep { limit }, true));
        }
        Ok(level)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(FieldValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(FieldValue::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(i) => self.scalar(FieldValue::Int(i)),
            Err(_) => self.scalar(FieldValue::Str(v.to_string())),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.scalar(FieldValue::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let limit = self.b.limits.max_string_bytes;
        if v.len() > limit {
            return Err(self.b.fail(Problem::StringTooLong { limit }, true));
        }
        self.scalar(FieldValue::Str(v.to_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar(FieldValue::Null)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let level = self.enter()?;
        let b = self.b;
        let mut any = false;
        while let Some(prev) = map.next_key_seed(KeySeed(b))? {
            any = true;
            map.next_value_seed(ValueSeed { b, depth: level })?;
            b.pop_key(prev);
        }
        if any {
            Ok(())
        } else {
            b.insert(FieldValue::Str("{}".to_owned()), self.depth == 1, false)
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, seq: A) -> Result<(), A::Error> {
        let level = self.enter()?;
        let mut text = String::new();
        ArrayText {
            b: self.b,
            out: &mut text,
            level,
        }
        .visit_seq(seq)?;
        self.b.insert(FieldValue::Str(text), self.depth == 1, false)
    }
}

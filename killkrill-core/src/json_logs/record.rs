//! Building one [`LogRecord`] straight from the JSON tokens of one object.
//!
//! The record is built by a serde [`DeserializeSeed`] driven by serde_json
//! over the borrowed input: keys arrive as `&str` slices of the body (copied
//! once, into the attribute name), values become [`FieldValue`]s as they are
//! read, and nothing is parsed twice. There is no intermediate
//! `serde_json::Value` tree, so the cost is the tokenizer plus one allocation
//! per key and per string value — the ones the owned `LogRecord` needs anyway.
//!
//! Limits are checked here, the moment each key, value, field or level is
//! reached. A violation is stored in the builder (with the field it belongs
//! to) and surfaces as a serde error, which stops serde_json at once and
//! gives the position; the caller then reads the stored problem back with
//! [`RecordBuilder::take_problem`].
//!
//! Duplicate keys (after flattening, so `{"a.b":1,"a":{"b":2}}` has one):
//! the last value wins and takes the place of the first, as JavaScript's
//! `JSON.parse` does; each one is counted in [`RecordBuilder::duplicates`].

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::event::{FieldValue, LogRecord, Timestamp};

use super::aliases::{self, AliasSlots, TimestampFailure};
use super::error::{Problem, serde_message};
use super::flatten::ValueSeed;
use super::limits::JsonLogLimits;

/// Past this many fields a record's duplicate check switches from a linear
/// scan (fastest for the usual dozen fields) to a hash index.
const INDEX_THRESHOLD: usize = 32;

/// What a limit violation leaves for the caller.
#[derive(Debug)]
struct Stashed {
    field: Option<String>,
    problem: Problem,
}

/// Reusable state for building records one after another.
pub(crate) struct RecordBuilder<'l> {
    pub(crate) limits: &'l JsonLogLimits,
    attrs: Vec<(String, FieldValue)>,
    slots: AliasSlots,
    /// The flattened key of the value being read (`http.request.method`).
    pub(crate) path: String,
    index: Option<HashMap<String, usize>>,
    /// Fingerprints of the attribute names so far (see [`fingerprint`]).
    seen: u64,
    /// Duplicate keys seen since the builder was made.
    pub(crate) duplicates: u64,
    stashed: Option<Stashed>,
    capacity_hint: usize,
}

impl<'l> RecordBuilder<'l> {
    pub(crate) fn new(limits: &'l JsonLogLimits) -> Self {
        RecordBuilder {
            limits,
            attrs: Vec::new(),
            slots: AliasSlots::new(),
            path: String::new(),
            index: None,
            seen: 0,
            duplicates: 0,
            stashed: None,
            capacity_hint: 8,
        }
    }

    /// Parses `input` as exactly one JSON object (surrounding whitespace
    /// allowed). On success the fields are ready for [`Self::finish`].
    ///
    /// # Errors
    /// serde_json's error; a limit violation or a non-object is also stored
    /// for [`Self::take_problem`].
    pub(crate) fn parse(&mut self, input: &[u8]) -> Result<(), serde_json::Error> {
        self.begin();
        // Checking UTF-8 once for the whole input is much cheaper than
        // serde_json checking each string; invalid input takes the slow
        // path, which finds the exact position.
        match std::str::from_utf8(input) {
            Ok(text) => self.parse_from(&mut serde_json::Deserializer::from_str(text)),
            Err(_) => self.parse_from(&mut serde_json::Deserializer::from_slice(input)),
        }
    }

    fn parse_from<'de, R: serde_json::de::Read<'de>>(
        &mut self,
        de: &mut serde_json::Deserializer<R>,
    ) -> Result<(), serde_json::Error> {
        RecordSeed(self).deserialize(&mut *de)?;
        de.end()
    }

    /// Starts a record (also used when the caller drives serde itself).
    pub(crate) fn begin(&mut self) {
        if self.attrs.capacity() == 0 {
            self.attrs.reserve(self.capacity_hint);
        }
        self.attrs.clear();
        self.slots.clear();
        self.path.clear();
        self.index = None;
        self.seen = 0;
        self.stashed = None;
    }

    /// The field and problem behind `e`: the stored limit violation, or
    /// serde_json's own description of a syntax error.
    pub(crate) fn take_problem(&mut self, e: &serde_json::Error) -> (Option<String>, Problem) {
        match self.stashed.take() {
            Some(s) => (s.field, s.problem),
            None => (None, Problem::Syntax(serde_message(e))),
        }
    }

    /// Turns the fields read into a record: aliases become header fields,
    /// the rest stay attributes in input order. `received` is the timestamp
    /// unless a timestamp alias qualified.
    pub(crate) fn finish(&mut self, received: Timestamp) -> (LogRecord, Option<TimestampFailure>) {
        let mut attrs = std::mem::take(&mut self.attrs);
        // Records from one sender tend to look alike: size the next one's
        // list for all of this one's fields, so it is allocated once.
        self.capacity_hint = attrs.len().max(4);
        let mut rec = LogRecord {
            timestamp: received,
            ..LogRecord::default()
        };
        let failure = aliases::apply(&mut attrs, &self.slots, &mut rec);
        rec.attributes = attrs;
        (rec, failure)
    }

    /// Records a limit violation for `self.path` (when `with_field`) and
    /// returns the error that stops serde_json.
    pub(crate) fn fail<E: de::Error>(&mut self, problem: Problem, with_field: bool) -> E {
        let field = (with_field && !self.path.is_empty()).then(|| self.path.clone());
        self.stashed = Some(Stashed { field, problem });
        E::custom("json logs limit exceeded")
    }

    /// Appends `key` to the current path; returns the previous path length
    /// for [`Self::pop_key`].
    pub(crate) fn push_key<E: de::Error>(&mut self, key: &str) -> Result<usize, E> {
        let limit = self.limits.max_string_bytes;
        let prev = self.path.len();
        let joined = if prev == 0 {
            key.len()
        } else {
            prev + 1 + key.len()
        };
        if joined > limit {
            return Err(self.fail(Problem::KeyTooLong { limit }, true));
        }
        if prev > 0 {
            self.path.push('.');
        }
        self.path.push_str(key);
        Ok(prev)
    }

    /// Restores the path saved by [`Self::push_key`].
    pub(crate) fn pop_key(&mut self, prev: usize) {
        self.path.truncate(prev);
    }

    /// Adds the value of the current path. `top_level` values may be header
    /// aliases; `scalar` is false for arrays and empty objects kept as text,
    /// which never fill a header field.
    pub(crate) fn insert<E: de::Error>(
        &mut self,
        value: FieldValue,
        top_level: bool,
        scalar: bool,
    ) -> Result<(), E> {
        if top_level && let Some(slot) = aliases::slot_of(&self.path) {
            let i = match self.slots.get(slot) {
                Some(i) => {
                    self.attrs[i].1 = value;
                    self.duplicates += 1;
                    i
                }
                None => {
                    self.check_room()?;
                    // Named later, and only if it stays an attribute.
                    self.attrs.push((String::new(), value));
                    self.attrs.len() - 1
                }
            };
            self.slots.set(slot, i, scalar);
            return Ok(());
        }
        let mark = fingerprint(&self.path);
        let existing = match &self.index {
            Some(map) => map.get(self.path.as_str()).copied(),
            None if self.seen & mark == 0 => None,
            None => {
                let slots = &self.slots;
                let path = self.path.as_str();
                self.attrs
                    .iter()
                    .enumerate()
                    .position(|(j, (k, _))| k == path && !(k.is_empty() && slots.holds(j)))
            }
        };
        if let Some(i) = existing {
            self.attrs[i].1 = value;
            self.duplicates += 1;
            return Ok(());
        }
        self.check_room()?;
        self.seen |= mark;
        let i = self.attrs.len();
        self.attrs.push((self.path.clone(), value));
        match &mut self.index {
            Some(map) => {
                map.insert(self.path.clone(), i);
            }
            None if self.attrs.len() > INDEX_THRESHOLD => {
                let slots = &self.slots;
                self.index = Some(
                    self.attrs
                        .iter()
                        .enumerate()
                        .filter(|(j, (k, _))| !(k.is_empty() && slots.holds(*j)))
                        .map(|(j, (k, _))| (k.clone(), j))
                        .collect(),
                );
            }
            None => {}
        }
        Ok(())
    }

    fn check_room<E: de::Error>(&mut self) -> Result<(), E> {
        let limit = self.limits.max_fields;
        if self.attrs.len() >= limit {
            return Err(self.fail(Problem::TooManyFields { limit }, false));
        }
        Ok(())
    }
}

/// One bit of a 64-bit set chosen by a key's length and last byte: two keys
/// with different bits cannot be equal, so most records never scan for
/// duplicates at all.
#[inline]
fn fingerprint(key: &str) -> u64 {
    let b = key.as_bytes();
    let last = b.last().copied().unwrap_or(0) as usize;
    1u64 << ((b.len().wrapping_mul(7) ^ last) & 63)
}

/// The seed for a whole record: a JSON object, anything else is an error.
pub(crate) struct RecordSeed<'b, 'l>(pub(crate) &'b mut RecordBuilder<'l>);

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl RecordSeed<'_, '_> {
    fn not_an_object<E: de::Error>(self, found: &'static str) -> E {
        self.0.fail(Problem::NotAnObject { found }, false)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let b = self.0;
        while let Some(prev) = map.next_key_seed(KeySeed(b))? {
            map.next_value_seed(ValueSeed { b, depth: 1 })?;
            b.pop_key(prev);
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.not_an_object("an array"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.not_an_object("a string"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.not_an_object("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.not_an_object("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.not_an_object("a number"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.not_an_object("a boolean"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.not_an_object("null"))
    }
}

/// Reads a key and appends it to the builder's path; yields the previous
/// path length.
pub(crate) struct KeySeed<'b, 'l>(pub(crate) &'b mut RecordBuilder<'l>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<usize, E> {
        self.0.push_key(key)
    }
}

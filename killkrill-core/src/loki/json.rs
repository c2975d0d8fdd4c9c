//! Loki JSON pushes: `{"streams":[{"stream":{labels},"values":[["<ns>","line",{metadata}]]}]}`.
//!
//! Read with serde visitors straight into records (no intermediate JSON tree), so
//! a large push costs one pass. Errors carry the JSON path (`streams[2]: values[7]:`)
//! and serde_json's line and column. Unknown keys are errors, not ignored: a key we
//! do not read would be data dropped without a word (for example Loki's legacy
//! `labels`/`entries` form, which this endpoint never accepted).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::decode_budget::{DecodeBudget, attribute_bytes};
use crate::event::{LogRecord, Timestamp};

use super::record::StreamContext;
use super::{Limits, LokiError, check_stream_labels};

/// Decodes a JSON push body.
pub(super) fn decode(body: &[u8], limits: &Limits) -> Result<Vec<LogRecord>, LokiError> {
    let mut state = State {
        out: Vec::new(),
        limits,
        budget: DecodeBudget::new(limits.max_output_bytes),
        limit_hit: None,
        streams: 0,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let res = Push(&mut state)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Some(e) = state.limit_hit {
        return Err(e);
    }
    res.map_err(|e| LokiError::Json(e.to_string()))?;
    Ok(state.out)
}

struct State<'l> {
    out: Vec<LogRecord>,
    limits: &'l Limits,
    budget: DecodeBudget,
    /// A limit error, kept typed (serde can only carry text).
    limit_hit: Option<LokiError>,
    streams: usize,
}

/// Wraps an inner error with a path segment, dropping serde_json's position from
/// the inner text (the outer error gets the position once).
fn within<E: de::Error>(path: impl fmt::Display, e: E) -> E {
    let text = e.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) if text[i..].contains(" column ") => &text[..i],
        _ => &text,
    };
    E::custom(format_args!("{path}: {text}"))
}

struct Push<'s, 'l>(&'s mut State<'l>);

impl<'de> DeserializeSeed<'de> for Push<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Push<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an object {"streams": [...]}"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "streams" => {
                    map.next_value_seed(Streams(&mut *self.0))?;
                    seen = true;
                }
                other => return Err(de::Error::unknown_field(other, &["streams"])),
            }
        }
        if !seen {
            return Err(de::Error::missing_field("streams"));
        }
        Ok(())
    }
}

struct Streams<'s, 'l>(&'s mut State<'l>);

impl<'de> DeserializeSeed<'de> for Streams<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Streams<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of streams")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let i = self.0.streams;
            if i == self.0.limits.max_streams {
                // One more element would pass the limit: stop if there is one.
                let more = seq.next_element::<de::IgnoredAny>()?;
                if more.is_some() {
                    self.0.limit_hit = Some(LokiError::TooManyStreams {
                        max: self.0.limits.max_streams,
                    });
                    return Err(de::Error::custom("too many streams"));
                }
                return Ok(());
            }
            let done = seq
                .next_element_seed(Stream(&mut *self.0))
                .map_err(|e| within(format_args!("streams[{i}]"), e))?;
            if done.is_none() {
                return Ok(());
            }
            self.0.streams += 1;
        }
    }
}

/// One raw entry before the stream's labels are known (keys may come in any order).
type RawEntry = (Timestamp, String, Vec<(String, String)>);

struct Stream<'s, 'l>(&'s mut State<'l>);

impl<'de> DeserializeSeed<'de> for Stream<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Stream<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"a stream object {"stream": {labels}, "values": [...]}"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut labels: Option<Vec<(String, String)>> = None;
        let mut entries: Option<Vec<RawEntry>> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "stream" => {
                    let l = map
                        .next_value_seed(StringMap {
                            what: "label value",
                        })
                        .map_err(|e| within("stream", e))?;
                    labels = Some(l);
                }
                "values" => {
                    let used = self.0.out.len();
                    let v = map.next_value_seed(Values {
                        room: self.0.limits.max_entries.saturating_sub(used),
                    });
                    let v = match v {
                        Ok(v) => v,
                        Err(e) if e.to_string().starts_with(TOO_MANY) => {
                            self.0.limit_hit = Some(LokiError::TooManyEntries {
                                stream: self.0.streams,
                                max: self.0.limits.max_entries,
                            });
                            return Err(e);
                        }
                        Err(e) => return Err(within("values", e)),
                    };
                    entries = Some(v);
                }
                other => return Err(de::Error::unknown_field(other, &["stream", "values"])),
            }
        }
        let labels = labels.ok_or_else(|| de::Error::missing_field("stream"))?;
        let entries = entries.ok_or_else(|| de::Error::missing_field("values"))?;
        if labels.is_empty() {
            return Err(de::Error::custom(
                "stream: at least one label pair is required per stream",
            ));
        }
        check_stream_labels(&labels, self.0.limits)
            .map_err(|e| de::Error::custom(format_args!("stream: {e}")))?;
        if let Some((n, _)) = labels.iter().find(|(n, _)| !valid_label_name(n)) {
            return Err(de::Error::custom(format_args!(
                "stream: invalid label name {n:?} (expected [a-zA-Z_][a-zA-Z0-9_]*)"
            )));
        }
        let ctx = StreamContext::new(labels);
        // Each entry copies the stream's labels; its line and metadata are its own.
        let own = entries.iter().fold(0usize, |n, (_, line, meta)| {
            let meta = meta
                .iter()
                .fold(0usize, |m, (k, v)| m.saturating_add(attribute_bytes(k, v)));
            n.saturating_add(line.len()).saturating_add(meta)
        });
        let charged = self
            .0
            .budget
            .charge(entries.len(), ctx.bytes_per_entry())
            .and_then(|()| self.0.budget.charge(1, own));
        if let Err(e) = charged {
            self.0.limit_hit = Some(LokiError::TooLargeDecoded {
                stream: self.0.streams,
                max: e.max,
            });
            return Err(de::Error::custom("over the output budget"));
        }
        self.0.out.reserve(entries.len());
        for (ts, line, meta) in entries {
            self.0.out.push(ctx.record(ts, line.into_bytes(), meta));
        }
        Ok(())
    }
}

fn valid_label_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A JSON object of strings, in order, duplicates rejected.
struct StringMap {
    what: &'static str,
}

impl<'de> DeserializeSeed<'de> for StringMap {
    type Value = Vec<(String, String)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StringMap {
    type Value = Vec<(String, String)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object whose values are strings ({})", self.what)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<(String, String)> = Vec::new();
        // Small objects (the usual case) are checked by scanning; a large one
        // by a set, so a million keys cost O(n), not O(n²).
        let mut seen: Option<HashSet<String>> = None;
        while let Some(k) = map.next_key::<String>()? {
            let v: String = map
                .next_value()
                .map_err(|e| within(format_args!("{k:?}"), e))?;
            let dup = match &mut seen {
                Some(set) => !set.insert(k.clone()),
                None => out.iter().any(|(n, _)| *n == k),
            };
            if dup {
                return Err(de::Error::custom(format_args!("duplicate name {k:?}")));
            }
            out.push((k, v));
            if seen.is_none() && out.len() == 16 {
                seen = Some(out.iter().map(|(n, _)| n.clone()).collect());
            }
        }
        Ok(out)
    }
}

const TOO_MANY: &str = "too many entries";

/// A stream's `values` array, at most `room` entries.
struct Values {
    room: usize,
}

impl<'de> DeserializeSeed<'de> for Values {
    type Value = Vec<RawEntry>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Values {
    type Value = Vec<RawEntry>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            r#"an array of entries ["<unix ns>", "<line>"] or ["<unix ns>", "<line>", {metadata}]"#,
        )
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            let j = out.len();
            if j == self.room {
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(TOO_MANY));
                }
                return Ok(out);
            }
            match seq
                .next_element_seed(Entry)
                .map_err(|e| within(format_args!("[{j}]"), e))?
            {
                Some(e) => out.push(e),
                None => return Ok(out),
            }
        }
    }
}

struct Entry;

impl<'de> DeserializeSeed<'de> for Entry {
    type Value = RawEntry;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawEntry, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entry {
    type Value = RawEntry;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an entry ["<unix ns>", "<line>"] or ["<unix ns>", "<line>", {metadata}]"#)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawEntry, A::Error> {
        let ts = seq
            .next_element_seed(Nanos)
            .map_err(|e| within("timestamp", e))?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let line: String = seq
            .next_element()
            .map_err(|e| within("line", e))?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let meta = seq
            .next_element_seed(OptionalMeta)
            .map_err(|e| within("structured metadata", e))?
            .unwrap_or_default();
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(4, &self));
        }
        Ok((ts, line, meta))
    }
}

struct OptionalMeta;

impl<'de> DeserializeSeed<'de> for OptionalMeta {
    type Value = Vec<(String, String)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        StringMap {
            what: "structured metadata",
        }
        .deserialize(d)
    }
}

/// A timestamp: a string of decimal nanoseconds (Loki's form) or a JSON integer.
struct Nanos;

impl<'de> DeserializeSeed<'de> for Nanos {
    type Value = Timestamp;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Timestamp, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Nanos {
    type Value = Timestamp;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Unix nanoseconds as a string of digits, e.g. \"1700000000000000000\"")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Timestamp, E> {
        if s.is_empty()
            || !s
                .bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'))
        {
            return Err(E::invalid_value(de::Unexpected::Str(s), &self));
        }
        s.parse::<i64>().map(Timestamp::from_nanos).map_err(|_| {
            E::custom(format_args!(
                "{s:?} is outside the nanosecond range 1677..2262"
            ))
        })
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
        Ok(Timestamp::from_nanos(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
        i64::try_from(v).map(Timestamp::from_nanos).map_err(|_| {
            E::custom(format_args!(
                "{v} is outside the nanosecond range 1677..2262"
            ))
        })
    }
}

//! Which JSON keys become a log record's header fields, and which wins when
//! a record has several.
//!
//! Loggers name the same things differently (`msg` in Go's slog and pino,
//! `message` in Python's json loggers and ECS, `log` in Docker's json-file,
//! `@timestamp` in Logstash), so each header field has a list of aliases.
//! Only top-level keys are aliases; a nested `{"log":{"level":"x"}}` stays the
//! attribute `log.level`.
//!
//! **Precedence** is the order of [`ALIASES`], not the order in the record:
//! for the timestamp `timestamp` beats `ts` beats `time` beats `@timestamp`,
//! wherever each appears. The first alias whose value *qualifies* wins:
//!
//! - a `null` value never qualifies (it reads as "not given");
//! - timestamp: a value that [`super::timestamp_from_value`] accepts;
//! - severity: a name or number that [`super::level`] maps;
//! - facility: a name or code (0..=23) that [`Facility::from_name`] knows;
//! - message, app, host, procid, msgid: a string, or an integer (kept as
//!   its decimal text, so `"pid": 812` gives procid `812`).
//!
//! Every alias that does not win — outranked, or not qualifying — stays an
//! attribute at its place in the input, so nothing the sender wrote is
//! lost. A record whose timestamp aliases are all present but none qualifies
//! has an invalid timestamp (see [`super::Mode`] for what happens then).

use crate::event::{Facility, FieldValue, LogRecord, format_float};

use super::error::{InvalidTimestamp, Problem, cut_at_char_boundary};
use super::level::{
    severity_from_level_number, severity_from_level_text, severity_from_otel_number,
};
use super::timestamp::timestamp_from_value;

/// A header field of [`LogRecord`] that JSON keys can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderField {
    /// `LogRecord::timestamp`
    Timestamp,
    /// `LogRecord::severity`
    Severity,
    /// `LogRecord::message`
    Message,
    /// `LogRecord::app`
    App,
    /// `LogRecord::host`
    Host,
    /// `LogRecord::facility`
    Facility,
    /// `LogRecord::procid`
    Procid,
    /// `LogRecord::msgid`
    Msgid,
}

/// Every alias, grouped by header field, highest precedence first.
pub const ALIASES: [(HeaderField, &[&str]); 8] = [
    (
        HeaderField::Timestamp,
        &["timestamp", "ts", "time", "@timestamp"],
    ),
    (
        HeaderField::Severity,
        &["level", "severity", "severity_number"],
    ),
    (HeaderField::Message, &["message", "msg", "log"]),
    (
        HeaderField::App,
        &["service_name", "service", "app", "source"],
    ),
    (HeaderField::Host, &["host", "hostname"]),
    (HeaderField::Facility, &["facility"]),
    (HeaderField::Procid, &["procid", "pid"]),
    (HeaderField::Msgid, &["msgid"]),
];

/// Number of alias keys (the length of [`ALIASES`] flattened).
pub(crate) const SLOT_COUNT: usize = 20;

/// Each group's slots, as a range into the flattened alias list.
const GROUPS: [(HeaderField, usize, usize); 8] = [
    (HeaderField::Timestamp, 0, 4),
    (HeaderField::Severity, 4, 7),
    (HeaderField::Message, 7, 10),
    (HeaderField::App, 10, 14),
    (HeaderField::Host, 14, 16),
    (HeaderField::Facility, 16, 17),
    (HeaderField::Procid, 17, 19),
    (HeaderField::Msgid, 19, 20),
];

/// The slot of the `severity_number` alias, which uses the OTel scale.
const OTEL_SEVERITY_SLOT: usize = 6;

/// The slot (position in the flattened [`ALIASES`]) of an alias key.
#[inline]
pub(crate) fn slot_of(key: &str) -> Option<usize> {
    Some(match key {
        "timestamp" => 0,
        "ts" => 1,
        "time" => 2,
        "@timestamp" => 3,
        "level" => 4,
        "severity" => 5,
        "severity_number" => 6,
        "message" => 7,
        "msg" => 8,
        "log" => 9,
        "service_name" => 10,
        "service" => 11,
        "app" => 12,
        "source" => 13,
        "host" => 14,
        "hostname" => 15,
        "facility" => 16,
        "procid" => 17,
        "pid" => 18,
        "msgid" => 19,
        _ => return None,
    })
}

/// The alias keys in slot order (the flattened [`ALIASES`]).
pub(crate) const SLOT_NAMES: [&str; SLOT_COUNT] = [
    "timestamp",
    "ts",
    "time",
    "@timestamp",
    "level",
    "severity",
    "severity_number",
    "message",
    "msg",
    "log",
    "service_name",
    "service",
    "app",
    "source",
    "host",
    "hostname",
    "facility",
    "procid",
    "pid",
    "msgid",
];

/// Where each alias key sits in a record's attribute list.
///
/// An alias field is pushed to the attributes with an empty name (no
/// allocation: most of them become header fields and lose the name anyway);
/// [`apply`] writes the name back for those that stay attributes. A slot
/// also remembers whether its value is a scalar — arrays and empty objects
/// kept as text never fill a header field.
#[derive(Debug, Clone)]
pub(crate) struct AliasSlots {
    index: [u32; SLOT_COUNT],
    non_scalar: u32,
}

const NONE: u32 = u32::MAX;

impl AliasSlots {
    pub(crate) const fn new() -> Self {
        AliasSlots {
            index: [NONE; SLOT_COUNT],
            non_scalar: 0,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.index = [NONE; SLOT_COUNT];
        self.non_scalar = 0;
    }

    /// Records that alias `slot` is at attribute `index`.
    #[inline]
    pub(crate) fn set(&mut self, slot: usize, index: usize, scalar: bool) {
        self.index[slot] = index as u32;
        if scalar {
            self.non_scalar &= !(1 << slot);
        } else {
            self.non_scalar |= 1 << slot;
        }
    }

    /// The attribute index of alias `slot`, if the record has it.
    #[inline]
    pub(crate) fn get(&self, slot: usize) -> Option<usize> {
        match self.index[slot] {
            NONE => None,
            i => Some(i as usize),
        }
    }

    /// True when attribute `index` is an alias field (its name is empty
    /// until [`apply`]).
    pub(crate) fn holds(&self, index: usize) -> bool {
        self.index.contains(&(index as u32))
    }

    fn scalar(&self, slot: usize) -> bool {
        self.non_scalar & (1 << slot) == 0
    }
}

/// A timestamp alias that was given but could not be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimestampFailure {
    pub(crate) field: String,
    pub(crate) problem: Problem,
}

/// Moves the winning alias of each group out of `attrs` into `rec`'s header
/// fields and names the others; the rest of `attrs` keeps its order. Returns
/// the failure of the highest-ranked timestamp alias when no timestamp alias
/// qualified.
pub(crate) fn apply(
    attrs: &mut Vec<(String, FieldValue)>,
    slots: &AliasSlots,
    rec: &mut LogRecord,
) -> Option<TimestampFailure> {
    let mut taken = [NONE; GROUPS.len()];
    let mut n = 0;
    let mut failure = None;
    for (field, from, to) in GROUPS {
        let mut winner = None;
        for slot in from..to {
            let Some(i) = slots.get(slot) else { continue };
            let value = &attrs[i].1;
            if matches!(value, FieldValue::Null) || !slots.scalar(slot) {
                continue;
            }
            if qualify(field, slot, value, rec, &mut failure) {
                winner = Some(i);
                break;
            }
        }
        let Some(i) = winner else { continue };
        taken[n] = i as u32;
        n += 1;
        if field == HeaderField::Timestamp {
            failure = None;
        }
        let value = std::mem::take(&mut attrs[i].1);
        let text = || match value {
            FieldValue::Str(s) => Some(s),
            FieldValue::Int(v) => Some(v.to_string()),
            _ => None,
        };
        match field {
            HeaderField::Message => rec.message = text().map(String::into_bytes),
            HeaderField::App => rec.app = text(),
            HeaderField::Host => rec.host = text(),
            HeaderField::Procid => rec.procid = text(),
            HeaderField::Msgid => rec.msgid = text(),
            // Set by `qualify` from the borrowed value.
            HeaderField::Timestamp | HeaderField::Severity | HeaderField::Facility => {}
        }
    }
    let taken = &taken[..n];
    for (slot, name) in SLOT_NAMES.iter().enumerate() {
        if let Some(i) = slots.get(slot)
            && !taken.contains(&(i as u32))
        {
            attrs[i].0 = (*name).to_owned();
        }
    }
    if n > 0 {
        let mut i = 0u32;
        attrs.retain(|_| {
            let keep = !taken.contains(&i);
            i += 1;
            keep
        });
    }
    failure
}

/// Whether `value` (under alias `slot`) qualifies for `field`; for the
/// fields that are parsed (timestamp, severity, facility) it also stores the
/// parsed value in `rec`, and remembers the first timestamp failure.
fn qualify(
    field: HeaderField,
    slot: usize,
    value: &FieldValue,
    rec: &mut LogRecord,
    failure: &mut Option<TimestampFailure>,
) -> bool {
    match field {
        HeaderField::Timestamp => match timestamp_from_value(value) {
            Ok(t) => {
                rec.timestamp = t;
                true
            }
            Err(reason) => {
                if failure.is_none() {
                    *failure = Some(TimestampFailure {
                        field: SLOT_NAMES[slot].to_owned(),
                        problem: Problem::InvalidTimestamp(Box::new(InvalidTimestamp {
                            value: json_excerpt(value),
                            reason,
                        })),
                    });
                }
                false
            }
        },
        HeaderField::Severity => {
            let sev = match value {
                FieldValue::Int(n) if slot == OTEL_SEVERITY_SLOT => severity_from_otel_number(*n),
                FieldValue::Int(n) => severity_from_level_number(*n),
                FieldValue::Str(s) if slot != OTEL_SEVERITY_SLOT => severity_from_level_text(s),
                _ => None,
            };
            rec.severity = sev;
            sev.is_some()
        }
        HeaderField::Facility => {
            let fac = match value {
                FieldValue::Int(n) => u8::try_from(*n).ok().and_then(Facility::from_code),
                FieldValue::Str(s) => Facility::from_name(s),
                _ => None,
            };
            rec.facility = fac;
            fac.is_some()
        }
        HeaderField::Message
        | HeaderField::App
        | HeaderField::Host
        | HeaderField::Procid
        | HeaderField::Msgid => matches!(value, FieldValue::Str(_) | FieldValue::Int(_)),
    }
}

/// A value as JSON text, cut to 64 bytes, for error messages.
fn json_excerpt(value: &FieldValue) -> String {
    match value {
        FieldValue::Str(s) => {
            let cut = cut_at_char_boundary(s, 64);
            let mut q = serde_json::to_string(cut).unwrap_or_else(|_| format!("{cut:?}"));
            if cut.len() < s.len() {
                q.insert(q.len() - 1, '…');
            }
            q
        }
        FieldValue::Float(f) => format_float(*f),
        other => other.to_text().into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_alias_table() {
        let mut slot = 0;
        for (gi, (field, keys)) in ALIASES.iter().enumerate() {
            assert_eq!(GROUPS[gi].0, *field);
            assert_eq!(GROUPS[gi].1, slot);
            for key in *keys {
                assert_eq!(slot_of(key), Some(slot), "{key}");
                assert_eq!(SLOT_NAMES[slot], *key);
                slot += 1;
            }
            assert_eq!(GROUPS[gi].2, slot);
        }
        assert_eq!(slot, SLOT_COUNT);
        assert_eq!(ALIASES[1].1[OTEL_SEVERITY_SLOT - 4], "severity_number");
        assert_eq!(slot_of("Level"), None);
        assert_eq!(slot_of("log.level"), None);
    }
}

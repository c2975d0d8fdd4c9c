//! Timestamps in JSON logs: RFC 3339 text, or a Unix epoch number whose
//! unit is guessed from its size.
//!
//! Loggers disagree on the unit of an epoch timestamp: Python's `time.time()`
//! gives fractional seconds, JavaScript's `Date.now()` and pino milliseconds,
//! Go's zap nanoseconds or fractional seconds, some tracers microseconds.
//! Senders rarely say which, so the unit is decided by the magnitude of the
//! integer part, with thresholds that leave no overlap for any instant from
//! 1973-03-03 to 2262 (the end of 64-bit nanoseconds):
//!
//! | integer part `|n|`      | unit          | covers                    |
//! |-------------------------|---------------|---------------------------|
//! | `< 10^11`               | seconds       | 1970 ± 3,100 years        |
//! | `10^11 ..< 10^14`       | milliseconds  | 1973-03-03 .. 5138        |
//! | `10^14 ..< 10^17`       | microseconds  | 1973-03-03 .. 5138        |
//! | `>= 10^17`              | nanoseconds   | 1973-03-03 .. 2262-04-11  |
//!
//! The price is that milli-, micro- and nanosecond timestamps before
//! 1973-03-03 are read as a coarser unit; no real sender emits those.
//! Results outside 1677-09-21 .. 2262-04-11 are errors, not clamped.
//!
//! A JSON number with a fraction goes through `f64` (serde_json parses it so),
//! which keeps about 16 significant digits: fractional *seconds* today are
//! exact to about a quarter of a microsecond. The same number written as a
//! string (`"1764090756.123456789"`) is parsed digit by digit and exact to the
//! nanosecond; digits below a nanosecond are truncated.

use crate::event::{FieldValue, NANOS_PER_SEC, Timestamp, TimestampError};

/// Unit of an epoch number, chosen by [`EpochUnit::for_magnitude`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochUnit {
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Millis,
    /// Microseconds.
    Micros,
    /// Nanoseconds.
    Nanos,
}

impl EpochUnit {
    /// The unit for an integer part of absolute value `magnitude` (see the
    /// module docs for the thresholds).
    pub const fn for_magnitude(magnitude: u64) -> Self {
        if magnitude < 100_000_000_000 {
            EpochUnit::Seconds
        } else if magnitude < 100_000_000_000_000 {
            EpochUnit::Millis
        } else if magnitude < 100_000_000_000_000_000 {
            EpochUnit::Micros
        } else {
            EpochUnit::Nanos
        }
    }

    /// Nanoseconds in one of this unit.
    pub const fn nanos(self) -> i64 {
        match self {
            EpochUnit::Seconds => NANOS_PER_SEC,
            EpochUnit::Millis => 1_000_000,
            EpochUnit::Micros => 1_000,
            EpochUnit::Nanos => 1,
        }
    }

    /// How many fraction digits are finer than a nanosecond in this unit
    /// (9 for seconds, 0 for nanoseconds).
    const fn fraction_digits(self) -> u32 {
        match self {
            EpochUnit::Seconds => 9,
            EpochUnit::Millis => 6,
            EpochUnit::Micros => 3,
            EpochUnit::Nanos => 0,
        }
    }
}

/// Why a timestamp field's value is not a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampValueError {
    /// A string that is neither an epoch number nor RFC 3339.
    #[error("{0}")]
    Rfc3339(#[from] TimestampError),
    /// An epoch number outside 1677-09-21 .. 2262-04-11.
    #[error("epoch number outside the representable range 1677-09-21..2262-04-11")]
    OutOfRange,
    /// A value of a type that cannot be a timestamp.
    #[error("expected an RFC 3339 string or an epoch number, found {0}")]
    WrongType(&'static str),
}

/// The timestamp a JSON value stands for: an RFC 3339 string, an epoch
/// number (integer or fractional), or an epoch number written as a string
/// (`-?[0-9]+(\.[0-9]+)?`).
///
/// # Errors
/// [`TimestampValueError`] for other strings, out-of-range numbers and
/// booleans or nulls.
pub fn timestamp_from_value(value: &FieldValue) -> Result<Timestamp, TimestampValueError> {
    match value {
        FieldValue::Int(n) => epoch_from_i64(*n),
        FieldValue::Float(f) => epoch_from_f64(*f),
        FieldValue::Str(s) => timestamp_from_text(s),
        FieldValue::Bool(_) => Err(TimestampValueError::WrongType("a boolean")),
        FieldValue::Null => Err(TimestampValueError::WrongType("null")),
    }
}

/// An integer epoch timestamp in the unit its magnitude implies.
///
/// # Errors
/// [`TimestampValueError::OutOfRange`].
pub fn epoch_from_i64(n: i64) -> Result<Timestamp, TimestampValueError> {
    let unit = EpochUnit::for_magnitude(n.unsigned_abs());
    n.checked_mul(unit.nanos())
        .map(Timestamp::from_nanos)
        .ok_or(TimestampValueError::OutOfRange)
}

/// A fractional epoch timestamp; the unit is chosen by the integer part.
///
/// # Errors
/// [`TimestampValueError::OutOfRange`] (also for NaN and infinities).
pub fn epoch_from_f64(f: f64) -> Result<Timestamp, TimestampValueError> {
    // i64::MAX is 9.22e18: any finite value below this bound in magnitude
    // has an integer part that fits i64.
    const BOUND: f64 = 9.2e18;
    if !f.is_finite() || f.abs() >= BOUND {
        return Err(TimestampValueError::OutOfRange);
    }
    let whole = f.trunc();
    let unit = EpochUnit::for_magnitude(whole.abs() as u64);
    let frac_nanos = ((f - whole) * unit.nanos() as f64).round() as i64;
    (whole as i64)
        .checked_mul(unit.nanos())
        .and_then(|n| n.checked_add(frac_nanos))
        .map(Timestamp::from_nanos)
        .ok_or(TimestampValueError::OutOfRange)
}

/// A timestamp string: an epoch number in decimal, else RFC 3339.
///
/// # Errors
/// As [`timestamp_from_value`].
pub fn timestamp_from_text(s: &str) -> Result<Timestamp, TimestampValueError> {
    match epoch_from_decimal(s.as_bytes()) {
        Some(r) => r,
        None => Timestamp::parse_rfc3339(s).map_err(TimestampValueError::from),
    }
}

/// `-?[0-9]+(\.[0-9]+)?` parsed exactly; `None` when `b` does not have that
/// form.
fn epoch_from_decimal(b: &[u8]) -> Option<Result<Timestamp, TimestampValueError>> {
    let (negative, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    let int_len = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 {
        return None;
    }
    let (int_part, rest) = digits.split_at(int_len);
    let frac = match rest.split_first() {
        None => &[][..],
        Some((b'.', f)) if !f.is_empty() && f.iter().all(u8::is_ascii_digit) => f,
        Some(_) => return None,
    };
    // Past 19 digits the value cannot be a timestamp in any unit.
    if int_part.iter().skip_while(|&&c| c == b'0').count() > 19 {
        return Some(Err(TimestampValueError::OutOfRange));
    }
    let whole = int_part
        .iter()
        .fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0'));
    let unit = EpochUnit::for_magnitude(whole);
    let mut frac_nanos = 0i64;
    for i in 0..unit.fraction_digits() {
        let d = frac.get(i as usize).map_or(0, |c| i64::from(c - b'0'));
        frac_nanos = frac_nanos * 10 + d;
    }
    let total = i64::try_from(whole)
        .ok()
        .and_then(|w| w.checked_mul(unit.nanos()))
        .and_then(|n| n.checked_add(frac_nanos));
    Some(match total {
        Some(n) if negative => Ok(Timestamp::from_nanos(-n)),
        Some(n) => Ok(Timestamp::from_nanos(n)),
        None => Err(TimestampValueError::OutOfRange),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(v: FieldValue) -> Result<i64, TimestampValueError> {
        timestamp_from_value(&v).map(Timestamp::as_nanos)
    }

    #[test]
    fn units_by_magnitude() {
        let cases: &[(FieldValue, i64)] = &[
            // seconds
            (FieldValue::Int(0), 0),
            (FieldValue::Int(1_764_090_756), 1_764_090_756_000_000_000),
            (FieldValue::Int(9_223_372_036), 9_223_372_036_000_000_000),
            (FieldValue::Int(-1), -1_000_000_000),
            // milliseconds
            (FieldValue::Int(100_000_000_000), 100_000_000_000_000_000),
            (
                FieldValue::Int(1_764_090_756_123),
                1_764_090_756_123_000_000,
            ),
            // microseconds
            (
                FieldValue::Int(100_000_000_000_000),
                100_000_000_000_000_000,
            ),
            (
                FieldValue::Int(1_764_090_756_123_456),
                1_764_090_756_123_456_000,
            ),
            // nanoseconds
            (
                FieldValue::Int(100_000_000_000_000_000),
                100_000_000_000_000_000,
            ),
            (
                FieldValue::Int(1_764_090_756_123_456_789),
                1_764_090_756_123_456_789,
            ),
            (FieldValue::Int(i64::MAX), i64::MAX),
            (
                FieldValue::Int(-1_764_090_756_123),
                -1_764_090_756_123_000_000,
            ),
            // fractional numbers
            (
                FieldValue::Float(1_764_090_756.5),
                1_764_090_756_500_000_000,
            ),
            (FieldValue::Float(1.25), 1_250_000_000),
            (FieldValue::Float(-0.5), -500_000_000),
            (
                FieldValue::Float(1_764_090_756_123.5),
                1_764_090_756_123_500_000,
            ),
            (
                FieldValue::Float(1_764_090_756_123_456.0),
                1_764_090_756_123_456_000,
            ),
            // numeric strings, exact
            (FieldValue::from("1764090756"), 1_764_090_756_000_000_000),
            (
                FieldValue::from("1764090756.123456789"),
                1_764_090_756_123_456_789,
            ),
            (
                FieldValue::from("1764090756.1234567891"),
                1_764_090_756_123_456_789,
            ),
            (
                FieldValue::from("1764090756123.456789"),
                1_764_090_756_123_456_789,
            ),
            (
                FieldValue::from("1764090756123456.789"),
                1_764_090_756_123_456_789,
            ),
            (
                FieldValue::from("1764090756123456789.9"),
                1_764_090_756_123_456_789,
            ),
            (FieldValue::from("-1.5"), -1_500_000_000),
            (FieldValue::from("0001"), 1_000_000_000),
            // RFC 3339
            (
                FieldValue::from("2025-11-25T17:12:36.5Z"),
                1_764_090_756_500_000_000,
            ),
            (
                FieldValue::from("2025-11-25T18:12:36+01:00"),
                1_764_090_756_000_000_000,
            ),
        ];
        for (v, want) in cases {
            assert_eq!(ns(v.clone()), Ok(*want), "{v:?}");
        }
    }

    #[test]
    fn errors() {
        let cases: &[(FieldValue, &str)] = &[
            (
                FieldValue::Int(10_000_000_000),
                "epoch number outside the representable range 1677-09-21..2262-04-11",
            ),
            (
                FieldValue::Float(f64::INFINITY),
                "epoch number outside the representable range 1677-09-21..2262-04-11",
            ),
            (
                FieldValue::Float(9.3e18),
                "epoch number outside the representable range 1677-09-21..2262-04-11",
            ),
            (
                FieldValue::from("99999999999999999999"),
                "epoch number outside the representable range 1677-09-21..2262-04-11",
            ),
            (
                FieldValue::from("9999999999"),
                "epoch number outside the representable range 1677-09-21..2262-04-11",
            ),
            (
                FieldValue::from("yesterday"),
                "invalid RFC 3339 timestamp at column 0: expected 4-digit year",
            ),
            (
                FieldValue::from("1764090756."),
                "invalid RFC 3339 timestamp at column 4: expected '-' after year",
            ),
            (
                FieldValue::from("2025-11-25T17:12:36"),
                "invalid RFC 3339 timestamp at column 19: expected 'Z' or a '+HH:MM'/'-HH:MM' offset",
            ),
            (FieldValue::from("2025-02-29T00:00:00Z"), "day out of range"),
            (
                FieldValue::Bool(true),
                "expected an RFC 3339 string or an epoch number, found a boolean",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(ns(v.clone()).unwrap_err().to_string(), *want, "{v:?}");
        }
    }

    #[test]
    fn thresholds() {
        let cases: &[(u64, EpochUnit)] = &[
            (0, EpochUnit::Seconds),
            (99_999_999_999, EpochUnit::Seconds),
            (100_000_000_000, EpochUnit::Millis),
            (99_999_999_999_999, EpochUnit::Millis),
            (100_000_000_000_000, EpochUnit::Micros),
            (99_999_999_999_999_999, EpochUnit::Micros),
            (100_000_000_000_000_000, EpochUnit::Nanos),
            (u64::MAX, EpochUnit::Nanos),
        ];
        for (m, unit) in cases {
            assert_eq!(EpochUnit::for_magnitude(*m), *unit, "{m}");
        }
    }
}

//! Timestamps as integer nanoseconds since the Unix epoch, UTC.
//!
//! Every backend (PostgreSQL, MySQL, SQLite) and every wire format agrees on
//! a signed 64-bit count of nanoseconds, so that is the only representation
//! Killkrill uses internally. It covers 1677-09-21 to 2262-04-11, which is
//! wider than anything a log sender emits. Civil-date arithmetic is done with
//! Howard Hinnant's `days_from_civil` algorithm: no tables, no allocation, and
//! fast enough to run on every parsed message.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;
/// Nanoseconds in one millisecond.
pub const NANOS_PER_MILLI: i64 = 1_000_000;
/// Nanoseconds in one day.
pub const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SEC;

/// A point in time: nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// Why a civil date/time or RFC 3339 string could not become a [`Timestamp`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The text is not RFC 3339; `column` is the 0-based byte offset.
    #[error("invalid RFC 3339 timestamp at column {column}: expected {expected}")]
    Syntax {
        /// 0-based byte offset of the first byte that does not fit.
        column: usize,
        /// What the grammar wanted at that offset.
        expected: &'static str,
    },
    /// A field is out of its range (month 13, 2019-02-29, hour 24, ...).
    #[error("{field} out of range")]
    Range {
        /// The civil field that is out of range.
        field: &'static str,
    },
    /// The instant is outside what 64-bit nanoseconds can hold (1677..2262).
    #[error("timestamp outside the representable range 1677-09-21..2262-04-11")]
    Overflow,
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The smallest representable instant.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The largest representable instant.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// Wraps a nanosecond count.
    #[inline]
    pub const fn from_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    /// The nanosecond count.
    #[inline]
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, saturating.
    pub const fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(NANOS_PER_SEC))
    }

    /// Milliseconds since the epoch, saturating.
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis.saturating_mul(NANOS_PER_MILLI))
    }

    /// Milliseconds since the epoch (floor).
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(NANOS_PER_MILLI)
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX)),
        }
    }

    /// Adds a signed number of nanoseconds, saturating at the ends.
    #[must_use]
    pub const fn saturating_add_nanos(self, nanos: i64) -> Self {
        Timestamp(self.0.saturating_add(nanos))
    }

    /// Builds a timestamp from civil UTC fields, validating each one
    /// (including leap years and the number of days in the month).
    ///
    /// `second` may be 60 (a leap second); it is folded into the next second,
    /// as every Unix clock does.
    ///
    /// # Errors
    /// [`TimestampError::Range`] for an invalid field, [`TimestampError::Overflow`]
    /// outside 1677..2262.
    pub fn from_civil(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        nanos: u32,
    ) -> Result<Self, TimestampError> {
        if !(1..=12).contains(&month) {
            return Err(TimestampError::Range { field: "month" });
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(TimestampError::Range { field: "day" });
        }
        if hour > 23 {
            return Err(TimestampError::Range { field: "hour" });
        }
        if minute > 59 {
            return Err(TimestampError::Range { field: "minute" });
        }
        if second > 60 {
            return Err(TimestampError::Range { field: "second" });
        }
        if nanos >= 1_000_000_000 {
            return Err(TimestampError::Range {
                field: "fraction of a second",
            });
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        secs.checked_mul(NANOS_PER_SEC)
            .and_then(|n| n.checked_add(i64::from(nanos)))
            .map(Timestamp)
            .ok_or(TimestampError::Overflow)
    }

    /// The canonical text (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, as in JSON)
    /// as bytes, without going through a formatter.
    pub fn rfc3339_bytes(self) -> [u8; 30] {
        let mut buf = [0u8; 30];
        self.to_civil().format_into(&mut buf);
        buf
    }

    /// Splits into civil UTC fields.
    pub fn to_civil(self) -> Civil {
        let secs = self.0.div_euclid(NANOS_PER_SEC);
        let nanos = self.0.rem_euclid(NANOS_PER_SEC) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: sod / 3600,
            minute: sod / 60 % 60,
            second: sod % 60,
            nanos,
        }
    }

    /// Parses RFC 3339 (`2026-11-25T17:12:36.123456789+01:00`), leniently:
    /// `t`/`z` in lower case and a space instead of `T` are accepted, and the
    /// fraction may have 1 to 9 digits. The result is UTC.
    ///
    /// # Errors
    /// [`TimestampError::Syntax`] with the column of the first unexpected byte,
    /// or a range/overflow error for well-formed but impossible values.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampError> {
        let (ts, used) = parse_rfc3339_prefix(text.as_bytes(), 9)?;
        if used != text.len() {
            return Err(TimestampError::Syntax {
                column: used,
                expected: "end of timestamp",
            });
        }
        Ok(ts)
    }

    /// Writes RFC 3339 in UTC with exactly nine fraction digits
    /// (`2026-11-25T17:12:36.000000000Z`): fixed width, so the text sorts
    /// like the number.
    pub fn write_rfc3339(self, out: &mut impl fmt::Write) -> fmt::Result {
        let c = self.to_civil();
        let mut buf = [0u8; 30];
        let n = c.format_into(&mut buf);
        // The buffer holds only ASCII digits and separators.
        out.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }

    /// RFC 3339 text, as [`Timestamp::write_rfc3339`] writes it.
    pub fn to_rfc3339(self) -> String {
        let mut s = String::with_capacity(30);
        // Writing to a String cannot fail.
        let _ = self.write_rfc3339(&mut s);
        s
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_rfc3339(f)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.to_civil();
        let mut buf = [0u8; 30];
        let n = c.format_into(&mut buf);
        s.serialize_str(std::str::from_utf8(&buf[..n]).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

/// Civil UTC fields of a [`Timestamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Proleptic Gregorian year.
    pub year: i32,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    /// 0..=23
    pub hour: u32,
    /// 0..=59
    pub minute: u32,
    /// 0..=59
    pub second: u32,
    /// 0..1_000_000_000
    pub nanos: u32,
}

impl Civil {
    /// Writes `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` into `buf`, returning the length.
    fn format_into(&self, buf: &mut [u8; 30]) -> usize {
        fn put(buf: &mut [u8], mut v: u32, width: usize) {
            for i in (0..width).rev() {
                buf[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        // Years outside 0..=9999 cannot come from i64 nanoseconds except
        // 1677..2262, so four digits always suffice.
        put(&mut buf[0..4], self.year.unsigned_abs(), 4);
        buf[4] = b'-';
        put(&mut buf[5..7], self.month, 2);
        buf[7] = b'-';
        put(&mut buf[8..10], self.day, 2);
        buf[10] = b'T';
        put(&mut buf[11..13], self.hour, 2);
        buf[13] = b':';
        put(&mut buf[14..16], self.minute, 2);
        buf[16] = b':';
        put(&mut buf[17..19], self.second, 2);
        buf[19] = b'.';
        put(&mut buf[20..29], self.nanos, 9);
        buf[29] = b'Z';
        30
    }
}

/// True for Gregorian leap years.
#[inline]
pub const fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1..=12) of `year`; 0 for an invalid month.
#[inline]
pub const fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant).
#[inline]
pub const fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = year as i64 - if month <= 2 { 1 } else { 0 };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01 (Hinnant).
#[inline]
pub const fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + if m <= 2 { 1 } else { 0 }) as i32, m, d)
}

/// Reads exactly `n` ASCII digits at `pos`.
#[inline]
fn digits(b: &[u8], pos: usize, n: usize, expected: &'static str) -> Result<u32, TimestampError> {
    let mut v = 0u32;
    for i in 0..n {
        match b.get(pos + i) {
            Some(c @ b'0'..=b'9') => v = v * 10 + u32::from(c - b'0'),
            _ => {
                return Err(TimestampError::Syntax {
                    column: pos + i,
                    expected,
                });
            }
        }
    }
    Ok(v)
}

#[inline]
fn expect_byte(
    b: &[u8],
    pos: usize,
    want: u8,
    expected: &'static str,
) -> Result<(), TimestampError> {
    if b.get(pos) == Some(&want) {
        Ok(())
    } else {
        Err(TimestampError::Syntax {
            column: pos,
            expected,
        })
    }
}

/// Parses an RFC 3339 timestamp at the start of `b` and returns it with the
/// number of bytes it used. At most `max_frac` fraction digits are accepted
/// (RFC 5424 allows 6, general RFC 3339 any; more than 9 are truncated to
/// nanoseconds when `max_frac` allows them).
///
/// Accepts `T`, `t` or a space between date and time, and `Z`/`z` or
/// `±HH:MM` as the offset.
///
/// # Errors
/// The column of the first byte that does not fit, or a range error.
pub fn parse_rfc3339_prefix(
    b: &[u8],
    max_frac: usize,
) -> Result<(Timestamp, usize), TimestampError> {
    let year = digits(b, 0, 4, "4-digit year")?;
    expect_byte(b, 4, b'-', "'-' after year")?;
    let month = digits(b, 5, 2, "2-digit month")?;
    expect_byte(b, 7, b'-', "'-' after month")?;
    let day = digits(b, 8, 2, "2-digit day")?;
    match b.get(10) {
        Some(b'T' | b't' | b' ') => {}
        _ => {
            return Err(TimestampError::Syntax {
                column: 10,
                expected: "'T' between date and time",
            });
        }
    }
    let hour = digits(b, 11, 2, "2-digit hour")?;
    expect_byte(b, 13, b':', "':' after hour")?;
    let minute = digits(b, 14, 2, "2-digit minute")?;
    expect_byte(b, 16, b':', "':' after minute")?;
    let second = digits(b, 17, 2, "2-digit second")?;
    let mut pos = 19;
    let mut nanos = 0u32;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while let Some(c @ b'0'..=b'9') = b.get(pos) {
            let n = pos - start;
            if n >= max_frac {
                return Err(TimestampError::Syntax {
                    column: pos,
                    expected: "at most the allowed number of fraction digits",
                });
            }
            if n < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
            pos += 1;
        }
        let n = pos - start;
        if n == 0 {
            return Err(TimestampError::Syntax {
                column: pos,
                expected: "fraction digits after '.'",
            });
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match b.get(pos) {
        Some(b'Z' | b'z') => {
            pos += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            let sign = if *sign == b'-' { -1 } else { 1 };
            let oh = digits(b, pos + 1, 2, "2-digit offset hour")?;
            expect_byte(b, pos + 3, b':', "':' in offset")?;
            let om = digits(b, pos + 4, 2, "2-digit offset minute")?;
            if oh > 23 {
                return Err(TimestampError::Range {
                    field: "offset hour",
                });
            }
            if om > 59 {
                return Err(TimestampError::Range {
                    field: "offset minute",
                });
            }
            pos += 6;
            sign * i64::from(oh * 3600 + om * 60)
        }
        _ => {
            return Err(TimestampError::Syntax {
                column: pos,
                expected: "'Z' or a '+HH:MM'/'-HH:MM' offset",
            });
        }
    };
    let local = Timestamp::from_civil(year as i32, month, day, hour, minute, second, nanos)?;
    let utc = local
        .0
        .checked_sub(offset_secs * NANOS_PER_SEC)
        .ok_or(TimestampError::Overflow)?;
    Ok((Timestamp(utc), pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_round_trip() {
        assert_eq!(
            Timestamp::EPOCH.to_rfc3339(),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            Timestamp::parse_rfc3339("1970-01-01T00:00:00Z").unwrap(),
            Timestamp::EPOCH
        );
    }

    #[test]
    fn parse_table() {
        let cases: &[(&str, i64)] = &[
            ("2003-10-11T22:14:15.003Z", 1_065_910_455_003_000_000),
            (
                "2003-08-24T05:14:15.000003-07:00",
                1_061_727_255_000_003_000,
            ),
            (
                "2026-11-25T17:12:36.123456789+01:00",
                1_795_623_156_123_456_789,
            ),
            ("2026-11-25 17:12:36z", 1_795_626_756_000_000_000),
            ("1969-12-31T23:59:59.5Z", -500_000_000),
            ("2016-02-29T00:00:00Z", 1_456_704_000_000_000_000),
        ];
        for (text, nanos) in cases {
            assert_eq!(
                Timestamp::parse_rfc3339(text).unwrap().as_nanos(),
                *nanos,
                "{text}"
            );
        }
    }

    #[test]
    fn parse_errors_name_the_column() {
        let cases: &[(&str, TimestampError)] = &[
            (
                "2003-1-11T22:14:15Z",
                TimestampError::Syntax {
                    column: 6,
                    expected: "2-digit month",
                },
            ),
            (
                "2003-10-11X22:14:15Z",
                TimestampError::Syntax {
                    column: 10,
                    expected: "'T' between date and time",
                },
            ),
            (
                "2003-10-11T22:14:15",
                TimestampError::Syntax {
                    column: 19,
                    expected: "'Z' or a '+HH:MM'/'-HH:MM' offset",
                },
            ),
            (
                "2003-10-11T22:14:15.Z",
                TimestampError::Syntax {
                    column: 20,
                    expected: "fraction digits after '.'",
                },
            ),
            (
                "2019-02-29T00:00:00Z",
                TimestampError::Range { field: "day" },
            ),
            (
                "2019-13-01T00:00:00Z",
                TimestampError::Range { field: "month" },
            ),
            (
                "2019-01-01T24:00:00Z",
                TimestampError::Range { field: "hour" },
            ),
            (
                "2019-01-01T00:00:00Zx",
                TimestampError::Syntax {
                    column: 20,
                    expected: "end of timestamp",
                },
            ),
            ("3000-01-01T00:00:00Z", TimestampError::Overflow),
        ];
        for (text, err) in cases {
            assert_eq!(Timestamp::parse_rfc3339(text).unwrap_err(), *err, "{text}");
        }
    }

    #[test]
    fn fraction_limit() {
        assert!(parse_rfc3339_prefix(b"2003-10-11T22:14:15.1234567Z", 6).is_err());
        assert!(parse_rfc3339_prefix(b"2003-10-11T22:14:15.123456Z", 6).is_ok());
    }

    #[test]
    fn civil_round_trip_over_wide_range() {
        // Every 37 hours and a bit across 1677..2262, civil -> nanos -> civil.
        let step = 37 * 3600 * NANOS_PER_SEC + 123_456_789;
        let mut t = Timestamp::MIN.as_nanos() / 2;
        while t < Timestamp::MAX.as_nanos() / 2 {
            let ts = Timestamp(t);
            let c = ts.to_civil();
            let back =
                Timestamp::from_civil(c.year, c.month, c.day, c.hour, c.minute, c.second, c.nanos)
                    .unwrap();
            assert_eq!(back, ts);
            assert_eq!(Timestamp::parse_rfc3339(&ts.to_rfc3339()).unwrap(), ts);
            t += step * 1000;
        }
    }
}

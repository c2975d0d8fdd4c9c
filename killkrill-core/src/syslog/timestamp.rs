//! RFC 3339 timestamps as syslog writes them, parsed by hand.
//!
//! RFC 5424 allows a narrow profile of RFC 3339 (upper-case `T` and `Z`, at
//! most six fraction digits, an offset always present). Every digit is checked
//! against its range as it is read (a month cannot start with 2, an hour with
//! 3), so a strict error points at the first impossible byte, the way
//! go-syslog's state machine does. Whether the day exists in that month is
//! only known once the whole timestamp has been read, so that error points at
//! its end. The same code, with looser [`Rules`], reads the RFC 3339
//! timestamps that rsyslog puts into RFC 3164 messages (its forward format),
//! where the offset may be missing and the sender's zone applies.
//!
//! Hand-written because it runs on every message: a fixed layout read with
//! no allocation and no table lookups costs a few nanoseconds.

use super::error::{ParseError, ParseErrorKind};
use crate::event::{NANOS_PER_SEC, Timestamp, days_from_civil, days_in_month};

/// What the grammar allows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// Most fraction digits accepted (6 for RFC 5424, 9 otherwise).
    pub max_frac: usize,
    /// The offset (`Z` or `±HH:MM`) must be present.
    pub offset_required: bool,
}

/// RFC 5424 §6.2.3.
pub(crate) const RFC5424: Rules = Rules {
    max_frac: 6,
    offset_required: true,
};

/// A timestamp read from the input, not yet placed in a zone when it had
/// no offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Seconds since the epoch of the civil date and time as written
    /// (before the offset is applied).
    pub local_secs: i64,
    /// Fraction of a second in nanoseconds.
    pub nanos: u32,
    /// Seconds east of UTC, if written.
    pub offset: Option<i32>,
    /// Position after the timestamp.
    pub end: usize,
}

impl Parsed {
    /// The instant, when the offset was written.
    pub fn with_offset(&self, offset_secs: i32) -> Option<Timestamp> {
        let secs = self.local_secs.checked_sub(i64::from(offset_secs))?;
        secs.checked_mul(NANOS_PER_SEC)?
            .checked_add(i64::from(self.nanos))
            .map(Timestamp::from_nanos)
    }
}

#[inline]
fn err(col: usize, what: &'static str) -> ParseError {
    ParseError::new(ParseErrorKind::Timestamp, col, what)
}

/// Reads one digit in `lo..=hi` at `i`.
#[inline]
fn digit(b: &[u8], i: usize, lo: u8, hi: u8, what: &'static str) -> Result<u32, ParseError> {
    match b.get(i) {
        Some(&c) if c >= b'0' + lo && c <= b'0' + hi => Ok(u32::from(c - b'0')),
        _ => Err(err(i, what)),
    }
}

#[inline]
fn byte(b: &[u8], i: usize, want: u8, what: &'static str) -> Result<(), ParseError> {
    if b.get(i) == Some(&want) {
        Ok(())
    } else {
        Err(err(i, what))
    }
}

/// Two digits of an hour (00..=23), checked digit by digit.
#[inline]
fn hour(b: &[u8], i: usize) -> Result<u32, ParseError> {
    let h1 = digit(b, i, 0, 2, "an hour digit (00-23)")?;
    let h2 = if h1 == 2 {
        digit(b, i + 1, 0, 3, "an hour digit (00-23)")?
    } else {
        digit(b, i + 1, 0, 9, "an hour digit (00-23)")?
    };
    Ok(h1 * 10 + h2)
}

/// Two digits of a minute or second (00..=59).
#[inline]
fn sixty(b: &[u8], i: usize, what: &'static str) -> Result<u32, ParseError> {
    Ok(digit(b, i, 0, 5, what)? * 10 + digit(b, i + 1, 0, 9, what)?)
}

/// [`days_from_civil`] for years 1..=65535, in unsigned arithmetic: the
/// divisions by constants become multiplications without the sign fix-ups
/// of `div_euclid`, and the call is inlined. The test checks it against
/// [`days_from_civil`] for every day of 1678..=2261.
#[inline(always)]
fn days_from_civil_unsigned(year: u32, month: u32, day: u32) -> i64 {
    let y = year - u32::from(month <= 2);
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i64::from(era * 146_097 + doe) - 719_468
}

/// A check of eight bytes of `YYYY-MM-DDTHH:MM:SS`: each byte is a digit
/// or its separator ("SWAR": `x` is the byte XOR its template, which is 0..9
/// for a digit and 0 for the right separator; adding 0x76, or 0x7F for a
/// separator, to its low seven bits sets the high bit exactly when `x` is
/// too large, with no carry into the next byte).
#[derive(Clone, Copy)]
struct LayoutCheck {
    template: u64,
    add: u64,
    high: u64,
}

impl LayoutCheck {
    /// The check of `LAYOUT[offset..offset + 8]`.
    const fn new(offset: usize) -> Self {
        const LAYOUT: &[u8; 19] = b"0000-00-00T00:00:00";
        let mut c = LayoutCheck {
            template: 0,
            add: 0,
            high: 0,
        };
        let mut j = 0;
        while j < 8 {
            let q = offset + j;
            if q < LAYOUT.len() {
                let (t, a) = match LAYOUT[q] {
                    b'0' => (b'0', 0x76),
                    sep => (sep, 0x7f),
                };
                c.template |= (t as u64) << (8 * j);
                c.add |= (a as u64) << (8 * j);
                c.high |= 0x80 << (8 * j);
            }
            j += 1;
        }
        c
    }

    /// Nonzero when a byte of `w` does not fit.
    #[inline(always)]
    fn bad(self, w: u64) -> u64 {
        let x = w ^ self.template;
        (((x & 0x7f7f_7f7f_7f7f_7f7f) + self.add) | x) & self.high
    }
}

/// The three (overlapping) words of the 19-byte layout.
const LAYOUT_WORDS: [(usize, LayoutCheck); 3] = [
    (0, LayoutCheck::new(0)),
    (8, LayoutCheck::new(8)),
    (11, LayoutCheck::new(11)),
];

/// The common case of an RFC 5424 timestamp, read without per-digit error
/// bookkeeping: `None` for anything unusual or invalid, which the careful
/// path below then reads again and reports with its column. Both accept
/// exactly the same timestamps (the corpus and unit tests run both).
#[inline(always)]
pub(crate) fn fast_rfc5424(b: &[u8], pos: usize) -> Option<Parsed> {
    let t: &[u8; 20] = b.get(pos..pos + 20)?.try_into().ok()?;
    // `YYYY-MM-DDTHH:MM:SS` checked eight bytes at a time.
    let word = |o: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&t[o..o + 8]);
        u64::from_le_bytes(w)
    };
    let [(o0, c0), (o1, c1), (o2, c2)] = LAYOUT_WORDS;
    let (w0, w1, w2) = (word(o0), word(o1), word(o2));
    if c0.bad(w0) | c1.bad(w1) | c2.bad(w2) != 0 {
        return None;
    }
    // The words XOR their templates hold each digit's value in its byte
    // (and 0 for a separator); `pairs` puts `10 * d[k] + d[k + 1]` into
    // byte k (at most 99: no carry between bytes), so every two-digit
    // number is one shift and mask away.
    let pairs = |w: u64, c: LayoutCheck| {
        let x = w ^ c.template;
        x.wrapping_mul(10) + (x >> 8)
    };
    let (p0, p1, p2) = (pairs(w0, c0), pairs(w1, c1), pairs(w2, c2));
    let at = |p: u64, k: u32| (p >> (8 * k)) as u32 & 0xff;
    // `YYYY-MM-`, `DDTHH:MM` and `HH:MM:SS`.
    let year = at(p0, 0) * 100 + at(p0, 2);
    let month = at(p0, 5);
    let (day, h, mi, s) = (at(p1, 0), at(p1, 3), at(p1, 6), at(p2, 6));
    if !(1678..=2261).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || (day > 28 && day > days_in_month(year as i32, month))
        || h > 23
        || mi > 59
        || s > 59
    {
        return None;
    }
    let mut i = pos + 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        // Microseconds (six digits, then no digit), eight bytes at a time.
        if let Some(f) = b.get(i..i + 8)
            && let Ok(f) = <&[u8; 8]>::try_from(f)
            && let Some(micros) = six_digits(u64::from_le_bytes(*f))
        {
            i += 6;
            return fast_offset(
                b,
                i,
                micros * 1_000,
                year,
                month,
                day,
                h * 3600 + mi * 60 + s,
            );
        }
        let start = i;
        while let Some(c @ b'0'..=b'9') = b.get(i) {
            if i - start == 6 {
                return None;
            }
            nanos = nanos * 10 + u32::from(c - b'0');
            i += 1;
        }
        if i == start {
            return None;
        }
        nanos *= [
            1,
            100_000_000,
            10_000_000,
            1_000_000,
            100_000,
            10_000,
            1_000,
        ][i - start];
    }
    fast_offset(b, i, nanos, year, month, day, h * 3600 + mi * 60 + s)
}

/// The value of six decimal digits in the low bytes of `w` (first digit in
/// the lowest byte) followed by a byte that is not a digit; `None` for
/// anything else.
#[inline(always)]
fn six_digits(w: u64) -> Option<u32> {
    const SIX: u64 = 0x0000_FFFF_FFFF_FFFF;
    let x = (w ^ 0x3030_3030_3030_3030) & SIX;
    // A byte of `x` above 9 (or a byte of `w` with the high bit) is not a
    // digit, as in `LayoutCheck::bad`.
    let bad = (((x & 0x7f7f_7f7f_7f7f_7f7f) + 0x7676_7676_7676_7676) | w) & 0x8080_8080_8080;
    if bad != 0 || ((w >> 48) as u8).wrapping_sub(b'0') <= 9 {
        return None;
    }
    // `00dddddd`: pairs, then fours, then the eight-digit value.
    let v = x << 16;
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_ffff_0000_ffff;
    let v = (v.wrapping_mul(10_000) + (v >> 32)) & 0xffff_ffff;
    Some(v as u32)
}

/// The offset at `i` of a timestamp read by [`fast_rfc5424`], and the result.
#[inline(always)]
fn fast_offset(
    b: &[u8],
    mut i: usize,
    nanos: u32,
    year: u32,
    month: u32,
    day: u32,
    sod: u32,
) -> Option<Parsed> {
    let offset = match *b.get(i)? {
        b'Z' => {
            i += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let o: &[u8; 6] = b.get(i..i + 6)?.try_into().ok()?;
            let od = |k: usize| u32::from(o[k].wrapping_sub(b'0'));
            if od(1) > 9 || od(2) > 9 || o[3] != b':' || od(4) > 9 || od(5) > 9 {
                return None;
            }
            let (oh, om) = (od(1) * 10 + od(2), od(4) * 10 + od(5));
            if oh > 23 || om > 59 {
                return None;
            }
            i += 6;
            let secs = (oh * 3600 + om * 60) as i32;
            if sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let days = days_from_civil_unsigned(year, month, day);
    Some(Parsed {
        local_secs: days * 86_400 + i64::from(sod),
        nanos,
        offset: Some(offset),
        end: i,
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.F]OFFSET` at `pos`.
///
/// With `rules.offset_required == false` a missing offset is allowed and
/// reported as `offset: None`; lower-case `t`/`z` and a space separator are
/// then also accepted (rsyslog and several libraries write them).
pub(crate) fn parse_rfc3339(b: &[u8], pos: usize, rules: Rules) -> Result<Parsed, ParseError> {
    let strict = rules.offset_required;
    if strict && let Some(p) = fast_rfc5424(b, pos) {
        return Ok(p);
    }
    let mut year = 0u32;
    for i in 0..4 {
        year = year * 10 + digit(b, pos + i, 0, 9, "a 4-digit year")?;
    }
    byte(b, pos + 4, b'-', "'-' after the year")?;
    let m1 = digit(b, pos + 5, 0, 1, "a month (01-12)")?;
    let m2 = match m1 {
        0 => digit(b, pos + 6, 1, 9, "a month (01-12)")?,
        _ => digit(b, pos + 6, 0, 2, "a month (01-12)")?,
    };
    let month = m1 * 10 + m2;
    byte(b, pos + 7, b'-', "'-' after the month")?;
    let d1 = digit(b, pos + 8, 0, 3, "a day (01-31)")?;
    let d2 = match d1 {
        0 => digit(b, pos + 9, 1, 9, "a day (01-31)")?,
        3 => digit(b, pos + 9, 0, 1, "a day (01-31)")?,
        _ => digit(b, pos + 9, 0, 9, "a day (01-31)")?,
    };
    let day = d1 * 10 + d2;
    match b.get(pos + 10) {
        Some(b'T') => {}
        Some(b't' | b' ') if !strict => {}
        _ => return Err(err(pos + 10, "'T' between date and time")),
    }
    let h = hour(b, pos + 11)?;
    byte(b, pos + 13, b':', "':' after the hour")?;
    let mi = sixty(b, pos + 14, "a minute (00-59)")?;
    byte(b, pos + 16, b':', "':' after the minute")?;
    let s = sixty(b, pos + 17, "a second (00-59)")?;
    let mut i = pos + 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(c @ b'0'..=b'9') = b.get(i) {
            if i - start == rules.max_frac {
                let what = if rules.max_frac == 6 {
                    "at most 6 fraction digits"
                } else {
                    "at most 9 fraction digits"
                };
                return Err(err(i, what));
            }
            nanos = nanos * 10 + u32::from(c - b'0');
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return Err(err(i, "a digit after '.'"));
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z') => {
            i += 1;
            Some(0)
        }
        Some(b'z') if !strict => {
            i += 1;
            Some(0)
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = hour(b, i + 1)?;
            byte(b, i + 3, b':', "':' in the offset")?;
            let om = sixty(b, i + 4, "an offset minute (00-59)")?;
            i += 6;
            let secs = (oh * 3600 + om * 60) as i32;
            Some(if sign == b'-' { -secs } else { secs })
        }
        _ if strict => return Err(err(i, "'Z' or an offset such as +01:00")),
        _ => None,
    };
    if day > days_in_month(year as i32, month) {
        return Err(ParseError::new(
            ParseErrorKind::TimestampDateNonexistent,
            i,
            "a day that exists in that month",
        ));
    }
    if !(1678..=2261).contains(&year) {
        return Err(err(pos, "a year between 1678 and 2261"));
    }
    let days = days_from_civil(year as i32, month, day);
    Ok(Parsed {
        local_secs: days * 86_400 + i64::from(h * 3600 + mi * 60 + s),
        nanos,
        offset,
        end: i,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(s: &str) -> Result<Timestamp, (ParseErrorKind, usize)> {
        parse_rfc3339(s.as_bytes(), 0, RFC5424)
            .map(|p| p.with_offset(p.offset.unwrap()).unwrap())
            .map_err(|e| (e.kind(), e.column()))
    }

    #[test]
    fn valid() {
        let cases: &[(&str, &str)] = &[
            ("2003-10-11T22:14:15.003Z", "2003-10-11T22:14:15.003Z"),
            (
                "2003-08-24T05:14:15.000003-07:00",
                "2003-08-24T12:14:15.000003Z",
            ),
            (
                "2018-12-31T23:59:59.999999-23:59",
                "2019-01-01T23:58:59.999999Z",
            ),
            ("2016-02-29T00:00:00+01:00", "2016-02-28T23:00:00Z"),
        ];
        for (text, utc) in cases {
            assert_eq!(
                strict(text).unwrap(),
                Timestamp::parse_rfc3339(utc).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_point_at_the_impossible_byte() {
        use ParseErrorKind::*;
        let cases: &[(&str, ParseErrorKind, usize)] = &[
            ("2018-13-01T00:00:00Z", Timestamp, 6),
            ("2018-02-32T00:00:00Z", Timestamp, 9),
            ("2018-02-01:25:15Z", Timestamp, 10),
            ("2003-09-29T24:00:00Z", Timestamp, 12),
            ("2003-09-29T22:60:00Z", Timestamp, 14),
            ("2003-09-29T22:09:01.1234567Z", Timestamp, 26),
            ("2003-09-29T22:09:01.Z", Timestamp, 20),
            ("2003-09-29T22:09:01", Timestamp, 19),
            ("2003-09-29t22:09:01Z", Timestamp, 10),
            ("2003-09-29T22:09:01z", Timestamp, 19),
            ("2003-09-29T22:09:01+24:00", Timestamp, 21),
            ("2003-09-31T22:14:15Z", TimestampDateNonexistent, 20),
            ("2019-02-29T00:00:00Z", TimestampDateNonexistent, 20),
            ("3000-01-01T00:00:00Z", Timestamp, 0),
        ];
        for (text, kind, col) in cases {
            assert_eq!(strict(text), Err((*kind, *col)), "{text}");
        }
    }

    #[test]
    fn fast_path_agrees_with_the_careful_path() {
        let loose = Rules {
            max_frac: 6,
            offset_required: false,
        };
        for text in [
            "2003-10-11T22:14:15.003Z",
            "2003-08-24T05:14:15.000003-07:00",
            "2018-12-31T23:59:59.999999-23:59",
            "2016-02-29T00:00:00+01:00",
            "2016-02-29T00:00:00.1+00:00 x",
            "2016-02-29T00:00:00.123456+05:30 x",
            "2016-02-29T00:00:00.123456Z",
            "2016-02-29T00:00:00.000001-00:00",
            "1678-01-01T00:00:00Z",
        ] {
            let fast = fast_rfc5424(text.as_bytes(), 0).unwrap();
            // The loose rules never take the fast path.
            let careful = parse_rfc3339(text.as_bytes(), 0, loose).unwrap();
            assert_eq!(fast, careful, "{text}");
        }
        for text in [
            "2003-10-11T22:14:15.0000001Z",
            "2003-10-11T22:14:15.123456",
            "2003-10-11T22:14:15.1234567Z",
            "2003-02-29T00:00:00Z",
            "2003-10-11T22:14:15",
            "2003-10-11t22:14:15Z",
        ] {
            assert_eq!(fast_rfc5424(text.as_bytes(), 0), None, "{text}");
        }
    }

    /// The SWAR field extraction and fraction of the fast path against the
    /// careful parser over every month, day, hour, minute and second (and
    /// fractions with each digit position varied).
    #[test]
    fn fast_path_fields_agree_with_the_careful_path() {
        let check = |text: &str| {
            let careful = parse_rfc3339(text.as_bytes(), 0, RFC5424).ok();
            let fast = fast_rfc5424(text.as_bytes(), 0);
            if fast.is_some() {
                assert_eq!(fast, careful, "{text}");
            }
            careful.is_some()
        };
        for (year, month) in [
            (1678i32, 1u32),
            (2000, 2),
            (2023, 2),
            (2024, 2),
            (2261, 12),
            (2026, 11),
        ] {
            for day in 0..=32 {
                for (h, m, s) in [
                    (0, 0, 0),
                    (23, 59, 59),
                    (24, 0, 0),
                    (9, 60, 7),
                    (12, 34, 60),
                ] {
                    let t = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z x");
                    let ok = check(&t);
                    let valid = (1..=days_in_month(year, month)).contains(&day)
                        && h < 24
                        && m < 60
                        && s < 60;
                    assert_eq!(ok, valid, "{t}");
                }
            }
        }
        for month in 0..=13 {
            check(&format!("2026-{month:02}-10T10:10:10Z"));
        }
        let frac = *b"2026-11-25T17:01:07.015511Z x";
        assert!(check(std::str::from_utf8(&frac).unwrap()));
        for k in 20..28 {
            for v in [b'0', b'5', b'9', b'/', b':', b'Z', b'+', b' ', 0x80, 0xb0] {
                let mut t = frac;
                t[k] = v;
                if let Ok(t) = std::str::from_utf8(&t) {
                    check(t);
                }
            }
        }
        for w in [
            *b"000000Z ",
            *b"999999Z ",
            *b"123456+0",
            *b"1234567Z",
            *b"12345Z  ",
            *b"12\x84456Z ",
        ] {
            let want =
                (w[..6].iter().all(u8::is_ascii_digit) && !w[6].is_ascii_digit()).then(|| {
                    std::str::from_utf8(&w[..6])
                        .unwrap()
                        .parse::<u32>()
                        .unwrap()
                });
            assert_eq!(six_digits(u64::from_le_bytes(w)), want, "{w:?}");
        }
    }

    #[test]
    fn unsigned_days_agree_with_days_from_civil() {
        for year in 1678..=2261u32 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year as i32, month) {
                    assert_eq!(
                        days_from_civil_unsigned(year, month, day),
                        days_from_civil(year as i32, month, day),
                        "{year}-{month}-{day}"
                    );
                }
            }
        }
    }

    #[test]
    fn layout_check_matches_bytewise() {
        let good = *b"2003-10-11T22:14:15Z";
        assert!(fast_rfc5424(&good, 0).is_some());
        // Every byte of the layout replaced by every value: accepted exactly
        // when the byte is still a digit where a digit goes, or the same
        // separator.
        for k in 0..19 {
            for v in 0..=255u8 {
                let mut t = good;
                t[k] = v;
                let want = if b"0000-00-00T00:00:00"[k] == b'0' {
                    v.is_ascii_digit()
                } else {
                    v == good[k]
                };
                let word = |o: usize| u64::from_le_bytes(t[o..o + 8].try_into().unwrap());
                let bad = LAYOUT_WORDS
                    .iter()
                    .fold(0, |bad, &(o, check)| bad | check.bad(word(o)));
                assert_eq!(bad == 0, want, "byte {k} = {v:#x}");
            }
        }
    }

    #[test]
    fn loose_rules_allow_missing_offset() {
        let rules = Rules {
            max_frac: 9,
            offset_required: false,
        };
        let p = parse_rfc3339(b"2019-02-13 21:53:30.123456789 x", 0, rules).unwrap();
        assert_eq!((p.offset, p.nanos, p.end), (None, 123_456_789, 29));
    }
}

//! RFC 3164 timestamps as real senders write them, and the year and zone
//! they leave out.
//!
//! Accepted at the start of the header:
//! - BSD `Mmm dd hh:mm:ss` (day padded with a space or a zero, or not at all),
//!   optionally with a year after the day (`Jan 12 2011 06:30:00`, Cisco ASA)
//!   and a fraction (`.483`);
//! - Cisco IOS `*Mar  1 18:48:50.483 UTC:` (a leading `*` or `.` says whether
//!   the clock was synchronised; a zone abbreviation and a colon may follow);
//! - RFC 3339 (`2019-02-13T21:53:30.605850+00:00`, rsyslog's forward format),
//!   with or without an offset.
//!
//! A BSD timestamp has no year: the year is the one that puts the message
//! closest to "now" (a `Dec 31` message received on Jan 1 is from last year).
//! Only then is the day checked, so `Feb 29` is valid only when the inferred
//! year is a leap year. A timestamp without an offset is in the configured
//! zone; of zone abbreviations only `UTC`, `GMT` and `Z` are understood,
//! because the others are ambiguous (`IST`, `CST`).

use jiff::tz::TimeZone;

use super::byte_scan;
use super::error::{ParseError, ParseErrorKind};
use super::options::{Clock, ParseOptions};
use super::timestamp::{Rules, parse_rfc3339};
use crate::event::{
    NANOS_PER_SEC, Timestamp, civil_from_days, days_from_civil, days_in_month, is_leap_year,
};

/// A timestamp found at the start of an RFC 3164 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub ts: Timestamp,
    /// Position after the timestamp (and its colon, if any).
    pub end: usize,
    /// The timestamp ended with `:` (Cisco style): no HOSTNAME follows.
    pub colon: bool,
}

const LOOSE_3339: Rules = Rules {
    max_frac: 9,
    offset_required: false,
};

#[inline]
fn err(col: usize, what: &'static str) -> ParseError {
    ParseError::new(ParseErrorKind::Timestamp, col, what)
}

/// The month number of a three-letter English abbreviation, any case.
#[inline]
fn month(b: &[u8]) -> Option<u32> {
    let &[c0, c1, c2] = b.first_chunk::<3>()?;
    month_word(u32::from_le_bytes([c0, c1, c2, 0]))
}

/// Three bytes as a little-endian word (first byte lowest).
const fn word3(s: &[u8; 3]) -> u32 {
    u32::from_le_bytes([s[0], s[1], s[2], 0])
}

/// [`month`] of three bytes in the low bytes of `w` (the high byte is
/// ignored). Setting bit 5 of each byte lower-cases ASCII letters; a byte
/// that becomes a lower-case letter this way was a letter already, so no
/// other byte can match.
#[inline(always)]
fn month_word(w: u32) -> Option<u32> {
    const JAN: u32 = word3(b"jan");
    const FEB: u32 = word3(b"feb");
    const MAR: u32 = word3(b"mar");
    const APR: u32 = word3(b"apr");
    const MAY: u32 = word3(b"may");
    const JUN: u32 = word3(b"jun");
    const JUL: u32 = word3(b"jul");
    const AUG: u32 = word3(b"aug");
    const SEP: u32 = word3(b"sep");
    const OCT: u32 = word3(b"oct");
    const NOV: u32 = word3(b"nov");
    const DEC: u32 = word3(b"dec");
    Some(match (w & 0x00ff_ffff) | 0x0020_2020 {
        JAN => 1,
        FEB => 2,
        MAR => 3,
        APR => 4,
        MAY => 5,
        JUN => 6,
        JUL => 7,
        AUG => 8,
        SEP => 9,
        OCT => 10,
        NOV => 11,
        DEC => 12,
        _ => return None,
    })
}

/// The common layout `Mmm dd hh:mm:ss` (day zero- or space-padded) at
/// `pos`, read with two 8-byte words: `None` for anything else, which the
/// byte-by-byte parser then reads (and reports, for an invalid value). It
/// accepts exactly what that parser reads from the same 15 bytes, with its
/// checks (day 1..=31, hour 0..=23, minute 0..=59, second 0..=60).
#[inline(always)]
fn fast_bsd(b: &[u8], pos: usize) -> Option<Time> {
    let t: &[u8; 15] = b.get(pos..pos + 15)?.try_into().ok()?;
    // `Mmm dd h` and `hh:mm:ss`.
    let w0 = u64::from_le_bytes(*t.first_chunk::<8>()?);
    let w1 = u64::from_le_bytes(*t.last_chunk::<8>()?);
    let mon = month_word(w0 as u32)?;
    let (d4, d5) = (t[4], t[5].wrapping_sub(b'0'));
    if t[3] != b' ' || t[6] != b' ' || d5 > 9 {
        return None;
    }
    let (day, day_col) = match d4 {
        b' ' => (u32::from(d5), pos + 5),
        b'0'..=b'9' => (u32::from(d4 - b'0') * 10 + u32::from(d5), pos + 4),
        _ => return None,
    };
    // `hh:mm:ss` checked as in `timestamp::LayoutCheck`: each byte XOR its
    // template is 0..=9 for a digit and 0 for its separator; adding 0x76
    // (0x7F for a separator) to its low seven bits sets the high bit
    // exactly when it is larger.
    const TEMPLATE: u64 = u64::from_le_bytes(*b"00:00:00");
    const ADD: u64 = u64::from_le_bytes([0x76, 0x76, 0x7f, 0x76, 0x76, 0x7f, 0x76, 0x76]);
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = w1 ^ TEMPLATE;
    if (((x & LOW7) + ADD) | x) & HIGH != 0 {
        return None;
    }
    // Byte k becomes `10 * d[k] + d[k + 1]` (at most 99: no carries).
    let p = x.wrapping_mul(10) + (x >> 8);
    let (h, mi, s) = (
        p as u32 & 0xff,
        (p >> 24) as u32 & 0xff,
        (p >> 48) as u32 & 0xff,
    );
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(Time {
        mon,
        day,
        day_col,
        year: None,
        h,
        mi,
        s,
    })
}

#[inline]
fn two_digits(b: &[u8], i: usize, max: u32, what: &'static str) -> Result<u32, ParseError> {
    match (b.get(i), b.get(i + 1)) {
        (Some(c1 @ b'0'..=b'9'), Some(c2 @ b'0'..=b'9')) => {
            let v = u32::from(c1 - b'0') * 10 + u32::from(c2 - b'0');
            if v > max { Err(err(i, what)) } else { Ok(v) }
        }
        (Some(b'0'..=b'9'), _) => Err(err(i + 1, what)),
        _ => Err(err(i, what)),
    }
}

/// Looks for a timestamp at `pos`. `Ok(None)`: nothing there that looks like
/// one. `Err`: it starts like a timestamp but is not a valid one.
pub(crate) fn parse(
    b: &[u8],
    pos: usize,
    opts: &ParseOptions,
    now: &Now,
) -> Result<Option<Found>, ParseError> {
    if let Some(time) = fast_bsd(b, pos) {
        return after_seconds(b, pos, pos + 15, time, opts, now).map(Some);
    }
    parse_careful(b, pos, opts, now)
}

/// [`parse`] without the fast path: every layout, and the column of every
/// error.
fn parse_careful(
    b: &[u8],
    pos: usize,
    opts: &ParseOptions,
    now: &Now,
) -> Result<Option<Found>, ParseError> {
    let mut i = pos;
    match b.get(i) {
        Some(b'0'..=b'9') => {
            if b.get(i + 4) != Some(&b'-') || !b[i..i + 4].iter().all(u8::is_ascii_digit) {
                return Ok(None);
            }
            let p = parse_rfc3339(b, i, LOOSE_3339)?;
            let ts = match p.offset {
                Some(off) => p.with_offset(off),
                None => now.local_to_utc(&opts.time_zone, p.local_secs, p.nanos),
            }
            .ok_or(err(i, "a time between 1678 and 2261"))?;
            return finish(b, p.end, ts, opts).map(Some);
        }
        Some(b'*' | b'.') if month(&b[i + 1..]).is_some() => i += 1,
        _ => {}
    }
    let Some(mon) = month(&b[i..]) else {
        return Ok(None);
    };
    i += 3;
    if b.get(i) != Some(&b' ') {
        return Ok(None);
    }
    i += 1;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let day_col = i;
    let mut day = 0u32;
    while let Some(c @ b'0'..=b'9') = b.get(i) {
        if i - day_col == 2 {
            return Ok(None);
        }
        day = day * 10 + u32::from(c - b'0');
        i += 1;
    }
    if i == day_col || b.get(i) != Some(&b' ') {
        return Ok(None);
    }
    i += 1;
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return Ok(None);
    }
    // `Mmm dd` and a digit: from here on it is a timestamp or an error.
    if !(1..=31).contains(&day) {
        return Err(err(day_col, "a day of the month (1-31)"));
    }
    let mut year = None;
    if b.get(i + 4) == Some(&b' ')
        && b.get(i..i + 4)
            .is_some_and(|y| y.iter().all(u8::is_ascii_digit))
    {
        let y = b[i..i + 4]
            .iter()
            .fold(0i32, |a, c| a * 10 + i32::from(c - b'0'));
        if !(1678..=2261).contains(&y) {
            return Err(err(i, "a year between 1678 and 2261"));
        }
        year = Some(y);
        i += 5;
    }
    let h = two_digits(b, i, 23, "an hour (00-23)")?;
    if b.get(i + 2) != Some(&b':') {
        return Err(err(i + 2, "':' after the hour"));
    }
    let mi = two_digits(b, i + 3, 59, "a minute (00-59)")?;
    if b.get(i + 5) != Some(&b':') {
        return Err(err(i + 5, "':' after the minute"));
    }
    let s = two_digits(b, i + 6, 60, "a second (00-60)")?;
    let time = Time {
        mon,
        day,
        day_col,
        year,
        h,
        mi,
        s,
    };
    after_seconds(b, pos, i + 8, time, opts, now).map(Some)
}

/// The date and time of a BSD timestamp, read up to the seconds.
#[derive(Clone, Copy)]
struct Time {
    mon: u32,
    day: u32,
    /// Column of the day (for the error of a day the month does not have).
    day_col: usize,
    /// Written after the day (Cisco ASA); otherwise inferred.
    year: Option<i32>,
    h: u32,
    mi: u32,
    s: u32,
}

/// The rest of a BSD timestamp at `b[pos..]` whose seconds end at `i`:
/// fraction, zone abbreviation, the year, and the instant.
#[inline(always)]
fn after_seconds(
    b: &[u8],
    pos: usize,
    mut i: usize,
    t: Time,
    opts: &ParseOptions,
    now: &Now,
) -> Result<Found, ParseError> {
    let Time {
        mon,
        day,
        day_col,
        year,
        h,
        mi,
        s,
    } = t;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(c @ b'0'..=b'9') = b.get(i) {
            if i - start == 9 {
                return Err(err(i, "at most 9 fraction digits"));
            }
            nanos = nanos * 10 + u32::from(c - b'0');
            i += 1;
        }
        if i == start {
            return Err(err(i, "a digit after '.'"));
        }
        for _ in i - start..9 {
            nanos *= 10;
        }
    }
    // An optional zone abbreviation, only in the Cisco form `... UTC:`.
    let mut utc = false;
    if b.get(i) == Some(&b' ') && may_have_colon(b, i + 1) {
        let z = i + 1;
        let mut k = z;
        while k < b.len() && k - z < 5 && b[k].is_ascii_alphabetic() {
            k += 1;
        }
        if k > z && b.get(k) == Some(&b':') && matches!(b.get(k + 1), None | Some(b' ')) {
            let zone = &b[z..k];
            utc = zone.eq_ignore_ascii_case(b"UTC")
                || zone.eq_ignore_ascii_case(b"GMT")
                || zone.eq_ignore_ascii_case(b"Z");
            i = k;
        }
    }
    let sod = i64::from(h * 3600 + mi * 60 + s);
    let (year, days) = match year {
        Some(y) => (y, days_from_civil(y, mon, day)),
        None => now.closest(&opts.clock, mon, day, sod),
    };
    if day > days_in_month(year, mon) {
        return Err(ParseError::new(
            ParseErrorKind::TimestampDateNonexistent,
            day_col,
            "a day that exists in that month of the (inferred) year",
        ));
    }
    let local_secs = days * 86_400 + sod;
    let ts = if utc {
        local_secs
            .checked_mul(NANOS_PER_SEC)
            .map(|n| Timestamp::from_nanos(n + i64::from(nanos)))
    } else {
        now.local_to_utc(&opts.time_zone, local_secs, nanos)
    }
    .ok_or(err(pos, "a time between 1678 and 2261"))?;
    finish(b, i, ts, opts)
}

/// False when `b[z + 1..=z + 5]` surely holds no `:`, so no zone
/// abbreviation (at most five letters and a colon) starts at `z`: one
/// 8-byte compare instead of a loop over the next word's letters.
#[inline(always)]
fn may_have_colon(b: &[u8], z: usize) -> bool {
    const BYTES_1_TO_5: u64 = 0x0000_8080_8080_8000;
    match b.get(z..).and_then(<[u8]>::first_chunk::<8>) {
        Some(w) => byte_scan::eq_mask(u64::from_le_bytes(*w), b':') & BYTES_1_TO_5 != 0,
        None => true,
    }
}

/// The end of a timestamp: a space, the end, or (Cisco) a colon.
fn finish(b: &[u8], i: usize, ts: Timestamp, _opts: &ParseOptions) -> Result<Found, ParseError> {
    match b.get(i) {
        None | Some(b' ') => Ok(Found {
            ts,
            end: i,
            colon: false,
        }),
        Some(b':') if matches!(b.get(i + 1), None | Some(b' ')) => Ok(Found {
            ts,
            end: i + 1,
            colon: true,
        }),
        Some(_) => Err(err(i, "a space after the timestamp")),
    }
}

/// The year that puts `month`/`day` at `sod` seconds of the day closest to
/// `now` (of the year before, the same year and the year after; a tie goes
/// to the earlier year).
pub fn infer_year(month: u32, day: u32, sod: i64, now: Timestamp) -> i32 {
    NowYear::new(now).closest(month, day, sod).0
}

/// Days before the first of each month, in common and leap years.
const MONTH_START: [[u16; 12]; 2] = [
    [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334],
    [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335],
];

/// "Now" split for year inference: its seconds, its year, and the day
/// numbers of the first of each month of the years around it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NowYear {
    secs: i64,
    year: i32,
    /// Days since the epoch of the first of each month of `year - 1`,
    /// `year` and `year + 1`.
    month_starts: [[i64; 12]; 3],
}

impl NowYear {
    fn new(now: Timestamp) -> Self {
        let secs = now.as_nanos().div_euclid(NANOS_PER_SEC);
        let year = civil_from_days(secs.div_euclid(86_400)).0;
        let mut month_starts = [[0i64; 12]; 3];
        for (k, starts) in month_starts.iter_mut().enumerate() {
            let y = year - 1 + k as i32;
            let jan1 = days_from_civil(y, 1, 1);
            let leap = usize::from(is_leap_year(y));
            for (m, start) in starts.iter_mut().enumerate() {
                *start = jan1 + i64::from(MONTH_START[leap][m]);
            }
        }
        NowYear {
            secs,
            year,
            month_starts,
        }
    }

    /// The closest candidate year and the day number of `month`/`day` in it
    /// (a day past the month's end counts into the next month, which only
    /// matters for closeness: the caller rejects such days).
    #[inline(always)]
    fn closest(&self, month: u32, day: u32, sod: i64) -> (i32, i64) {
        let m = match (month as usize).wrapping_sub(1) {
            m @ 0..12 => m,
            m => m % 12,
        };
        let day = i64::from(day) - 1;
        let rel = sod - self.secs;
        // Within 182 days of now in now's year: the candidates in the
        // years before and after are at least 365 - 182 days away, so
        // farther (the common case: messages are recent).
        const HALF: i64 = 182 * 86_400;
        let now_year = self.month_starts[1][m] + day;
        if (now_year * 86_400 + rel).abs() < HALF {
            return (self.year, now_year);
        }
        self.closest_of_three(m, day, rel)
    }

    /// [`closest`](Self::closest) by comparing the three candidates, for
    /// month index `m` (0..12), day `day` (from 0) and `rel` = seconds of
    /// the day minus now.
    #[inline(always)]
    fn closest_of_three(&self, m: usize, day: i64, rel: i64) -> (i32, i64) {
        // Seconds from now to the candidate in each year (written out: as a
        // closure it was not inlined).
        let [s0, s1, s2] = [
            self.month_starts[0][m],
            self.month_starts[1][m],
            self.month_starts[2][m],
        ];
        let g0 = ((s0 + day) * 86_400 + rel).abs();
        let g1 = ((s1 + day) * 86_400 + rel).abs();
        let g2 = ((s2 + day) * 86_400 + rel).abs();
        // Ties go to the earlier year.
        let k = if g1 < g0 {
            if g2 < g1 { 2 } else { 1 }
        } else if g2 < g0 {
            2
        } else {
            0
        };
        (self.year - 1 + k as i32, self.month_starts[k][m] + day)
    }
}

/// What the parser fixes once: "now" for year inference (split once for a
/// fixed clock, per message for the system clock) and the offset of a
/// fixed time zone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    fixed: Option<NowYear>,
    /// Seconds east of UTC when the configured zone is a fixed offset.
    fixed_offset: Option<i64>,
}

impl Now {
    pub(crate) fn new(opts: &ParseOptions) -> Self {
        Now {
            fixed: match opts.clock {
                Clock::Fixed(t) => Some(NowYear::new(t)),
                Clock::System => None,
            },
            fixed_offset: opts
                .time_zone
                .to_fixed_offset()
                .ok()
                .map(|o| i64::from(o.seconds())),
        }
    }

    #[inline(always)]
    fn closest(&self, clock: &Clock, month: u32, day: u32, sod: i64) -> (i32, i64) {
        match &self.fixed {
            Some(now) => now.closest(month, day, sod),
            None => NowYear::new(clock.now()).closest(month, day, sod),
        }
    }

    /// [`local_to_utc`] with the fixed offset worked out in advance.
    #[inline(always)]
    fn local_to_utc(&self, tz: &TimeZone, local_secs: i64, nanos: u32) -> Option<Timestamp> {
        match self.fixed_offset {
            Some(off) => (local_secs - off)
                .checked_mul(NANOS_PER_SEC)?
                .checked_add(i64::from(nanos))
                .map(Timestamp::from_nanos),
            None => local_to_utc(tz, local_secs, nanos),
        }
    }
}

/// Seconds of a civil time in `tz` → UTC instant. Fixed offsets (UTC
/// included) are computed directly; named zones go through jiff's tzdb,
/// resolving gaps and folds the way RFC 5545 "compatible" does.
pub(crate) fn local_to_utc(tz: &TimeZone, local_secs: i64, nanos: u32) -> Option<Timestamp> {
    let utc_secs = match tz.to_fixed_offset() {
        Ok(off) => local_secs - i64::from(off.seconds()),
        Err(_) => {
            let days = local_secs.div_euclid(86_400);
            let sod = local_secs.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            let dt = jiff::civil::DateTime::new(
                i16::try_from(y).ok()?,
                m as i8,
                d as i8,
                (sod / 3600) as i8,
                (sod / 60 % 60) as i8,
                (sod % 60) as i8,
                0,
            )
            .ok()?;
            tz.to_ambiguous_timestamp(dt).compatible().ok()?.as_second()
        }
    };
    utc_secs
        .checked_mul(NANOS_PER_SEC)?
        .checked_add(i64::from(nanos))
        .map(Timestamp::from_nanos)
}

#[cfg(test)]
mod tests;

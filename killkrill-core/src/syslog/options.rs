//! Parser options: strict or lenient, which format, and what to assume for
//! what RFC 3164 senders leave out (the year and the time zone).
//!
//! Why a clock in the options: an RFC 3164 timestamp has no year, so the
//! parser picks the year that puts the message closest to "now". Receivers
//! want the system clock; tests and replays of old files want a fixed
//! instant, so "now" is injectable.

use jiff::tz::TimeZone;

use crate::event::Timestamp;

/// What to do with input that does not follow the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Never fail: whatever cannot be parsed is kept raw (the whole frame as
    /// the message, plus the header fields parsed before the failure) with
    /// [`SyslogMessage::parse_error`](super::SyslogMessage::parse_error) set.
    #[default]
    Lenient,
    /// Reject with a [`ParseError`](super::ParseError) naming the column and
    /// what was expected.
    Strict,
}

/// Which syslog format to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `<PRI>1 ` means RFC 5424, anything else RFC 3164 (in lenient mode a
    /// PRI-less `1 <timestamp-or-->` is RFC 5424 too).
    #[default]
    Auto,
    /// Only RFC 5424.
    Rfc5424,
    /// Only RFC 3164 / BSD.
    Rfc3164,
}

/// Where "now" comes from when a year must be inferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// The system clock, read only when a message needs it.
    #[default]
    System,
    /// A fixed instant (tests, replays of old files).
    Fixed(Timestamp),
}

impl Clock {
    /// The current instant according to this clock.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Fixed(t) => *t,
        }
    }
}

/// An unknown time zone name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown time zone {name:?}: expected an IANA name such as Europe/Paris, UTC, a fixed offset such as +05:00, or \"local\" ({reason})"
)]
pub struct UnknownTimeZone {
    /// The name that was given.
    pub name: String,
    /// Why it was not accepted.
    pub reason: String,
}

/// Options for [`SyslogParser`](super::SyslogParser).
///
/// ```
/// use killkrill_core::syslog::{Mode, ParseOptions};
/// let opts = ParseOptions::default()
///     .with_mode(Mode::Strict)
///     .with_time_zone_name("Europe/Paris")
///     .expect("known zone");
/// assert_eq!(opts.mode, Mode::Strict);
/// ```
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Strict or lenient (the default).
    pub mode: Mode,
    /// Which format to expect (auto-detect by default).
    pub format: Format,
    /// The zone of RFC 3164 timestamps that carry no offset (UTC by default).
    pub time_zone: TimeZone,
    /// "Now", for RFC 3164 year inference.
    pub clock: Clock,
    /// go-syslog's "compliant MSG" rule: an RFC 5424 MSG that starts with a
    /// BOM must be valid UTF-8 after it. Off by default (MSG-ANY allows any
    /// bytes).
    pub compliant_msg: bool,
    /// Read `[id k="v" ...]` right after an RFC 3164 tag as structured data,
    /// as rsyslog writes it in its own messages. Only elements that each have
    /// at least one parameter and are followed by a space or the end count,
    /// so `[INFO] text` and `[WAN_LOCAL]IN=eth0` stay message text. On by default.
    pub rfc3164_structured_data: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            mode: Mode::Lenient,
            format: Format::Auto,
            time_zone: TimeZone::UTC,
            clock: Clock::System,
            compliant_msg: false,
            rfc3164_structured_data: true,
        }
    }
}

impl ParseOptions {
    /// Sets the mode.
    #[must_use]
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the expected format.
    #[must_use]
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Sets the zone for RFC 3164 timestamps without an offset.
    #[must_use]
    pub fn with_time_zone(mut self, tz: TimeZone) -> Self {
        self.time_zone = tz;
        self
    }

    /// Sets the zone by name: an IANA name (`Europe/Paris`), `UTC`, a fixed
    /// offset (`+05:00`, `-0330`) or `local` (the system's zone).
    ///
    /// # Errors
    /// [`UnknownTimeZone`] when the name is none of those.
    pub fn with_time_zone_name(self, name: &str) -> Result<Self, UnknownTimeZone> {
        Ok(self.with_time_zone(time_zone_by_name(name)?))
    }

    /// Sets the clock used for year inference.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Turns go-syslog's "compliant MSG" rule on or off.
    #[must_use]
    pub fn with_compliant_msg(mut self, on: bool) -> Self {
        self.compliant_msg = on;
        self
    }
}

/// Resolves a zone name as [`ParseOptions::with_time_zone_name`] does.
///
/// # Errors
/// [`UnknownTimeZone`] when the name is not a zone, offset or `local`.
pub fn time_zone_by_name(name: &str) -> Result<TimeZone, UnknownTimeZone> {
    let unknown = |reason: String| UnknownTimeZone {
        name: name.to_owned(),
        reason,
    };
    let n = name.trim();
    if n.eq_ignore_ascii_case("utc") || n.eq_ignore_ascii_case("z") {
        return Ok(TimeZone::UTC);
    }
    if n.eq_ignore_ascii_case("local") {
        return TimeZone::try_system().map_err(|e| unknown(e.to_string()));
    }
    if let Some(secs) = parse_fixed_offset(n.as_bytes()) {
        let off = jiff::tz::Offset::from_seconds(secs).map_err(|e| unknown(e.to_string()))?;
        return Ok(TimeZone::fixed(off));
    }
    TimeZone::get(n).map_err(|e| unknown(e.to_string()))
}

/// `+HH:MM`, `-HHMM` or `+HH` as seconds east of UTC.
fn parse_fixed_offset(b: &[u8]) -> Option<i32> {
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: Vec<u8> = b[1..].iter().copied().filter(|c| *c != b':').collect();
    if !(digits.len() == 2 || digits.len() == 4) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |s: &[u8]| s.iter().fold(0i32, |a, c| a * 10 + i32::from(c - b'0'));
    let h = num(&digits[..2]);
    let m = if digits.len() == 4 {
        num(&digits[2..])
    } else {
        0
    };
    if h > 25 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names() {
        let cases: &[(&str, Option<i32>)] = &[
            ("UTC", Some(0)),
            ("+05:00", Some(18_000)),
            ("-0330", Some(-12_600)),
            ("+02", Some(7_200)),
        ];
        for (name, secs) in cases {
            let tz = time_zone_by_name(name).unwrap();
            let off = tz.to_fixed_offset().unwrap();
            assert_eq!(Some(off.seconds()), *secs, "{name}");
        }
        assert!(time_zone_by_name("Europe/Paris").is_ok());
        let err = time_zone_by_name("Mars/Olympus").unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"), "{err}");
    }
}

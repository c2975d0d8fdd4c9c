//! Syslog severities (RFC 5424 §6.2.1), the scale every log record is put on.
//!
//! Other sources (JSON loggers, Loki labels, OpenTelemetry) use other words for
//! the same levels; [`Severity::from_name`] maps the usual ones so a `warn`
//! from a Python logger and a syslog `warning` filter alike.

use std::fmt;
use std::str::FromStr;

/// Severity, most severe first; the numeric code is the syslog one (0..=7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Severity {
    /// 0: system is unusable.
    Emergency = 0,
    /// 1: action must be taken immediately.
    Alert = 1,
    /// 2: critical conditions.
    Critical = 2,
    /// 3: error conditions.
    Error = 3,
    /// 4: warning conditions.
    Warning = 4,
    /// 5: normal but significant condition.
    Notice = 5,
    /// 6: informational messages.
    Informational = 6,
    /// 7: debug-level messages.
    Debug = 7,
}

/// The text did not name a severity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown severity {0:?}: expected one of emerg, alert, crit, err, warning, notice, info, debug (or an alias such as fatal, error, warn, trace, or 0-7)"
)]
pub struct UnknownSeverity(pub String);

impl Severity {
    /// All severities, most severe first.
    pub const ALL: [Severity; 8] = [
        Severity::Emergency,
        Severity::Alert,
        Severity::Critical,
        Severity::Error,
        Severity::Warning,
        Severity::Notice,
        Severity::Informational,
        Severity::Debug,
    ];

    /// The syslog code, 0..=7.
    #[inline]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The severity for a syslog code; `None` above 7.
    #[inline]
    pub const fn from_code(code: u8) -> Option<Self> {
        if code < 8 {
            Some(Self::ALL[code as usize])
        } else {
            None
        }
    }

    /// The canonical name, as syslog's keywords spell it: `emerg`, `alert`,
    /// `crit`, `err`, `warning`, `notice`, `info`, `debug`.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Emergency => "emerg",
            Severity::Alert => "alert",
            Severity::Critical => "crit",
            Severity::Error => "err",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
            Severity::Informational => "info",
            Severity::Debug => "debug",
        }
    }

    /// Parses a name or alias, case-insensitively: the syslog keywords and
    /// their long forms, the words application loggers use (`fatal` and
    /// `critical` → crit, `error` → err, `warn` → warning, `information`,
    /// `trace` and `verbose` → info/debug), `panic` → emerg, and the digits 0..=7.
    pub fn from_name(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.len() > 13 {
            return None;
        }
        let mut buf = [0u8; 13];
        for (d, s) in buf.iter_mut().zip(t.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        Some(match &buf[..t.len()] {
            b"emerg" | b"emergency" | b"panic" | b"0" => Severity::Emergency,
            b"alert" | b"1" => Severity::Alert,
            b"crit" | b"critical" | b"fatal" | b"2" => Severity::Critical,
            b"err" | b"error" | b"3" => Severity::Error,
            b"warning" | b"warn" | b"4" => Severity::Warning,
            b"notice" | b"5" => Severity::Notice,
            b"info" | b"informational" | b"information" | b"6" => Severity::Informational,
            b"debug" | b"trace" | b"verbose" | b"7" => Severity::Debug,
            _ => return None,
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::from_name(s).ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

impl serde::Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        let cases: &[(&str, Severity)] = &[
            ("emerg", Severity::Emergency),
            ("PANIC", Severity::Emergency),
            ("alert", Severity::Alert),
            ("crit", Severity::Critical),
            ("Fatal", Severity::Critical),
            ("critical", Severity::Critical),
            ("err", Severity::Error),
            ("ERROR", Severity::Error),
            ("warn", Severity::Warning),
            ("warning", Severity::Warning),
            ("notice", Severity::Notice),
            ("info", Severity::Informational),
            (" information ", Severity::Informational),
            ("debug", Severity::Debug),
            ("trace", Severity::Debug),
            ("3", Severity::Error),
        ];
        for (text, sev) in cases {
            assert_eq!(Severity::from_name(text), Some(*sev), "{text}");
        }
        for bad in ["", "8", "loud", "warningwarningwarning"] {
            assert_eq!(Severity::from_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn codes_and_canonical_names_round_trip() {
        for code in 0..8u8 {
            let s = Severity::from_code(code).unwrap();
            assert_eq!(s.code(), code);
            assert_eq!(Severity::from_name(s.name()), Some(s));
        }
        assert_eq!(Severity::from_code(8), None);
        assert!(
            Severity::Error < Severity::Warning,
            "more severe sorts first"
        );
    }
}

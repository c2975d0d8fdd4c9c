//! Syslog facilities (RFC 5424 §6.2.1) with the names rsyslog and syslog-ng use.

use std::fmt;
use std::str::FromStr;

/// A syslog facility; the numeric code is the syslog one (0..=23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum Facility {
    Kern = 0,
    User = 1,
    Mail = 2,
    Daemon = 3,
    Auth = 4,
    Syslog = 5,
    Lpr = 6,
    News = 7,
    Uucp = 8,
    Cron = 9,
    Authpriv = 10,
    Ftp = 11,
    Ntp = 12,
    Security = 13,
    Console = 14,
    SolarisCron = 15,
    Local0 = 16,
    Local1 = 17,
    Local2 = 18,
    Local3 = 19,
    Local4 = 20,
    Local5 = 21,
    Local6 = 22,
    Local7 = 23,
}

/// The text did not name a facility.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown facility {0:?}: expected a name such as kern, user, daemon, auth, local0..local7, or 0-23"
)]
pub struct UnknownFacility(pub String);

const NAMES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

impl Facility {
    /// All facilities in code order.
    pub const ALL: [Facility; 24] = [
        Facility::Kern,
        Facility::User,
        Facility::Mail,
        Facility::Daemon,
        Facility::Auth,
        Facility::Syslog,
        Facility::Lpr,
        Facility::News,
        Facility::Uucp,
        Facility::Cron,
        Facility::Authpriv,
        Facility::Ftp,
        Facility::Ntp,
        Facility::Security,
        Facility::Console,
        Facility::SolarisCron,
        Facility::Local0,
        Facility::Local1,
        Facility::Local2,
        Facility::Local3,
        Facility::Local4,
        Facility::Local5,
        Facility::Local6,
        Facility::Local7,
    ];

    /// The syslog code, 0..=23.
    #[inline]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The facility for a code; `None` above 23.
    #[inline]
    pub const fn from_code(code: u8) -> Option<Self> {
        if code < 24 {
            Some(Self::ALL[code as usize])
        } else {
            None
        }
    }

    /// The canonical name (`kern`, `user`, ..., `local7`).
    pub const fn name(self) -> &'static str {
        NAMES[self as usize]
    }

    /// Parses a name, case-insensitively, with the aliases `authpriv`/`auth-priv`,
    /// `audit` → security, `clock`/`cron2` → solaris-cron, and the codes as digits.
    pub fn from_name(text: &str) -> Option<Self> {
        let t = text.trim().to_ascii_lowercase();
        if let Some(i) = NAMES.iter().position(|n| *n == t) {
            return Self::from_code(i as u8);
        }
        Some(match t.as_str() {
            "auth-priv" => Facility::Authpriv,
            "audit" => Facility::Security,
            "clock" | "cron2" => Facility::SolarisCron,
            "alert" => Facility::Console,
            _ => return t.parse::<u8>().ok().and_then(Self::from_code),
        })
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Facility {
    type Err = UnknownFacility;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Facility::from_name(s).ok_or_else(|| UnknownFacility(s.to_owned()))
    }
}

impl serde::Serialize for Facility {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Facility {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name() {
        for code in 0..24u8 {
            let f = Facility::from_code(code).unwrap();
            assert_eq!(f.code(), code);
            assert_eq!(Facility::from_name(f.name()), Some(f));
            assert_eq!(Facility::from_name(&code.to_string()), Some(f));
        }
        assert_eq!(Facility::from_code(24), None);
    }

    #[test]
    fn aliases() {
        assert_eq!(Facility::from_name("LOCAL7"), Some(Facility::Local7));
        assert_eq!(Facility::from_name("audit"), Some(Facility::Security));
        assert_eq!(Facility::from_name("auth-priv"), Some(Facility::Authpriv));
        assert_eq!(Facility::from_name("cron2"), Some(Facility::SolarisCron));
        assert_eq!(Facility::from_name("local8"), None);
        assert_eq!(Facility::from_name("24"), None);
    }
}

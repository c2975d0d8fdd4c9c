//! Severity from a JSON log's level field: names, syslog codes, and the
//! integer scales of common loggers.
//!
//! Names (`info`, `WARN`, `fatal`, ...) go through [`Severity::from_name`],
//! the one alias table every source shares. Integers are ambiguous across
//! loggers, so the scale is chosen by the key and the range:
//!
//! | key                    | value       | scale                              |
//! |------------------------|-------------|------------------------------------|
//! | `level`, `severity`    | 0..=7       | syslog code (0 emerg .. 7 debug)   |
//! | `level`, `severity`    | 10..=69     | pino / bunyan (10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal; custom levels in between round down) |
//! | `severity_number`      | 1..=24      | OpenTelemetry SeverityNumber (1-4 trace, 5-8 debug, 9-12 info, 13-16 warn, 17-20 error, 21-24 fatal) |
//!
//! trace maps to debug and fatal to crit, as in [`Severity::from_name`].
//! Anything else (8, 9, 70, negative numbers, fractions, unknown names)
//! leaves the severity unset and the field in the attributes, where nothing
//! is lost and a query can still find it.

use crate::event::Severity;

/// The severity for an integer `level` or `severity` value: a syslog code
/// (0..=7) or a pino/bunyan level (10..=69); `None` otherwise.
pub const fn severity_from_level_number(n: i64) -> Option<Severity> {
    Some(match n {
        0..=7 => return Severity::from_code(n as u8),
        10..=29 => Severity::Debug,
        30..=39 => Severity::Informational,
        40..=49 => Severity::Warning,
        50..=59 => Severity::Error,
        60..=69 => Severity::Critical,
        _ => return None,
    })
}

/// The severity for an OpenTelemetry `SeverityNumber` (1..=24); `None`
/// otherwise.
pub const fn severity_from_otel_number(n: i64) -> Option<Severity> {
    Some(match n {
        1..=8 => Severity::Debug,
        9..=12 => Severity::Informational,
        13..=16 => Severity::Warning,
        17..=20 => Severity::Error,
        21..=24 => Severity::Critical,
        _ => return None,
    })
}

/// The severity for a level given as text: a name or alias, else an integer
/// in the `level` scales above.
pub fn severity_from_level_text(text: &str) -> Option<Severity> {
    Severity::from_name(text).or_else(|| {
        text.trim()
            .parse::<i64>()
            .ok()
            .and_then(severity_from_level_number)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_numbers() {
        use Severity::*;
        let cases: &[(i64, Option<Severity>)] = &[
            (0, Some(Emergency)),
            (3, Some(Error)),
            (7, Some(Debug)),
            (8, None),
            (9, None),
            (10, Some(Debug)),
            (20, Some(Debug)),
            (30, Some(Informational)),
            (35, Some(Informational)),
            (40, Some(Warning)),
            (50, Some(Error)),
            (60, Some(Critical)),
            (69, Some(Critical)),
            (70, None),
            (-1, None),
        ];
        for (n, want) in cases {
            assert_eq!(severity_from_level_number(*n), *want, "{n}");
        }
    }

    #[test]
    fn otel_numbers() {
        use Severity::*;
        let cases: &[(i64, Option<Severity>)] = &[
            (0, None),
            (1, Some(Debug)),
            (5, Some(Debug)),
            (8, Some(Debug)),
            (9, Some(Informational)),
            (12, Some(Informational)),
            (13, Some(Warning)),
            (17, Some(Error)),
            (21, Some(Critical)),
            (24, Some(Critical)),
            (25, None),
        ];
        for (n, want) in cases {
            assert_eq!(severity_from_otel_number(*n), *want, "{n}");
        }
    }

    #[test]
    fn level_text() {
        use Severity::*;
        let cases: &[(&str, Option<Severity>)] = &[
            ("info", Some(Informational)),
            ("WARN", Some(Warning)),
            ("fatal", Some(Critical)),
            ("3", Some(Error)),
            ("30", Some(Informational)),
            ("50", Some(Error)),
            ("loud", None),
            ("8", None),
            ("", None),
        ];
        for (t, want) in cases {
            assert_eq!(severity_from_level_text(t), *want, "{t}");
        }
    }
}

//! Request parameters of the Prometheus HTTP API: times as RFC 3339 or
//! float Unix seconds, durations as Prometheus durations (`1h30m`, `15s`,
//! `500ms`) or float seconds, and repeated keys such as `match[]`.

use crate::error::QueryError;

/// Form parameters from the query string and (for POST) the body, in order.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text and appends it.
    pub fn extend_from_form(&mut self, form: &[u8]) {
        self.0
            .extend(form_urlencoded::parse(form).map(|(k, v)| (k.into_owned(), v.into_owned())));
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn invalid(name: &str, msg: impl std::fmt::Display) -> QueryError {
    QueryError::BadData(format!("invalid parameter \"{name}\": {msg}"))
}

/// Parses a timestamp (RFC 3339 or float seconds) into milliseconds.
///
/// # Errors
/// `BadData` naming the parameter.
pub fn parse_time(name: &str, s: &str) -> Result<i64, QueryError> {
    // What Prometheus's clients send for "no bound" (Go's min/max times).
    if s == "-292273086-05-16T16:47:06Z" {
        return Ok(i64::MIN / 1_000_000);
    }
    if s == "292277025-08-18T07:12:54.999999999Z" {
        return Ok(i64::MAX / 1_000_000);
    }
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return Err(invalid(
                name,
                format!("cannot parse {s:?} to a valid timestamp"),
            ));
        }
        // Milliseconds, saturating at the ends of the i64 range.
        return Ok((secs * 1000.0).round() as i64);
    }
    match s.parse::<jiff::Timestamp>() {
        Ok(t) => Ok(t.as_millisecond()),
        Err(_) => Err(invalid(
            name,
            format!("cannot parse {s:?} to a valid timestamp"),
        )),
    }
}

/// Parses a duration (Prometheus syntax or float seconds) into milliseconds.
///
/// # Errors
/// `BadData` naming the parameter.
pub fn parse_duration(name: &str, s: &str) -> Result<i64, QueryError> {
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs.abs() > 9.2e15 {
            return Err(invalid(
                name,
                format!("cannot parse {s:?} to a valid duration"),
            ));
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    prom_duration(s).ok_or_else(|| invalid(name, format!("cannot parse {s:?} to a valid duration")))
}

/// `1y2w3d4h5m6s7ms`: units in decreasing order, each at most once.
fn prom_duration(s: &str) -> Option<i64> {
    const UNITS: &[(&str, i64)] = &[
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total: i64 = 0;
    let mut last_unit = 0usize;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let idx = UNITS.iter().position(|(u, _)| *u == unit)?;
        if idx < last_unit || (idx == last_unit && total != 0) {
            return None;
        }
        last_unit = idx;
        total = total.checked_add(n.checked_mul(UNITS[idx].1)?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            parse_time("t", "1435781451.781").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(parse_time("t", "1435781451").unwrap(), 1_435_781_451_000);
        assert_eq!(
            parse_time("t", "2015-07-01T20:10:51.781Z").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(
            parse_time("t", "2015-07-01T22:10:51+02:00").unwrap(),
            1_435_781_451_000
        );
        // Go's min/max times, as Prometheus clients send them.
        assert!(parse_time("start", "-9223309901257974").unwrap() < -9_223_000_000_000_000_000);
        assert!(parse_time("start", "-292273086-05-16T16:47:06Z").unwrap() < -9_000_000_000_000);
        let e = parse_time("start", "yesterday").unwrap_err();
        assert!(e.to_string().contains("invalid parameter \"start\""), "{e}");
    }

    #[test]
    fn durations() {
        let cases = [
            ("15s", Some(15_000)),
            ("1h30m", Some(5_400_000)),
            ("500ms", Some(500)),
            ("1d", Some(86_400_000)),
            ("2w", Some(1_209_600_000)),
            ("1y", Some(31_536_000_000)),
            ("0.5", Some(500)),
            ("30", Some(30_000)),
            ("1m1h", None),
            ("abc", None),
            ("", None),
            ("5x", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration("step", s).ok(), want, "{s}");
        }
    }

    #[test]
    fn repeated_keys() {
        let mut p = Params::default();
        p.extend_from_form(b"match%5B%5D=up&match[]=down&x=1");
        assert_eq!(p.all("match[]"), vec!["up", "down"]);
        assert_eq!(p.get("x"), Some("1"));
        assert_eq!(p.get("y"), None);
    }
}

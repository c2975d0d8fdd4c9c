//! Query-string parsing shared by the read routes: times, durations, log
//! filters, and the 400/422 errors that name the parameter or the limit.
//!
//! Times (`start`, `end`) accept RFC 3339 (`2026-11-25T10:00:00Z`), epoch
//! seconds (`1764064800`, fractions allowed), epoch milliseconds (13
//! digits), microseconds (16) or nanoseconds (19), `now`, and a duration
//! relative to now (`-15m`, `now-1h30m`; `+5m` is in the future).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use killkrill_core::event::{NANOS_PER_SEC, Severity, Timestamp};
use killkrill_core::logquery::LogFilter;

use super::ApiError;

/// Longest value of one query parameter, bytes.
pub const MAX_PARAM_BYTES: usize = 4096;
/// Most query parameters in one request.
pub const MAX_PARAMS: usize = 64;
/// Most `field.<name>` (or `label.<name>`) conditions.
pub const MAX_FIELD_FILTERS: usize = 16;

/// The query string as `name -> values` (in order).
#[derive(Debug, Default)]
pub struct Params {
    map: BTreeMap<String, Vec<String>>,
}

/// 400 naming `param`.
pub fn bad_param(endpoint: &'static str, param: &str, why: impl Into<String>) -> ApiError {
    ApiError {
        param: Some(param.to_owned()),
        ..ApiError::bad_request(format!("invalid parameter \"{param}\""), why)
    }
    .counted(endpoint)
}

/// 422 naming the configured limit `limit` (e.g. `query.max_range_secs`).
pub fn limit_exceeded(endpoint: &'static str, limit: &str, why: impl Into<String>) -> ApiError {
    metrics::counter!("killkrill_query_limit_exceeded_total", "limit" => limit.to_owned())
        .increment(1);
    ApiError {
        limit: Some(limit.to_owned()),
        ..ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("query limit exceeded: {limit}"),
            Some(why.into()),
        )
    }
    .counted(endpoint)
}

impl Params {
    /// Parses a raw query string; refuses oversized input and any
    /// parameter not accepted by `known` (a name, or a `prefix.` ending in a dot).
    ///
    /// # Errors
    /// 400 naming the offending parameter.
    pub fn parse(
        endpoint: &'static str,
        raw: Option<&str>,
        known: &[&str],
    ) -> Result<Self, ApiError> {
        let mut p = Params::default();
        let mut n = 0usize;
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            n += 1;
            if n > MAX_PARAMS {
                return Err(bad_param(
                    endpoint,
                    &k,
                    format!("more than {MAX_PARAMS} parameters"),
                ));
            }
            if v.len() > MAX_PARAM_BYTES || k.len() > 256 {
                return Err(bad_param(
                    endpoint,
                    &k,
                    format!("longer than {MAX_PARAM_BYTES} bytes"),
                ));
            }
            // PostgreSQL refuses NUL in text: bad input, not a store error.
            if v.contains('\0') || k.contains('\0') {
                return Err(bad_param(endpoint, &k, "contains a NUL byte"));
            }
            let ok = known.iter().any(|name| {
                if let Some(prefix) = name.strip_suffix('*') {
                    k.starts_with(prefix) && k.len() > prefix.len()
                } else {
                    *name == k
                }
            });
            if !ok {
                return Err(bad_param(
                    endpoint,
                    &k,
                    format!("unknown parameter; accepted: {}", known.join(", ")),
                ));
            }
            p.map
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
        Ok(p)
    }

    /// The single value of `name`.
    ///
    /// # Errors
    /// 400 when given more than once.
    pub fn one(&self, endpoint: &'static str, name: &str) -> Result<Option<&str>, ApiError> {
        match self.map.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) => Ok(Some(v.as_str())),
            Some(_) => Err(bad_param(endpoint, name, "given more than once")),
        }
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> &[String] {
        self.map.get(name).map_or(&[], Vec::as_slice)
    }

    /// `(suffix, value)` of every parameter named `prefix<suffix>`.
    pub fn prefixed<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.map
            .iter()
            .filter_map(move |(k, vs)| k.strip_prefix(prefix).map(|s| (s, vs)))
            .flat_map(|(s, vs)| vs.iter().map(move |v| (s, v.as_str())))
    }

    /// A positive integer parameter.
    ///
    /// # Errors
    /// 400 naming it.
    pub fn usize(&self, endpoint: &'static str, name: &str) -> Result<Option<usize>, ApiError> {
        match self.one(endpoint, name)? {
            None => Ok(None),
            Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
                bad_param(
                    endpoint,
                    name,
                    format!("{v:?} is not a non-negative integer"),
                )
            }),
        }
    }

    /// A time parameter (see the module docs).
    ///
    /// # Errors
    /// 400 naming it.
    pub fn time(
        &self,
        endpoint: &'static str,
        name: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, ApiError> {
        match self.one(endpoint, name)? {
            None => Ok(None),
            Some(v) => parse_time(v, now)
                .map(Some)
                .map_err(|why| bad_param(endpoint, name, why)),
        }
    }

    /// A duration parameter (`30s`, `5m`, `1h30m`, or seconds `60`).
    ///
    /// # Errors
    /// 400 naming it.
    pub fn duration(
        &self,
        endpoint: &'static str,
        name: &str,
    ) -> Result<Option<Duration>, ApiError> {
        match self.one(endpoint, name)? {
            None => Ok(None),
            Some(v) => parse_duration(v)
                .map(Some)
                .map_err(|why| bad_param(endpoint, name, why)),
        }
    }
}

/// A duration: Go/Prometheus style units (`1h30m`, `500ms`) or seconds.
///
/// # Errors
/// Why it is not one.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if (0.0..1e11).contains(&secs) {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("{v:?} is not a duration"));
    }
    humantime::parse_duration(v)
        .map_err(|e| format!("{v:?} is not a duration ({e}); use e.g. 30s, 5m, 1h30m"))
}

/// Nanoseconds of `d`, saturating.
pub fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A time (see the module docs).
///
/// # Errors
/// Why it is not one.
pub fn parse_time(v: &str, now: Timestamp) -> Result<Timestamp, String> {
    let t = v.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    let rel = t
        .strip_prefix("now")
        .filter(|r| r.starts_with('-') || r.starts_with('+'))
        .or_else(|| t.strip_prefix('-').map(|_| t))
        .or_else(|| (t.starts_with('+')).then_some(t));
    if let Some(r) = rel
        && !r[1..].chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        let d = parse_duration(&r[1..]).map_err(|e| format!("relative time: {e}"))?;
        let n = nanos(d);
        return Ok(if r.starts_with('-') {
            now.saturating_add_nanos(-n)
        } else {
            now.saturating_add_nanos(n)
        });
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'-') && !t.is_empty() {
        let n: i64 = t
            .parse()
            .map_err(|_| format!("{t:?} is not an epoch time"))?;
        let digits = t.trim_start_matches('-').len();
        let ns = match digits {
            0..=11 => n.checked_mul(NANOS_PER_SEC),
            12..=14 => n.checked_mul(1_000_000),
            15..=17 => n.checked_mul(1_000),
            _ => Some(n),
        };
        return ns
            .map(Timestamp::from_nanos)
            .ok_or_else(|| format!("{t:?} is out of range"));
    }
    if let Ok(f) = t.parse::<f64>() {
        if f.is_finite() && f.abs() < 1e11 {
            return Ok(Timestamp::from_nanos((f * 1e9).round() as i64));
        }
        return Err(format!("{t:?} is out of range"));
    }
    Timestamp::parse_rfc3339(t).map_err(|_| {
        format!(
            "{t:?} is not a time: use RFC 3339 (2026-11-25T10:00:00Z), epoch seconds or \
                 milliseconds, now, or a relative time such as -15m"
        )
    })
}

/// The log filter parameters shared by `/logs`, `/logs/volume` and
/// `/logs/tail`.
pub const FILTER_PARAMS: &[&str] = &["query", "severity", "host", "app", "source", "field.*"];

/// Reads `query`, `severity`, `host`, `app`, `source` and `field.<name>`.
///
/// # Errors
/// 400 naming the parameter.
pub fn log_filter(endpoint: &'static str, p: &Params) -> Result<LogFilter, ApiError> {
    let min_severity = match p.one(endpoint, "severity")? {
        None => None,
        Some(s) => Some(Severity::from_name(s).ok_or_else(|| {
            bad_param(
                endpoint,
                "severity",
                format!("{s:?} is not a severity (emerg, alert, crit, err, warning, notice, info, debug or 0-7)"),
            )
        })?),
    };
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        Ok(p.one(endpoint, name)?.map(str::to_owned))
    };
    let mut fields = Vec::new();
    for (name, value) in p.prefixed("field.") {
        fields.push((name.to_owned(), value.to_owned()));
    }
    if fields.len() > MAX_FIELD_FILTERS {
        return Err(bad_param(
            endpoint,
            "field.*",
            format!("more than {MAX_FIELD_FILTERS} field conditions"),
        ));
    }
    let query = text("query")?;
    if let Some(q) = &query {
        let n = killkrill_core::logblock::query_tokens(q).len();
        if n > killkrill_core::logquery::filter::MAX_QUERY_TOKENS {
            return Err(bad_param(
                endpoint,
                "query",
                format!(
                    "{n} distinct tokens, at most {}",
                    killkrill_core::logquery::filter::MAX_QUERY_TOKENS
                ),
            ));
        }
    }
    Ok(LogFilter {
        min_severity,
        host: text("host")?,
        app: text("app")?,
        source: text("source")?,
        fields,
        text: query,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times() {
        let now = Timestamp::from_nanos(1_764_064_800 * NANOS_PER_SEC);
        let s = |v: &str| parse_time(v, now).map(|t| t.as_nanos() / NANOS_PER_SEC);
        assert_eq!(s("now"), Ok(1_764_064_800));
        assert_eq!(s("-15m"), Ok(1_764_064_800 - 900));
        assert_eq!(s("now-1h30m"), Ok(1_764_064_800 - 5400));
        assert_eq!(s("now+5m"), Ok(1_764_064_800 + 300));
        assert_eq!(s("1764064800"), Ok(1_764_064_800));
        assert_eq!(s("1764064800000"), Ok(1_764_064_800));
        assert_eq!(s("1764064800000000000"), Ok(1_764_064_800));
        assert_eq!(s("2025-11-25T10:00:00Z"), Ok(1_764_064_800));
        assert_eq!(
            parse_time("1764064800.5", now).unwrap().as_nanos(),
            1_764_064_800_500_000_000
        );
        for bad in ["yesterday", "-15q", "2026-13-01T00:00:00Z", ""] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("-1m").is_err());
    }
}

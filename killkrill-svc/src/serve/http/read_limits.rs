//! The `[query]` limits of the native read routes, one implementation for
//! REST (`GET /api/v1/logs`, `/logs/volume`, `/metrics`) and gRPC
//! (`QueryLogs`, `LogVolume`, `QueryMetrics`): the time range and its
//! `query.max_range_secs`, the page size (`query.default_limit`,
//! `query.max_limit`), the volume step and `query.max_buckets`,
//! `query.max_series`, `query.max_points` and `query.timeout_ms`.
//!
//! Each check answers a [`Refusal`], which the transport turns into its own
//! error: HTTP 400 or 422 ([`Refusal::http`]), gRPC `INVALID_ARGUMENT`,
//! `RESOURCE_EXHAUSTED` or `DEADLINE_EXCEEDED` ([`Refusal::grpc`]). A limit
//! refusal is counted in `killkrill_query_limit_exceeded_total{limit}` on
//! either transport.

use std::time::Duration;

use killkrill_core::event::Timestamp;
use killkrill_core::storage::TimeRange;
use tonic::Status;

use super::ApiError;
use super::read_params::{bad_param, limit_exceeded};
use crate::config::QueryConfig;

/// Why a read was refused before (or while) it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A malformed or out-of-domain parameter, named as the transport
    /// names it (`end`, `limit`, `step_ns`, ...).
    Bad { param: &'static str, why: String },
    /// A configured limit (`query.max_range_secs`, ...) was exceeded.
    Limit { limit: &'static str, why: String },
}

impl Refusal {
    fn bad(param: &'static str, why: impl Into<String>) -> Self {
        Refusal::Bad {
            param,
            why: why.into(),
        }
    }

    fn limit(limit: &'static str, why: impl Into<String>) -> Self {
        Refusal::Limit {
            limit,
            why: why.into(),
        }
    }

    /// The HTTP answer: 400 naming the parameter, 422 naming the limit
    /// (both counted for `endpoint`).
    pub fn http(self, endpoint: &'static str) -> ApiError {
        match self {
            Refusal::Bad { param, why } => bad_param(endpoint, param, why),
            Refusal::Limit { limit, why } => limit_exceeded(endpoint, limit, why),
        }
    }

    /// The gRPC status: `INVALID_ARGUMENT` naming the field;
    /// `DEADLINE_EXCEEDED` for `query.timeout_ms`; `RESOURCE_EXHAUSTED`
    /// naming any other limit.
    pub fn grpc(self) -> Status {
        match self {
            Refusal::Bad { param, why } => Status::invalid_argument(format!("{param}: {why}")),
            Refusal::Limit { limit, why } => {
                metrics::counter!("killkrill_query_limit_exceeded_total", "limit" => limit)
                    .increment(1);
                let m = format!("query limit exceeded: {limit}: {why}");
                if limit == "query.timeout_ms" {
                    Status::deadline_exceeded(m)
                } else {
                    Status::resource_exhausted(m)
                }
            }
        }
    }
}

/// `query.max_range_secs` in nanoseconds.
fn max_range_nanos(cfg: &QueryConfig) -> i64 {
    i64::try_from(cfg.max_range_secs)
        .unwrap_or(i64::MAX / 1_000_000_000)
        .saturating_mul(1_000_000_000)
}

/// `[start, end)`: `end` defaults to `now`, `start` to `end` minus
/// `default_width` (at most `query.max_range_secs`; `None`: that maximum).
/// `end_param` names the end in a refusal of a reversed range.
///
/// # Errors
/// [`Refusal::Bad`] when `start > end`; [`Refusal::Limit`] when the range is
/// longer than `query.max_range_secs`.
pub fn time_range(
    cfg: &QueryConfig,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    now: Timestamp,
    default_width: Option<Duration>,
    end_param: &'static str,
) -> Result<TimeRange, Refusal> {
    let max = max_range_nanos(cfg);
    let width = default_width.map_or(max, |d| {
        i64::try_from(d.as_nanos()).unwrap_or(i64::MAX).min(max)
    });
    let end = end.unwrap_or(now);
    let start = start.unwrap_or_else(|| end.saturating_add_nanos(-width));
    if start > end {
        return Err(Refusal::bad(end_param, "end is before start"));
    }
    let asked = i128::from(end.as_nanos()) - i128::from(start.as_nanos());
    if asked > i128::from(max) {
        return Err(Refusal::limit(
            "query.max_range_secs",
            format!(
                "the range is {}s long, the limit is {}s",
                asked / 1_000_000_000,
                cfg.max_range_secs
            ),
        ));
    }
    Ok(TimeRange::new(start, end))
}

/// The page size: `query.default_limit` when not asked for, else 1 to
/// `query.max_limit`.
///
/// # Errors
/// [`Refusal::Bad`] naming `param` outside that range.
pub fn page_size(
    cfg: &QueryConfig,
    asked: Option<usize>,
    param: &'static str,
) -> Result<usize, Refusal> {
    match asked {
        None => Ok(cfg.default_limit),
        Some(n) if n == 0 || n > cfg.max_limit => Err(Refusal::bad(
            param,
            format!("must be between 1 and {} (query.max_limit)", cfg.max_limit),
        )),
        Some(n) => Ok(n),
    }
}

/// The step of a log volume histogram over `range`: `asked` (nanoseconds,
/// positive), else about 100 buckets in whole seconds; at most
/// `query.max_buckets` buckets either way.
///
/// # Errors
/// [`Refusal::Bad`] naming `param` for a step of 0 or less;
/// [`Refusal::Limit`] for too many buckets.
pub fn volume_step(
    cfg: &QueryConfig,
    range: TimeRange,
    asked: Option<i64>,
    param: &'static str,
) -> Result<i64, Refusal> {
    let width = i128::from(range.end.as_nanos()) - i128::from(range.start.as_nanos());
    let step = match asked {
        Some(n) if n <= 0 => return Err(Refusal::bad(param, "must be positive")),
        Some(n) => n,
        None => {
            let per = (width / 100).max(1_000_000_000);
            let per = (per + 999_999_999) / 1_000_000_000 * 1_000_000_000;
            i64::try_from(per).unwrap_or(i64::MAX)
        }
    };
    let buckets = if width <= 0 {
        0
    } else {
        (width + i128::from(step) - 1) / i128::from(step)
    };
    buckets_within(cfg, buckets)?;
    Ok(step)
}

/// `buckets` (steps of a histogram or of a stepped series) against
/// `query.max_buckets`.
///
/// # Errors
/// [`Refusal::Limit`] beyond it.
pub fn buckets_within(cfg: &QueryConfig, buckets: i128) -> Result<(), Refusal> {
    let max = cfg.max_buckets.max(1);
    if buckets > max as i128 {
        return Err(Refusal::limit(
            "query.max_buckets",
            format!(
                "{buckets} buckets requested, at most {max}: use a larger step or a shorter range"
            ),
        ));
    }
    Ok(())
}

/// `n` selected series against `query.max_series`.
///
/// # Errors
/// [`Refusal::Limit`] beyond it.
pub fn series_within(cfg: &QueryConfig, n: usize) -> Result<(), Refusal> {
    if n > cfg.max_series {
        return Err(Refusal::limit(
            "query.max_series",
            format!(
                "the query selects {n} series, the limit is {}",
                cfg.max_series
            ),
        ));
    }
    Ok(())
}

/// `n` loaded points against `query.max_points`.
///
/// # Errors
/// [`Refusal::Limit`] beyond it.
pub fn points_within(cfg: &QueryConfig, n: usize) -> Result<(), Refusal> {
    if n > cfg.max_points {
        return Err(Refusal::limit(
            "query.max_points",
            format!(
                "the query loads more than {} points; narrow the range or the selector",
                cfg.max_points
            ),
        ));
    }
    Ok(())
}

/// Runs `f` within `query.timeout_ms`; when it takes longer the future is
/// dropped (the store work stops) and the query refused.
///
/// # Errors
/// [`Refusal::Limit`] naming `query.timeout_ms`.
pub async fn timed<T>(cfg: &QueryConfig, f: impl Future<Output = T>) -> Result<T, Refusal> {
    tokio::time::timeout(Duration::from_millis(cfg.timeout_ms), f)
        .await
        .map_err(|_| {
            Refusal::limit(
                "query.timeout_ms",
                format!("the query ran longer than {} ms", cfg.timeout_ms),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn cfg() -> QueryConfig {
        QueryConfig {
            max_range_secs: 3_600,
            default_limit: 10,
            max_limit: 50,
            max_buckets: 100,
            max_series: 3,
            max_points: 1_000,
            timeout_ms: 20,
            ..QueryConfig::default()
        }
    }

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_nanos(s * S)
    }

    #[test]
    fn range_defaults_and_limits() {
        let c = cfg();
        let now = ts(10_000);
        // Defaults: the last max_range, or the default width when shorter.
        let r = time_range(&c, None, None, now, None, "end").unwrap();
        assert_eq!((r.start, r.end), (ts(10_000 - 3_600), now));
        let r = time_range(&c, None, None, now, Some(Duration::from_secs(60)), "end").unwrap();
        assert_eq!((r.start, r.end), (ts(10_000 - 60), now));
        let r = time_range(&c, None, None, now, Some(Duration::from_secs(9_999)), "end").unwrap();
        assert_eq!(r.start, ts(10_000 - 3_600));
        // Exactly the maximum passes; one nanosecond more is a limit.
        assert!(time_range(&c, Some(ts(0)), Some(ts(3_600)), now, None, "end").is_ok());
        let e = time_range(
            &c,
            Some(ts(0)),
            Some(Timestamp::from_nanos(3_600 * S + 1)),
            now,
            None,
            "end",
        )
        .unwrap_err();
        assert!(
            matches!(&e, Refusal::Limit { limit: "query.max_range_secs", why } if why.contains("3600s")),
            "{e:?}"
        );
        // The whole of time (what a gRPC client gets by asking for it).
        let e = time_range(
            &c,
            Some(Timestamp::MIN),
            Some(Timestamp::MAX),
            now,
            None,
            "end",
        )
        .unwrap_err();
        assert!(matches!(e, Refusal::Limit { .. }), "{e:?}");
        let e = time_range(&c, Some(ts(5)), Some(ts(4)), now, None, "range.end_ns").unwrap_err();
        assert_eq!(e, Refusal::bad("range.end_ns", "end is before start"));
    }

    #[test]
    fn page_sizes() {
        let c = cfg();
        assert_eq!(page_size(&c, None, "limit"), Ok(10));
        assert_eq!(page_size(&c, Some(50), "limit"), Ok(50));
        for n in [0, 51, usize::MAX] {
            assert!(
                matches!(
                    page_size(&c, Some(n), "limit"),
                    Err(Refusal::Bad { param: "limit", .. })
                ),
                "{n}"
            );
        }
    }

    #[test]
    fn volume_steps() {
        let c = cfg();
        let hour = TimeRange::new(ts(0), ts(3_600));
        // About 100 buckets of whole seconds: 36 s.
        assert_eq!(volume_step(&c, hour, None, "step"), Ok(36 * S));
        // A tiny range still gets one-second buckets.
        let short = TimeRange::new(ts(0), Timestamp::from_nanos(5));
        assert_eq!(volume_step(&c, short, None, "step"), Ok(S));
        assert_eq!(volume_step(&c, hour, Some(36 * S), "step"), Ok(36 * S));
        // 101 buckets is over the limit of 100; so is a 1 ns step.
        for step in [36 * S - 1, 1] {
            let e = volume_step(&c, hour, Some(step), "step").unwrap_err();
            assert!(
                matches!(
                    &e,
                    Refusal::Limit {
                        limit: "query.max_buckets",
                        ..
                    }
                ),
                "{step}: {e:?}"
            );
        }
        for step in [0, -1, i64::MIN] {
            assert!(matches!(
                volume_step(&c, hour, Some(step), "step_ns"),
                Err(Refusal::Bad {
                    param: "step_ns",
                    ..
                })
            ));
        }
    }

    #[test]
    fn series_points_and_grpc_codes() {
        let c = cfg();
        assert!(series_within(&c, 3).is_ok());
        let e = series_within(&c, 4).unwrap_err();
        assert_eq!(e.clone().grpc().code(), tonic::Code::ResourceExhausted);
        assert!(e.grpc().message().contains("query.max_series"));
        assert!(points_within(&c, 1_000).is_ok());
        assert!(points_within(&c, 1_001).is_err());
        let bad = Refusal::bad("limit", "must be between 1 and 50");
        let s = bad.grpc();
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert_eq!(s.message(), "limit: must be between 1 and 50");
    }

    #[tokio::test]
    async fn timeout() {
        let c = cfg();
        assert_eq!(timed(&c, async { 7 }).await, Ok(7));
        let e = timed(&c, tokio::time::sleep(Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert_eq!(e.clone().grpc().code(), tonic::Code::DeadlineExceeded);
        assert!(matches!(
            e,
            Refusal::Limit {
                limit: "query.timeout_ms",
                ..
            }
        ));
    }
}

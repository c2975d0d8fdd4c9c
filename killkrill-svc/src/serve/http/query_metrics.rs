//! `GET /api/v1/metrics`: the native metric query — series with points,
//! from raw samples or from the stored rollups, scoped to the caller's
//! tenant.
//!
//! - `name` and/or `match` (a PromQL series selector such as
//!   `{job="api",path=~"/v1/.*"}`) and `label.<name>=<value>` choose series;
//! - `start`/`end` (default: the last hour) and `step`;
//! - `resolution=raw` (default) reads raw samples; `resolution=<duration>`
//!   (`10s`, `1m`, ... — one the aggregator is configured with) reads the
//!   rollups stored at that resolution, never raw samples;
//! - `aggregation` (`avg`, `sum`, `min`, `max`, `count`, `first`, `last`,
//!   `increase`, `p50`, `p90`, `p95`, `p99`, `p999`) is applied per step
//!   bucket `[t, t + step)` (buckets aligned to multiples of `step` since
//!   the epoch). With rollups, windows are merged exactly into buckets, so
//!   `step` must be a multiple of the resolution (default: the
//!   resolution). Raw samples without `step` come back as stored.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use killkrill_core::aggregate::Point;
use killkrill_core::aggregate::{Resolution, Rollup, SketchParams};
use killkrill_core::event::Timestamp;
use killkrill_core::storage::{LabelMatcher, MetricStore};
use metrics::counter;
use serde_json::{Value as Json, json};

use super::prom::{labels_of, store_matchers};
use super::query_logs::{query_error, with_timeout};
use super::read_limits;
use super::read_params::{Params, bad_param, nanos};
use super::{ApiError, AppState, Caller};
use crate::serve::self_metrics::HTTP_ACCEPTED;

const EP: &str = "metrics_query";

/// Name, labels and `(ts ns, value)` points of one answered series.
type OutSeries = (String, killkrill_core::event::Labels, Vec<(i64, f64)>);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Agg {
    Avg,
    Sum,
    Min,
    Max,
    Count,
    First,
    Last,
    Increase,
    Quantile(f64),
}

impl Agg {
    fn parse(s: &str) -> Option<Agg> {
        Some(match s {
            "avg" | "mean" => Agg::Avg,
            "sum" => Agg::Sum,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "count" => Agg::Count,
            "first" => Agg::First,
            "last" => Agg::Last,
            "increase" => Agg::Increase,
            "p50" | "median" => Agg::Quantile(0.5),
            "p90" => Agg::Quantile(0.9),
            "p95" => Agg::Quantile(0.95),
            "p99" => Agg::Quantile(0.99),
            "p999" => Agg::Quantile(0.999),
            _ => return None,
        })
    }

    fn of(self, r: &Rollup) -> Option<f64> {
        Some(match self {
            Agg::Avg => r.mean(),
            Agg::Sum => r.sum(),
            Agg::Min => r.min(),
            Agg::Max => r.max(),
            Agg::Count => r.count() as f64,
            Agg::First => r.first().value,
            Agg::Last => r.last().value,
            Agg::Increase => r.increase()?,
            Agg::Quantile(q) => r.quantile(q)?,
        })
    }
}

fn num(v: f64) -> Json {
    if v.is_finite() {
        json!(v)
    } else {
        Json::String(killkrill_query::format_float(v))
    }
}

/// `GET /api/v1/metrics`.
pub async fn get_metrics(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(
        EP,
        raw.as_deref(),
        &[
            "name",
            "match",
            "label.*",
            "start",
            "end",
            "step",
            "resolution",
            "aggregation",
        ],
    )?;
    let cfg = &s.query;
    let now = Timestamp::now();
    // Matchers.
    let mut matchers: Vec<LabelMatcher> = Vec::new();
    if let Some(m) = p.one(EP, "match")? {
        let sets = killkrill_query::parse_selector(m)
            .map_err(|e| bad_param(EP, "match", e.to_string()))?;
        let [set] = sets.as_slice() else {
            return Err(bad_param(EP, "match", "give exactly one series selector"));
        };
        matchers.extend(store_matchers(set).map_err(|e| bad_param(EP, "match", e.to_string()))?);
    }
    if let Some(n) = p.one(EP, "name")? {
        matchers.push(LabelMatcher::eq("__name__", n));
    }
    for (k, v) in p.prefixed("label.") {
        matchers.push(LabelMatcher::eq(k, v));
    }
    if !matchers.iter().any(|m| !m.matches(Some(""))) {
        return Err(bad_param(
            EP,
            "name",
            "give a metric name, or a match selector with at least one matcher that does not match the empty string",
        ));
    }
    // Range (default: the last hour).
    let range = read_limits::time_range(
        cfg,
        p.time(EP, "start", now)?,
        p.time(EP, "end", now)?,
        now,
        Some(std::time::Duration::from_secs(3_600)),
        "end",
    )
    .map_err(|r| r.http(EP))?;
    let width = range.end.as_nanos().saturating_sub(range.start.as_nanos());
    // Resolution, step, aggregation.
    let resolution = match p.one(EP, "resolution")? {
        None | Some("raw") => None,
        Some(r) => {
            let d = super::read_params::parse_duration(r)
                .map_err(|why| bad_param(EP, "resolution", format!("raw or a duration: {why}")))?;
            Some(Resolution::new(d).ok_or_else(|| bad_param(EP, "resolution", "out of range"))?)
        }
    };
    let step = match p.duration(EP, "step")? {
        Some(d) if nanos(d) <= 0 => return Err(bad_param(EP, "step", "must be positive")),
        Some(d) => Some(nanos(d)),
        None => resolution.map(Resolution::as_nanos),
    };
    if let (Some(st), Some(res)) = (step, resolution)
        && st % res.as_nanos() != 0
    {
        return Err(bad_param(
            EP,
            "step",
            format!("must be a multiple of the resolution ({res}) when reading rollups"),
        ));
    }
    let agg = match p.one(EP, "aggregation")? {
        None => Agg::Avg,
        Some(a) => Agg::parse(a).ok_or_else(|| {
            bad_param(
                EP,
                "aggregation",
                "one of avg, sum, min, max, count, first, last, increase, p50, p90, p95, p99, p999",
            )
        })?,
    };
    if let Some(st) = step {
        read_limits::buckets_within(cfg, i128::from(width / st) + 1).map_err(|r| r.http(EP))?;
    }
    let tenant = caller.tenant;
    let store = &s.store;
    let work = async {
        let n = store
            .select_series(&tenant, &matchers, range)
            .await
            .map_err(|e| query_error(EP, &e.into()))?
            .len();
        read_limits::series_within(cfg, n).map_err(|r| r.http(EP))?;
        let bucket = |t: i64, st: i64| t - t.rem_euclid(st);
        let mut out: Vec<OutSeries> = Vec::new();
        let mut loaded = 0usize;
        match resolution {
            None => {
                let got = store
                    .select_samples(&tenant, &matchers, range)
                    .await
                    .map_err(|e| query_error(EP, &e.into()))?;
                for sr in got {
                    loaded += sr.points.len();
                    read_limits::points_within(cfg, loaded).map_err(|r| r.http(EP))?;
                    let pts: Vec<(i64, f64)> = sr
                        .points
                        .into_iter()
                        .filter(|p| !killkrill_query::is_stale(p.1))
                        .collect();
                    let points = match step {
                        None => pts,
                        Some(st) => {
                            let sketch =
                                matches!(agg, Agg::Quantile(_)).then(SketchParams::default);
                            let mut v = Vec::new();
                            let mut i = 0;
                            while i < pts.len() {
                                let b = bucket(pts[i].0, st);
                                let j = i + pts[i..].partition_point(|p| bucket(p.0, st) == b);
                                let r = Rollup::from_points(
                                    pts[i..j]
                                        .iter()
                                        .map(|&(t, x)| Point::new(Timestamp::from_nanos(t), x)),
                                    sketch,
                                );
                                if let Some(x) = r.as_ref().and_then(|r| agg.of(r)) {
                                    v.push((b, x));
                                }
                                i = j;
                            }
                            v
                        }
                    };
                    out.push((sr.name.to_string(), sr.labels, points));
                }
            }
            Some(res) => {
                let st = step.unwrap_or(res.as_nanos());
                let got = store
                    .select_rollups(&tenant, &matchers, res, range)
                    .await
                    .map_err(|e| query_error(EP, &e.into()))?;
                for sr in got {
                    loaded += sr.windows.len();
                    read_limits::points_within(cfg, loaded).map_err(|r| r.http(EP))?;
                    let mut points = Vec::new();
                    let mut cur: Option<(i64, Rollup)> = None;
                    for (w, r) in sr.windows {
                        let b = bucket(w.as_nanos(), st);
                        match cur.as_mut() {
                            Some((cb, acc)) if *cb == b => {
                                if let Err(e) = acc.merge(&r) {
                                    tracing::warn!(error = %e, "rollups of one series do not merge");
                                }
                            }
                            _ => {
                                if let Some((cb, acc)) = cur.take()
                                    && let Some(x) = agg.of(&acc)
                                {
                                    points.push((cb, x));
                                }
                                cur = Some((b, r));
                            }
                        }
                    }
                    if let Some((cb, acc)) = cur
                        && let Some(x) = agg.of(&acc)
                    {
                        points.push((cb, x));
                    }
                    out.push((sr.name.to_string(), sr.labels, points));
                }
            }
        }
        Ok::<_, ApiError>(out)
    };
    let series = with_timeout(EP, cfg, work).await??;
    let data: Vec<Json> = series
        .iter()
        .map(|(name, labels, points)| {
            let mut l = serde_json::Map::new();
            for (k, v) in labels_of(name, labels) {
                l.insert(k, Json::String(v));
            }
            json!({
                "name": name,
                "labels": l,
                "points": points.iter().map(|&(t, v)| json!([t / 1_000_000, num(v)])).collect::<Vec<_>>(),
            })
        })
        .collect();
    counter!(HTTP_ACCEPTED, "endpoint" => EP).increment(1);
    Ok(axum::Json(json!({
        "data": data,
        "resolution": resolution.map_or_else(|| "raw".to_owned(), |r| r.to_string()),
        "aggregation": step.map(|_| format!("{agg:?}").to_ascii_lowercase()),
        "step_seconds": step.map(|s| s as f64 / 1e9),
    }))
    .into_response())
}

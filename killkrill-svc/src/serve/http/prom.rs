//! The Prometheus HTTP API (killkrill-query's router) over the metric
//! store, one [`SampleSource`] per request scoped to the caller's tenant.
//!
//! Tenancy: a middleware on these routes runs the [`Caller`] extractor and
//! puts the caller into the request's extensions; [`TenantSources`] builds
//! the source from it and refuses (fails closed) a request without one.
//!
//! Samples: PromQL reads raw samples (`select_samples`), except where
//! killkrill-query's rollup planner asks for window aggregates
//! (`count/sum/min/max/avg/last_over_time` with range, step and times on
//! rollup window edges): those come from the stored rollups, merged per
//! evaluation window in [`super::prom_rollups`] together with the samples
//! that sit exactly on the window's right edge. Which path a query took is
//! the `x-killkrill-query-path` response header.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::Extensions;
use axum::middleware::Next;
use axum::response::Response;
use killkrill_core::event::{Tenant, Timestamp};
use killkrill_core::storage::{LabelMatcher, MatchOp, MetricStore, TimeRange};
use killkrill_query::{
    EngineConfig, Labels, Matcher, QueryError, SampleSource, Series, SourceFactory,
};
use killkrill_store::Store;

use super::{AppState, Caller};

/// Query matchers as store matchers.
pub(super) fn store_matchers(ms: &[Matcher]) -> Result<Vec<LabelMatcher>, QueryError> {
    ms.iter()
        .map(|m| {
            let op = match m.op {
                killkrill_query::MatchOp::Equal => MatchOp::Eq,
                killkrill_query::MatchOp::NotEqual => MatchOp::Ne,
                killkrill_query::MatchOp::Regex => MatchOp::Re,
                killkrill_query::MatchOp::NotRegex => MatchOp::Nre,
            };
            LabelMatcher::new(m.name.clone(), op, m.value.clone())
                .map_err(|e| QueryError::BadData(e.to_string()))
        })
        .collect()
}

/// `[start_ns, end_ns]` (inclusive) as a half-open store range.
fn range(start_ns: i64, end_ns: i64) -> TimeRange {
    TimeRange::new(
        Timestamp::from_nanos(start_ns),
        Timestamp::from_nanos(end_ns.saturating_add(1)),
    )
}

pub(super) fn source_error(e: &killkrill_core::storage::StoreError) -> QueryError {
    tracing::warn!(error = %e, "metric store read failed");
    match e.kind() {
        killkrill_core::storage::ErrorKind::Invalid => QueryError::BadData(e.to_string()),
        _ => QueryError::Source("the metric store is unavailable".to_owned()),
    }
}

/// Labels with `__name__`, sorted.
pub(super) fn labels_of(name: &str, l: &killkrill_core::event::Labels) -> Labels {
    let mut out: Labels = Vec::with_capacity(l.len() + 1);
    out.push(("__name__".to_owned(), name.to_owned()));
    out.extend(l.iter().map(|x| (x.name.to_string(), x.value.to_string())));
    out.sort();
    out
}

/// One tenant's samples in the store.
pub struct StoreSource {
    pub(super) store: Store,
    pub(super) tenant: Tenant,
    pub(super) max_series: usize,
    /// Rollup widths PromQL may read (empty: raw samples only).
    pub(super) rollups: Vec<killkrill_core::aggregate::Resolution>,
}

impl StoreSource {
    /// The samples of `tenant`; a selector matching more than `max_series`
    /// series is refused before any sample is read.
    pub fn new(store: Store, tenant: Tenant, max_series: usize) -> Self {
        StoreSource {
            store,
            tenant,
            max_series,
            rollups: Vec::new(),
        }
    }

    /// Lets PromQL read the rollups of these widths (see [`rollup_reads`]).
    #[must_use]
    pub fn with_rollups(mut self, resolutions: Vec<killkrill_core::aggregate::Resolution>) -> Self {
        self.rollups = resolutions;
        self
    }

    /// Refuses a selector matching more than `max_series` series (counted).
    pub(super) fn check_series(&self, n: usize) -> Result<(), QueryError> {
        if n > self.max_series {
            metrics::counter!("killkrill_query_limit_exceeded_total", "limit" => "max_series")
                .increment(1);
            return Err(QueryError::TooManySeries {
                limit: self.max_series,
            });
        }
        Ok(())
    }
}

/// The rollup widths PromQL may read under `config`: the configured
/// resolutions when `query.rollup_reads` is on and `[rollups]` stores
/// every sample (enabled, `late_samples = "aggregate"`); none otherwise.
pub fn rollup_reads(
    config: &crate::config::ServeConfig,
) -> Vec<killkrill_core::aggregate::Resolution> {
    let r = &config.rollups;
    if !config.query.rollup_reads
        || !r.enabled
        || r.aggregate.late_samples != killkrill_core::aggregate::LatePolicy::Aggregate
    {
        return Vec::new();
    }
    r.aggregate
        .resolutions
        .iter()
        .filter_map(|d| killkrill_core::aggregate::Resolution::new(d.0))
        .collect()
}

#[async_trait]
impl SampleSource for StoreSource {
    async fn select(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let ms = store_matchers(matchers)?;
        let r = range(start_ns, end_ns);
        // The index first: too many series is refused before the samples
        // are loaded.
        let n = self
            .store
            .select_series(&self.tenant, &ms, r)
            .await
            .map_err(|e| source_error(&e))?
            .len();
        self.check_series(n)?;
        let got = self
            .store
            .select_samples(&self.tenant, &ms, r)
            .await
            .map_err(|e| source_error(&e))?;
        Ok(got
            .into_iter()
            .map(|s| {
                let mut points: Vec<(i64, f64)> = Vec::with_capacity(s.points.len());
                for (t, v) in s.points {
                    let ms = t.div_euclid(1_000_000);
                    match points.last_mut() {
                        // Two samples in one millisecond: keep the later.
                        Some(last) if last.0 == ms => last.1 = v,
                        _ => points.push((ms, v)),
                    }
                }
                Series {
                    labels: labels_of(&s.name, &s.labels),
                    points,
                }
            })
            .collect())
    }

    async fn series(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        let ms = store_matchers(matchers)?;
        let got = self
            .store
            .select_series(&self.tenant, &ms, range(start_ns, end_ns))
            .await
            .map_err(|e| source_error(&e))?;
        Ok(got.iter().map(|s| labels_of(&s.name, &s.labels)).collect())
    }

    async fn label_names(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<String>, QueryError> {
        let ms = store_matchers(matchers)?;
        self.store
            .label_names(&self.tenant, &ms, range(start_ns, end_ns))
            .await
            .map_err(|e| source_error(&e))
    }

    async fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<String>, QueryError> {
        let ms = store_matchers(matchers)?;
        self.store
            .label_values(&self.tenant, name, &ms, range(start_ns, end_ns))
            .await
            .map_err(|e| source_error(&e))
    }

    fn rollups(&self) -> Option<&dyn killkrill_query::RollupSource> {
        (!self.rollups.is_empty()).then_some(self as &dyn killkrill_query::RollupSource)
    }
}

/// Builds a [`StoreSource`] for the [`Caller`] in a request's extensions.
pub struct TenantSources {
    store: Store,
    max_series: usize,
    rollups: Vec<killkrill_core::aggregate::Resolution>,
}

impl SourceFactory for TenantSources {
    fn source(&self, ext: &Extensions) -> Result<Arc<dyn SampleSource>, QueryError> {
        let caller = ext.get::<Caller>().ok_or_else(|| {
            tracing::error!("Prometheus API request without a caller: refused");
            QueryError::Source("no caller identity on the request".to_owned())
        })?;
        Ok(Arc::new(
            StoreSource::new(self.store.clone(), caller.tenant.clone(), self.max_series)
                .with_rollups(self.rollups.clone()),
        ))
    }
}

/// Puts the request's [`Caller`] into its extensions for [`TenantSources`].
async fn with_caller(caller: Caller, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The engine limits from `[query]`.
pub fn engine_config(q: &crate::config::QueryConfig) -> EngineConfig {
    EngineConfig {
        max_samples: q.max_points,
        max_series: q.max_series,
        timeout: std::time::Duration::from_millis(q.timeout_ms),
        max_points_per_series: q.max_buckets,
        max_range: Some(std::time::Duration::from_secs(q.max_range_secs)),
        ..EngineConfig::default()
    }
}

/// The Prometheus API routes over `state.store`.
pub fn routes(state: &Arc<AppState>) -> axum::Router<Arc<AppState>> {
    let api = killkrill_query::ApiState::per_request(
        Arc::new(TenantSources {
            store: state.store.clone(),
            max_series: state.query.max_series,
            rollups: state.rollup_reads.clone(),
        }),
        engine_config(&state.query),
    );
    killkrill_query::routes::<Arc<AppState>>(api).layer(axum::middleware::from_fn_with_state(
        state.clone(),
        with_caller_state,
    ))
}

async fn with_caller_state(
    State(_): State<Arc<AppState>>,
    caller: Caller,
    req: Request,
    next: Next,
) -> Response {
    with_caller(caller, req, next).await
}

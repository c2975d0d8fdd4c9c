//! The metric store as the PromQL engine's [`SampleSource`], for one tenant.
//!
//! `killkrill-query` knows nothing about SQL or tenants: it reads whole
//! series through `SampleSource::select`. This adapter scopes every read to
//! the caller's tenant and converts shapes — matchers to the store's
//! [`LabelMatcher`], the inclusive `[start, end]` to the store's half-open
//! range, nanosecond points to PromQL's milliseconds, and `name` + labels to
//! one sorted label list with `__name__`. Build one per request (it is two
//! clones) with the request's tenant.

use std::sync::Arc;

use async_trait::async_trait;
use killkrill_core::event::{Tenant, Timestamp};
use killkrill_core::storage::{LabelMatcher, MatchOp as StoreOp, MetricStore, TimeRange};
use killkrill_query::{Labels, MatchOp, Matcher, QueryError, SampleSource, Series};

/// One tenant's metric samples.
pub struct TenantSamples {
    store: Arc<dyn MetricStore>,
    tenant: Tenant,
}

impl TenantSamples {
    /// Reads of `tenant` from `store`.
    pub fn new(store: Arc<dyn MetricStore>, tenant: Tenant) -> Self {
        TenantSamples { store, tenant }
    }
}

/// The store's matcher for an engine matcher.
///
/// # Errors
/// `BadData` for a regex the store refuses (too large).
pub fn store_matcher(m: &Matcher) -> Result<LabelMatcher, QueryError> {
    let op = match m.op {
        MatchOp::Equal => StoreOp::Eq,
        MatchOp::NotEqual => StoreOp::Ne,
        MatchOp::Regex => StoreOp::Re,
        MatchOp::NotRegex => StoreOp::Nre,
    };
    LabelMatcher::new(m.name.clone(), op, m.value.clone())
        .map_err(|e| QueryError::BadData(e.to_string()))
}

fn store_matchers(ms: &[Matcher]) -> Result<Vec<LabelMatcher>, QueryError> {
    ms.iter().map(store_matcher).collect()
}

/// `[start_ns, end_ns]` (inclusive) as the store's `[start, end + 1)`.
pub fn inclusive_range(start_ns: i64, end_ns: i64) -> TimeRange {
    TimeRange::new(
        Timestamp::from_nanos(start_ns),
        Timestamp::from_nanos(end_ns.saturating_add(1)),
    )
}

#[async_trait]
impl SampleSource for TenantSamples {
    async fn select(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let ms = store_matchers(matchers)?;
        let got = self
            .store
            .select_samples(&self.tenant, &ms, inclusive_range(start_ns, end_ns))
            .await
            .map_err(|e| QueryError::Source(e.to_string()))?;
        Ok(got
            .into_iter()
            .map(|s| {
                let mut labels: Labels = Vec::with_capacity(s.labels.len() + 1);
                labels.push((killkrill_query::METRIC_NAME.to_owned(), s.name.to_string()));
                labels.extend(
                    s.labels
                        .iter()
                        .map(|l| (l.name.to_string(), l.value.to_string())),
                );
                labels.sort();
                let mut points: Vec<(i64, f64)> = Vec::with_capacity(s.points.len());
                for (ts, v) in s.points {
                    let ms = ts.div_euclid(1_000_000);
                    // Two samples in one millisecond: PromQL sees the later.
                    match points.last_mut() {
                        Some(last) if last.0 == ms => last.1 = v,
                        _ => points.push((ms, v)),
                    }
                }
                Series { labels, points }
            })
            .collect())
    }

    async fn label_names(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<String>, QueryError> {
        let ms = store_matchers(matchers)?;
        self.store
            .label_names(&self.tenant, &ms, inclusive_range(start_ns, end_ns))
            .await
            .map_err(|e| QueryError::Source(e.to_string()))
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
            .label_values(&self.tenant, name, &ms, inclusive_range(start_ns, end_ns))
            .await
            .map_err(|e| QueryError::Source(e.to_string()))
    }
}

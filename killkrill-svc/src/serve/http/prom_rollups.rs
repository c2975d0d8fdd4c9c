//! PromQL window aggregates from the stored rollups ([`RollupSource`] of
//! [`StoreSource`]).
//!
//! killkrill-query asks for the aggregate of `[t - range, t]` (millisecond
//! timestamps, both ends included) at evaluation times `t` on window edges
//! of a stored resolution `w`. In nanoseconds that is
//! `[(t - range)·10⁶, t·10⁶ + 10⁶)`: the rollup windows starting in
//! `[t - range, t)`, merged exactly (count and sum add, the sum exact and
//! rounded once; min, max; last by time), plus the samples of the
//! millisecond `t` itself, which open the window starting at `t`: its
//! `first` point when that lies in the millisecond. Exact when the samples
//! of a series have distinct millisecond timestamps (scrape and
//! remote_write samples do) and finite values (rollups skip NaN and
//! infinities; staleness markers are skipped by both paths); see
//! `docs/src/promql.md`, "Rollups".
//!
//! Coverage: the tenant's rollup high-water mark (the latest event time
//! aggregated, from the ledger). Evaluation times before it are answered
//! here; later ones read raw samples (the engine asks only for the covered
//! ones).

use std::time::Duration;

use async_trait::async_trait;
use killkrill_core::aggregate::{Point, Resolution, Rollup};
use killkrill_core::event::Timestamp;
use killkrill_core::storage::{MetricStore, TimeRange};
use killkrill_query::{
    Matcher, QueryError, RollupCoverage, RollupSource, WindowAggregate, WindowQuery, WindowSeries,
};

use super::prom::{StoreSource, labels_of, source_error, store_matchers};

const NS_PER_MS: i64 = 1_000_000;

#[async_trait]
impl RollupSource for StoreSource {
    async fn rollup_coverage(&self) -> Result<Option<RollupCoverage>, QueryError> {
        if self.rollups.is_empty() {
            return Ok(None);
        }
        let hw = self
            .store
            .rollup_high_water(&self.tenant)
            .await
            .map_err(|e| source_error(&e))?;
        Ok(hw.map(|hw| RollupCoverage {
            resolutions_ms: self
                .rollups
                .iter()
                .map(|r| r.as_nanos() / NS_PER_MS)
                .filter(|ms| *ms > 0)
                .collect(),
            complete_before_ms: hw.as_nanos().div_euclid(NS_PER_MS),
        }))
    }

    async fn select_windows(
        &self,
        matchers: &[Matcher],
        q: &WindowQuery,
    ) -> Result<Vec<WindowSeries>, QueryError> {
        let res = u64::try_from(q.resolution_ms)
            .ok()
            .and_then(|ms| Resolution::new(Duration::from_millis(ms)))
            .filter(|r| self.rollups.contains(r))
            .ok_or_else(|| {
                QueryError::Source(format!("no rollups of {} ms are stored", q.resolution_ms))
            })?;
        let ms = store_matchers(matchers)?;
        let last = q.time(q.steps.saturating_sub(1));
        // Window starts from the first window of the first step to the
        // window that opens at the last step (its first point).
        let range = TimeRange::new(
            Timestamp::from_nanos((q.first_ms - q.range_ms).saturating_mul(NS_PER_MS)),
            Timestamp::from_nanos(
                last.saturating_mul(NS_PER_MS)
                    .saturating_add(res.as_nanos()),
            ),
        );
        let got = self
            .store
            .select_rollups(&self.tenant, &ms, res, range)
            .await
            .map_err(|e| source_error(&e))?;
        self.check_series(got.len())?;
        let mut out = Vec::with_capacity(got.len());
        for s in got {
            let windows = aggregates(&s.windows, q)?;
            if !windows.is_empty() {
                out.push(WindowSeries {
                    labels: labels_of(&s.name, &s.labels),
                    windows,
                });
            }
        }
        Ok(out)
    }
}

/// The aggregate of `[t - range, t]` at every evaluation time of `q`, from
/// one series' merged windows (sorted by start).
fn aggregates(
    windows: &[(Timestamp, Rollup)],
    q: &WindowQuery,
) -> Result<Vec<(i64, WindowAggregate)>, QueryError> {
    let merge_err = |e| QueryError::Execution(format!("merging stored rollups: {e}"));
    let mut out = Vec::new();
    for i in 0..q.steps {
        let t = q.time(i);
        let (lo, hi) = (
            (t - q.range_ms).saturating_mul(NS_PER_MS),
            t.saturating_mul(NS_PER_MS),
        );
        let a = windows.partition_point(|w| w.0.as_nanos() < lo);
        let b = windows.partition_point(|w| w.0.as_nanos() < hi);
        let mut acc: Option<Rollup> = None;
        for (_, r) in &windows[a..b] {
            match acc.as_mut() {
                Some(x) => x.merge(r).map_err(merge_err)?,
                None => acc = Some(r.clone()),
            }
        }
        // The samples of millisecond t open the window starting at t.
        if let Some((ws, next)) = windows.get(b)
            && ws.as_nanos() == hi
            && next.first().timestamp.as_nanos() < hi.saturating_add(NS_PER_MS)
        {
            let p: Point = next.first();
            let edge =
                Rollup::from_points([p], next.sketch().map(|s| s.params())).ok_or_else(|| {
                    QueryError::Execution("a stored rollup has a non-finite first point".to_owned())
                })?;
            match acc.as_mut() {
                Some(x) => x.merge(&edge).map_err(merge_err)?,
                None => acc = Some(edge),
            }
        }
        if let Some(r) = acc
            && r.count() > 0
        {
            out.push((
                t,
                WindowAggregate {
                    count: r.count(),
                    sum: r.sum(),
                    min: r.min(),
                    max: r.max(),
                    last: r.last().value,
                },
            ));
        }
    }
    Ok(out)
}

//! Where the evaluator gets samples from.
//!
//! The trait is deliberately small: one `select` that returns whole series
//! for a time range, plus the metadata look-ups the HTTP API needs (with
//! default implementations on top of `select`, so an adapter only has to
//! write one method to be correct and can override the others to be fast).
//! Time bounds are nanoseconds (the store's unit); points are milliseconds
//! (PromQL's unit).

use std::collections::BTreeSet;

use async_trait::async_trait;

use crate::error::QueryError;
use crate::labels::{Labels, Matcher, matches_all};

/// One series: sorted labels (including `__name__`) and points sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Sorted by name, `__name__` included.
    pub labels: Labels,
    /// `(timestamp in milliseconds, value)`, ascending by timestamp.
    pub points: Vec<(i64, f64)>,
}

/// A store of samples the evaluator can query.
#[async_trait]
pub trait SampleSource: Send + Sync {
    /// Every series matching all `matchers` with its points in
    /// `[start_ns, end_ns]` (both inclusive). Series without a point in the
    /// range may be left out.
    ///
    /// # Errors
    /// `QueryError::Source` (or a limit error) when the store cannot answer.
    async fn select(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Series>, QueryError>;

    /// Label sets of the series that match and have data in the range.
    ///
    /// # Errors
    /// As [`SampleSource::select`].
    async fn series(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        let selected = self.select(matchers, start_ns, end_ns).await?;
        Ok(selected.into_iter().map(|s| s.labels).collect())
    }

    /// Sorted label names used by matching series (all series when `matchers` is empty).
    ///
    /// # Errors
    /// As [`SampleSource::select`].
    async fn label_names(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<String>, QueryError> {
        let all = match_all_when_empty(matchers);
        let mut names = BTreeSet::new();
        for labels in self.series(&all, start_ns, end_ns).await? {
            names.extend(labels.into_iter().map(|(k, _)| k));
        }
        Ok(names.into_iter().collect())
    }

    /// Sorted values of label `name` among matching series.
    ///
    /// # Errors
    /// As [`SampleSource::select`].
    async fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<String>, QueryError> {
        let all = match_all_when_empty(matchers);
        let mut values = BTreeSet::new();
        for labels in self.series(&all, start_ns, end_ns).await? {
            let v = crate::labels::get(&labels, name);
            if !v.is_empty() {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }

    /// The source's rollups, when it has any (the default: none, so every
    /// selector reads raw samples).
    fn rollups(&self) -> Option<&dyn RollupSource> {
        None
    }
}

fn match_all_when_empty(matchers: &[Matcher]) -> Vec<Matcher> {
    if matchers.is_empty() {
        // `__name__=~".+"`: every series has a name.
        match Matcher::new(
            crate::labels::METRIC_NAME,
            crate::labels::MatchOp::Regex,
            ".+",
        ) {
            Ok(m) => vec![m],
            Err(_) => Vec::new(),
        }
    } else {
        matchers.to_vec()
    }
}

/// An in-memory [`SampleSource`] for tests, benches and embedding.
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    series: Vec<Series>,
    /// Rollups computed on demand from the points (a model of a store's).
    rollups: Option<RollupCoverage>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a series (labels are normalised; points are sorted by time).
    /// Adding the same label set twice merges the points.
    pub fn add(&mut self, labels: Labels, mut points: Vec<(i64, f64)>) {
        let labels = crate::labels::normalize(labels);
        points.sort_by_key(|p| p.0);
        if let Some(s) = self.series.iter_mut().find(|s| s.labels == labels) {
            s.points.extend(points);
            s.points.sort_by_key(|p| p.0);
            s.points.dedup_by_key(|p| p.0);
        } else {
            self.series.push(Series { labels, points });
        }
    }

    /// Convenience: labels from `(&str, &str)` pairs.
    pub fn add_str(&mut self, labels: &[(&str, &str)], points: Vec<(i64, f64)>) {
        self.add(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points,
        );
    }

    /// Answers window queries at these resolutions for evaluation times
    /// before `complete_before_ms`, aggregating the held points (the model
    /// a store's rollups are compared with).
    pub fn with_rollups(mut self, resolutions_ms: Vec<i64>, complete_before_ms: i64) -> Self {
        self.rollups = Some(RollupCoverage {
            resolutions_ms,
            complete_before_ms,
        });
        self
    }

    /// Number of series held.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no series is held.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[async_trait]
impl SampleSource for MemorySource {
    async fn select(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let lo = start_ns.div_euclid(1_000_000) + i64::from(start_ns.rem_euclid(1_000_000) != 0);
        let hi = end_ns.div_euclid(1_000_000);
        let mut out = Vec::new();
        for s in &self.series {
            if !matches_all(matchers, &s.labels) {
                continue;
            }
            let a = s.points.partition_point(|p| p.0 < lo);
            let b = s.points.partition_point(|p| p.0 <= hi);
            if a < b {
                out.push(Series {
                    labels: s.labels.clone(),
                    points: s.points[a..b].to_vec(),
                });
            }
        }
        Ok(out)
    }

    fn rollups(&self) -> Option<&dyn RollupSource> {
        self.rollups.as_ref().map(|_| self as &dyn RollupSource)
    }
}

#[async_trait]
impl RollupSource for MemorySource {
    async fn rollup_coverage(&self) -> Result<Option<RollupCoverage>, QueryError> {
        Ok(self.rollups.clone())
    }

    async fn select_windows(
        &self,
        matchers: &[Matcher],
        q: &WindowQuery,
    ) -> Result<Vec<WindowSeries>, QueryError> {
        let mut out = Vec::new();
        for s in &self.series {
            if !matches_all(matchers, &s.labels) {
                continue;
            }
            let mut windows = Vec::new();
            for i in 0..q.steps {
                let t = q.time(i);
                let a = s.points.partition_point(|p| p.0 < t - q.range_ms);
                let b = s.points.partition_point(|p| p.0 <= t);
                // Rollups keep finite values only.
                let w: Vec<f64> = s.points[a..b.max(a)]
                    .iter()
                    .map(|p| p.1)
                    .filter(|v| v.is_finite())
                    .collect();
                let (Some(&first), Some(&last)) = (w.first(), w.last()) else {
                    continue;
                };
                let mut agg = WindowAggregate {
                    count: w.len() as u64,
                    sum: 0.0,
                    min: first,
                    max: first,
                    last,
                };
                for v in w {
                    agg.sum += v;
                    agg.min = agg.min.min(v);
                    agg.max = agg.max.max(v);
                }
                windows.push((t, agg));
            }
            if !windows.is_empty() {
                out.push(WindowSeries {
                    labels: s.labels.clone(),
                    windows,
                });
            }
        }
        Ok(out)
    }
}

/// What a source's rollups can answer: window widths and how far they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupCoverage {
    /// Window widths (milliseconds) the source keeps rollups for; windows
    /// are `[k·w, (k+1)·w)` since the Unix epoch.
    pub resolutions_ms: Vec<i64>,
    /// Rollups hold every sample before this time (milliseconds): an
    /// evaluation at `t < complete_before_ms` may be answered from them.
    pub complete_before_ms: i64,
}

/// The windows [`SampleSource::select_windows`] aggregates: for every
/// evaluation time `t = first_ms + i·step_ms` (`i < steps`), the samples in
/// `[t - range_ms, t]` (both inclusive, millisecond timestamps), the same
/// window a range selector `x[range]` reads at `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowQuery {
    /// Rollup window width (a divisor of `range_ms` and `step_ms`; `first_ms`
    /// is a multiple of it).
    pub resolution_ms: i64,
    /// The selector's range.
    pub range_ms: i64,
    /// The first evaluation time (offset applied).
    pub first_ms: i64,
    /// Between evaluation times (ignored when `steps == 1`).
    pub step_ms: i64,
    /// Number of evaluation times.
    pub steps: usize,
}

impl WindowQuery {
    /// The `i`-th evaluation time.
    pub fn time(&self, i: usize) -> i64 {
        self.first_ms + self.step_ms * i as i64
    }
}

/// The aggregate of one series' samples in one `[t - range, t]` window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowAggregate {
    /// Number of samples.
    pub count: u64,
    /// Sum of the values (rounded once).
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Value of the latest sample.
    pub last: f64,
}

/// One series' window aggregates, by evaluation time (ascending; times
/// without samples are absent).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSeries {
    /// Sorted labels, `__name__` included.
    pub labels: Labels,
    /// `(evaluation time in milliseconds, aggregate)`.
    pub windows: Vec<(i64, WindowAggregate)>,
}

/// Rollup reads, an optional capability of a [`SampleSource`]: the engine
/// answers `count/sum/min/max/avg/last_over_time(x[range])` from them when
/// the range, step and evaluation times fall on rollup window edges (see
/// `docs/src/promql.md`, "Rollups").
#[async_trait]
pub trait RollupSource: Send + Sync {
    /// What the rollups cover for this source; `None` when it has none.
    ///
    /// # Errors
    /// As [`SampleSource::select`].
    async fn rollup_coverage(&self) -> Result<Option<RollupCoverage>, QueryError>;

    /// Every series matching `matchers` with its window aggregates.
    ///
    /// # Errors
    /// As [`SampleSource::select`].
    async fn select_windows(
        &self,
        matchers: &[Matcher],
        q: &WindowQuery,
    ) -> Result<Vec<WindowSeries>, QueryError>;
}

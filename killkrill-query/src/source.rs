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
}

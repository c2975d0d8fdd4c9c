//! The result of decoding one request: samples, exemplars, metadata and a report.

use crate::decode_budget::{DecodeBudget, RECORD_OVERHEAD, label_bytes, sample_bytes};
use crate::event::{
    Exemplar, Labels, MetricMetadata, MetricSample, MetricText, MetricType, Timestamp,
};

use super::Limits;
use super::error::{RemoteWriteError, SeriesProblem};
use super::histogram::NativeHistogram;

/// Everything one remote write request carried.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteBatch {
    /// Samples in request order: float samples, and each native histogram as its
    /// `_count`, `_sum` and `_bucket` samples. Tenant is not set.
    pub samples: Vec<MetricSample>,
    /// Exemplars with the series they belong to.
    pub exemplars: Vec<SeriesExemplar>,
    /// Family metadata (1.0 metadata messages; 2.0 per-series metadata, one entry per
    /// family).
    pub metadata: Vec<MetricMetadata>,
    /// What was written, for the response and for counters.
    pub report: WriteReport,
}

/// An exemplar and the series it was attached to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesExemplar {
    /// Series name.
    pub name: String,
    /// Series labels.
    pub labels: Labels,
    /// The exemplar.
    pub exemplar: Exemplar,
}

/// Counts of what a request carried. A successful decode keeps everything it
/// counts, so these are also the "written" counts of the 2.0 response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteReport {
    /// Series in the request.
    pub series: u64,
    /// Float samples.
    pub samples: u64,
    /// Native histogram samples (each kept as several classic-histogram samples).
    pub histograms: u64,
    /// Samples produced from native histograms (`_count`, `_sum`, `_bucket`).
    pub histogram_samples: u64,
    /// Exemplars.
    pub exemplars: u64,
    /// Metadata entries.
    pub metadata: u64,
    /// 2.0 start (created) timestamps received. They are not stored: Killkrill's
    /// sample model has no start time, so this count lets the operator see it.
    pub start_timestamps_ignored: u64,
}

impl WriteReport {
    /// The remote write 2.0 response headers and their values.
    pub fn response_headers(&self) -> [(&'static str, u64); 3] {
        [
            ("X-Prometheus-Remote-Write-Samples-Written", self.samples),
            (
                "X-Prometheus-Remote-Write-Histograms-Written",
                self.histograms,
            ),
            (
                "X-Prometheus-Remote-Write-Exemplars-Written",
                self.exemplars,
            ),
        ]
    }
}

/// Converts milliseconds to a [`Timestamp`], refusing what 64-bit nanoseconds cannot hold.
pub(super) fn millis(ms: i64, field: impl FnOnce() -> String) -> Result<Timestamp, SeriesProblem> {
    ms.checked_mul(1_000_000)
        .map(Timestamp::from_nanos)
        .ok_or_else(|| SeriesProblem::Timestamp {
            field: field(),
            millis: ms,
        })
}

/// Accumulates a [`WriteBatch`] and enforces the sample limit and the output
/// budget.
pub(super) struct BatchBuilder {
    pub batch: WriteBatch,
    max_samples: usize,
    budget: DecodeBudget,
}

impl BatchBuilder {
    pub fn new(limits: &Limits, capacity: usize) -> Self {
        BatchBuilder {
            batch: WriteBatch {
                samples: Vec::with_capacity(capacity.min(limits.max_samples)),
                ..WriteBatch::default()
            },
            max_samples: limits.max_samples,
            budget: DecodeBudget::new(limits.max_output_bytes),
        }
    }

    /// Charges `count` copies of `each` bytes to the output budget; called before
    /// they are made.
    pub fn charge(
        &mut self,
        series: usize,
        count: usize,
        each: usize,
    ) -> Result<(), RemoteWriteError> {
        self.budget
            .charge(count, each)
            .map_err(|e| RemoteWriteError::TooLargeDecoded { series, max: e.max })
    }

    /// Charges the copy of one series' labels into each of `count` samples.
    pub fn charge_samples(
        &mut self,
        series: usize,
        count: usize,
        name: &str,
        labels: &Labels,
    ) -> Result<(), RemoteWriteError> {
        self.charge(series, count, sample_bytes(name, labels.as_slice()))
    }

    /// Fails when `more` samples would pass the limit.
    pub fn reserve(&mut self, series: usize, more: usize) -> Result<(), RemoteWriteError> {
        if self.batch.samples.len().saturating_add(more) > self.max_samples {
            return Err(RemoteWriteError::TooManySamples {
                series,
                max: self.max_samples,
            });
        }
        self.batch.samples.reserve(more);
        Ok(())
    }

    /// One float sample; the last sample of a series may take the name and labels.
    pub fn sample(
        &mut self,
        name: MetricText,
        labels: Labels,
        kind: MetricType,
        value: f64,
        ts: Timestamp,
    ) {
        self.batch.report.samples += 1;
        self.batch.samples.push(MetricSample {
            tenant: None,
            name,
            labels,
            value,
            timestamp: Some(ts),
            kind,
        });
    }

    /// One native histogram as classic-histogram samples.
    pub fn histogram(
        &mut self,
        series: usize,
        index: usize,
        name: &str,
        labels: &Labels,
        h: &NativeHistogram<'_>,
        ts: Timestamp,
    ) -> Result<(), RemoteWriteError> {
        let bad = |problem: String| RemoteWriteError::Series {
            series,
            problem: SeriesProblem::Histogram { index, problem },
        };
        let classic = h.to_classic().map_err(bad)?;
        let (kind, count, sum) = if h.gauge {
            (MetricType::GaugeHistogram, "_gcount", "_gsum")
        } else {
            (MetricType::Histogram, "_count", "_sum")
        };
        self.reserve(series, classic.buckets.len() + 2)?;
        // `_count`/`_sum` and each bucket (with its `le` label and longer name).
        let each = sample_bytes(name, labels.as_slice()) + 8;
        self.charge(series, 2, each)?;
        let le = classic.buckets.iter().map(|(le, _)| label_bytes("le", le));
        self.charge(series, classic.buckets.len(), each + le.max().unwrap_or(0))?;
        let mut push = |suffix: &str, labels: Labels, value: f64| {
            self.batch.samples.push(MetricSample {
                tenant: None,
                name: compact_str::format_compact!("{name}{suffix}"),
                labels,
                value,
                timestamp: Some(ts),
                kind,
            });
            self.batch.report.histogram_samples += 1;
        };
        push(count, labels.clone(), h.count);
        push(sum, labels.clone(), h.sum);
        for (le, c) in classic.buckets {
            let mut l = labels.clone();
            l.set("le", &le);
            push("_bucket", l, c);
        }
        self.batch.report.histograms += 1;
        Ok(())
    }

    pub fn exemplar(&mut self, name: &str, labels: &Labels, exemplar: Exemplar) {
        self.batch.report.exemplars += 1;
        self.batch.exemplars.push(SeriesExemplar {
            name: name.to_owned(),
            labels: labels.clone(),
            exemplar,
        });
    }

    /// Charges one metadata entry of these sizes.
    pub fn charge_metadata(
        &mut self,
        series: usize,
        texts: &[&str],
    ) -> Result<(), RemoteWriteError> {
        let n = texts
            .iter()
            .fold(RECORD_OVERHEAD, |n, t| n.saturating_add(t.len()));
        self.charge(series, 1, n)
    }

    pub fn metadata(&mut self, m: MetricMetadata) {
        self.batch.report.metadata += 1;
        self.batch.metadata.push(m);
    }
}

/// The family name a series belongs to, for metadata: histogram and summary
/// component suffixes are removed; counters keep their name as sent.
pub(super) fn family_name(series: &str, kind: MetricType) -> &str {
    let suffixes: &[&str] = match kind {
        MetricType::Histogram => &["_bucket", "_count", "_sum", "_created"],
        MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
        MetricType::Summary => &["_count", "_sum", "_created"],
        _ => &[],
    };
    suffixes
        .iter()
        .find_map(|s| series.strip_suffix(s))
        .unwrap_or(series)
}

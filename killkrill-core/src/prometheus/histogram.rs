//! OpenMetrics consistency rules for one histogram or gauge histogram.
//!
//! A histogram's samples come in groups (same labels apart from `le`, same
//! timestamp). Within a group the `le` bounds must increase, the bucket
//! counts must not decrease, the last bucket must be `+Inf`, `_count` must
//! equal that bucket, `_sum` and `_count` come together (`_gsum` and
//! `_gcount` for gauge histograms), and a histogram with negative buckets
//! cannot have a `_sum` (it could not be a sum of non-negative
//! observations). These are the checks of the OpenMetrics reference parser;
//! they run in strict mode only.

use super::grouping::GroupKey;

/// Running state of the current group.
#[derive(Debug, Default)]
pub(crate) struct HistogramCheck<'a> {
    group: Option<(GroupKey<'a>, Option<i128>)>,
    last_line: usize,
    count: Option<f64>,
    bucket: Option<f64>,
    value: f64,
    negative_buckets: bool,
    has_sum: bool,
    has_gsum: bool,
    negative_gsum: bool,
}

/// Which series of the histogram a sample is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Part {
    Bucket(f64),
    Count,
    Sum,
    GSum,
    Other,
}

impl<'a> HistogramCheck<'a> {
    /// Adds one sample. Returns a violation found at this sample or when it
    /// closed the previous group, with the line to report.
    pub(crate) fn add(
        &mut self,
        key: &GroupKey<'a>,
        ts: Option<i128>,
        part: Part,
        value: f64,
        line: usize,
    ) -> Vec<(usize, &'static str)> {
        let mut out = Vec::new();
        let same = matches!(&self.group, Some((g, t)) if g == key && *t == ts);
        if !same {
            if let Some(e) = self.finish() {
                out.push((self.last_line, e));
            }
            *self = HistogramCheck {
                group: Some((key.clone(), ts)),
                ..HistogramCheck::default()
            };
        }
        self.last_line = line;
        match part {
            Part::Bucket(le) => {
                if le < 0.0 {
                    self.negative_buckets = true;
                }
                if self.bucket.is_some_and(|b| le <= b) {
                    out.push((line, "histogram buckets must be in increasing `le` order"));
                }
                if value < self.value {
                    out.push((
                        line,
                        "histogram bucket counts must not decrease as `le` grows",
                    ));
                }
                self.bucket = Some(le);
                self.value = value;
            }
            Part::Count => self.count = Some(value),
            Part::Sum => self.has_sum = true,
            Part::GSum => {
                self.has_gsum = true;
                if value < 0.0 {
                    self.negative_gsum = true;
                }
            }
            Part::Other => {}
        }
        out
    }

    /// Checks the group that is open, if any; call at the family's end.
    pub(crate) fn close(&mut self) -> Option<(usize, &'static str)> {
        let e = self.finish().map(|e| (self.last_line, e));
        *self = HistogramCheck::default();
        e
    }

    fn finish(&self) -> Option<&'static str> {
        self.group.as_ref()?;
        Some(if self.bucket != Some(f64::INFINITY) {
            "histogram group has no `+Inf` bucket as its last bucket"
        } else if self.count.is_some_and(|c| c != self.value) {
            "histogram `_count` does not equal the `+Inf` bucket"
        } else if self.has_sum && self.count.is_none() {
            "histogram has `_sum` without `_count`"
        } else if self.has_gsum && self.count.is_none() {
            "gauge histogram has `_gsum` without `_gcount`"
        } else if !(self.has_sum || self.has_gsum) && self.count.is_some() {
            "histogram has a count without `_sum`/`_gsum`"
        } else if self.negative_buckets && self.has_sum {
            "histogram with negative buckets cannot have `_sum`"
        } else if !self.negative_buckets && self.negative_gsum {
            "gauge histogram has a negative `_gsum` but no negative buckets"
        } else {
            return None;
        })
    }
}

//! Samples as the parser yields them: borrowed from the input.
//!
//! A [`Sample`] points into the input for its name and labels, so parsing a
//! scrape allocates nothing per sample. [`Sample::to_metric_sample`] builds
//! the owned [`MetricSample`] of the event model when the caller keeps it.

use super::error::{ErrorKind, ParseError};
use super::labels::LabelSet;
use crate::event::{Exemplar, MetricSample, MetricText, MetricType, Timestamp};

/// One sample line, borrowed from the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// Series name as written, e.g. `x_bucket`, `x_total`, `x`.
    pub name: &'a str,
    /// Labels as written (including `le` / `quantile`).
    pub labels: LabelSet<'a>,
    /// The value.
    pub value: f64,
    /// Timestamp in nanoseconds (see [`Sample::timestamp_nanos`]);
    /// [`NO_TIMESTAMP`] when the line has none. Kept as a plain `i128` so
    /// that a sample stays small: samples are moved through the iterator.
    pub(crate) ts: i128,
    /// The exemplar on this sample (OpenMetrics). Boxed because exemplars
    /// are rare and would otherwise double the size of every sample.
    pub exemplar: Option<Box<ExemplarRef<'a>>>,
    /// Type of the family the sample belongs to.
    pub kind: MetricType,
    /// Index of the family in [`super::Parser::families`].
    pub family: usize,
    /// 1-based line number.
    pub line: usize,
}

/// An exemplar, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExemplarRef<'a> {
    /// Exemplar labels.
    pub labels: LabelSet<'a>,
    /// Exemplar value.
    pub value: f64,
    /// Exemplar time in nanoseconds, if given.
    pub timestamp_nanos: Option<i128>,
}

/// The stored value of a missing timestamp.
pub(crate) const NO_TIMESTAMP: i128 = i128::MIN;

/// Packs an optional timestamp (`i128::MIN` itself is unreachable: parsed
/// times saturate at `-i128::MAX`).
pub(crate) fn pack_ts(t: Option<i128>) -> i128 {
    t.map_or(NO_TIMESTAMP, |v| v.max(-i128::MAX))
}

/// Converts parsed nanoseconds to a storable timestamp.
pub(crate) fn to_timestamp(ns: i128) -> Option<Timestamp> {
    i64::try_from(ns).ok().map(Timestamp::from_nanos)
}

impl<'a> Sample<'a> {
    /// Timestamp in nanoseconds since the epoch, exactly as written but
    /// saturated at the `i128` range; see [`Sample::timestamp`].
    pub fn timestamp_nanos(&self) -> Option<i128> {
        (self.ts != NO_TIMESTAMP).then_some(self.ts)
    }

    /// The timestamp as the event model stores it.
    ///
    /// # Errors
    /// [`ErrorKind::TimestampOutOfRange`] when the written time is valid in
    /// the format but outside what an i64 of nanoseconds holds (years 1677
    /// to 2262).
    pub fn timestamp(&self) -> Result<Option<Timestamp>, ParseError> {
        match self.timestamp_nanos() {
            None => Ok(None),
            Some(ns) => to_timestamp(ns)
                .map(Some)
                .ok_or_else(|| ParseError::new(self.line, None, ErrorKind::TimestampOutOfRange)),
        }
    }

    /// The owned sample of the event model (no tenant yet).
    ///
    /// # Errors
    /// As [`Sample::timestamp`].
    pub fn to_metric_sample(&self) -> Result<MetricSample, ParseError> {
        Ok(MetricSample {
            tenant: None,
            name: MetricText::from(self.name),
            labels: self.labels.to_labels(),
            value: self.value,
            timestamp: self.timestamp()?,
            kind: self.kind,
        })
    }

    /// The owned exemplar, if the sample has one.
    ///
    /// # Errors
    /// [`ErrorKind::TimestampOutOfRange`] as for samples.
    pub fn to_exemplar(&self) -> Result<Option<Exemplar>, ParseError> {
        let Some(e) = &self.exemplar else {
            return Ok(None);
        };
        let timestamp =
            match e.timestamp_nanos {
                None => None,
                Some(ns) => Some(to_timestamp(ns).ok_or_else(|| {
                    ParseError::new(self.line, None, ErrorKind::TimestampOutOfRange)
                })?),
            };
        Ok(Some(Exemplar {
            labels: e.labels.to_labels(),
            value: e.value,
            timestamp,
        }))
    }
}

#[cfg(test)]
mod tests {
    /// Samples are moved through the iterator; keep them small.
    #[test]
    fn samples_stay_small() {
        let size = size_of::<Option<Result<super::Sample<'_>, super::ParseError>>>();
        assert!(size <= 112, "{size} bytes");
    }
}

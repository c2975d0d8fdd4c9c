//! Remote write 1.0: `prometheus.WriteRequest` into samples.
//!
//! 1.0 series carry their labels inline; metadata travels in the same message but
//! usually in separate requests (Prometheus sends it every minute), so a sample's
//! type is known only when its family's metadata is in the same request, and is
//! `unknown` otherwise.

use std::collections::HashMap;

use killkrill_proto::prometheus as pb;

use crate::decode_budget::label_bytes;
use crate::event::{Exemplar, Label, MetricMetadata, MetricType};

use super::Limits;
use super::batch::{BatchBuilder, WriteBatch, millis};
use super::error::RemoteWriteError;
use super::histogram::NativeHistogram;
use super::series_labels::{check_label, exemplar_labels, split_name};

fn metric_type(t: pb::metric_metadata::MetricType) -> MetricType {
    use pb::metric_metadata::MetricType as P;
    match t {
        P::Unknown => MetricType::Unknown,
        P::Counter => MetricType::Counter,
        P::Gauge => MetricType::Gauge,
        P::Histogram => MetricType::Histogram,
        P::Gaugehistogram => MetricType::GaugeHistogram,
        P::Summary => MetricType::Summary,
        P::Info => MetricType::Info,
        P::Stateset => MetricType::StateSet,
    }
}

/// The type of series `name` from the request's metadata, trying the family name
/// with the suffixes that family type gives its series.
pub(super) fn lookup_type(types: &HashMap<String, MetricType>, name: &str) -> MetricType {
    if let Some(t) = types.get(name) {
        return *t;
    }
    for (suffix, fits) in [
        (
            "_bucket",
            &[MetricType::Histogram, MetricType::GaugeHistogram][..],
        ),
        ("_count", &[MetricType::Histogram, MetricType::Summary]),
        ("_sum", &[MetricType::Histogram, MetricType::Summary]),
        ("_gcount", &[MetricType::GaugeHistogram]),
        ("_gsum", &[MetricType::GaugeHistogram]),
        (
            "_created",
            &[
                MetricType::Histogram,
                MetricType::Summary,
                MetricType::Counter,
            ],
        ),
        ("_total", &[MetricType::Counter]),
        ("_info", &[MetricType::Info]),
    ] {
        if let Some(t) = name.strip_suffix(suffix).and_then(|f| types.get(f))
            && fits.contains(t)
        {
            return *t;
        }
    }
    MetricType::Unknown
}

fn native<'a>(h: &'a pb::Histogram) -> NativeHistogram<'a> {
    use pb::histogram::{Count, ZeroCount};
    NativeHistogram {
        count: match h.count {
            Some(Count::CountInt(c)) => c as f64,
            Some(Count::CountFloat(c)) => c,
            None => 0.0,
        },
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: match h.zero_count {
            Some(ZeroCount::ZeroCountInt(c)) => c as f64,
            Some(ZeroCount::ZeroCountFloat(c)) => c,
            None => 0.0,
        },
        negative_spans: h
            .negative_spans
            .iter()
            .map(|s| (s.offset, s.length))
            .collect(),
        negative_deltas: &h.negative_deltas,
        negative_counts: &h.negative_counts,
        positive_spans: h
            .positive_spans
            .iter()
            .map(|s| (s.offset, s.length))
            .collect(),
        positive_deltas: &h.positive_deltas,
        positive_counts: &h.positive_counts,
        custom_values: &h.custom_values,
        gauge: h.reset_hint() == pb::histogram::ResetHint::Gauge,
    }
}

/// The request's metadata as [`MetricMetadata`] entries, and each family's type for
/// typing the request's samples.
pub(super) fn add_metadata(
    b: &mut BatchBuilder,
    metadata: Vec<pb::MetricMetadata>,
) -> HashMap<String, MetricType> {
    let mut types = HashMap::new();
    for m in metadata {
        let kind = metric_type(m.r#type());
        types.insert(m.metric_family_name.clone(), kind);
        b.metadata(MetricMetadata {
            family: m.metric_family_name,
            kind,
            help: Some(m.help).filter(|h| !h.is_empty()),
            unit: Some(m.unit).filter(|u| !u.is_empty()),
        });
    }
    types
}

/// Adds one series: its float samples, exemplars and native histograms.
#[allow(clippy::too_many_arguments)]
pub(super) fn add_series(
    b: &mut BatchBuilder,
    si: usize,
    labels: Vec<Label>,
    samples: &[(f64, i64)],
    exemplars: &[pb::Exemplar],
    histograms: &[pb::Histogram],
    types: &HashMap<String, MetricType>,
    limits: &Limits,
) -> Result<(), RemoteWriteError> {
    let bad = |problem| RemoteWriteError::Series {
        series: si,
        problem,
    };
    let (name, labels) = split_name(labels, limits).map_err(bad)?;
    let kind = lookup_type(types, &name);
    b.reserve(si, samples.len())?;
    // Every sample and exemplar gets its own copy of the name and labels.
    b.charge_samples(si, samples.len() + exemplars.len(), &name, &labels)?;
    for (i, e) in exemplars.iter().enumerate() {
        let mut own = 0usize;
        for l in &e.labels {
            check_label(&l.name, &l.value, limits).map_err(bad)?;
            own = own.saturating_add(label_bytes(&l.name, &l.value));
        }
        b.charge(si, 1, own)?;
        let el = e
            .labels
            .iter()
            .map(|l| Label {
                name: l.name.as_str().into(),
                value: l.value.as_str().into(),
            })
            .collect();
        let exemplar = Exemplar {
            labels: exemplar_labels(el).map_err(bad)?,
            value: e.value,
            timestamp: Some(millis(e.timestamp, || format!("exemplars[{i}]")).map_err(bad)?),
        };
        b.exemplar(&name, &labels, exemplar);
    }
    for (i, h) in histograms.iter().enumerate() {
        let t = millis(h.timestamp, || format!("histograms[{i}]")).map_err(bad)?;
        b.histogram(si, i, &name, &labels, &native(h), t)?;
    }
    let n = samples.len();
    let (mut name, mut labels) = (Some(name), Some(labels));
    for (i, &(value, ts)) in samples.iter().enumerate() {
        let t = millis(ts, || format!("samples[{i}]")).map_err(bad)?;
        // The last sample takes the name and labels; earlier ones clone them.
        let (n_, l_) = if i + 1 == n {
            (
                name.take().unwrap_or_default(),
                labels.take().unwrap_or_default(),
            )
        } else {
            (
                name.clone().unwrap_or_default(),
                labels.clone().unwrap_or_default(),
            )
        };
        b.sample(n_, l_, kind, value, t);
    }
    Ok(())
}

/// Converts a decoded 1.0 request.
pub(super) fn convert(
    req: pb::WriteRequest,
    limits: &Limits,
) -> Result<WriteBatch, RemoteWriteError> {
    if req.timeseries.len() > limits.max_series {
        return Err(RemoteWriteError::TooManySeries {
            max: limits.max_series,
        });
    }
    let expected: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
    let mut b = BatchBuilder::new(limits, expected);
    b.batch.report.series = req.timeseries.len() as u64;
    let types = add_metadata(&mut b, req.metadata);
    for (si, ts) in req.timeseries.into_iter().enumerate() {
        let labels = ts
            .labels
            .into_iter()
            .map(|l| Label {
                name: l.name.into(),
                value: l.value.into(),
            })
            .collect();
        let samples: Vec<(f64, i64)> = ts.samples.iter().map(|s| (s.value, s.timestamp)).collect();
        add_series(
            &mut b,
            si,
            labels,
            &samples,
            &ts.exemplars,
            &ts.histograms,
            &types,
            limits,
        )?;
    }
    Ok(b.batch)
}

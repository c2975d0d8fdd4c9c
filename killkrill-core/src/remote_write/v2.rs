//! Remote write 2.0: `io.prometheus.write.v2.Request` into samples.
//!
//! 2.0 interns every string in one `symbols` table per request and refers to it by
//! index, so each reference is checked against the table and an error names the
//! series and the field (`labels_refs[3]`, `metadata.help_ref`). Metadata comes with
//! each series, so samples are typed, and one metadata entry per family is emitted.

use std::collections::HashSet;

use killkrill_proto::prometheus_v2 as pb;

use crate::decode_budget::label_bytes;
use crate::event::{Exemplar, Label, MetricMetadata, MetricType};

use super::Limits;
use super::batch::{BatchBuilder, WriteBatch, family_name, millis};
use super::error::{RemoteWriteError, SeriesProblem};
use super::histogram::NativeHistogram;
use super::series_labels::{check_label, exemplar_labels, split_name};

fn metric_type(t: pb::metadata::MetricType) -> MetricType {
    use pb::metadata::MetricType as P;
    match t {
        P::Unspecified => MetricType::Unknown,
        P::Counter => MetricType::Counter,
        P::Gauge => MetricType::Gauge,
        P::Histogram => MetricType::Histogram,
        P::Gaugehistogram => MetricType::GaugeHistogram,
        P::Summary => MetricType::Summary,
        P::Info => MetricType::Info,
        P::Stateset => MetricType::StateSet,
    }
}

fn symbol(
    symbols: &[String],
    r: u32,
    field: impl FnOnce() -> String,
) -> Result<&str, SeriesProblem> {
    symbols
        .get(r as usize)
        .map(String::as_str)
        .ok_or_else(|| SeriesProblem::SymbolOutOfRange {
            field: field(),
            reference: r,
            symbols: symbols.len(),
        })
}

/// Checks a `labels_refs` list — name/value pairs, every reference in the table,
/// every name and value within its length limit — and returns the bytes its
/// labels will take once copied, without copying anything.
fn check_refs(
    symbols: &[String],
    refs: &[u32],
    field: &str,
    limits: &Limits,
) -> Result<usize, SeriesProblem> {
    if !refs.len().is_multiple_of(2) {
        return Err(SeriesProblem::OddRefs {
            field: field.to_owned(),
            len: refs.len(),
        });
    }
    let mut bytes = 0usize;
    for (i, pair) in refs.chunks_exact(2).enumerate() {
        let name = symbol(symbols, pair[0], || format!("{field}[{}]", 2 * i))?;
        let value = symbol(symbols, pair[1], || format!("{field}[{}]", 2 * i + 1))?;
        check_label(name, value, limits)?;
        bytes = bytes.saturating_add(label_bytes(name, value));
    }
    Ok(bytes)
}

/// Resolves a `labels_refs` list into labels: checked by [`check_refs`], its
/// copies charged to the budget, then copied.
fn resolve_labels(
    b: &mut BatchBuilder,
    si: usize,
    symbols: &[String],
    refs: &[u32],
    field: &str,
    limits: &Limits,
) -> Result<Vec<Label>, RemoteWriteError> {
    let bad = |problem| RemoteWriteError::Series {
        series: si,
        problem,
    };
    let bytes = check_refs(symbols, refs, field, limits).map_err(bad)?;
    b.charge(si, 1, bytes)?;
    let text = |r: u32| symbols.get(r as usize).map_or("", String::as_str);
    Ok(refs
        .chunks_exact(2)
        .map(|pair| Label {
            name: text(pair[0]).into(),
            value: text(pair[1]).into(),
        })
        .collect())
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

/// Converts a decoded 2.0 request.
pub(super) fn convert(req: pb::Request, limits: &Limits) -> Result<WriteBatch, RemoteWriteError> {
    if req.timeseries.len() > limits.max_series {
        return Err(RemoteWriteError::TooManySeries {
            max: limits.max_series,
        });
    }
    let symbols = &req.symbols;
    let expected: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
    let mut b = BatchBuilder::new(limits, expected);
    b.batch.report.series = req.timeseries.len() as u64;
    let mut families: HashSet<String> = HashSet::new();
    for (si, ts) in req.timeseries.iter().enumerate() {
        let bad = |problem| RemoteWriteError::Series {
            series: si,
            problem,
        };
        if ts.labels_refs.len() / 2 > limits.max_labels_per_series {
            return Err(bad(SeriesProblem::TooManyLabels {
                count: ts.labels_refs.len() / 2,
                max: limits.max_labels_per_series,
            }));
        }
        let ls = resolve_labels(&mut b, si, symbols, &ts.labels_refs, "labels_refs", limits)?;
        let (name, labels) = split_name(ls, limits).map_err(bad)?;
        if !ts.samples.is_empty() && !ts.histograms.is_empty() {
            return Err(bad(SeriesProblem::SamplesAndHistograms));
        }
        let mut kind = MetricType::Unknown;
        if let Some(md) = &ts.metadata {
            kind = metric_type(md.r#type());
            let help = symbol(symbols, md.help_ref, || "metadata.help_ref".into()).map_err(bad)?;
            let unit = symbol(symbols, md.unit_ref, || "metadata.unit_ref".into()).map_err(bad)?;
            let family = family_name(&name, kind);
            let useful = kind != MetricType::Unknown || !help.is_empty() || !unit.is_empty();
            if useful && !families.contains(family) {
                b.charge_metadata(si, &[family, family, help, unit])?;
                families.insert(family.to_owned());
                b.metadata(MetricMetadata {
                    family: family.to_owned(),
                    kind,
                    help: Some(help.to_owned()).filter(|h| !h.is_empty()),
                    unit: Some(unit.to_owned()).filter(|u| !u.is_empty()),
                });
            }
        }
        b.reserve(si, ts.samples.len())?;
        // Every sample and exemplar gets its own copy of the name and labels.
        b.charge_samples(si, ts.samples.len() + ts.exemplars.len(), &name, &labels)?;
        for (i, e) in ts.exemplars.iter().enumerate() {
            let field = format!("exemplars[{i}].labels_refs");
            let el = resolve_labels(&mut b, si, symbols, &e.labels_refs, &field, limits)?;
            let exemplar = Exemplar {
                labels: exemplar_labels(el).map_err(bad)?,
                value: e.value,
                timestamp: Some(millis(e.timestamp, || format!("exemplars[{i}]")).map_err(bad)?),
            };
            b.exemplar(&name, &labels, exemplar);
        }
        for (i, h) in ts.histograms.iter().enumerate() {
            let t = millis(h.timestamp, || format!("histograms[{i}]")).map_err(bad)?;
            if h.start_timestamp != 0 {
                b.batch.report.start_timestamps_ignored += 1;
            }
            b.histogram(si, i, &name, &labels, &native(h), t)?;
        }
        let n = ts.samples.len();
        let (mut name, mut labels) = (Some(name), Some(labels));
        for (i, s) in ts.samples.iter().enumerate() {
            let t = millis(s.timestamp, || format!("samples[{i}]")).map_err(bad)?;
            if s.start_timestamp != 0 {
                b.batch.report.start_timestamps_ignored += 1;
            }
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
            b.sample(n_, l_, kind, s.value, t);
        }
    }
    Ok(b.batch)
}

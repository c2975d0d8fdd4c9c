//! Writing families back out in the text format 0.0.4 or OpenMetrics 1.0.
//!
//! The output is what the parser reads back to the same families: values
//! are written in their shortest round-trip form (`NaN`, `+Inf`, `-Inf`
//! spelled as both formats want), label values and HELP text escaped, and
//! timestamps exact (milliseconds in text, seconds with up to nine decimals
//! in OpenMetrics).
//!
//! The text format cannot say everything OpenMetrics can. Like the
//! reference client libraries, the text encoder writes a counter's `_total`
//! series and any `_created`/`_info` series as families of their own name
//! (counter for `_total`, gauge otherwise), info and stateset families as
//! gauges, and drops `# UNIT` (the text format has none). Exemplars and
//! timestamps finer than a millisecond have no text form and are errors,
//! not silent losses.

use std::fmt::Write;

use super::escape::{escape_help, escape_label_value};
use super::family::{FamilySample, MetricFamily};
use super::lexer::{is_valid_label_name, is_valid_metric_name};
use super::parser::Format;
use crate::event::{Labels, MetricType};

/// Why a family could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A family or series name that is not a metric name.
    #[error("invalid metric name `{0}`")]
    InvalidMetricName(String),
    /// A label name that is not a label name.
    #[error("invalid label name `{0}` on `{1}`")]
    InvalidLabelName(String, String),
    /// A timestamp the text format cannot hold.
    #[error(
        "timestamp of `{0}` is not a whole number of milliseconds; the text format has millisecond timestamps"
    )]
    SubMillisecondTimestamp(String),
    /// An exemplar in the text format.
    #[error("exemplar on `{0}`: the text format has no exemplars")]
    ExemplarInText(String),
}

/// Appends `families` to `out` in `format` (OpenMetrics output ends with
/// `# EOF`).
///
/// # Errors
/// [`EncodeError`] for names the formats cannot carry, and in the text
/// format for exemplars and sub-millisecond timestamps. `out` may then hold
/// a partial exposition.
pub fn encode(
    families: &[MetricFamily],
    format: Format,
    out: &mut String,
) -> Result<(), EncodeError> {
    for f in families {
        check_names(f)?;
        match format {
            Format::Text => text_family(f, out)?,
            Format::OpenMetrics => om_family(f, out),
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    Ok(())
}

fn check_names(f: &MetricFamily) -> Result<(), EncodeError> {
    if !is_valid_metric_name(&f.metadata.family) {
        return Err(EncodeError::InvalidMetricName(f.metadata.family.clone()));
    }
    for s in &f.samples {
        let name = &s.sample.name;
        if !is_valid_metric_name(name) {
            return Err(EncodeError::InvalidMetricName(name.to_string()));
        }
        let exemplar_labels = s.exemplar.iter().flat_map(|e| e.labels.iter());
        for l in s.sample.labels.iter().chain(exemplar_labels) {
            if !is_valid_label_name(&l.name) || l.name == "__name__" {
                return Err(EncodeError::InvalidLabelName(
                    l.name.to_string(),
                    name.to_string(),
                ));
            }
        }
    }
    Ok(())
}

/// Text type name.
fn text_type(kind: MetricType) -> &'static str {
    match kind {
        MetricType::Counter => "counter",
        MetricType::Gauge | MetricType::Info | MetricType::StateSet => "gauge",
        MetricType::Histogram => "histogram",
        MetricType::GaugeHistogram => "gauge_histogram",
        MetricType::Summary => "summary",
        MetricType::Unknown => "untyped",
    }
}

/// The text family a series of `f` belongs to: its own name and type when
/// the text parser would not attach it to `f`.
fn text_home<'a>(f: &'a MetricFamily, series: &'a str) -> (&'a str, MetricType) {
    let family = f.metadata.family.as_str();
    let kind = f.metadata.kind;
    let Some(suffix) = series.strip_prefix(family) else {
        return (series, MetricType::Gauge);
    };
    let attached: &[&str] = match kind {
        MetricType::Summary => &["", "_sum", "_count"],
        MetricType::Histogram => &["_bucket", "_sum", "_count"],
        MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum", "_count", "_sum"],
        _ => &[""],
    };
    if attached.contains(&suffix) {
        (family, kind)
    } else if kind == MetricType::Counter && suffix == "_total" {
        (series, MetricType::Counter)
    } else {
        (series, MetricType::Gauge)
    }
}

fn text_family(f: &MetricFamily, out: &mut String) -> Result<(), EncodeError> {
    // Group the series by the text family they land in, in first-seen order.
    let mut homes: Vec<(&str, MetricType, Vec<&FamilySample>)> = Vec::new();
    for s in &f.samples {
        let (name, kind) = text_home(f, &s.sample.name);
        match homes.iter_mut().find(|h| h.0 == name) {
            Some(h) => h.2.push(s),
            None => homes.push((name, kind, vec![s])),
        }
    }
    if homes.is_empty() {
        homes.push((&f.metadata.family, f.metadata.kind, Vec::new()));
    }
    for (name, kind, samples) in homes {
        if let Some(help) = &f.metadata.help {
            out.push_str("# HELP ");
            out.push_str(name);
            out.push(' ');
            escape_help(out, help, false);
            out.push('\n');
        }
        out.push_str("# TYPE ");
        out.push_str(name);
        out.push(' ');
        out.push_str(text_type(kind));
        out.push('\n');
        for s in samples {
            let m = &s.sample;
            if s.exemplar.is_some() {
                return Err(EncodeError::ExemplarInText(m.name.to_string()));
            }
            series(out, &m.name, &m.labels, m.value);
            if let Some(t) = m.timestamp {
                let ns = t.as_nanos();
                if ns % 1_000_000 != 0 {
                    return Err(EncodeError::SubMillisecondTimestamp(m.name.to_string()));
                }
                write!(out, " {}", ns / 1_000_000).expect("writing to a String cannot fail");
            }
            out.push('\n');
        }
    }
    Ok(())
}

fn om_family(f: &MetricFamily, out: &mut String) {
    let name = &f.metadata.family;
    out.push_str("# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(f.metadata.kind.name());
    out.push('\n');
    if let Some(unit) = &f.metadata.unit {
        out.push_str("# UNIT ");
        out.push_str(name);
        out.push(' ');
        out.push_str(unit);
        out.push('\n');
    }
    if let Some(help) = &f.metadata.help {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape_help(out, help, true);
        out.push('\n');
    }
    for s in &f.samples {
        let m = &s.sample;
        series(out, &m.name, &m.labels, m.value);
        if let Some(t) = m.timestamp {
            out.push(' ');
            seconds(out, i128::from(t.as_nanos()));
        }
        if let Some(e) = &s.exemplar {
            out.push_str(" # ");
            labels(out, &e.labels, true);
            out.push(' ');
            value(out, e.value);
            if let Some(t) = e.timestamp {
                out.push(' ');
                seconds(out, i128::from(t.as_nanos()));
            }
        }
        out.push('\n');
    }
}

fn series(out: &mut String, name: &str, l: &Labels, v: f64) {
    out.push_str(name);
    labels(out, l, false);
    out.push(' ');
    value(out, v);
}

fn labels(out: &mut String, l: &Labels, always: bool) {
    if l.is_empty() && !always {
        return;
    }
    out.push('{');
    for (i, label) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&label.name);
        out.push_str("=\"");
        escape_label_value(out, &label.value);
        out.push('"');
    }
    out.push('}');
}

/// Shortest round-trip form; `NaN`, `+Inf`, `-Inf`.
fn value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let start = out.len();
        write!(out, "{v:?}").expect("writing to a String cannot fail");
        if out[start..].ends_with(".0") {
            out.truncate(out.len() - 2);
        }
    }
}

/// Nanoseconds as exact decimal seconds.
fn seconds(out: &mut String, ns: i128) {
    if ns < 0 {
        out.push('-');
    }
    let a = ns.unsigned_abs();
    let (s, frac) = (a / 1_000_000_000, a % 1_000_000_000);
    write!(out, "{s}").expect("writing to a String cannot fail");
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

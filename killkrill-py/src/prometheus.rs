//! `killkrill.parse_prometheus`: Prometheus text format 0.0.4 and
//! OpenMetrics 1.0 into families and samples, strict or lenient, and
//! `Exposition.encode` back to text.

use killkrill_core::prometheus::{
    ErrorKind, FamilySample, Format, MetricFamily, Mode, ParseError, ParseOptions, Parser, encode,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{PrometheusParseError, obj, with_attrs};
use crate::input::Input;
use crate::metric::{PyMetricMetadata, PyMetricSample, exemplar_dict};
use crate::record::serialize_to_py;

fn kind_name(k: &ErrorKind) -> &'static str {
    match k {
        ErrorKind::Expected { .. } => "expected",
        ErrorKind::InvalidEscape(_) => "invalid_escape",
        ErrorKind::DuplicateLabel(_) => "duplicate_label",
        ErrorKind::ReservedLabelName => "reserved_label_name",
        ErrorKind::InvalidUtf8 => "invalid_utf8",
        ErrorKind::UnknownType { .. } => "unknown_type",
        ErrorKind::DuplicateMetadata { .. } => "duplicate_metadata",
        ErrorKind::MetadataAfterSamples { .. } => "metadata_after_samples",
        ErrorKind::ClashingName { .. } => "clashing_name",
        ErrorKind::UnitMismatch { .. } => "unit_mismatch",
        ErrorKind::UnitNotAllowed { .. } => "unit_not_allowed",
        ErrorKind::MissingEof => "missing_eof",
        ErrorKind::TextAfterEof => "text_after_eof",
        ErrorKind::BlankLine => "blank_line",
        ErrorKind::MissingFinalNewline => "missing_final_newline",
        ErrorKind::Rule(_) => "rule",
        ErrorKind::TimestampOutOfRange => "timestamp_out_of_range",
        _ => "other",
    }
}

fn prometheus_error(py: Python<'_>, e: &ParseError) -> PyErr {
    with_attrs(
        py,
        PrometheusParseError::new_err(e.to_string()),
        &[
            ("line", obj(py, e.line)),
            ("column", obj(py, e.column)),
            ("kind", obj(py, kind_name(&e.kind))),
        ],
    )
}

fn format_by_name(name: &str) -> PyResult<Format> {
    match name {
        "text" | "prometheus" => Ok(Format::Text),
        "openmetrics" => Ok(Format::OpenMetrics),
        other => Err(PyValueError::new_err(format!(
            "unknown exposition format {other:?}: expected \"text\" or \"openmetrics\""
        ))),
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Text => "text",
        Format::OpenMetrics => "openmetrics",
    }
}

/// Parses the whole input; errors are collected (lenient mode goes on with
/// the next line, strict mode stops at the first).
fn parse(input: &[u8], options: ParseOptions) -> (Vec<MetricFamily>, Vec<ParseError>) {
    let mut errors = Vec::new();
    let mut parser = match Parser::from_bytes(input, options) {
        Ok(p) => p,
        Err(e) => return (Vec::new(), vec![e]),
    };
    let mut samples: Vec<Vec<FamilySample>> = Vec::new();
    for item in parser.by_ref() {
        let s = match item {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let converted = s
            .to_metric_sample()
            .and_then(|sample| Ok((sample, s.to_exemplar()?)));
        match converted {
            Ok((sample, exemplar)) => {
                if samples.len() <= s.family {
                    samples.resize_with(s.family + 1, Vec::new);
                }
                samples[s.family].push(FamilySample { sample, exemplar });
            }
            Err(e) => {
                errors.push(e);
                if options.mode == Mode::Strict {
                    break;
                }
            }
        }
    }
    samples.resize_with(parser.families().len(), Vec::new);
    let families = parser
        .families()
        .iter()
        .zip(samples)
        .map(|(f, samples)| MetricFamily {
            metadata: f.to_metadata(),
            samples,
        })
        .collect();
    (families, errors)
}

/// One metric family: metadata and its samples in input order.
#[pyclass(module = "killkrill", name = "MetricFamily", frozen)]
pub(crate) struct PyMetricFamily {
    inner: MetricFamily,
}

#[pymethods]
impl PyMetricFamily {
    #[getter]
    fn name(&self) -> &str {
        &self.inner.metadata.family
    }

    #[getter]
    fn r#type(&self) -> &'static str {
        self.inner.metadata.kind.name()
    }

    #[getter]
    fn help(&self) -> Option<&str> {
        self.inner.metadata.help.as_deref()
    }

    #[getter]
    fn unit(&self) -> Option<&str> {
        self.inner.metadata.unit.as_deref()
    }

    #[getter]
    fn metadata(&self) -> PyMetricMetadata {
        PyMetricMetadata {
            inner: self.inner.metadata.clone(),
        }
    }

    #[getter]
    fn samples(&self) -> Vec<PyMetricSample> {
        self.inner
            .samples
            .iter()
            .map(|s| PyMetricSample::new(s.sample.clone(), s.exemplar.clone()))
            .collect()
    }

    /// Metadata keys (`family`, `type`, `help`, `unit`) plus `samples`:
    /// each sample's canonical JSON, with `exemplar` added when it has one.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        family_dict(py, &self.inner)
    }

    fn __len__(&self) -> usize {
        self.inner.samples.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "MetricFamily(name={:?}, type={:?}, samples={})",
            self.inner.metadata.family,
            self.inner.metadata.kind.name(),
            self.inner.samples.len()
        )
    }
}

fn family_dict<'py>(py: Python<'py>, f: &MetricFamily) -> PyResult<Bound<'py, PyAny>> {
    let d = serialize_to_py(py, &f.metadata)?;
    let samples = PyList::empty(py);
    for s in &f.samples {
        let sd = serialize_to_py(py, &s.sample)?;
        if let Some(e) = &s.exemplar {
            sd.set_item("exemplar", exemplar_dict(py, e)?)?;
        }
        samples.append(sd)?;
    }
    d.set_item("samples", samples)?;
    Ok(d)
}

/// The result of `parse_prometheus`.
#[pyclass(module = "killkrill", name = "Exposition", frozen)]
pub(crate) struct PyExposition {
    families: Vec<MetricFamily>,
    errors: Vec<ParseError>,
    format: Format,
}

#[pymethods]
impl PyExposition {
    /// Families in order of first appearance (families without samples
    /// are kept: they carry metadata).
    #[getter]
    fn families(&self) -> Vec<PyMetricFamily> {
        self.families
            .iter()
            .map(|f| PyMetricFamily { inner: f.clone() })
            .collect()
    }

    /// Every sample of every family, in family order.
    #[getter]
    fn samples(&self) -> Vec<PyMetricSample> {
        self.families
            .iter()
            .flat_map(|f| &f.samples)
            .map(|s| PyMetricSample::new(s.sample.clone(), s.exemplar.clone()))
            .collect()
    }

    /// Lenient mode: one `PrometheusParseError` per line that was skipped
    /// (not raised). Always empty in strict mode, which raises instead.
    #[getter]
    fn errors(&self, py: Python<'_>) -> Vec<Py<PyAny>> {
        self.errors
            .iter()
            .map(|e| prometheus_error(py, e).into_value(py).into_any())
            .collect()
    }

    #[getter]
    fn format(&self) -> &'static str {
        format_name(self.format)
    }

    /// Writes the families back as `"text"` or `"openmetrics"` (default:
    /// the format parsed); parsing the output gives the same families.
    #[pyo3(signature = (format=None))]
    fn encode(&self, format: Option<&str>) -> PyResult<String> {
        let format = format.map_or(Ok(self.format), format_by_name)?;
        let mut out = String::new();
        encode(&self.families, format, &mut out)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(out)
    }

    /// `{"families": [family.to_dict(), ...]}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let list = PyList::empty(py);
        for f in &self.families {
            list.append(family_dict(py, f)?)?;
        }
        d.set_item("families", list)?;
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    fn __repr__(&self) -> String {
        format!(
            "Exposition(format={:?}, families={}, samples={}, errors={})",
            format_name(self.format),
            self.families.len(),
            self.__len__(),
            self.errors.len()
        )
    }
}

/// Parses an exposition (`bytes` or `str`) with the GIL released.
/// `format`: `"text"` (0.0.4) or `"openmetrics"`. Strict mode (default)
/// raises `PrometheusParseError` at the first error; lenient mode accepts
/// harmless deviations, skips bad lines and lists them in `errors`.
#[pyfunction]
#[pyo3(signature = (data, *, format="text", strict=true))]
fn parse_prometheus(
    py: Python<'_>,
    data: Input<'_>,
    format: &str,
    strict: bool,
) -> PyResult<PyExposition> {
    let format = format_by_name(format)?;
    let options = ParseOptions {
        format,
        mode: if strict { Mode::Strict } else { Mode::Lenient },
    };
    let bytes = data.bytes();
    let (families, errors) = py.detach(|| parse(bytes, options));
    if strict && let Some(e) = errors.first() {
        return Err(prometheus_error(py, e));
    }
    Ok(PyExposition {
        families,
        errors,
        format,
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyExposition>()?;
    m.add_class::<PyMetricFamily>()?;
    m.add_function(wrap_pyfunction!(parse_prometheus, m)?)?;
    Ok(())
}

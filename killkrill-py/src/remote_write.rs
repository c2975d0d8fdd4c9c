//! `killkrill.decode_remote_write`: Prometheus remote write 1.0 / 2.0
//! bodies (snappy block + protobuf) into samples, exemplars and metadata.

use killkrill_core::remote_write::{
    Limits, RemoteWriteError as CoreError, RemoteWriteVersion, SeriesProblem, WriteBatch, decode,
    decode_uncompressed,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{RemoteWriteError, obj, with_attrs};
use crate::input::Input;
use crate::metric::{PyExemplar, PyMetricMetadata, PyMetricSample, exemplar_dict, labels_to_py};
use crate::record::serialize_to_py;

fn kind_name(e: &CoreError) -> &'static str {
    match e {
        CoreError::Snappy(_) => "snappy",
        CoreError::Protobuf { .. } => "protobuf",
        CoreError::TooManySeries { .. } => "too_many_series",
        CoreError::TooManySamples { .. } => "too_many_samples",
        CoreError::TooLargeDecoded { .. } => "too_large_decoded",
        CoreError::Series { problem, .. } => match problem {
            SeriesProblem::MissingName => "missing_name",
            SeriesProblem::EmptyLabelName(_) => "empty_label_name",
            SeriesProblem::DuplicateLabel(_) => "duplicate_label",
            SeriesProblem::TooManyLabels { .. } => "too_many_labels",
            SeriesProblem::LabelTooLong { .. } => "label_too_long",
            SeriesProblem::OddRefs { .. } => "odd_refs",
            SeriesProblem::SymbolOutOfRange { .. } => "symbol_out_of_range",
            SeriesProblem::Timestamp { .. } => "timestamp",
            SeriesProblem::SamplesAndHistograms => "samples_and_histograms",
            SeriesProblem::Histogram { .. } => "histogram",
            #[allow(unreachable_patterns)]
            _ => "series",
        },
    }
}

fn remote_write_error(py: Python<'_>, e: &CoreError) -> PyErr {
    let series = match e {
        CoreError::Series { series, .. }
        | CoreError::TooManySamples { series, .. }
        | CoreError::TooLargeDecoded { series, .. } => Some(*series),
        _ => None,
    };
    with_attrs(
        py,
        RemoteWriteError::new_err(e.to_string()),
        &[("series", obj(py, series)), ("kind", obj(py, kind_name(e)))],
    )
}

fn version_by_name(v: &str) -> PyResult<RemoteWriteVersion> {
    match v {
        "1" | "1.0" | "v1" => Ok(RemoteWriteVersion::V1),
        "2" | "2.0" | "v2" => Ok(RemoteWriteVersion::V2),
        other => Err(PyValueError::new_err(format!(
            "unknown remote write version {other:?}: expected \"1.0\" or \"2.0\""
        ))),
    }
}

fn version_name(v: RemoteWriteVersion) -> &'static str {
    match v {
        RemoteWriteVersion::V1 => "1.0",
        RemoteWriteVersion::V2 => "2.0",
    }
}

/// The version a `Content-Type` header names (`"1.0"` or `"2.0"`; None,
/// no header, is 1.0). Raises `ValueError` for another media type or an
/// unknown `proto`.
#[pyfunction]
#[pyo3(signature = (content_type))]
fn remote_write_version(content_type: Option<&str>) -> PyResult<&'static str> {
    RemoteWriteVersion::from_content_type(content_type)
        .map(version_name)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// A decoded remote write request.
#[pyclass(module = "killkrill", name = "WriteBatch", frozen)]
pub(crate) struct PyWriteBatch {
    inner: WriteBatch,
    version: RemoteWriteVersion,
}

#[pymethods]
impl PyWriteBatch {
    /// Float samples and the classic series of native histograms.
    #[getter]
    fn samples(&self) -> Vec<PyMetricSample> {
        self.inner
            .samples
            .iter()
            .map(|s| PyMetricSample::new(s.clone(), None))
            .collect()
    }

    /// `[(series_name, labels, Exemplar), ...]`.
    #[getter]
    fn exemplars<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for e in &self.inner.exemplars {
            list.append((
                e.name.as_str(),
                labels_to_py(py, &e.labels)?,
                PyExemplar {
                    inner: e.exemplar.clone(),
                },
            ))?;
        }
        Ok(list)
    }

    #[getter]
    fn metadata(&self) -> Vec<PyMetricMetadata> {
        self.inner
            .metadata
            .iter()
            .map(|m| PyMetricMetadata { inner: m.clone() })
            .collect()
    }

    /// Counts: series, samples, histograms, histogram_samples, exemplars,
    /// metadata, start_timestamps_ignored.
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = &self.inner.report;
        let d = PyDict::new(py);
        d.set_item("series", r.series)?;
        d.set_item("samples", r.samples)?;
        d.set_item("histograms", r.histograms)?;
        d.set_item("histogram_samples", r.histogram_samples)?;
        d.set_item("exemplars", r.exemplars)?;
        d.set_item("metadata", r.metadata)?;
        d.set_item("start_timestamps_ignored", r.start_timestamps_ignored)?;
        Ok(d)
    }

    /// The 2.0 response headers (`X-Prometheus-Remote-Write-*-Written`).
    #[getter]
    fn response_headers(&self) -> Vec<(&'static str, u64)> {
        self.inner.report.response_headers().to_vec()
    }

    #[getter]
    fn version(&self) -> &'static str {
        version_name(self.version)
    }

    /// `{"samples": [canonical sample JSON], "exemplars": [...],
    /// "metadata": [...], "report": {...}}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("samples", serialize_to_py(py, &self.inner.samples)?)?;
        let ex = PyList::empty(py);
        for e in &self.inner.exemplars {
            let ed = exemplar_dict(py, &e.exemplar)?;
            ed.set_item("series_name", e.name.as_str())?;
            ed.set_item("series_labels", labels_to_py(py, &e.labels)?)?;
            ex.append(ed)?;
        }
        d.set_item("exemplars", ex)?;
        d.set_item("metadata", serialize_to_py(py, &self.inner.metadata)?)?;
        d.set_item("report", self.report(py)?)?;
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.inner.samples.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "WriteBatch(version={:?}, samples={}, exemplars={}, metadata={})",
            version_name(self.version),
            self.inner.samples.len(),
            self.inner.exemplars.len(),
            self.inner.metadata.len()
        )
    }
}

/// Decodes a remote write body with the GIL released. `version`: `"1.0"`
/// or `"2.0"`, or give the request's `content_type` instead. `compressed`:
/// the body is a snappy block (as sent over HTTP); False for the bare
/// protobuf. Raises `RemoteWriteError` (all-or-nothing, as the protocol
/// wants) naming the series and problem. Limits default to core's (the
/// server's): `max_label_name_bytes` / `max_label_value_bytes` cap each
/// label (kind `label_too_long`); `max_output_bytes` is the request's
/// decoded-size budget, estimated before anything is copied (a series'
/// labels are copied into each sample; kind `too_large_decoded`).
#[pyfunction]
#[pyo3(signature = (data, *, version=None, content_type=None, compressed=true, max_decoded_bytes=None, max_series=None, max_samples=None, max_labels_per_series=None, max_label_name_bytes=None, max_label_value_bytes=None, max_output_bytes=None))]
#[allow(clippy::too_many_arguments)]
fn decode_remote_write(
    py: Python<'_>,
    data: Input<'_>,
    version: Option<&str>,
    content_type: Option<&str>,
    compressed: bool,
    max_decoded_bytes: Option<usize>,
    max_series: Option<usize>,
    max_samples: Option<usize>,
    max_labels_per_series: Option<usize>,
    max_label_name_bytes: Option<usize>,
    max_label_value_bytes: Option<usize>,
    max_output_bytes: Option<usize>,
) -> PyResult<PyWriteBatch> {
    let version = match (version, content_type) {
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err(
                "give either version or content_type, not both",
            ));
        }
        (Some(v), None) => version_by_name(v)?,
        (None, ct) => RemoteWriteVersion::from_content_type(ct)
            .map_err(|e| PyValueError::new_err(e.to_string()))?,
    };
    let d = Limits::default();
    let limits = Limits {
        max_decoded_bytes: max_decoded_bytes.unwrap_or(d.max_decoded_bytes),
        max_series: max_series.unwrap_or(d.max_series),
        max_samples: max_samples.unwrap_or(d.max_samples),
        max_labels_per_series: max_labels_per_series.unwrap_or(d.max_labels_per_series),
        max_label_name_bytes: max_label_name_bytes.unwrap_or(d.max_label_name_bytes),
        max_label_value_bytes: max_label_value_bytes.unwrap_or(d.max_label_value_bytes),
        max_output_bytes: max_output_bytes.unwrap_or(d.max_output_bytes),
    };
    let bytes = data.bytes();
    let result = py.detach(|| {
        if compressed {
            decode(bytes, version, &limits)
        } else {
            decode_uncompressed(bytes, version, &limits)
        }
    });
    match result {
        Ok(inner) => Ok(PyWriteBatch { inner, version }),
        Err(e) => Err(remote_write_error(py, &e)),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWriteBatch>()?;
    m.add_function(wrap_pyfunction!(decode_remote_write, m)?)?;
    m.add_function(wrap_pyfunction!(remote_write_version, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_by_name() {
        for (name, want) in [
            ("1.0", Some(RemoteWriteVersion::V1)),
            ("v1", Some(RemoteWriteVersion::V1)),
            ("2", Some(RemoteWriteVersion::V2)),
            ("2.0", Some(RemoteWriteVersion::V2)),
            ("3.0", None),
        ] {
            assert_eq!(version_by_name(name).ok(), want, "{name}");
        }
        assert_eq!(version_name(RemoteWriteVersion::V2), "2.0");
    }
}

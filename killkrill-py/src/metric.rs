//! `killkrill.MetricSample`, `Exemplar` and `MetricMetadata`: what the
//! Prometheus and remote write parsers produce and the aggregator takes.

use killkrill_core::event::{
    Exemplar, Labels, MetricMetadata, MetricSample, MetricType, Tenant, Timestamp,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::record::serialize_to_py;

pub(crate) fn labels_to_py<'py>(py: Python<'py>, labels: &Labels) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for l in labels.iter() {
        d.set_item(l.name.as_str(), l.value.as_str())?;
    }
    Ok(d)
}

/// Labels from a dict or a sequence of `(name, value)` pairs. `__name__`
/// is refused (the metric name is its own argument); labels with an empty
/// value are dropped, as Prometheus does.
pub(crate) fn extract_labels(ob: Option<&Bound<'_, PyAny>>) -> PyResult<Labels> {
    let Some(ob) = ob else {
        return Ok(Labels::new());
    };
    let pairs: Vec<(String, String)> = if let Ok(d) = ob.cast::<PyDict>() {
        d.iter()
            .map(|(k, v)| Ok((k.extract()?, v.extract()?)))
            .collect::<PyResult<_>>()?
    } else {
        ob.extract()?
    };
    if pairs.iter().any(|(n, _)| n == "__name__") {
        return Err(PyValueError::new_err(
            "label __name__ is reserved: pass the metric name as `name`",
        ));
    }
    Ok(Labels::from_pairs(pairs))
}

/// `repr()` of an optional string, Python style.
pub(crate) fn py_repr(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "None".to_owned(),
    }
}

pub(crate) fn metric_type(name: &str) -> PyResult<MetricType> {
    MetricType::from_name(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown metric type {name:?}: expected counter, gauge, histogram, gaugehistogram, summary, info, stateset or unknown"
        ))
    })
}

/// An exemplar: labels (e.g. `trace_id`), value and optional time.
#[pyclass(module = "killkrill", name = "Exemplar", frozen)]
pub(crate) struct PyExemplar {
    pub(crate) inner: Exemplar,
}

#[pymethods]
impl PyExemplar {
    #[getter]
    fn labels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        labels_to_py(py, &self.inner.labels)
    }

    #[getter]
    fn value(&self) -> f64 {
        self.inner.value
    }

    /// Nanoseconds since the Unix epoch, or None.
    #[getter]
    fn timestamp(&self) -> Option<i64> {
        self.inner.timestamp.map(Timestamp::as_nanos)
    }

    /// `{"labels": {...}, "value": v, "timestamp": ns | None}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        exemplar_dict(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "Exemplar(labels={:?}, value={}, timestamp={:?})",
            self.inner
                .labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect::<Vec<_>>(),
            self.inner.value,
            self.inner.timestamp.map(Timestamp::as_nanos)
        )
    }
}

pub(crate) fn exemplar_dict<'py>(py: Python<'py>, e: &Exemplar) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("labels", labels_to_py(py, &e.labels)?)?;
    d.set_item("value", e.value)?;
    d.set_item("timestamp", e.timestamp.map(Timestamp::as_nanos))?;
    Ok(d)
}

/// One metric sample. `timestamp` is nanoseconds since the Unix epoch, or
/// None for exposition text without one.
#[pyclass(module = "killkrill", name = "MetricSample", frozen)]
pub(crate) struct PyMetricSample {
    pub(crate) inner: MetricSample,
    pub(crate) exemplar: Option<Exemplar>,
}

impl PyMetricSample {
    pub(crate) fn new(inner: MetricSample, exemplar: Option<Exemplar>) -> Self {
        PyMetricSample { inner, exemplar }
    }
}

#[pymethods]
impl PyMetricSample {
    /// A sample to feed the aggregator. `labels` must not contain
    /// `__name__`; `type` is a metric type name (`gauge` by default).
    #[new]
    #[pyo3(signature = (name, value, timestamp=None, labels=None, r#type="gauge", tenant=None))]
    fn py_new(
        name: &str,
        value: f64,
        timestamp: Option<i64>,
        labels: Option<Bound<'_, PyAny>>,
        r#type: &str,
        tenant: Option<&str>,
    ) -> PyResult<Self> {
        let tenant = tenant
            .map(|t| Tenant::new(t).map_err(|e| PyValueError::new_err(e.to_string())))
            .transpose()?;
        Ok(PyMetricSample::new(
            MetricSample {
                tenant,
                name: name.into(),
                labels: extract_labels(labels.as_ref())?,
                value,
                timestamp: timestamp.map(Timestamp::from_nanos),
                kind: metric_type(r#type)?,
            },
            None,
        ))
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// Labels without `__name__`, sorted by name.
    #[getter]
    fn labels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        labels_to_py(py, &self.inner.labels)
    }

    #[getter]
    fn value(&self) -> f64 {
        self.inner.value
    }

    #[getter]
    fn timestamp(&self) -> Option<i64> {
        self.inner.timestamp.map(Timestamp::as_nanos)
    }

    /// The family type: `counter`, `gauge`, `histogram`, ... or `unknown`.
    #[getter]
    fn r#type(&self) -> &'static str {
        self.inner.kind.name()
    }

    #[getter]
    fn tenant(&self) -> Option<&str> {
        self.inner.tenant.as_ref().map(Tenant::as_str)
    }

    /// The exemplar written on the sample's line (OpenMetrics), or None.
    #[getter]
    fn exemplar(&self) -> Option<PyExemplar> {
        self.exemplar.clone().map(|inner| PyExemplar { inner })
    }

    /// The canonical JSON form: `{"name", "labels", "value", "timestamp",
    /// "type"}` (NaN and ±Inf values as the strings `NaN`, `+Inf`, `-Inf`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serialize_to_py(py, &self.inner)
    }

    /// The canonical JSON form as text.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    fn __repr__(&self) -> String {
        format!(
            "MetricSample({})",
            serde_json::to_string(&self.inner).unwrap_or_default()
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyMetricSample>()
            .is_ok_and(|o| o.get().inner == self.inner && o.get().exemplar == self.exemplar)
    }
}

/// Metadata of a metric family: name, type, HELP and UNIT.
#[pyclass(module = "killkrill", name = "MetricMetadata", frozen)]
pub(crate) struct PyMetricMetadata {
    pub(crate) inner: MetricMetadata,
}

#[pymethods]
impl PyMetricMetadata {
    #[getter]
    fn family(&self) -> &str {
        &self.inner.family
    }

    #[getter]
    fn r#type(&self) -> &'static str {
        self.inner.kind.name()
    }

    #[getter]
    fn help(&self) -> Option<&str> {
        self.inner.help.as_deref()
    }

    #[getter]
    fn unit(&self) -> Option<&str> {
        self.inner.unit.as_deref()
    }

    /// `{"family", "type", "help", "unit"}` (core's serializer).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serialize_to_py(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "MetricMetadata({})",
            serde_json::to_string(&self.inner).unwrap_or_default()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMetricSample>()?;
    m.add_class::<PyExemplar>()?;
    m.add_class::<PyMetricMetadata>()?;
    Ok(())
}

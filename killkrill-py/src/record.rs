//! `killkrill.LogRecord`: the owned log event every log parser produces
//! (syslog via `SyslogMessage.to_record`, JSON logs), with the canonical
//! JSON form from core's serializer.

use killkrill_core::event::{FieldValue, LogRecord, SdElement};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

/// Parses canonical JSON text into Python objects with `json.loads`, which
/// keeps the key order of the canonical form.
pub(crate) fn json_to_py<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

/// A JSON value from core's serializer, as Python objects.
pub(crate) fn serialize_to_py<'py, T: serde::Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    json_to_py(py, &text)
}

/// Structured data as `{sd_id: {name: value}}`; a parameter that repeats in
/// an element becomes a list of its values (as in the canonical JSON).
pub(crate) fn sd_to_py<'py>(py: Python<'py>, sd: &[SdElement]) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for el in sd {
        let params = PyDict::new(py);
        for (i, (name, value)) in el.params.iter().enumerate() {
            if el.params[..i].iter().any(|(n, _)| n == name) {
                continue;
            }
            if el.params[i + 1..].iter().any(|(n, _)| n == name) {
                let all: Vec<&str> = el
                    .params
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
                    .collect();
                params.set_item(name, PyList::new(py, all)?)?;
            } else {
                params.set_item(name, value)?;
            }
        }
        out.set_item(&el.id, params)?;
    }
    Ok(out)
}

pub(crate) fn field_to_py<'py>(py: Python<'py>, v: &FieldValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        FieldValue::Null => py.None().into_bound(py),
        FieldValue::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        FieldValue::Int(i) => i.into_pyobject(py)?.into_any(),
        FieldValue::Float(f) => f.into_pyobject(py)?.into_any(),
        FieldValue::Str(s) => s.into_pyobject(py)?.into_any(),
    })
}

/// One log event. Attributes mirror the canonical JSON keys; `timestamp` is
/// integer nanoseconds since the Unix epoch (UTC).
#[pyclass(module = "killkrill", name = "LogRecord", frozen)]
pub(crate) struct PyLogRecord {
    pub(crate) inner: LogRecord,
}

impl PyLogRecord {
    pub(crate) fn new(inner: LogRecord) -> Self {
        PyLogRecord { inner }
    }
}

#[pymethods]
impl PyLogRecord {
    /// Event time in nanoseconds since the Unix epoch.
    #[getter]
    fn timestamp(&self) -> i64 {
        self.inner.timestamp.as_nanos()
    }

    /// Event time as RFC 3339 text with nanoseconds (`...Z`).
    #[getter]
    fn timestamp_rfc3339(&self) -> String {
        self.inner.timestamp.to_rfc3339()
    }

    /// Severity keyword (`err`, `warning`, ...) or None.
    #[getter]
    fn severity(&self) -> Option<&'static str> {
        self.inner.severity.map(|s| s.name())
    }

    /// Facility keyword (`daemon`, `local0`, ...) or None.
    #[getter]
    fn facility(&self) -> Option<&'static str> {
        self.inner.facility.map(|f| f.name())
    }

    #[getter]
    fn host(&self) -> Option<&str> {
        self.inner.host.as_deref()
    }

    #[getter]
    fn app(&self) -> Option<&str> {
        self.inner.app.as_deref()
    }

    #[getter]
    fn procid(&self) -> Option<&str> {
        self.inner.procid.as_deref()
    }

    #[getter]
    fn msgid(&self) -> Option<&str> {
        self.inner.msgid.as_deref()
    }

    /// `{sd_id: {name: value}}` (a repeated name gives a list of values).
    #[getter]
    fn structured_data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        sd_to_py(py, &self.inner.structured_data)
    }

    /// The message as text (invalid UTF-8 replaced by U+FFFD) or None.
    #[getter]
    fn message(&self) -> Option<String> {
        self.inner.message_str().map(|m| m.into_owned())
    }

    /// The message bytes exactly as sent, or None.
    #[getter]
    fn message_bytes<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.message.as_deref().map(|m| PyBytes::new(py, m))
    }

    #[getter]
    fn source(&self) -> Option<&str> {
        self.inner.source.as_deref()
    }

    /// Other fields in order: `{name: value}` (str, int, float, bool or None).
    #[getter]
    fn attributes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.inner.attributes {
            d.set_item(k, field_to_py(py, v)?)?;
        }
        Ok(d)
    }

    /// Set when the input could not be parsed and was kept raw (lenient mode).
    #[getter]
    fn parse_error(&self) -> Option<&str> {
        self.inner.parse_error.as_deref()
    }

    /// The canonical JSON form as a dict (the keys of `killkrill parse`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.inner.to_json())
    }

    /// The canonical JSON form as one line of text.
    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    fn __repr__(&self) -> String {
        format!("LogRecord({})", self.inner.to_json())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyLogRecord>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLogRecord>()
}

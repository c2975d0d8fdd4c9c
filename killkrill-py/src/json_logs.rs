//! `killkrill.parse_json_logs`: one object, an array of objects or NDJSON
//! into `LogRecord`s, with core's aliases, flattening, limits and errors.

use killkrill_core::event::{LogRecord, Timestamp};
use killkrill_core::json_logs::{
    JsonLogError, JsonLogLimits, JsonLogParser, Mode, Problem, RecordLocation, Shape,
};
use pyo3::prelude::*;

use crate::errors::{JsonLogsError, obj, with_attrs};
use crate::input::Input;
use crate::record::{PyLogRecord, json_to_py};

fn problem_name(p: &Problem) -> &'static str {
    match p {
        Problem::Syntax(_) => "syntax",
        Problem::NotAnObject { .. } => "not_an_object",
        Problem::KeyTooLong { .. } => "key_too_long",
        Problem::StringTooLong { .. } => "string_too_long",
        Problem::ArrayTooLong { .. } => "array_too_long",
        Problem::TooManyFields { .. } => "too_many_fields",
        Problem::TooDeep { .. } => "too_deep",
        Problem::LineTooLong { .. } => "line_too_long",
        Problem::InvalidTimestamp(_) => "invalid_timestamp",
        Problem::BodyTooLarge { .. } => "body_too_large",
        Problem::TooManyRecords { .. } => "too_many_records",
    }
}

pub(crate) fn json_logs_error(py: Python<'_>, e: &JsonLogError) -> PyErr {
    let (location, record): (&str, Option<u64>) = match e.location {
        RecordLocation::Line(n) => ("line", Some(n)),
        RecordLocation::Index(i) => ("index", Some(i)),
        RecordLocation::Object => ("object", None),
        RecordLocation::Body => ("body", None),
    };
    let line = match e.location {
        RecordLocation::Line(n) => Some(n),
        _ => e.position.map(|p| p.line),
    };
    with_attrs(
        py,
        JsonLogsError::new_err(e.to_string()),
        &[
            ("line", obj(py, line)),
            ("column", obj(py, e.column())),
            ("offset", obj(py, e.position.map(|p| p.offset))),
            ("location", obj(py, location)),
            ("record", obj(py, record)),
            ("field", obj(py, e.field.as_deref())),
            ("kind", obj(py, problem_name(&e.problem))),
            ("detail", obj(py, e.detail())),
        ],
    )
}

/// The result of `parse_json_logs`.
#[pyclass(module = "killkrill", name = "JsonLogBatch", frozen)]
pub(crate) struct PyJsonLogBatch {
    records: Vec<LogRecord>,
    shape: Option<Shape>,
    errors: Vec<JsonLogError>,
    duplicate_fields: u64,
}

#[pymethods]
impl PyJsonLogBatch {
    /// The records, raw ones (lenient mode) included.
    #[getter]
    fn records(&self) -> Vec<PyLogRecord> {
        self.records.iter().cloned().map(PyLogRecord::new).collect()
    }

    /// `"empty"`, `"object"`, `"array"` or `"ndjson"`.
    #[getter]
    fn shape(&self) -> Option<&'static str> {
        self.shape.map(Shape::name)
    }

    /// Lenient mode: one `JsonLogsError` per raw record or unreadable
    /// timestamp (not raised).
    #[getter]
    fn errors(&self, py: Python<'_>) -> Vec<Py<PyAny>> {
        self.errors
            .iter()
            .map(|e| json_logs_error(py, e).into_value(py).into_any())
            .collect()
    }

    /// Duplicate keys whose earlier value was replaced (the last one wins).
    #[getter]
    fn duplicate_fields(&self) -> u64 {
        self.duplicate_fields
    }

    /// The canonical JSON of every record, as a list of dicts.
    fn to_dicts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut text = String::from("[");
        for (i, r) in self.records.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&r.to_json());
        }
        text.push(']');
        json_to_py(py, &text)
    }

    fn __len__(&self) -> usize {
        self.records.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "JsonLogBatch(shape={}, records={}, errors={})",
            crate::metric::py_repr(self.shape.map(Shape::name)),
            self.records.len(),
            self.errors.len()
        )
    }
}

/// Parses a JSON logs body (one object, an array of objects, or NDJSON)
/// with the GIL released. `received` (nanoseconds, default now) is the
/// timestamp of records without one. Strict mode (default) raises
/// `JsonLogsError` for the first record that cannot be read; lenient mode
/// keeps such records raw with `parse_error` set and lists the errors. A
/// body over a limit raises in both modes. Limits default to core's
/// (16 MiB body, 100,000 records, 1,000 fields, depth 32, 64 KiB strings,
/// 1 MiB lines).
#[pyfunction]
#[pyo3(signature = (data, *, strict=true, received=None, max_body_bytes=None, max_records=None, max_fields=None, max_depth=None, max_string_bytes=None, max_line_bytes=None))]
#[allow(clippy::too_many_arguments)]
fn parse_json_logs(
    py: Python<'_>,
    data: Input<'_>,
    strict: bool,
    received: Option<i64>,
    max_body_bytes: Option<usize>,
    max_records: Option<usize>,
    max_fields: Option<usize>,
    max_depth: Option<usize>,
    max_string_bytes: Option<usize>,
    max_line_bytes: Option<usize>,
) -> PyResult<PyJsonLogBatch> {
    let d = JsonLogLimits::DEFAULT;
    let limits = JsonLogLimits {
        max_body_bytes: max_body_bytes.unwrap_or(d.max_body_bytes),
        max_records: max_records.unwrap_or(d.max_records),
        max_fields: max_fields.unwrap_or(d.max_fields),
        max_depth: max_depth.unwrap_or(d.max_depth),
        max_string_bytes: max_string_bytes.unwrap_or(d.max_string_bytes),
        max_line_bytes: max_line_bytes.unwrap_or(d.max_line_bytes),
    };
    let parser = JsonLogParser::new(limits, if strict { Mode::Strict } else { Mode::Lenient });
    let received = received.map_or_else(Timestamp::now, Timestamp::from_nanos);
    let bytes = data.bytes();
    let result = py.detach(|| {
        let mut records = Vec::new();
        parser
            .parse_body(bytes, received, &mut records)
            .map(|report| (records, report))
    });
    match result {
        Ok((records, report)) => Ok(PyJsonLogBatch {
            records,
            shape: report.shape,
            errors: report.errors,
            duplicate_fields: report.duplicate_fields,
        }),
        Err(e) => Err(json_logs_error(py, &e)),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyJsonLogBatch>()?;
    m.add_function(wrap_pyfunction!(parse_json_logs, m)?)?;
    Ok(())
}

//! Core errors become Python exceptions here, and only here.
//!
//! Every parse error is a `killkrill.ParseError` (a `ValueError`) subclass
//! that carries where it happened as attributes, so callers can point at the
//! offending byte without parsing the message text:
//!
//! | exception | `line` | `column` | `offset` | extra |
//! |---|---|---|---|---|
//! | `SyslogParseError` | 1 | 0-based byte in the frame | = column | `kind`, `expected` |
//! | `PrometheusParseError` | 1-based | 0-based byte in the line, or None | None | `kind` |
//! | `JsonLogsError` | 1-based or None | 0-based or None | 0-based byte in the body, or None | `location`, `record`, `field`, `kind` |
//! | `RemoteWriteError` | None | None | None | `series`, `kind` |
//!
//! `ConfigError` (a `ValueError` too) names the offending config key.

use pyo3::BoundObject;
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    killkrill,
    ParseError,
    PyValueError,
    "Input that could not be parsed; `line`, `column` and `offset` say where (None when unknown)."
);
create_exception!(
    killkrill,
    SyslogParseError,
    ParseError,
    "A syslog message outside the grammar (strict mode)."
);
create_exception!(
    killkrill,
    PrometheusParseError,
    ParseError,
    "A Prometheus text / OpenMetrics exposition error."
);
create_exception!(
    killkrill,
    JsonLogsError,
    ParseError,
    "A JSON logs body or record that could not be read."
);
create_exception!(
    killkrill,
    RemoteWriteError,
    ParseError,
    "A remote write body that could not be decoded."
);
create_exception!(
    killkrill,
    ConfigError,
    PyValueError,
    "An invalid configuration value; `key` names it."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ParseError", py.get_type::<ParseError>())?;
    m.add("SyslogParseError", py.get_type::<SyslogParseError>())?;
    m.add(
        "PrometheusParseError",
        py.get_type::<PrometheusParseError>(),
    )?;
    m.add("JsonLogsError", py.get_type::<JsonLogsError>())?;
    m.add("RemoteWriteError", py.get_type::<RemoteWriteError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    // Class-level defaults, so a position an error does not have reads None.
    let base = py.get_type::<ParseError>();
    for name in ["line", "column", "offset", "kind"] {
        base.setattr(name, py.None())?;
    }
    py.get_type::<ConfigError>().setattr("key", py.None())?;
    Ok(())
}

/// Sets attributes on the exception value; a failure to set one becomes the
/// error raised instead (it cannot happen for exception instances, which
/// have a `__dict__`).
pub(crate) fn with_attrs<'py>(
    py: Python<'py>,
    err: PyErr,
    attrs: &[(&str, Bound<'py, PyAny>)],
) -> PyErr {
    let value = err.value(py);
    for (name, v) in attrs {
        if let Err(e) = value.setattr(*name, v) {
            return e;
        }
    }
    err
}

/// Converts a Rust value to a Python object for [`with_attrs`].
pub(crate) fn obj<'py, T>(py: Python<'py>, v: T) -> Bound<'py, PyAny>
where
    T: IntoPyObject<'py>,
{
    match v.into_pyobject(py) {
        Ok(o) => o.into_any().into_bound(),
        Err(_) => py.None().into_bound(py),
    }
}

/// A syslog parse error as `SyslogParseError` (not raised; see
/// `SyslogMessage.error`).
pub(crate) fn syslog_error(py: Python<'_>, e: &killkrill_core::syslog::ParseError) -> PyErr {
    with_attrs(
        py,
        SyslogParseError::new_err(e.to_string()),
        &[
            ("kind", obj(py, e.kind().as_str())),
            ("line", obj(py, 1u32)),
            ("column", obj(py, e.column())),
            ("offset", obj(py, e.column())),
            ("expected", obj(py, e.expected())),
        ],
    )
}

/// A config error as `ConfigError`.
pub(crate) fn config_error(py: Python<'_>, key: &str, message: String) -> PyErr {
    with_attrs(py, ConfigError::new_err(message), &[("key", obj(py, key))])
}

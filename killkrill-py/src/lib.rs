//! # killkrill-py
//!
//! Python bindings for killkrill-core: syslog, RFC 6587 framing, Prometheus
//! text / OpenMetrics, JSON logs, remote write and the aggregation engine.
//!
//! Why the crate is thin: every parser, limit and canonical JSON form lives
//! in killkrill-core, so Python users get exactly the behaviour of the
//! `killkrill` binary, bugs fixed once. This crate only converts arguments,
//! turns core errors into `killkrill.ParseError` subclasses at the boundary
//! (see [`errors`]) and releases the GIL while parsing whole bodies.
//!
//! The Python package is `python/killkrill/` (re-exports, `.pyi` stubs,
//! `py.typed`); `pip install ./killkrill-py` builds it with maturin.

use pyo3::prelude::*;

mod aggregate;
mod errors;
mod framing;
mod input;
mod json_logs;
mod metric;
mod prometheus;
mod record;
mod remote_write;
mod syslog;

/// The native module `killkrill._killkrill`; `killkrill/__init__.py`
/// re-exports everything in it.
#[pymodule]
fn _killkrill(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    record::register(m)?;
    metric::register(m)?;
    syslog::register(m)?;
    framing::register(m)?;
    prometheus::register(m)?;
    json_logs::register(m)?;
    remote_write::register(m)?;
    aggregate::register(m)?;
    Ok(())
}

//! Arguments that accept `bytes`, `bytearray`, `memoryview`-less buffers or
//! `str`: parsers read bytes, and Python users hold either.

use std::borrow::Cow;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};

/// Input bytes: borrowed from a `bytes` object (immutable, so safe to read
/// with the GIL released while the caller holds the object) or copied from
/// `str` / `bytearray`.
pub(crate) struct Input<'a>(pub(crate) Cow<'a, [u8]>);

impl<'a, 'py> FromPyObject<'a, 'py> for Input<'a> {
    type Error = PyErr;

    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if ob.is_instance_of::<PyBytes>() {
            return Ok(Input(Cow::Borrowed(<&'a [u8]>::extract(ob)?)));
        }
        if let Ok(s) = ob.cast::<PyString>() {
            return Ok(Input(Cow::Owned(s.to_cow()?.into_owned().into_bytes())));
        }
        if let Ok(b) = ob.cast::<PyByteArray>() {
            return Ok(Input(Cow::Owned(b.to_vec())));
        }
        Err(PyTypeError::new_err(format!(
            "expected bytes, bytearray or str, got {}",
            ob.get_type().name()?
        )))
    }
}

impl Input<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

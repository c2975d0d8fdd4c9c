//! `killkrill.Framer`: the incremental RFC 6587 framer for TCP byte streams
//! (octet counting and LF/CRLF/NUL delimiters), `BadFrame`, and
//! `datagram_message` for UDP payloads.

use bytes::BytesMut;
use killkrill_core::framing::{
    BadFrame, BadFrameKind, DEFAULT_MAX_FRAME_LEN, Frame, FramingConfig, FramingMode, FramingStats,
    SyslogFramer, datagram_message,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use tokio_util::codec::Decoder;

use crate::input::Input;

pub(crate) fn framing_config(mode: &str, max_frame_len: usize) -> PyResult<FramingConfig> {
    let mode = match mode {
        "auto" => FramingMode::Auto,
        "octet_counting" => FramingMode::OctetCounting,
        "non_transparent" => FramingMode::NonTransparent,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown framing mode {other:?}: expected \"auto\", \"octet_counting\" or \"non_transparent\""
            )));
        }
    };
    if max_frame_len == 0 {
        return Err(PyValueError::new_err("max_frame_len must be at least 1"));
    }
    Ok(FramingConfig {
        max_frame_len,
        mode,
    })
}

fn mode_name(m: FramingMode) -> &'static str {
    match m {
        FramingMode::Auto => "auto",
        FramingMode::OctetCounting => "octet_counting",
        FramingMode::NonTransparent => "non_transparent",
    }
}

fn stats_dict<'py>(py: Python<'py>, s: &FramingStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("bytes", s.bytes)?;
    d.set_item("messages", s.messages)?;
    d.set_item("octet_counted", s.octet_counted)?;
    d.set_item("non_transparent", s.non_transparent)?;
    d.set_item("bad_frames", s.bad_frames)?;
    d.set_item("discarded_bytes", s.discarded_bytes)?;
    d.set_item("empty_frames", s.empty_frames)?;
    Ok(d)
}

/// A frame the framer could not deliver whole, and what it did about it.
/// `kind` is `"too_long"`, `"bad_length"` or `"truncated"`.
#[pyclass(module = "killkrill", name = "BadFrame", frozen)]
pub(crate) struct PyBadFrame {
    inner: BadFrame,
}

impl PyBadFrame {
    pub(crate) fn new(inner: BadFrame) -> Self {
        PyBadFrame { inner }
    }
}

#[pymethods]
impl PyBadFrame {
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner.kind {
            BadFrameKind::TooLong { .. } => "too_long",
            BadFrameKind::BadLength { .. } => "bad_length",
            BadFrameKind::Truncated { .. } => "truncated",
        }
    }

    /// 1-based number of the frame on the stream (messages and bad frames
    /// counted together).
    #[getter]
    fn frame(&self) -> u64 {
        self.inner.frame
    }

    /// Byte offset on the stream where the frame started.
    #[getter]
    fn offset(&self) -> u64 {
        self.inner.offset
    }

    /// The bytes that were kept (the start of a truncated last frame), or
    /// None when they were discarded.
    #[getter]
    fn kept<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.kept.as_deref().map(|b| PyBytes::new(py, b))
    }

    /// The MSG-LEN of an octet-counted frame (`too_long`, `truncated`).
    #[getter]
    fn declared(&self) -> Option<u64> {
        match self.inner.kind {
            BadFrameKind::TooLong { declared, .. } => declared,
            BadFrameKind::Truncated { declared, .. } => Some(declared),
            BadFrameKind::BadLength { .. } => None,
        }
    }

    /// The configured maximum (`too_long`).
    #[getter]
    fn max(&self) -> Option<usize> {
        match self.inner.kind {
            BadFrameKind::TooLong { max, .. } => Some(max),
            _ => None,
        }
    }

    /// Bytes of a truncated frame that arrived (`truncated`).
    #[getter]
    fn received(&self) -> Option<usize> {
        match self.inner.kind {
            BadFrameKind::Truncated { received, .. } => Some(received),
            _ => None,
        }
    }

    /// `bad_length`: the byte found instead of the length (as a one-byte
    /// `bytes`), or None at the end of the stream.
    #[getter]
    fn found<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        match self.inner.kind {
            BadFrameKind::BadLength { found: Some(c), .. } => Some(PyBytes::new(py, &[c])),
            _ => None,
        }
    }

    /// `bad_length`: what was expected (`MSG-LEN`, `a space`, ...).
    #[getter]
    fn expected(&self) -> Option<&'static str> {
        match self.inner.kind {
            BadFrameKind::BadLength { expected, .. } => Some(expected),
            _ => None,
        }
    }

    /// The framer's counters right after this frame.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, &self.inner.stats)
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "BadFrame({:?}, frame={}, offset={}: {})",
            self.kind(),
            self.inner.frame,
            self.inner.offset,
            self.inner.kind
        )
    }
}

/// Incremental RFC 6587 framer for one stream (one TCP connection or file).
///
/// `feed(data)` returns the frames completed so far: `bytes` for each
/// message (without length prefix or delimiter) and `BadFrame` for each
/// frame that could not be delivered; incomplete data is kept for the next
/// call. `finish()` ends the stream (a last delimited frame without its
/// delimiter is delivered, a truncated octet-counted frame is reported).
#[pyclass(module = "killkrill", name = "Framer")]
pub(crate) struct PyFramer {
    framer: SyslogFramer,
    buf: BytesMut,
}

impl PyFramer {
    fn drain<'py>(&mut self, py: Python<'py>, eof: bool) -> PyResult<Bound<'py, PyList>> {
        let framer = &mut self.framer;
        let buf = &mut self.buf;
        let frames = py.detach(|| {
            let mut out = Vec::new();
            loop {
                let next = if eof {
                    framer.decode_eof(buf)
                } else {
                    framer.decode(buf)
                };
                match next {
                    Ok(Some(f)) => out.push(f),
                    // No I/O happens on an in-memory buffer.
                    Ok(None) | Err(_) => break,
                }
            }
            out
        });
        let list = PyList::empty(py);
        for f in frames {
            match f {
                Frame::Message(m) => list.append(PyBytes::new(py, &m))?,
                Frame::Bad(b) => list.append(PyBadFrame::new(b))?,
            }
        }
        Ok(list)
    }
}

#[pymethods]
impl PyFramer {
    /// `mode`: `"auto"` (each frame decides: `LEN SP <` is octet-counted,
    /// anything else delimited), `"octet_counting"` or `"non_transparent"`.
    /// `max_frame_len`: largest frame delivered, in bytes.
    #[new]
    #[pyo3(signature = (mode="auto", max_frame_len=DEFAULT_MAX_FRAME_LEN))]
    fn new(mode: &str, max_frame_len: usize) -> PyResult<Self> {
        Ok(PyFramer {
            framer: SyslogFramer::new(framing_config(mode, max_frame_len)?),
            buf: BytesMut::new(),
        })
    }

    #[getter]
    fn mode(&self) -> &'static str {
        mode_name(self.framer.config().mode)
    }

    #[getter]
    fn max_frame_len(&self) -> usize {
        self.framer.config().max_frame_len
    }

    /// Bytes received but not yet part of a complete frame.
    #[getter]
    fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Counters: bytes, messages, octet_counted, non_transparent,
    /// bad_frames, discarded_bytes, empty_frames.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, &self.framer.stats())
    }

    /// Appends `data` and returns the frames it completed.
    fn feed<'py>(&mut self, py: Python<'py>, data: Input<'_>) -> PyResult<Bound<'py, PyList>> {
        self.buf.extend_from_slice(data.bytes());
        self.drain(py, false)
    }

    /// Ends the stream and returns the remaining frames.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.drain(py, true)
    }

    fn __repr__(&self) -> String {
        format!(
            "Framer(mode={:?}, max_frame_len={}, buffered={})",
            self.mode(),
            self.max_frame_len(),
            self.buf.len()
        )
    }
}

/// The syslog message in one UDP datagram: the payload without trailing
/// NUL, CR or LF bytes.
#[pyfunction(name = "datagram_message")]
fn py_datagram_message<'py>(py: Python<'py>, data: Input<'_>) -> Bound<'py, PyBytes> {
    PyBytes::new(py, datagram_message(data.bytes()))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyFramer>()?;
    m.add_class::<PyBadFrame>()?;
    m.add_function(wrap_pyfunction!(py_datagram_message, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_modes_by_name() {
        let cases: &[(&str, usize, Option<FramingMode>)] = &[
            ("auto", 10, Some(FramingMode::Auto)),
            ("octet_counting", 10, Some(FramingMode::OctetCounting)),
            ("non_transparent", 1, Some(FramingMode::NonTransparent)),
            ("lines", 10, None),
            ("auto", 0, None),
        ];
        for (name, max, want) in cases {
            let got = framing_config(name, *max).ok().map(|c| c.mode);
            assert_eq!(got, *want, "{name} {max}");
            if let Some(mode) = want {
                assert_eq!(mode_name(*mode), *name);
            }
        }
    }
}

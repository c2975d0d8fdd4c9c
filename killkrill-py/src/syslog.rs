//! `killkrill.SyslogParser`, `SyslogMessage` and `parse_syslog`: RFC 5424
//! and RFC 3164 over core's parser, one message or a framed byte stream.

use bytes::BytesMut;
use killkrill_core::event::LogRecord;
use killkrill_core::event::Timestamp;
use killkrill_core::framing::{Frame, SyslogFramer};
use killkrill_core::syslog::{
    Clock, Format, Mode, ParseError, ParseOptions, Protocol, SyslogMessage, SyslogParser,
    time_zone_by_name,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use tokio_util::codec::Decoder;

use crate::errors::syslog_error;
use crate::framing::{PyBadFrame, framing_config};
use crate::input::Input;
use crate::metric::py_repr;
use crate::record::{PyLogRecord, json_to_py, sd_to_py};

fn format_by_name(name: &str) -> PyResult<Format> {
    match name {
        "auto" => Ok(Format::Auto),
        "rfc5424" => Ok(Format::Rfc5424),
        "rfc3164" => Ok(Format::Rfc3164),
        other => Err(PyValueError::new_err(format!(
            "unknown syslog format {other:?}: expected \"auto\", \"rfc5424\" or \"rfc3164\""
        ))),
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Auto => "auto",
        Format::Rfc5424 => "rfc5424",
        Format::Rfc3164 => "rfc3164",
    }
}

/// A configured syslog parser; stateless between messages, so one instance
/// serves any number of threads.
#[pyclass(module = "killkrill", name = "SyslogParser", frozen)]
pub(crate) struct PySyslogParser {
    parser: SyslogParser,
    time_zone: String,
}

/// An owned parse result: the record core builds plus what it does not
/// keep (protocol, VERSION, BOM, the error kind and column).
struct Parsed {
    record: LogRecord,
    has_timestamp: bool,
    protocol: Protocol,
    version: Option<u16>,
    bom: bool,
    sequence: Option<u64>,
    error: Option<ParseError>,
}

impl Parsed {
    fn from_message(m: &SyslogMessage<'_>) -> Self {
        Parsed {
            // The receive time is filled in by `to_record(received)`.
            record: m.to_record(Timestamp::EPOCH),
            has_timestamp: m.timestamp.is_some(),
            protocol: m.protocol,
            version: m.version,
            bom: m.bom,
            sequence: m.sequence,
            error: m.parse_error,
        }
    }
}

enum Outcome {
    Message(Box<Parsed>),
    Bad(killkrill_core::framing::BadFrame),
    Rejected(ParseError),
}

impl PySyslogParser {
    fn parse_one(&self, frame: &[u8]) -> Result<Parsed, ParseError> {
        self.parser.parse(frame).map(|m| Parsed::from_message(&m))
    }
}

#[pymethods]
impl PySyslogParser {
    /// `strict`: raise `SyslogParseError` on input outside the grammar
    /// (default: lenient, which never fails and keeps the raw message with
    /// `error` set). `format`: `"auto"`, `"rfc5424"` or `"rfc3164"`.
    /// `time_zone`: zone of RFC 3164 timestamps without an offset (IANA
    /// name, `UTC`, `+05:00` or `local`). `now`: fixed "now" in nanoseconds
    /// for RFC 3164 year inference (default: the system clock).
    /// `compliant_msg`: a MSG starting with a BOM must be UTF-8.
    /// `rfc3164_structured_data`: read rsyslog's `[id k="v"]` after a tag.
    #[new]
    #[pyo3(signature = (*, strict=false, format="auto", time_zone="UTC", now=None, compliant_msg=false, rfc3164_structured_data=true))]
    fn new(
        strict: bool,
        format: &str,
        time_zone: &str,
        now: Option<i64>,
        compliant_msg: bool,
        rfc3164_structured_data: bool,
    ) -> PyResult<Self> {
        let tz = time_zone_by_name(time_zone).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let mut options = ParseOptions::default()
            .with_mode(if strict { Mode::Strict } else { Mode::Lenient })
            .with_format(format_by_name(format)?)
            .with_time_zone(tz)
            .with_compliant_msg(compliant_msg);
        if let Some(ns) = now {
            options = options.with_clock(Clock::Fixed(Timestamp::from_nanos(ns)));
        }
        options.rfc3164_structured_data = rfc3164_structured_data;
        Ok(PySyslogParser {
            parser: SyslogParser::new(options),
            time_zone: time_zone.to_owned(),
        })
    }

    #[getter]
    fn strict(&self) -> bool {
        self.parser.options().mode == Mode::Strict
    }

    #[getter]
    fn format(&self) -> &'static str {
        format_name(self.parser.options().format)
    }

    #[getter]
    fn time_zone(&self) -> &str {
        &self.time_zone
    }

    /// Parses one message (one frame: no length prefix, no trailing
    /// newline).
    ///
    /// Raises `SyslogParseError` in strict mode.
    fn parse(&self, py: Python<'_>, data: Input<'_>) -> PyResult<PySyslogMessage> {
        match self.parse_one(data.bytes()) {
            Ok(p) => Ok(PySyslogMessage { p }),
            Err(e) => Err(syslog_error(py, &e)),
        }
    }

    /// Parses many messages with the GIL released. In strict mode the first
    /// invalid message raises `SyslogParseError` (with `index` set).
    fn parse_many(
        &self,
        py: Python<'_>,
        messages: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<Vec<PySyslogMessage>> {
        let inputs = messages
            .iter()
            .map(|m| m.extract::<Input<'_>>())
            .collect::<PyResult<Vec<_>>>()?;
        let parsed = py.detach(|| {
            let mut out = Vec::with_capacity(inputs.len());
            for (i, input) in inputs.iter().enumerate() {
                match self.parse_one(input.bytes()) {
                    Ok(p) => out.push(p),
                    Err(e) => return Err((i, e)),
                }
            }
            Ok(out)
        });
        match parsed {
            Ok(v) => Ok(v.into_iter().map(|p| PySyslogMessage { p }).collect()),
            Err((i, e)) => Err(crate::errors::with_attrs(
                py,
                syslog_error(py, &e),
                &[("index", crate::errors::obj(py, i))],
            )),
        }
    }

    /// Frames a byte stream (RFC 6587 octet counting and/or LF/CRLF/NUL
    /// delimiters, as `Framer` does) and parses each frame, with the GIL
    /// released. Returns `SyslogMessage`s and, for frames the framer could
    /// not deliver, `BadFrame`s, in stream order. The stream is taken as
    /// complete (a last frame without its delimiter is delivered). In strict
    /// mode an invalid message raises `SyslogParseError` with `frame` (its
    /// 0-based index among the items) set.
    #[pyo3(signature = (data, *, framing="auto", max_frame_len=killkrill_core::framing::DEFAULT_MAX_FRAME_LEN))]
    fn parse_stream<'py>(
        &self,
        py: Python<'py>,
        data: Input<'_>,
        framing: &str,
        max_frame_len: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let config = framing_config(framing, max_frame_len)?;
        let bytes = data.bytes();
        let outcomes = py.detach(|| {
            let mut framer = SyslogFramer::new(config);
            let mut buf = BytesMut::from(bytes);
            let mut out = Vec::new();
            // decode_eof has no I/O errors on an in-memory buffer.
            while let Ok(Some(frame)) = framer.decode_eof(&mut buf) {
                match frame {
                    Frame::Message(m) => match self.parse_one(&m) {
                        Ok(p) => out.push(Outcome::Message(Box::new(p))),
                        Err(e) => {
                            out.push(Outcome::Rejected(e));
                            break;
                        }
                    },
                    Frame::Bad(b) => out.push(Outcome::Bad(b)),
                }
            }
            out
        });
        let list = PyList::empty(py);
        for (i, o) in outcomes.into_iter().enumerate() {
            match o {
                Outcome::Message(p) => list.append(PySyslogMessage { p: *p })?,
                Outcome::Bad(b) => list.append(PyBadFrame::new(b))?,
                Outcome::Rejected(e) => {
                    return Err(crate::errors::with_attrs(
                        py,
                        syslog_error(py, &e),
                        &[("frame", crate::errors::obj(py, i))],
                    ));
                }
            }
        }
        Ok(list)
    }

    fn __repr__(&self) -> String {
        format!(
            "SyslogParser(strict={}, format={:?}, time_zone={:?})",
            if self.strict() { "True" } else { "False" },
            self.format(),
            self.time_zone
        )
    }
}

/// One parsed syslog message. Header fields are None when absent (`-` in
/// RFC 5424). `timestamp` is nanoseconds since the Unix epoch.
#[pyclass(module = "killkrill", name = "SyslogMessage", frozen)]
pub(crate) struct PySyslogMessage {
    p: Parsed,
}

#[pymethods]
impl PySyslogMessage {
    /// `"rfc5424"` or `"rfc3164"`.
    #[getter]
    fn protocol(&self) -> &'static str {
        self.p.protocol.as_str()
    }

    /// PRI (facility * 8 + severity), or None without a PRI.
    #[getter]
    fn priority(&self) -> Option<u8> {
        Some(self.p.record.facility?.code() * 8 + self.p.record.severity?.code())
    }

    /// Facility code 0..23, or None.
    #[getter]
    fn facility(&self) -> Option<u8> {
        self.p.record.facility.map(|f| f.code())
    }

    /// Facility keyword (`kern`, ..., `local7`), or None.
    #[getter]
    fn facility_name(&self) -> Option<&'static str> {
        self.p.record.facility.map(|f| f.name())
    }

    /// Severity code 0..7, or None.
    #[getter]
    fn severity(&self) -> Option<u8> {
        self.p.record.severity.map(|s| s.code())
    }

    /// Severity keyword (`emerg`, ..., `debug`), or None.
    #[getter]
    fn severity_name(&self) -> Option<&'static str> {
        self.p.record.severity.map(|s| s.name())
    }

    /// RFC 5424 VERSION, or None.
    #[getter]
    fn version(&self) -> Option<u16> {
        self.p.version
    }

    /// The message's own time in nanoseconds since the Unix epoch, or None.
    #[getter]
    fn timestamp(&self) -> Option<i64> {
        self.p
            .has_timestamp
            .then(|| self.p.record.timestamp.as_nanos())
    }

    /// The message's own time as RFC 3339 text (UTC, nanoseconds), or None.
    #[getter]
    fn timestamp_rfc3339(&self) -> Option<String> {
        self.p
            .has_timestamp
            .then(|| self.p.record.timestamp.to_rfc3339())
    }

    #[getter]
    fn hostname(&self) -> Option<&str> {
        self.p.record.host.as_deref()
    }

    #[getter]
    fn appname(&self) -> Option<&str> {
        self.p.record.app.as_deref()
    }

    #[getter]
    fn procid(&self) -> Option<&str> {
        self.p.record.procid.as_deref()
    }

    #[getter]
    fn msgid(&self) -> Option<&str> {
        self.p.record.msgid.as_deref()
    }

    /// `{sd_id: {name: value}}`, values unescaped; a parameter repeated in
    /// an element gives a list. Empty when there is none.
    #[getter]
    fn structured_data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        sd_to_py(py, &self.p.record.structured_data)
    }

    /// MSG bytes exactly as sent (BOM removed, see `bom`), or None.
    #[getter]
    fn message<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.p
            .record
            .message
            .as_deref()
            .map(|m| PyBytes::new(py, m))
    }

    /// MSG as text (invalid UTF-8 replaced by U+FFFD), or None.
    #[getter]
    fn text(&self) -> Option<String> {
        self.p.record.message_str().map(|m| m.into_owned())
    }

    /// True when the RFC 5424 MSG started with a UTF-8 BOM.
    #[getter]
    fn bom(&self) -> bool {
        self.p.bom
    }

    /// Cisco-style sequence number of an RFC 3164 message, or None.
    #[getter]
    fn sequence(&self) -> Option<u64> {
        self.p.sequence
    }

    /// Lenient mode only: why the message was kept raw, as the
    /// `SyslogParseError` strict mode would have raised (not raised here).
    #[getter]
    fn error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.p
            .error
            .as_ref()
            .map(|e| syslog_error(py, e).into_value(py).into_any())
    }

    /// The owned `LogRecord`; `received` (nanoseconds, default now) is its
    /// timestamp when the message has none.
    #[pyo3(signature = (received=None))]
    fn to_record(&self, received: Option<i64>) -> PyLogRecord {
        let mut record = self.p.record.clone();
        if !self.p.has_timestamp {
            record.timestamp = received.map_or_else(Timestamp::now, Timestamp::from_nanos);
        }
        PyLogRecord::new(record)
    }

    /// The canonical JSON form of `to_record(received)` as a dict.
    #[pyo3(signature = (received=None))]
    fn to_dict<'py>(&self, py: Python<'py>, received: Option<i64>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.to_record(received).inner.to_json())
    }

    /// The canonical JSON form of `to_record(received)` as text.
    #[pyo3(signature = (received=None))]
    fn to_json(&self, received: Option<i64>) -> String {
        self.to_record(received).inner.to_json()
    }

    fn __repr__(&self) -> String {
        format!(
            "SyslogMessage(protocol={:?}, priority={}, hostname={}, appname={}, text={})",
            self.protocol(),
            self.priority()
                .map_or_else(|| "None".to_owned(), |p| p.to_string()),
            py_repr(self.hostname()),
            py_repr(self.appname()),
            py_repr(self.text().as_deref())
        )
    }
}

/// Parses one syslog message with a one-off parser; see `SyslogParser` for
/// the options.
#[pyfunction]
#[pyo3(signature = (data, *, strict=false, format="auto", time_zone="UTC", now=None, compliant_msg=false))]
fn parse_syslog(
    py: Python<'_>,
    data: Input<'_>,
    strict: bool,
    format: &str,
    time_zone: &str,
    now: Option<i64>,
    compliant_msg: bool,
) -> PyResult<PySyslogMessage> {
    PySyslogParser::new(strict, format, time_zone, now, compliant_msg, true)?.parse(py, data)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySyslogParser>()?;
    m.add_class::<PySyslogMessage>()?;
    m.add_function(wrap_pyfunction!(parse_syslog, m)?)?;
    Ok(())
}

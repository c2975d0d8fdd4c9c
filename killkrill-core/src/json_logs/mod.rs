//! JSON logs: a single object, an array of objects, or NDJSON, into
//! [`LogRecord`](crate::event::LogRecord)s.
//!
//! This is what `POST /api/v1/logs` and `killkrill parse --format json`
//! run. Applications log JSON in many dialects — pino, bunyan, zap, slog,
//! structlog, Docker's json-file, Logstash — so the parser is permissive in
//! what it *recognises* (several aliases per header field, epoch timestamps
//! in any unit, numeric levels) and strict in what it *keeps*: every field
//! the sender wrote ends up in the record, either as a header field or as an
//! attribute, and every record that cannot be read is either an error that
//! names it or, in lenient mode, a raw record that keeps its bytes.
//!
//! How the pieces fit:
//! - [`shape`] decides object / array / NDJSON from the body; `ndjson`
//!   cuts lines, `array` walks elements;
//! - `record` builds one record directly from serde_json's tokens (no
//!   `serde_json::Value` tree), `flatten` turns nested objects into dotted
//!   attribute names, `array_text` keeps arrays as JSON text;
//! - [`aliases`] moves `timestamp|ts|...`, `level|severity`, ... into the
//!   header with a fixed precedence, [`timestamp`] reads RFC 3339 and epoch
//!   numbers, [`level`] maps numeric levels;
//! - [`JsonLogLimits`] bounds everything while parsing, [`JsonLogError`]
//!   says where things went wrong.
//!
//! ```
//! use killkrill_core::event::{Severity, Timestamp};
//! use killkrill_core::json_logs::{JsonLogParser, JsonLogLimits, Mode};
//!
//! let parser = JsonLogParser::new(JsonLogLimits::DEFAULT, Mode::Strict);
//! let body = br#"{"ts":1764090756.5,"level":"warn","msg":"slow","http":{"status":503}}"#;
//! let mut records = Vec::new();
//! parser.parse_body(body, Timestamp::EPOCH, &mut records).unwrap();
//! let r = &records[0];
//! assert_eq!(r.timestamp.to_rfc3339(), "2025-11-25T17:12:36.500000000Z");
//! assert_eq!(r.severity, Some(Severity::Warning));
//! assert_eq!(r.message_str().as_deref(), Some("slow"));
//! assert_eq!(r.attributes, vec![("http.status".to_owned(), 503.into())]);
//! ```
//!
//! The user-facing description (shapes, aliases, flattening, timestamps,
//! limits, error format) is `docs/src/json-logs.md`.

pub mod aliases;
mod array;
mod array_text;
mod error;
mod flatten;
pub mod level;
mod limits;
mod ndjson;
mod parser;
mod record;
pub mod shape;
pub mod timestamp;

pub use aliases::{ALIASES, HeaderField};
pub use error::{InvalidTimestamp, JsonLogError, Position, Problem, RecordLocation};
pub use limits::JsonLogLimits;
pub use parser::{BodyReport, JsonLogParser, LineParser, Mode, Parsed, raw_record};
pub use shape::{Shape, detect_shape, line_opens_unclosed_value};
pub use timestamp::{EpochUnit, TimestampValueError, timestamp_from_value};

//! The JSON logs parser: a body (or a stream of lines) in, log records out.
//!
//! [`JsonLogParser::parse_body`] takes a whole request body, finds its shape
//! and appends one [`LogRecord`] per record. [`LineParser`] takes NDJSON one
//! line at a time, for readers that stream (the `parse` CLI).
//!
//! The two [`Mode`]s differ only in what happens to a record that cannot be
//! read. Limits on the body as a whole (its size, its record count) fail the
//! whole body in both modes.

use crate::event::{LogRecord, Timestamp};

use super::array::parse_array;
use super::error::{JsonLogError, Position, Problem, RecordLocation, position_in_body};
use super::limits::JsonLogLimits;
use super::ndjson::{Lines, is_blank};
use super::record::RecordBuilder;
use super::shape::{BOM, Shape, detect_shape, is_ws};

/// What to do with a record that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Fail the whole body with the first error. What `POST /api/v1/logs`
    /// should use by default: the sender learns at once (400 naming the
    /// line), nothing of a bad batch is stored, and a corrected retry cannot
    /// store half of it twice.
    #[default]
    Strict,
    /// Keep going: a record that cannot be read becomes a raw record (its
    /// bytes as the message, `parse_error` set, the receive time as its
    /// timestamp), and a record whose timestamp cannot be read keeps its
    /// fields, the receive time, and `parse_error`. For senders that cannot be
    /// fixed or told (log shippers tailing files with the odd plain-text
    /// line), and for `killkrill parse` without `--strict`.
    Lenient,
}

/// One record read from a line, with the error it had in lenient mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The record: parsed, or raw with `parse_error` set.
    pub record: LogRecord,
    /// Why the record is raw or has `parse_error` set (lenient mode only).
    pub error: Option<JsonLogError>,
}

/// What [`JsonLogParser::parse_body`] did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BodyReport {
    /// The shape found.
    pub shape: Option<Shape>,
    /// Records appended to the output (raw ones included).
    pub records: usize,
    /// In lenient mode, one error per raw record or unreadable timestamp, in
    /// order. Always empty in strict mode.
    pub errors: Vec<JsonLogError>,
    /// Duplicate keys whose earlier value was replaced (last one wins).
    pub duplicate_fields: u64,
}

/// Parses JSON log bodies into [`LogRecord`]s. Cheap to build; holds only
/// its limits and mode, so one can be shared by every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JsonLogParser {
    limits: JsonLogLimits,
    mode: Mode,
}

impl JsonLogParser {
    /// A parser with these limits and mode.
    pub const fn new(limits: JsonLogLimits, mode: Mode) -> Self {
        JsonLogParser { limits, mode }
    }

    /// The limits.
    pub const fn limits(&self) -> &JsonLogLimits {
        &self.limits
    }

    /// The mode.
    pub const fn mode(&self) -> Mode {
        self.mode
    }

    /// Parses a whole body — one object, an array of objects, or NDJSON,
    /// detected by [`detect_shape`] — and appends its records to `out`.
    /// Records without a timestamp get `received`.
    ///
    /// # Errors
    /// A body over [`JsonLogLimits::max_body_bytes`] or with more than
    /// [`JsonLogLimits::max_records`] records, in either mode; in
    /// [`Mode::Strict`] also the first record that cannot be read. On error
    /// `out` is left as it was.
    pub fn parse_body(
        &self,
        body: &[u8],
        received: Timestamp,
        out: &mut Vec<LogRecord>,
    ) -> Result<BodyReport, JsonLogError> {
        let limit = self.limits.max_body_bytes;
        if body.len() > limit {
            return Err(JsonLogError::new(
                RecordLocation::Body,
                Problem::BodyTooLarge {
                    size: body.len(),
                    limit,
                },
            ));
        }
        // Positions are counted after a byte-order mark, as an editor shows
        // them (and as a line reader that drops it reports them).
        let body = body.strip_prefix(BOM).unwrap_or(body);
        let before = out.len();
        let shape = detect_shape(body);
        let mut ctx = BodyCtx {
            parser: self,
            body,
            received,
            out,
            errors: Vec::new(),
            builder: RecordBuilder::new(&self.limits),
            records: 0,
        };
        let result = match shape {
            Shape::Empty => Ok(()),
            Shape::Ndjson => ctx.ndjson(),
            Shape::Array => parse_array(&mut ctx),
            Shape::Object => ctx.object(),
        };
        let report = BodyReport {
            shape: Some(shape),
            records: ctx.records,
            errors: ctx.errors,
            duplicate_fields: ctx.builder.duplicates,
        };
        match result {
            Ok(()) => Ok(report),
            Err(e) => {
                out.truncate(before);
                Err(e)
            }
        }
    }

    /// A parser for NDJSON that arrives line by line.
    pub fn line_parser(&self) -> LineParser<'_> {
        LineParser {
            parser: self,
            builder: RecordBuilder::new(&self.limits),
        }
    }
}

/// Parses NDJSON one line at a time, reusing its buffers between lines.
/// Record counts and body size are the caller's business here.
pub struct LineParser<'p> {
    parser: &'p JsonLogParser,
    builder: RecordBuilder<'p>,
}

impl LineParser<'_> {
    /// Parses one line (without its `\n`; a trailing `\r` is dropped).
    /// `number` is its 1-based line number, used in errors. Returns `None`
    /// for a blank line. A position in an error is relative to this line
    /// (`offset` is the offset within the line).
    ///
    /// # Errors
    /// In [`Mode::Strict`], why the line is not a record. In lenient mode
    /// the error comes back inside [`Parsed`] with a raw record.
    pub fn parse_line(
        &mut self,
        line: &[u8],
        number: u64,
        received: Timestamp,
    ) -> Result<Option<Parsed>, JsonLogError> {
        let line = match line {
            [head @ .., b'\r'] => head,
            _ => line,
        };
        if is_blank(line) {
            return Ok(None);
        }
        let location = RecordLocation::Line(number);
        let limits = self.parser.limits;
        let result = if line.len() > limits.max_line_bytes {
            Err(JsonLogError::new(
                location,
                Problem::LineTooLong {
                    length: line.len(),
                    limit: limits.max_line_bytes,
                },
            ))
        } else {
            let r = self.builder.parse(line);
            settle(&mut self.builder, r, location, received, |e| {
                position_in_body(e, line, 0, line.len()).map(|p| Position { line: number, ..p })
            })
        };
        resolve(self.parser.mode, result, line, received).map(Some)
    }

    /// Duplicate keys replaced so far by this parser.
    pub fn duplicate_fields(&self) -> u64 {
        self.builder.duplicates
    }
}

/// A record read without error, or the error that kept it from being read;
/// a readable record with a bad timestamp is `Ok` with the error alongside.
type Settled = Result<(LogRecord, Option<JsonLogError>), JsonLogError>;

/// Turns the outcome of [`RecordBuilder::parse`] into a record or an error
/// located at `location`.
pub(crate) fn settle(
    b: &mut RecordBuilder<'_>,
    result: Result<(), serde_json::Error>,
    location: RecordLocation,
    received: Timestamp,
    position: impl FnOnce(&serde_json::Error) -> Option<Position>,
) -> Settled {
    match result {
        Ok(()) => {
            let (record, failure) = b.finish(received);
            let error = failure.map(|f| JsonLogError {
                location,
                position: None,
                field: Some(f.field),
                problem: f.problem,
            });
            Ok((record, error))
        }
        Err(e) => {
            let (field, problem) = b.take_problem(&e);
            Err(JsonLogError {
                location,
                position: position(&e),
                field,
                problem,
            })
        }
    }
}

/// Applies the mode: strict turns any error into `Err`; lenient keeps the
/// record (with `parse_error`) or makes a raw one from `raw`.
pub(crate) fn resolve(
    mode: Mode,
    settled: Settled,
    raw: &[u8],
    received: Timestamp,
) -> Result<Parsed, JsonLogError> {
    match (settled, mode) {
        (Ok((record, None)), _) => Ok(Parsed {
            record,
            error: None,
        }),
        (Ok((_, Some(e))), Mode::Strict) | (Err(e), Mode::Strict) => Err(e),
        (Ok((mut record, Some(e))), Mode::Lenient) => {
            record.parse_error = Some(e.record_text());
            Ok(Parsed {
                record,
                error: Some(e),
            })
        }
        (Err(e), Mode::Lenient) => Ok(Parsed {
            record: raw_record(raw, received, &e),
            error: Some(e),
        }),
    }
}

/// The record kept for input that could not be read: its bytes as the
/// message, the receive time, and the error as `parse_error`.
pub fn raw_record(bytes: &[u8], received: Timestamp, error: &JsonLogError) -> LogRecord {
    LogRecord {
        timestamp: received,
        message: Some(bytes.to_vec()),
        parse_error: Some(error.record_text()),
        ..LogRecord::default()
    }
}

/// `bytes` without leading and trailing JSON whitespace.
pub(crate) fn trim_ws(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_ws(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// State shared by the shape drivers while one body is parsed.
pub(crate) struct BodyCtx<'a, 'p> {
    pub(crate) parser: &'p JsonLogParser,
    pub(crate) body: &'a [u8],
    pub(crate) received: Timestamp,
    pub(crate) out: &'a mut Vec<LogRecord>,
    pub(crate) errors: Vec<JsonLogError>,
    pub(crate) builder: RecordBuilder<'p>,
    pub(crate) records: usize,
}

impl BodyCtx<'_, '_> {
    /// Counts one more record at `location`, failing past the limit.
    pub(crate) fn admit(&mut self, location: RecordLocation) -> Result<(), JsonLogError> {
        let limit = self.parser.limits.max_records;
        if self.records >= limit {
            return Err(JsonLogError::new(
                location,
                Problem::TooManyRecords { limit },
            ));
        }
        self.records += 1;
        Ok(())
    }

    /// Applies the mode to a settled record and appends the result.
    pub(crate) fn push(&mut self, settled: Settled, raw: &[u8]) -> Result<(), JsonLogError> {
        let parsed = resolve(self.parser.mode, settled, raw, self.received)?;
        self.out.push(parsed.record);
        if let Some(e) = parsed.error {
            self.errors.push(e);
        }
        Ok(())
    }

    /// Parses `body[start..end]` as one record at `location` and appends it;
    /// `raw` is what a lenient raw record keeps.
    pub(crate) fn record_at(
        &mut self,
        start: usize,
        end: usize,
        location: RecordLocation,
        raw: &[u8],
    ) -> Result<(), JsonLogError> {
        let body = self.body;
        let r = self.builder.parse(&body[start..end]);
        let settled = settle(&mut self.builder, r, location, self.received, |e| {
            position_in_body(e, body, start, end - start)
        });
        self.push(settled, raw)
    }

    fn ndjson(&mut self) -> Result<(), JsonLogError> {
        let body = self.body;
        let max_line = self.parser.limits.max_line_bytes;
        for line in Lines::new(body, 0) {
            if is_blank(line.bytes) {
                continue;
            }
            let location = RecordLocation::Line(line.number);
            self.admit(location)?;
            if line.bytes.len() > max_line {
                let e = JsonLogError::new(
                    location,
                    Problem::LineTooLong {
                        length: line.bytes.len(),
                        limit: max_line,
                    },
                );
                self.push(Err(e), line.bytes)?;
                continue;
            }
            let end = line.offset + line.bytes.len();
            self.record_at(line.offset, end, location, line.bytes)?;
        }
        Ok(())
    }

    fn object(&mut self) -> Result<(), JsonLogError> {
        self.admit(RecordLocation::Object)?;
        let body = self.body;
        self.record_at(0, body.len(), RecordLocation::Object, trim_ws(body))
    }
}

//! `killkrill parse --format json`: JSON logs (one object, an array, or
//! NDJSON) from stdin.
//!
//! NDJSON — the shape of log files and shippers — is streamed: one line is
//! read, parsed and printed at a time, and a line longer than the limit is
//! skipped over rather than buffered, so memory stays bounded however large
//! the input. An array, or one object spread over several lines, cannot be
//! cut into records before it is parsed, so those are read whole, up to
//! [`MAX_BODY_BYTES`]. The shape is chosen from the first non-blank line by
//! the same rules as `POST /api/v1/logs` (`killkrill_core::json_logs::shape`).
//!
//! Errors go to stderr as `line 17, column 42: ...` (NDJSON, multi-line
//! object) or `index 3, line 1, column 120: ...` (array). Without
//! `--strict` an unreadable line is also printed as a raw record with
//! `parse_error` set; with `--strict` it is only reported, and the exit
//! status is 1.

use std::io::{self, BufRead, Read, Write};

use killkrill_core::event::Timestamp;
use killkrill_core::json_logs::{
    JsonLogError, JsonLogLimits, JsonLogParser, LineParser, Mode, Problem, RecordLocation,
    line_opens_unclosed_value, raw_record,
};

use super::{Emitter, ParseArgs};

/// Largest array or multi-line object read whole: 256 MiB.
pub(super) const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// The parser's limits for local input: the defaults, except that a body may
/// be larger and hold any number of records.
const LIMITS: JsonLogLimits = JsonLogLimits {
    max_body_bytes: MAX_BODY_BYTES,
    max_records: usize::MAX,
    ..JsonLogLimits::DEFAULT
};

const BOM: &[u8] = b"\xef\xbb\xbf";

pub(super) fn run<O: Write, E: Write>(
    args: &ParseArgs,
    mut input: impl BufRead,
    em: &mut Emitter<O, E>,
) -> io::Result<()> {
    let mode = if args.strict {
        Mode::Strict
    } else {
        Mode::Lenient
    };
    let parser = JsonLogParser::new(LIMITS, mode);

    // Leading whitespace, kept so line numbers and offsets stay true.
    let mut prefix = Vec::new();
    let Some(first) = skip_leading_ws(&mut input, &mut prefix)? else {
        em.add_bytes(prefix.len());
        return Ok(());
    };
    let line_start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let first_number = 1 + prefix[..line_start].iter().filter(|&&b| b == b'\n').count() as u64;

    if first == b'[' {
        return whole_body(&parser, prefix, &mut input, em);
    }
    let mut line = prefix[line_start..].to_vec();
    let read = read_line(&mut input, &mut line, LIMITS.max_line_bytes)?;
    if first == b'{' && !read.too_long(&line) && line_opens_unclosed_value(strip_bom(&line)) {
        let mut body = prefix[..line_start].to_vec();
        body.extend_from_slice(&line);
        if read.terminated {
            body.push(b'\n');
        }
        return whole_body(&parser, body, &mut input, em);
    }
    em.add_bytes(prefix.len());
    let mut lines = Lines {
        parser: parser.line_parser(),
        mode,
    };
    lines.one(strip_bom(&line), read, first_number, em)?;
    let mut number = first_number;
    loop {
        line.clear();
        let read = read_line(&mut input, &mut line, LIMITS.max_line_bytes)?;
        if read.consumed == 0 {
            return Ok(());
        }
        number += 1;
        lines.one(&line, read, number, em)?;
    }
}

/// Streams NDJSON lines through a [`LineParser`].
struct Lines<'p> {
    parser: LineParser<'p>,
    mode: Mode,
}

impl Lines<'_> {
    fn one<O: Write, E: Write>(
        &mut self,
        line: &[u8],
        read: LineRead,
        number: u64,
        em: &mut Emitter<O, E>,
    ) -> io::Result<()> {
        em.add_bytes(read.consumed);
        let received = Timestamp::now();
        if read.too_long(line) {
            // Only the first bytes were kept: report the whole length, and in
            // lenient mode keep what was read, saying that it was cut.
            let limit = LIMITS.max_line_bytes;
            let error = JsonLogError::new(
                RecordLocation::Line(number),
                Problem::LineTooLong {
                    length: read.length,
                    limit,
                },
            );
            report(em, &error)?;
            if self.mode == Mode::Lenient {
                let mut rec = raw_record(&line[..limit.min(line.len())], received, &error);
                rec.parse_error = Some(format!(
                    "{}; only the first {limit} bytes are kept",
                    error.record_text()
                ));
                em.log(&rec)?;
            }
            return Ok(());
        }
        match self.parser.parse_line(line, number, received) {
            Ok(None) => Ok(()),
            Ok(Some(parsed)) => {
                if let Some(e) = &parsed.error {
                    report(em, e)?;
                }
                em.log(&parsed.record)
            }
            Err(e) => report(em, &e),
        }
    }
}

/// Reads the rest of the input after `body` (bounded) and parses it whole.
fn whole_body<O: Write, E: Write>(
    parser: &JsonLogParser,
    mut body: Vec<u8>,
    input: &mut impl BufRead,
    em: &mut Emitter<O, E>,
) -> io::Result<()> {
    let room = (MAX_BODY_BYTES + 1).saturating_sub(body.len());
    input.take(room as u64).read_to_end(&mut body)?;
    em.add_bytes(body.len());
    if body.len() > MAX_BODY_BYTES {
        let error = JsonLogError::new(
            RecordLocation::Body,
            Problem::BodyTooLarge {
                size: body.len(),
                limit: MAX_BODY_BYTES,
            },
        );
        em.error(
            "body",
            None,
            &format!(
                "{}; an array or a multi-line object is read whole, NDJSON is streamed",
                error.problem
            ),
        )?;
        return Ok(());
    }
    let mut records = Vec::new();
    match parser.parse_body(&body, Timestamp::now(), &mut records) {
        Ok(summary) => {
            for e in &summary.errors {
                report(em, e)?;
            }
            for r in &records {
                em.log(r)?;
            }
            Ok(())
        }
        Err(e) => report(em, &e),
    }
}

fn report<O: Write, E: Write>(em: &mut Emitter<O, E>, e: &JsonLogError) -> io::Result<()> {
    em.error(&e.location_text(), e.column(), &e.detail())
}

/// What [`read_line`] found.
#[derive(Debug, Clone, Copy)]
struct LineRead {
    /// Bytes taken from the input, terminator included (0 at the end).
    consumed: usize,
    /// The line's length without `\n` and a `\r` before it.
    length: usize,
    /// Whether it ended with `\n` (the last line may not).
    terminated: bool,
}

impl LineRead {
    /// Whether the line is over the limit (and so was not kept whole).
    fn too_long(&self, kept: &[u8]) -> bool {
        self.length > LIMITS.max_line_bytes || kept.len() < self.length
    }
}

/// Appends one line (without `\n`) to `buf`, keeping at most `max + 1`
/// bytes of it (room for a `\r`) and skipping the rest without storing it.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<LineRead> {
    let already = buf.len();
    let mut consumed = 0;
    let mut raw_len = already;
    let mut last = buf.last().copied();
    let terminated = loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break false;
        }
        let (part, used, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = (max + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&part[..part.len().min(room)]);
        if let Some(&b) = part.last() {
            last = Some(b);
        }
        raw_len += part.len();
        consumed += used;
        input.consume(used);
        if done {
            break true;
        }
    };
    let length = raw_len - usize::from(last == Some(b'\r'));
    Ok(LineRead {
        consumed,
        length,
        terminated,
    })
}

/// Consumes a byte-order mark and JSON whitespace into `prefix` and returns
/// the first other byte, not consumed; `None` at the end of the input.
fn skip_leading_ws(input: &mut impl BufRead, prefix: &mut Vec<u8>) -> io::Result<Option<u8>> {
    let mut first_chunk = true;
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(None);
        }
        let mut skip = 0;
        if first_chunk && chunk.starts_with(BOM) {
            skip = BOM.len();
        }
        first_chunk = false;
        skip += chunk[skip..]
            .iter()
            .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count();
        if prefix.len() + skip > MAX_BODY_BYTES {
            return Err(io::Error::other(format!(
                "more than {MAX_BODY_BYTES} bytes of leading whitespace"
            )));
        }
        prefix.extend_from_slice(&chunk[..skip]);
        let next = chunk.get(skip).copied();
        input.consume(skip);
        if next.is_some() {
            return Ok(next);
        }
    }
}

fn strip_bom(line: &[u8]) -> &[u8] {
    line.strip_prefix(BOM).unwrap_or(line)
}

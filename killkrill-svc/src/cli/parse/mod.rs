//! `killkrill parse`: run a parser over stdin and print what it produced.
//!
//! Operators use it to see how Killkrill will read their senders' output
//! before pointing them at a server; we use it to measure parser throughput
//! on real files (`--output count`). Each format lives in its own module and
//! reports through an [`Emitter`], which owns the output mode, the counters
//! and the error reporting, so every format prints and counts the same way.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use killkrill_core::event::{LogRecord, MetricSample};

mod body;
mod json;
mod loki;
mod prometheus;
mod remote_write;
mod syslog;

/// Arguments of `killkrill parse`.
#[derive(Debug, Clone, Args)]
pub struct ParseArgs {
    /// Input format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Reject what does not follow the format exactly (exit status 1 if any
    /// frame failed) instead of keeping it raw with `parse_error` set.
    #[arg(long)]
    pub strict: bool,
    /// `json`: one canonical record (or sample) per line; `count`: parse
    /// without printing records and print one JSON summary line.
    #[arg(long, value_enum, default_value_t = Output::Json)]
    pub output: Output,
    /// For `remote-write` and `loki`: the request's `Content-Type` header, which
    /// selects remote write 1.0 (`application/x-protobuf`, the default) or 2.0
    /// (`application/x-protobuf;proto=io.prometheus.write.v2.Request`), and Loki
    /// JSON (`application/json`) or protobuf (`application/x-protobuf`, the default).
    #[arg(long)]
    pub content_type: Option<String>,
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Syslog (RFC 5424 or RFC 3164) in RFC 6587 framing (octet counting or
    /// LF/CRLF/NUL-terminated, detected per frame).
    Syslog,
    /// JSON logs: one object, an array of objects, or NDJSON (streamed).
    Json,
    /// One Prometheus remote write request body (snappy + protobuf, 1.0 or 2.0
    /// by `--content-type`); always strict, as a request is accepted or rejected whole.
    RemoteWrite,
    /// One Loki push request body (JSON or protobuf by `--content-type`); always
    /// strict, as a request is accepted or rejected whole.
    Loki,
    /// Prometheus text exposition format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text exposition format.
    #[value(name = "openmetrics")]
    OpenMetrics,
}

/// Output modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// One JSON object per record or sample.
    Json,
    /// Only a summary line.
    Count,
}

/// What a format counts in its summary: log messages or metric samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `{"messages": N, ...}`
    Messages,
    /// `{"samples": N, ...}`
    Samples,
}

/// Collects a format's results: prints records in `json` mode, counts them,
/// and reports errors to stderr with where they happened.
pub struct Emitter<O: Write, E: Write> {
    out: O,
    err: E,
    output: Output,
    items: u64,
    errors: u64,
    bytes: u64,
}

impl<O: Write, E: Write> Emitter<O, E> {
    fn new(out: O, err: E, output: Output) -> Self {
        Emitter {
            out,
            err,
            output,
            items: 0,
            errors: 0,
            bytes: 0,
        }
    }

    /// Counts input bytes consumed.
    pub fn add_bytes(&mut self, n: usize) {
        self.bytes += n as u64;
    }

    /// One parsed log record.
    ///
    /// # Errors
    /// Writing to stdout failed.
    pub fn log(&mut self, rec: &LogRecord) -> std::io::Result<()> {
        self.items += 1;
        if self.output == Output::Json {
            rec.write_json(&mut self.out)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// One parsed metric sample.
    ///
    /// # Errors
    /// Writing to stdout failed.
    pub fn sample(&mut self, s: &MetricSample) -> std::io::Result<()> {
        self.items += 1;
        if self.output == Output::Json {
            serde_json::to_writer(&mut self.out, s).map_err(std::io::Error::other)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// One error, located by `unit` (e.g. `frame 3` or `line 17`) and an
    /// optional 0-based column, reported on stderr.
    ///
    /// # Errors
    /// Writing to stderr failed.
    pub fn error(
        &mut self,
        location: &str,
        column: Option<usize>,
        what: &dyn std::fmt::Display,
    ) -> std::io::Result<()> {
        self.errors += 1;
        match column {
            Some(c) => writeln!(self.err, "{location}, column {c}: {what}"),
            None => writeln!(self.err, "{location}: {what}"),
        }
    }

    /// An informational line on stderr (not counted as an error).
    ///
    /// # Errors
    /// Writing to stderr failed.
    pub fn note(&mut self, what: &dyn std::fmt::Display) -> std::io::Result<()> {
        writeln!(self.err, "{what}")
    }

    /// True when records are printed (`--output json`); a format may skip
    /// building records otherwise and call [`Emitter::count`].
    pub fn wants_records(&self) -> bool {
        self.output == Output::Json
    }

    /// Counts one item without printing it (`--output count`).
    pub fn count(&mut self) {
        self.items += 1;
    }

    /// Errors reported so far.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    fn finish(mut self, unit: Unit, seconds: f64) -> std::io::Result<()> {
        if self.output == Output::Count {
            let key = match unit {
                Unit::Messages => "messages",
                Unit::Samples => "samples",
            };
            // Written by hand so the keys keep the documented order
            // (`{"messages":N,"errors":E,"bytes":B,"seconds":S}`).
            let seconds = serde_json::to_string(&seconds).map_err(std::io::Error::other)?;
            write!(
                self.out,
                r#"{{"{key}":{},"errors":{},"bytes":{},"seconds":{seconds}}}"#,
                self.items, self.errors, self.bytes
            )?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()
    }
}

/// Runs `killkrill parse` over `input`, writing records or the summary to
/// `out` and errors to `err`. Exit status: 0, or 1 when `--strict` (always for
/// the request-body formats `remote-write` and `loki`) and anything failed, or 2
/// when the input or output could not be read or written.
pub fn run(args: &ParseArgs, input: impl BufRead, out: impl Write, err: impl Write) -> ExitCode {
    let started = Instant::now();
    let mut em = Emitter::new(out, err, args.output);
    let result = match args.format {
        Format::Syslog => syslog::run(args, input, &mut em).map(|()| Unit::Messages),
        Format::Json => json::run(args, input, &mut em).map(|()| Unit::Messages),
        Format::RemoteWrite => remote_write::run(args, input, &mut em).map(|()| Unit::Samples),
        Format::Loki => loki::run(args, input, &mut em).map(|()| Unit::Messages),
        Format::Prometheus => {
            use killkrill_core::prometheus::Format as F;
            prometheus::run(args, F::Text, input, &mut em).map(|()| Unit::Samples)
        }
        Format::OpenMetrics => {
            use killkrill_core::prometheus::Format as F;
            prometheus::run(args, F::OpenMetrics, input, &mut em).map(|()| Unit::Samples)
        }
    };
    let unit = match result {
        Ok(unit) => unit,
        Err(e) => {
            let _ = writeln!(em.err, "killkrill parse: {e}");
            return ExitCode::from(2);
        }
    };
    let failed = em.errors() > 0;
    if let Err(e) = em.finish(unit, started.elapsed().as_secs_f64()) {
        let _ = writeln!(std::io::stderr(), "killkrill parse: {e}");
        return ExitCode::from(2);
    }
    // A request body is accepted or rejected whole: nothing is kept raw, so
    // those formats fail like --strict.
    let strict = args.strict || matches!(args.format, Format::RemoteWrite | Format::Loki);
    if strict && failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_summary_keeps_the_documented_key_order() {
        let mut out = Vec::new();
        let mut em = Emitter::new(&mut out, Vec::new(), Output::Count);
        em.add_bytes(12);
        em.log(&LogRecord::default()).unwrap();
        em.error("line 2", Some(4), &"expected a JSON object")
            .unwrap();
        em.finish(Unit::Messages, 0.5).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"messages\":1,\"errors\":1,\"bytes\":12,\"seconds\":0.5}\n"
        );
    }
}

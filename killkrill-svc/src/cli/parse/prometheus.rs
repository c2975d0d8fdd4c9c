//! `killkrill parse --format prometheus|openmetrics`: an exposition on
//! stdin, one sample per output line.
//!
//! Without `--strict` the parser runs in lenient mode: every bad line is
//! reported on stderr (line, column, what was expected) and counted, and
//! the other lines still come out. With `--strict` the format's rules all
//! apply, parsing stops at the first error and the exit status is 1.

use std::io::{BufRead, Read, Write};

use killkrill_core::prometheus::{Format, Mode, ParseError, ParseOptions, Parser};

use super::{Emitter, ParseArgs};

/// The most stdin is allowed to hold: an exposition is parsed in memory.
pub(super) const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

pub(super) fn run<O: Write, E: Write>(
    args: &ParseArgs,
    format: Format,
    input: impl BufRead,
    em: &mut Emitter<O, E>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    input.take(MAX_INPUT_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(std::io::Error::other(format!(
            "input is larger than the {} MiB limit for an exposition",
            MAX_INPUT_BYTES >> 20
        )));
    }
    em.add_bytes(buf.len());
    let mode = if args.strict {
        Mode::Strict
    } else {
        Mode::Lenient
    };
    let options = ParseOptions { format, mode };
    match Parser::from_bytes(&buf, options) {
        Ok(parser) => drive(parser, em),
        Err(e) => {
            report(em, &e)?;
            if args.strict {
                return Ok(());
            }
            // Lenient: go on with the invalid bytes replaced, so the rest
            // of the exposition still comes out.
            let text = String::from_utf8_lossy(&buf);
            drive(Parser::new(&text, options), em)
        }
    }
}

fn drive<O: Write, E: Write>(parser: Parser<'_>, em: &mut Emitter<O, E>) -> std::io::Result<()> {
    for item in parser {
        match item.and_then(|s| s.to_metric_sample()) {
            Ok(sample) => em.sample(&sample)?,
            Err(e) => report(em, &e)?,
        }
    }
    Ok(())
}

fn report<O: Write, E: Write>(em: &mut Emitter<O, E>, e: &ParseError) -> std::io::Result<()> {
    em.error(&format!("line {}", e.line), e.column, &e.kind)
}

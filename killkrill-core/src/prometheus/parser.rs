//! The streaming parser: lines in, samples out.
//!
//! [`Parser`] is an iterator of `Result<Sample, ParseError>`: one item per
//! sample line, one error per problem. In strict mode it stops after the
//! first error; in lenient mode it reports the error and goes on with the
//! next line, so one bad line of a scrape never costs the others. Family
//! metadata accumulates in [`Parser::families`].

use std::collections::VecDeque;

use super::error::{ErrorKind, ParseError};
use super::family::Family;
use super::lexer::Lines;
use super::om_rules::OmRules;
use super::sample::Sample;
use super::text::TextRules;

/// Which exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

/// How strictly to apply the format's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Every rule; the parser stops at the first error.
    #[default]
    Strict,
    /// What scraping real exporters needs: harmless deviations are
    /// accepted, and after an error the parser goes on with the next line.
    Lenient,
}

/// Parser configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParseOptions {
    /// The format.
    pub format: Format,
    /// Strict or lenient.
    pub mode: Mode,
}

impl ParseOptions {
    /// Strict text format 0.0.4.
    pub const fn text() -> Self {
        ParseOptions {
            format: Format::Text,
            mode: Mode::Strict,
        }
    }

    /// Strict OpenMetrics 1.0.
    pub const fn openmetrics() -> Self {
        ParseOptions {
            format: Format::OpenMetrics,
            mode: Mode::Strict,
        }
    }

    /// The same format in lenient mode.
    pub const fn lenient(self) -> Self {
        ParseOptions {
            format: self.format,
            mode: Mode::Lenient,
        }
    }
}

#[derive(Debug)]
enum Rules<'a> {
    Text(TextRules<'a>),
    OpenMetrics(OmRules<'a>),
}

/// Streaming parser over an exposition held in memory.
#[derive(Debug)]
pub struct Parser<'a> {
    lines: Lines<'a>,
    options: ParseOptions,
    rules: Rules<'a>,
    families: Vec<Family<'a>>,
    pending: VecDeque<Result<Sample<'a>, ParseError>>,
    done: bool,
    errors: usize,
}

impl<'a> Parser<'a> {
    /// A parser over `input`.
    pub fn new(input: &'a str, options: ParseOptions) -> Self {
        let strict = options.mode == Mode::Strict;
        let rules = match options.format {
            Format::Text => Rules::Text(TextRules::new(strict)),
            Format::OpenMetrics => Rules::OpenMetrics(OmRules::new(strict)),
        };
        Parser {
            lines: Lines::new(input, !strict),
            options,
            rules,
            families: Vec::new(),
            pending: VecDeque::new(),
            done: false,
            errors: 0,
        }
    }

    /// A parser over bytes, which must be UTF-8.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidUtf8`] with the line and column of the first
    /// invalid byte.
    pub fn from_bytes(input: &'a [u8], options: ParseOptions) -> Result<Self, ParseError> {
        match std::str::from_utf8(input) {
            Ok(s) => Ok(Parser::new(s, options)),
            Err(e) => Err(utf8_error(input, e.valid_up_to())),
        }
    }

    /// Metric families seen so far (all of them once the iterator is done).
    pub fn families(&self) -> &[Family<'a>] {
        &self.families
    }

    /// Errors returned so far.
    pub fn errors(&self) -> usize {
        self.errors
    }

    /// The options this parser runs with.
    pub fn options(&self) -> ParseOptions {
        self.options
    }

    fn emit(&mut self, item: Result<Sample<'a>, ParseError>) -> Result<Sample<'a>, ParseError> {
        if item.is_err() {
            self.errors += 1;
            if self.options.mode == Mode::Strict {
                self.done = true;
                self.pending.clear();
            }
        }
        item
    }
}

/// The position of the first invalid UTF-8 byte as a parse error.
pub(crate) fn utf8_error(input: &[u8], valid_up_to: usize) -> ParseError {
    let before = &input[..valid_up_to];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let column = memchr::memrchr(b'\n', before).map_or(valid_up_to, |n| valid_up_to - n - 1);
    ParseError::new(line, Some(column), ErrorKind::InvalidUtf8)
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Sample<'a>, ParseError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(self.emit(item));
            }
            if self.done {
                return None;
            }
            let Some(line) = self.lines.next() else {
                if let Rules::OpenMetrics(om) = &mut self.rules {
                    om.finish(self.lines.number(), &mut self.families, &mut self.pending);
                }
                // What finishing produced is drained at the top of the loop.
                self.done = true;
                continue;
            };
            let step = match &mut self.rules {
                Rules::Text(t) => t.line(line, &mut self.families),
                Rules::OpenMetrics(om) => om.line(line, &mut self.families, &mut self.pending),
            };
            if let Some(item) = step {
                if self.pending.is_empty() {
                    return Some(self.emit(item));
                }
                self.pending.push_back(item);
            }
        }
    }
}

//! Parse errors of the exposition formats.
//!
//! Every error names the 1-based line and, where one position is to blame,
//! the 0-based byte column inside that line, plus what the parser expected.
//! Scrapers and the `killkrill parse` command print them as they are, so the
//! messages are written for the person who maintains the exporter.

use std::fmt;

/// An error found while parsing an exposition, with its position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 0-based byte offset inside the line, when one position is to blame.
    pub column: Option<usize>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl ParseError {
    pub(crate) fn new(line: usize, column: Option<usize>, kind: ErrorKind) -> Self {
        ParseError { line, column, kind }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "line {}, column {}: {}", self.line, c, self.kind),
            None => write!(f, "line {}: {}", self.line, self.kind),
        }
    }
}

/// What was found where something else was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The line ended.
    EndOfLine,
    /// The input ended.
    EndOfInput,
    /// A character.
    Char(char),
    /// A token (number, type name, ...).
    Token(String),
}

impl Found {
    pub(crate) fn at(s: &str, pos: usize) -> Found {
        match s.get(pos..).and_then(|r| r.chars().next()) {
            Some(c) => Found::Char(c),
            None => Found::EndOfLine,
        }
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::EndOfLine => f.write_str("end of line"),
            Found::EndOfInput => f.write_str("end of input"),
            Found::Char(c) if c.is_control() || *c == ' ' => write!(f, "{c:?}"),
            Found::Char(c) => write!(f, "`{c}`"),
            Found::Token(t) => write!(f, "`{t}`"),
        }
    }
}

/// The kinds of parse error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A syntax error: something else was expected here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the grammar allows here.
        expected: &'static str,
        /// What is there instead.
        found: Found,
    },
    /// A backslash escape the format does not define.
    #[error("invalid escape sequence `\\{0}` (allowed: `\\\\`, `\\\"`, `\\n`)")]
    InvalidEscape(char),
    /// The same label name twice in one label set.
    #[error("duplicate label name `{0}`")]
    DuplicateLabel(String),
    /// `__name__` used as a label name.
    #[error("label name `__name__` is reserved; the metric name goes before `{{`")]
    ReservedLabelName,
    /// The input is not UTF-8.
    #[error("invalid UTF-8; the exposition formats are UTF-8 text")]
    InvalidUtf8,
    /// A `# TYPE` with a type the format does not know.
    #[error("unknown metric type `{found}`, expected one of {expected}")]
    UnknownType {
        /// The type as written.
        found: String,
        /// The accepted spellings.
        expected: &'static str,
    },
    /// A second `# HELP`, `# TYPE` or `# UNIT` for a family.
    #[error("second {what} line for metric family `{family}`")]
    DuplicateMetadata {
        /// `HELP`, `TYPE` or `UNIT`.
        what: &'static str,
        /// The family.
        family: String,
    },
    /// Metadata after the family's samples.
    #[error("{what} for metric family `{family}` after its samples; metadata must come first")]
    MetadataAfterSamples {
        /// `HELP`, `TYPE` or `UNIT`.
        what: &'static str,
        /// The family.
        family: String,
    },
    /// A family name (or one of its series names) used by an earlier family,
    /// e.g. a family split in two or a counter sample without `_total`.
    #[error(
        "metric name `{name}` clashes with an earlier family; a family's lines must be contiguous"
    )]
    ClashingName {
        /// The series or family name used twice.
        name: String,
    },
    /// `# UNIT` that is not a suffix of the family name.
    #[error(
        "unit `{unit}` is not a suffix of metric family `{family}` (expected a name ending in `_{unit}`)"
    )]
    UnitMismatch {
        /// The family.
        family: String,
        /// The unit.
        unit: String,
    },
    /// `# UNIT` on an info or stateset family.
    #[error("metric family `{family}` of type {kind} cannot have a unit")]
    UnitNotAllowed {
        /// The family.
        family: String,
        /// Its type.
        kind: &'static str,
    },
    /// OpenMetrics input without `# EOF`.
    #[error("expected `# EOF` as the last line")]
    MissingEof,
    /// Something after `# EOF`.
    #[error("expected end of input after `# EOF`")]
    TextAfterEof,
    /// An empty line in OpenMetrics.
    #[error("blank line; OpenMetrics does not allow empty lines")]
    BlankLine,
    /// The text format needs a newline after the last line.
    #[error("expected a newline at the end of input")]
    MissingFinalNewline,
    /// A sample violates a rule of its family type.
    #[error("{0}")]
    Rule(String),
    /// A timestamp that cannot be stored: Killkrill keeps i64 nanoseconds.
    #[error(
        "timestamp out of range; Killkrill stores timestamps between 1677-09-21 and 2262-04-11"
    )]
    TimestampOutOfRange,
}

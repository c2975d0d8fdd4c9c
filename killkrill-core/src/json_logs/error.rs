//! Errors of the JSON logs parser: which record, where in it, which field,
//! and what was wrong.
//!
//! A sender that gets a 400 back must be able to find the offending record
//! without guessing, so every error names the record the way the sender
//! wrote it — the NDJSON line number (1-based, blank lines counted, as an
//! editor shows it) or the array index (0-based, as code indexes it) — then a
//! position when serde_json reported one, then the flattened field name when
//! the problem belongs to a field, then the problem:
//!
//! ```text
//! line 17, column 42: field "user.name": string longer than 65536 bytes
//! index 3, line 1, column 120: expected a JSON object, found an array
//! ```
//!
//! Columns are 0-based byte offsets within the line, like every other column
//! Killkrill reports. For a syntax error the column points at the byte that
//! did not fit; for a limit found at the end of a value (a long string) it
//! points at that value's last byte; for an object or array nested too deep,
//! at its opening bracket (or, when it is empty, its closing one).

use std::fmt;

use super::timestamp::TimestampValueError;

/// Which record of a body an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordLocation {
    /// An NDJSON line, 1-based, counting blank lines.
    Line(u64),
    /// An element of a JSON array body, 0-based.
    Index(u64),
    /// The one object of a body that holds a single object over several lines.
    Object,
    /// The body as a whole (its size, its record count, what follows an array).
    Body,
}

/// A position in the body, as serde_json reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// 1-based line within the body.
    pub line: u64,
    /// 0-based byte offset within that line.
    pub column: usize,
    /// 0-based byte offset from the start of the body (after a UTF-8
    /// byte-order mark, which is not counted).
    pub offset: usize,
}

/// What was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// Not valid JSON; the text is serde_json's description without its
    /// position (which is in [`JsonLogError::position`]).
    #[error("{0}")]
    Syntax(String),
    /// A record (a line, an array element, the body) that is valid JSON but
    /// not an object.
    #[error("expected a JSON object, found {found}")]
    NotAnObject {
        /// `an array`, `a string`, `a number`, `a boolean` or `null`.
        found: &'static str,
    },
    /// A key longer than [`super::JsonLogLimits::max_string_bytes`], alone
    /// or joined to its parents' keys with dots.
    #[error("key longer than {limit} bytes")]
    KeyTooLong {
        /// The limit.
        limit: usize,
    },
    /// A string value longer than the limit.
    #[error("string longer than {limit} bytes")]
    StringTooLong {
        /// The limit.
        limit: usize,
    },
    /// An array whose JSON text (which is what it is kept as) exceeds the
    /// string limit.
    #[error("array longer than {limit} bytes as JSON text")]
    ArrayTooLong {
        /// The limit.
        limit: usize,
    },
    /// More fields in one record than [`super::JsonLogLimits::max_fields`].
    #[error("more than {limit} fields")]
    TooManyFields {
        /// The limit.
        limit: usize,
    },
    /// Objects or arrays nested deeper than [`super::JsonLogLimits::max_depth`].
    #[error("nested deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// An NDJSON line longer than [`super::JsonLogLimits::max_line_bytes`].
    #[error("line of {length} bytes is longer than {limit} bytes")]
    LineTooLong {
        /// The line's length without its terminator.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// The timestamp field's value is neither RFC 3339 nor an epoch number
    /// in range.
    #[error("{0}")]
    InvalidTimestamp(Box<InvalidTimestamp>),
    /// The body exceeds [`super::JsonLogLimits::max_body_bytes`] (HTTP 413).
    #[error("body of {size} bytes is larger than {limit} bytes")]
    BodyTooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// More records than [`super::JsonLogLimits::max_records`].
    #[error("more than {limit} records")]
    TooManyRecords {
        /// The limit.
        limit: usize,
    },
}

/// A timestamp value that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid timestamp {value}: {reason}")]
pub struct InvalidTimestamp {
    /// The value as JSON text, cut to 64 bytes.
    pub value: String,
    /// Why it was rejected.
    pub reason: TimestampValueError,
}

/// A JSON logs parse error; its `Display` is the whole located message.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonLogError {
    /// The record the error is about.
    pub location: RecordLocation,
    /// Where serde_json noticed it, when it said.
    pub position: Option<Position>,
    /// The flattened name of the field at fault (`user.name`), if any.
    pub field: Option<String>,
    /// What was wrong.
    pub problem: Problem,
}

impl JsonLogError {
    /// An error without position or field.
    pub fn new(location: RecordLocation, problem: Problem) -> Self {
        JsonLogError {
            location,
            position: None,
            field: None,
            problem,
        }
    }

    /// The record part of the message: `line 17`, `index 3, line 1`,
    /// `line 3` (a multi-line object), `object` or `body`. Together with
    /// [`JsonLogError::column`] and [`JsonLogError::detail`] it makes the
    /// `Display` text: `{location}, column {column}: {detail}`.
    pub fn location_text(&self) -> String {
        let line = self.position.map(|p| p.line);
        match (self.location, line) {
            (RecordLocation::Line(n), _) => format!("line {n}"),
            (RecordLocation::Index(i), Some(l)) => format!("index {i}, line {l}"),
            (RecordLocation::Index(i), None) => format!("index {i}"),
            (RecordLocation::Object, Some(l)) => format!("line {l}"),
            (RecordLocation::Object, None) => "object".to_owned(),
            (RecordLocation::Body, Some(l)) => format!("body, line {l}"),
            (RecordLocation::Body, None) => "body".to_owned(),
        }
    }

    /// The 0-based column, when serde_json gave a position.
    pub fn column(&self) -> Option<usize> {
        self.position.map(|p| p.column)
    }

    /// The field and the problem, without the location:
    /// `field "user.name": string longer than 65536 bytes`.
    pub fn detail(&self) -> String {
        match &self.field {
            Some(f) => format!("field {}: {}", quote(f), self.problem),
            None => self.problem.to_string(),
        }
    }

    /// The text kept in a raw record's `parse_error`: the detail, preceded by
    /// the column within the line when there is one (the record already
    /// says which line it was).
    pub fn record_text(&self) -> String {
        match (self.location, self.position) {
            (RecordLocation::Line(_), Some(p)) => format!("column {}: {}", p.column, self.detail()),
            (_, Some(p)) => format!("line {}, column {}: {}", p.line, p.column, self.detail()),
            (_, None) => self.detail(),
        }
    }

    /// True when the whole body was refused for its size (an HTTP receiver
    /// answers 413 rather than 400).
    pub fn is_body_too_large(&self) -> bool {
        matches!(self.problem, Problem::BodyTooLarge { .. })
    }
}

impl fmt::Display for JsonLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location_text())?;
        if let Some(c) = self.column() {
            write!(f, ", column {c}")?;
        }
        write!(f, ": {}", self.detail())
    }
}

impl std::error::Error for JsonLogError {}

/// A field name in double quotes, JSON-escaped, cut to 200 bytes.
fn quote(name: &str) -> String {
    let cut = cut_at_char_boundary(name, 200);
    let mut q = serde_json::to_string(cut).unwrap_or_else(|_| format!("{cut:?}"));
    if cut.len() < name.len() {
        q.insert(q.len() - 1, '…');
    }
    q
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character
/// boundary.
pub(crate) fn cut_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// serde_json's message without its ` at line L column C` suffix.
pub(crate) fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if e.line() == 0 {
        return text;
    }
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(head) => head.to_owned(),
        None => text,
    }
}

/// Converts serde_json's position (1-based line, column counted as bytes
/// consumed on that line, within `slice` which starts at `base` in `body`)
/// into a [`Position`] within `body`. `None` when serde_json gave none.
pub(crate) fn position_in_body(
    e: &serde_json::Error,
    body: &[u8],
    base: usize,
    slice_len: usize,
) -> Option<Position> {
    if e.line() == 0 {
        return None;
    }
    let slice = &body[base..base + slice_len];
    let mut line_start = 0usize;
    for _ in 1..e.line() {
        match memchr::memchr(b'\n', &slice[line_start..]) {
            Some(i) => line_start += i + 1,
            None => break,
        }
    }
    let offset_in_slice = (line_start + e.column().saturating_sub(1)).min(slice_len);
    let offset = base + offset_in_slice;
    Some(position_of_offset(body, offset))
}

/// The line and column of byte `offset` in `body`.
pub(crate) fn position_of_offset(body: &[u8], offset: usize) -> Position {
    let before = &body[..offset.min(body.len())];
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let line = 1 + memchr::memchr_iter(b'\n', &before[..line_start]).count() as u64;
    Position {
        line,
        column: offset - line_start,
        offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let pos = Some(Position {
            line: 1,
            column: 42,
            offset: 1000,
        });
        let cases: &[(JsonLogError, &str)] = &[
            (
                JsonLogError {
                    location: RecordLocation::Line(17),
                    position: None,
                    field: Some("user.name".into()),
                    problem: Problem::StringTooLong { limit: 65536 },
                },
                r#"line 17: field "user.name": string longer than 65536 bytes"#,
            ),
            (
                JsonLogError {
                    location: RecordLocation::Line(17),
                    position: pos,
                    field: None,
                    problem: Problem::Syntax("expected `:`".into()),
                },
                "line 17, column 42: expected `:`",
            ),
            (
                JsonLogError {
                    location: RecordLocation::Index(3),
                    position: pos,
                    field: None,
                    problem: Problem::NotAnObject { found: "an array" },
                },
                "index 3, line 1, column 42: expected a JSON object, found an array",
            ),
            (
                JsonLogError::new(
                    RecordLocation::Body,
                    Problem::BodyTooLarge {
                        size: 20,
                        limit: 10,
                    },
                ),
                "body: body of 20 bytes is larger than 10 bytes",
            ),
            (
                JsonLogError::new(RecordLocation::Object, Problem::TooManyFields { limit: 2 }),
                "object: more than 2 fields",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), *want);
        }
    }

    #[test]
    fn long_field_names_are_cut() {
        let e = JsonLogError {
            location: RecordLocation::Line(1),
            position: None,
            field: Some("é".repeat(150)),
            problem: Problem::TooDeep { limit: 1 },
        };
        let d = e.detail();
        assert!(d.starts_with("field \"éé"), "{d}");
        assert!(d.contains("é…\": nested"), "{d}");
        assert_eq!(
            d.len(),
            "field \"".len() + 200 + "…\": nested deeper than 1 levels".len()
        );
    }

    #[test]
    fn positions() {
        let body = b"ab\ncdef\ng";
        assert_eq!(
            position_of_offset(body, 5),
            Position {
                line: 2,
                column: 2,
                offset: 5
            }
        );
        assert_eq!(
            position_of_offset(body, 0),
            Position {
                line: 1,
                column: 0,
                offset: 0
            }
        );
        assert_eq!(
            position_of_offset(body, 9),
            Position {
                line: 3,
                column: 1,
                offset: 9
            }
        );
    }
}

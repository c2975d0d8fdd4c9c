//! Parse errors: where the input stopped following the grammar, and what the
//! grammar wanted there.
//!
//! Every error carries a 0-based byte column into the frame that was parsed
//! and a short "expected ..." text, so an operator can point at the byte that
//! broke a message. The [`ParseErrorKind`] names the part of the grammar that
//! failed using the vocabulary of the go-syslog conformance corpus
//! (`pri`, `timestamp`, `sd_param_escape`, ...), so tests and dashboards can
//! group errors without matching on text.

use std::fmt;

/// Which part of the syslog grammar failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input does not start with `<` (or is empty).
    Pri,
    /// The PRI value is not 0..=191 written without leading zeros, or `>` is missing.
    Prival,
    /// The RFC 5424 VERSION is missing, 0, or longer than 3 digits.
    Version,
    /// The TIMESTAMP is malformed or truncated.
    Timestamp,
    /// The TIMESTAMP is well formed but names a day that does not exist
    /// (2003-09-31, or Feb 29 in the year inferred for an RFC 3164 message).
    TimestampDateNonexistent,
    /// HOSTNAME is empty, too long or not printable US-ASCII.
    Hostname,
    /// APP-NAME is empty, too long or not printable US-ASCII.
    Appname,
    /// PROCID is empty, too long or not printable US-ASCII.
    Procid,
    /// MSGID is empty, too long or not printable US-ASCII.
    Msgid,
    /// STRUCTURED-DATA is neither `-` nor a sequence of `[...]` elements.
    StructuredData,
    /// An SD-ID is empty, too long or contains a forbidden character.
    SdId,
    /// The same SD-ID occurs twice in one message.
    SdIdDuplicate,
    /// An SD-PARAM is malformed (name, `=`, quotes, or invalid UTF-8 in the value).
    SdParam,
    /// An SD-PARAM value has an unescaped `]` or a backslash before anything
    /// other than `"`, `\` or `]`.
    SdParamEscape,
    /// A separator or the end of the input was expected.
    Parse,
    /// The MSG starts with a BOM but the rest is not valid UTF-8
    /// (only with [`ParseOptions::compliant_msg`](super::ParseOptions::compliant_msg)).
    MsgNotCompliant,
}

impl ParseErrorKind {
    /// The snake_case name used in the conformance corpus and in metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            ParseErrorKind::Pri => "pri",
            ParseErrorKind::Prival => "prival",
            ParseErrorKind::Version => "version",
            ParseErrorKind::Timestamp => "timestamp",
            ParseErrorKind::TimestampDateNonexistent => "timestamp_date_nonexistent",
            ParseErrorKind::Hostname => "hostname",
            ParseErrorKind::Appname => "appname",
            ParseErrorKind::Procid => "procid",
            ParseErrorKind::Msgid => "msgid",
            ParseErrorKind::StructuredData => "structured_data",
            ParseErrorKind::SdId => "sd_id",
            ParseErrorKind::SdIdDuplicate => "sd_id_duplicate",
            ParseErrorKind::SdParam => "sd_param",
            ParseErrorKind::SdParamEscape => "sd_param_escape",
            ParseErrorKind::Parse => "parse",
            ParseErrorKind::MsgNotCompliant => "msg_not_compliant",
        }
    }

    /// A human name for the grammar part, used in messages.
    const fn describe(self) -> &'static str {
        match self {
            ParseErrorKind::Pri | ParseErrorKind::Prival => "PRI",
            ParseErrorKind::Version => "VERSION",
            ParseErrorKind::Timestamp => "TIMESTAMP",
            ParseErrorKind::TimestampDateNonexistent => "TIMESTAMP (no such date)",
            ParseErrorKind::Hostname => "HOSTNAME",
            ParseErrorKind::Appname => "APP-NAME",
            ParseErrorKind::Procid => "PROCID",
            ParseErrorKind::Msgid => "MSGID",
            ParseErrorKind::StructuredData => "STRUCTURED-DATA",
            ParseErrorKind::SdId => "SD-ID",
            ParseErrorKind::SdIdDuplicate => "SD-ID (duplicate)",
            ParseErrorKind::SdParam => "SD-PARAM",
            ParseErrorKind::SdParamEscape => "SD-PARAM (escape)",
            ParseErrorKind::Parse => "message",
            ParseErrorKind::MsgNotCompliant => "MSG (BOM but not UTF-8)",
        }
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A syslog message did not follow the grammar.
///
/// Displayed as `invalid TIMESTAMP at column 16: expected 'T' between date
/// and time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParseError {
    kind: ParseErrorKind,
    column: usize,
    expected: &'static str,
}

impl ParseError {
    pub(crate) const fn new(kind: ParseErrorKind, column: usize, expected: &'static str) -> Self {
        ParseError {
            kind,
            column,
            expected,
        }
    }

    /// Which part of the grammar failed.
    pub const fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// 0-based byte offset into the parsed frame of the first byte that does
    /// not fit (the input length when the input ended too early).
    pub const fn column(&self) -> usize {
        self.column
    }

    /// What the grammar wanted at [`column`](Self::column).
    pub const fn expected(&self) -> &'static str {
        self.expected
    }

    /// The error without its column: `invalid TIMESTAMP: expected ...`, for
    /// reports that print the location themselves.
    pub fn without_column(&self) -> impl fmt::Display + '_ {
        struct W<'e>(&'e ParseError);
        impl fmt::Display for W<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "invalid {}: expected {} ({})",
                    self.0.kind.describe(),
                    self.0.expected,
                    self.0.kind.as_str()
                )
            }
        }
        W(self)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} at column {}: expected {} ({})",
            self.kind.describe(),
            self.column,
            self.expected,
            self.kind.as_str()
        )
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_column_kind_and_expectation() {
        let e = ParseError::new(ParseErrorKind::Timestamp, 16, "'T' between date and time");
        assert_eq!(
            e.to_string(),
            "invalid TIMESTAMP at column 16: expected 'T' between date and time (timestamp)"
        );
        assert_eq!(
            e.without_column().to_string(),
            "invalid TIMESTAMP: expected 'T' between date and time (timestamp)"
        );
        assert_eq!(e.kind().as_str(), "timestamp");
    }
}

//! The line grammar of OpenMetrics 1.0.
//!
//! OpenMetrics is strict where the text format is loose: exactly one space
//! between tokens, no blanks inside label sets, no comments other than
//! `# HELP`, `# TYPE`, `# UNIT` and the final `# EOF`, timestamps in
//! (possibly fractional) seconds, and exemplars after ` # `. This file only
//! turns one line into tokens; the family rules are in `om_rules.rs`.

use super::error::{ErrorKind, Found};
use super::escape::unescape;
use super::labels::{LabelSet, LabelSyntax, scan_labels};
use super::lexer::{is_metric_char, metric_name_end};
use super::number::{parse_seconds, parse_value};
use super::sample::ExemplarRef;
use crate::event::MetricType;

/// Exemplar label names and values may hold at most this many code points.
pub(crate) const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

const OM_LABELS: LabelSyntax = LabelSyntax {
    text: false,
    strict_escapes: false,
};

/// One OpenMetrics line, tokenised.
#[derive(Debug)]
pub(crate) enum OmLine<'a> {
    /// `# EOF`.
    Eof,
    /// `# HELP`, `# TYPE` or `# UNIT`.
    Descriptor {
        keyword: Keyword,
        name: &'a str,
        rest: &'a str,
        rest_col: usize,
    },
    /// A sample.
    Sample {
        name: &'a str,
        labels: LabelSet<'a>,
        value: f64,
        timestamp_nanos: Option<i128>,
        exemplar: Option<Box<ExemplarRef<'a>>>,
    },
}

/// Descriptor keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Help,
    Type,
    Unit,
}

impl Keyword {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Keyword::Help => "HELP",
            Keyword::Type => "TYPE",
            Keyword::Unit => "UNIT",
        }
    }
}

type Lexed<'a> = Result<OmLine<'a>, (usize, ErrorKind)>;

fn expected<T>(col: usize, what: &'static str, found: Found) -> Result<T, (usize, ErrorKind)> {
    Err((
        col,
        ErrorKind::Expected {
            expected: what,
            found,
        },
    ))
}

/// Index of the next space at or after `i`, or the end.
fn space_end(b: &[u8], i: usize) -> usize {
    memchr::memchr(b' ', &b[i..]).map_or(b.len(), |n| i + n)
}

/// Tokenises one (non-empty) line.
pub(crate) fn lex_line(text: &str) -> Lexed<'_> {
    if text.as_bytes().first() == Some(&b'#') {
        lex_descriptor(text)
    } else {
        lex_sample(text)
    }
}

fn lex_descriptor(text: &str) -> Lexed<'_> {
    if text == "# EOF" {
        return Ok(OmLine::Eof);
    }
    let b = text.as_bytes();
    if b.get(1) != Some(&b' ') {
        return expected(1, "a space after `#`", Found::at(text, 1));
    }
    let kend = space_end(b, 2);
    let keyword = match &text[2..kend] {
        "HELP" => Keyword::Help,
        "TYPE" => Keyword::Type,
        "UNIT" => Keyword::Unit,
        other => {
            return expected(
                2,
                "`HELP`, `TYPE`, `UNIT` or `EOF` after `# `",
                Found::Token(other.to_owned()),
            );
        }
    };
    if kend == b.len() {
        return expected(kend, "a space and a metric name", Found::EndOfLine);
    }
    let n = kend + 1;
    let nend = metric_name_end(b, n);
    if nend == n {
        return expected(n, "a metric name", Found::at(text, n));
    }
    if b.get(nend) != Some(&b' ') {
        return expected(nend, "a space after the metric name", Found::at(text, nend));
    }
    Ok(OmLine::Descriptor {
        keyword,
        name: &text[n..nend],
        rest: &text[nend + 1..],
        rest_col: nend + 1,
    })
}

fn lex_sample(text: &str) -> Lexed<'_> {
    let b = text.as_bytes();
    let end = metric_name_end(b, 0);
    if end == 0 {
        return expected(0, "a metric name", Found::at(text, 0));
    }
    let name = &text[..end];
    let mut i = end;
    let mut labels = LabelSet::EMPTY;
    if b.get(i) == Some(&b'{') {
        let (l, next) = scan_labels(text, i, OM_LABELS)?;
        labels = l;
        i = next;
    }
    if b.get(i) != Some(&b' ') {
        return expected(i, "a space before the value", Found::at(text, i));
    }
    i += 1;
    let vend = space_end(b, i);
    let Some(value) = parse_value(&text[i..vend]) else {
        return expected(
            i,
            "a number (e.g. `1`, `1.5e3`, `NaN`, `+Inf`)",
            found_token(text, i, vend),
        );
    };
    i = vend;
    let mut timestamp_nanos = None;
    let mut exemplar = None;
    if i < b.len() {
        i += 1;
        if b.get(i) != Some(&b'#') {
            let tend = space_end(b, i);
            let Some(t) = parse_seconds(&text[i..tend]) else {
                return expected(
                    i,
                    "a timestamp in seconds (e.g. `1.5`) or `#` and an exemplar",
                    found_token(text, i, tend),
                );
            };
            timestamp_nanos = Some(t);
            i = tend;
            if i < b.len() {
                i += 1;
                if b.get(i) != Some(&b'#') {
                    return expected(
                        i,
                        "` # ` and an exemplar, or end of line",
                        Found::at(text, i),
                    );
                }
            }
        }
        if i < b.len() {
            exemplar = Some(Box::new(lex_exemplar(text, i)?));
        }
    }
    Ok(OmLine::Sample {
        name,
        labels,
        value,
        timestamp_nanos,
        exemplar,
    })
}

fn found_token(text: &str, from: usize, to: usize) -> Found {
    if from >= to {
        Found::at(text, from)
    } else {
        Found::Token(text[from..to].to_owned())
    }
}

/// Lexes `# {labels} value [timestamp]` starting at the `#`.
fn lex_exemplar(text: &str, hash: usize) -> Result<ExemplarRef<'_>, (usize, ErrorKind)> {
    let b = text.as_bytes();
    if b.get(hash + 1) != Some(&b' ') || b.get(hash + 2) != Some(&b'{') {
        return expected(
            hash + 1,
            "` {` starting the exemplar's label set",
            Found::at(text, hash + 1),
        );
    }
    let (labels, mut i) = scan_labels(text, hash + 2, OM_LABELS)?;
    let chars: usize = labels
        .iter()
        .map(|(n, v)| n.chars().count() + v.chars().count())
        .sum();
    if chars > MAX_EXEMPLAR_LABEL_CHARS {
        return Err((
            hash + 2,
            ErrorKind::Rule(format!(
                "exemplar labels have {chars} code points; at most {MAX_EXEMPLAR_LABEL_CHARS} are allowed"
            )),
        ));
    }
    if b.get(i) != Some(&b' ') {
        return expected(i, "a space before the exemplar value", Found::at(text, i));
    }
    i += 1;
    let vend = space_end(b, i);
    let Some(value) = parse_value(&text[i..vend]) else {
        return expected(
            i,
            "a number as the exemplar value",
            found_token(text, i, vend),
        );
    };
    let mut timestamp_nanos = None;
    if vend < b.len() {
        let t = vend + 1;
        let tend = space_end(b, t);
        match parse_seconds(&text[t..tend]) {
            Some(ts) => timestamp_nanos = Some(ts),
            None => {
                return expected(
                    t,
                    "a timestamp in seconds as the exemplar time",
                    found_token(text, t, tend),
                );
            }
        }
        if tend < b.len() {
            return expected(
                tend,
                "end of line after the exemplar",
                Found::at(text, tend),
            );
        }
    }
    Ok(ExemplarRef {
        labels,
        value,
        timestamp_nanos,
    })
}

/// OpenMetrics type names.
pub(crate) const OM_TYPES: &str =
    "counter, gauge, histogram, gaugehistogram, summary, info, stateset, unknown";

/// Parses a `# TYPE` value (lowercase only; `untyped` is not OpenMetrics).
pub(crate) fn om_type(t: &str) -> Option<MetricType> {
    match t {
        "untyped" => None,
        t => MetricType::from_name(t),
    }
}

/// Checks a `# UNIT` value: metric-name characters only (may be empty).
pub(crate) fn check_unit(unit: &str, col: usize) -> Result<(), (usize, ErrorKind)> {
    match unit.bytes().position(|c| !is_metric_char(c)) {
        None => Ok(()),
        Some(p) => expected(
            col + p,
            "a unit made of metric name characters",
            Found::at(unit, p),
        ),
    }
}

/// Unescapes HELP text (`\\`, `\"`, `\n`; other backslashes kept).
pub(crate) fn help_text(rest: &str) -> std::borrow::Cow<'_, str> {
    unescape(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexes_samples_and_exemplars() {
        let Ok(OmLine::Sample {
            name,
            labels,
            value,
            timestamp_nanos,
            exemplar,
        }) = lex_line(r#"a_bucket{le="+Inf",foo="bar # "} 3 1.5 # {a="d"} 4 123"#)
        else {
            panic!("did not lex");
        };
        assert_eq!((name, labels.len(), value), ("a_bucket", 2, 3.0));
        assert_eq!(timestamp_nanos, Some(1_500_000_000));
        let e = exemplar.unwrap();
        assert_eq!((e.value, e.timestamp_nanos), (4.0, Some(123_000_000_000)));
        assert_eq!(e.labels.get("a").as_deref(), Some("d"));
    }

    #[test]
    fn rejects_lines() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "a  1",
                2,
                "expected a number (e.g. `1`, `1.5e3`, `NaN`, `+Inf`), found ' '",
            ),
            (
                "a 1 ",
                4,
                "expected a timestamp in seconds (e.g. `1.5`) or `#` and an exemplar, found end of line",
            ),
            (
                "a{a=\"1\"}1",
                8,
                "expected a space before the value, found `1`",
            ),
            (
                "# HELP a",
                8,
                "expected a space after the metric name, found end of line",
            ),
            (
                "# FOO a x",
                2,
                "expected `HELP`, `TYPE`, `UNIT` or `EOF` after `# `, found `FOO`",
            ),
            ("#a", 1, "expected a space after `#`, found `a`"),
            (
                "a 1 # {} 1 1 ",
                12,
                "expected end of line after the exemplar, found ' '",
            ),
            (
                "a 1 1 id=\"x\"",
                6,
                "expected ` # ` and an exemplar, or end of line, found `i`",
            ),
        ];
        for (line, col, msg) in cases {
            let (c, kind) = lex_line(line).unwrap_err();
            assert_eq!((c, kind.to_string().as_str()), (*col, *msg), "{line}");
        }
    }
}

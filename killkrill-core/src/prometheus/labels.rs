//! Label sets as borrowed views of the input.
//!
//! A sample's labels are validated once while the line is scanned and then
//! kept as the slice between `{` and `}`. Iterating re-reads that slice,
//! which is cheaper than building a vector per sample and lets a consumer
//! that only needs one label (`le`, `quantile`) or none at all pay nothing.

use std::borrow::Cow;
use std::fmt;

use super::error::{ErrorKind, Found};
use super::escape::{scan_quoted, unescape};
use super::lexer::{is_blank, is_label_char, is_label_start, skip_blank};
use crate::event::{Label, Labels, MetricText};

/// The labels of one sample or exemplar, borrowed from the input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LabelSet<'a> {
    raw: &'a str,
    len: u32,
    escaped: bool,
}

impl<'a> LabelSet<'a> {
    /// No labels.
    pub const EMPTY: LabelSet<'static> = LabelSet {
        raw: "",
        len: 0,
        escaped: false,
    };

    /// Number of labels (including ones with empty values).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The labels in written order, values unescaped.
    pub fn iter(&self) -> LabelIter<'a> {
        LabelIter {
            rest: self.raw,
            escaped: self.escaped,
        }
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The text between `{` and `}` as written.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Converts to the event model's sorted label set (empty values are
    /// dropped, as Prometheus treats `l=""` as no label).
    pub fn to_labels(&self) -> Labels {
        let mut v: Vec<Label> = Vec::with_capacity(self.len());
        for (name, value) in self.iter() {
            if !value.is_empty() {
                v.push(Label {
                    name: MetricText::from(name),
                    value: MetricText::from(value.as_ref()),
                });
            }
        }
        v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Labels::from_sorted(v)
    }
}

impl fmt::Debug for LabelSet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over a [`LabelSet`]: `(name, value)` pairs.
#[derive(Debug, Clone)]
pub struct LabelIter<'a> {
    rest: &'a str,
    escaped: bool,
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, Cow<'a, str>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // The slice was validated when the line was scanned, so this only
        // has to find the pieces again.
        let s = self.rest;
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() && (is_blank(b[i]) || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            self.rest = "";
            return None;
        }
        let start = i;
        while i < b.len() && is_label_char(b[i]) {
            i += 1;
        }
        let name = &s[start..i];
        let q = if b.get(i) == Some(&b'=') && b.get(i + 1) == Some(&b'"') {
            i + 1
        } else {
            i + memchr::memchr(b'"', &b[i..])?
        };
        let (close, _) = scan_quoted(s, q + 1, false).ok()?;
        let raw = &s[q + 1..close];
        self.rest = &s[close + 1..];
        let value = if self.escaped {
            unescape(raw)
        } else {
            Cow::Borrowed(raw)
        };
        Some((name, value))
    }
}

/// How a label set may be written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LabelSyntax {
    /// Blanks around names, `=`, values and commas, and a trailing comma
    /// (text format); OpenMetrics allows neither.
    pub text: bool,
    /// Reject escapes other than `\\`, `\"`, `\n`.
    pub strict_escapes: bool,
}

/// A label set just scanned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scanned<'a> {
    /// The view.
    pub labels: LabelSet<'a>,
    /// Index just after `}`.
    pub end: usize,
    /// Raw (still escaped) values of `le` and `quantile`, caught on the
    /// way so that histogram and summary checks need not scan again.
    pub le: Option<&'a str>,
    /// See `le`.
    pub quantile: Option<&'a str>,
}

/// Scans a label set starting at `open` (the index of `{` in `line`).
/// Returns the view and the index just after `}`. Errors carry the column.
pub(crate) fn scan_labels<'a>(
    line: &'a str,
    open: usize,
    syn: LabelSyntax,
) -> Result<(LabelSet<'a>, usize), (usize, ErrorKind)> {
    scan(line, open, syn).map(|s| (s.labels, s.end))
}

/// [`scan_labels`], also returning the `le`/`quantile` value.
pub(crate) fn scan<'a>(
    line: &'a str,
    open: usize,
    syn: LabelSyntax,
) -> Result<Scanned<'a>, (usize, ErrorKind)> {
    let b = line.as_bytes();
    debug_assert_eq!(b.get(open), Some(&b'{'));
    let mut i = open + 1;
    let mut names: [&str; 8] = [""; 8];
    let mut more: Vec<&str> = Vec::new();
    let mut count = 0usize;
    let mut escaped = false;
    let (mut le, mut quantile) = (None, None);
    let ws = |i: usize| if syn.text { skip_blank(b, i) } else { i };
    i = ws(i);
    if b.get(i) == Some(&b'}') {
        return Ok(Scanned {
            labels: LabelSet {
                raw: &line[open + 1..i],
                len: 0,
                escaped: false,
            },
            end: i + 1,
            le: None,
            quantile: None,
        });
    }
    loop {
        let start = i;
        if i >= b.len() || !is_label_start(b[i]) {
            return Err((
                i,
                ErrorKind::Expected {
                    expected: "a label name",
                    found: Found::at(line, i),
                },
            ));
        }
        i += 1;
        while i < b.len() && is_label_char(b[i]) {
            i += 1;
        }
        let name = &line[start..i];
        if name == "__name__" {
            return Err((start, ErrorKind::ReservedLabelName));
        }
        let dup = if count < names.len() {
            names[..count].contains(&name)
        } else {
            names.contains(&name) || more.contains(&name)
        };
        if dup {
            return Err((start, ErrorKind::DuplicateLabel(name.to_owned())));
        }
        if count < names.len() {
            names[count] = name;
        } else {
            // Large label sets are rare; keep them sorted to stay O(n log n).
            let at = more.binary_search(&name).unwrap_or_else(|e| e);
            more.insert(at, name);
        }
        count += 1;
        i = ws(i);
        if b.get(i) != Some(&b'=') {
            return Err((
                i,
                ErrorKind::Expected {
                    expected: "`=` after the label name",
                    found: Found::at(line, i),
                },
            ));
        }
        i = ws(i + 1);
        if b.get(i) != Some(&b'"') {
            return Err((
                i,
                ErrorKind::Expected {
                    expected: "`\"` to start the label value",
                    found: Found::at(line, i),
                },
            ));
        }
        let (close, esc) = scan_quoted(line, i + 1, syn.strict_escapes)?;
        escaped |= esc;
        if name == "le" {
            le = Some(&line[i + 1..close]);
        } else if name == "quantile" {
            quantile = Some(&line[i + 1..close]);
        }
        i = ws(close + 1);
        match b.get(i) {
            Some(b',') => {
                i = ws(i + 1);
                if syn.text && b.get(i) == Some(&b'}') {
                    break;
                }
            }
            Some(b'}') => break,
            _ => {
                return Err((
                    i,
                    ErrorKind::Expected {
                        expected: "`,` or `}` after the label value",
                        found: Found::at(line, i),
                    },
                ));
            }
        }
    }
    Ok(Scanned {
        labels: LabelSet {
            raw: &line[open + 1..i],
            len: u32::try_from(count).unwrap_or(u32::MAX),
            escaped,
        },
        end: i + 1,
        le,
        quantile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: LabelSyntax = LabelSyntax {
        text: true,
        strict_escapes: true,
    };
    const OM: LabelSyntax = LabelSyntax {
        text: false,
        strict_escapes: false,
    };

    fn pairs(l: &LabelSet<'_>) -> Vec<(String, String)> {
        l.iter()
            .map(|(n, v)| (n.to_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn scans_text_and_openmetrics_label_sets() {
        let line = r#"{ a = "1" ,b="x\"y\\z\n" , }"#;
        let (l, end) = scan_labels(line, 0, TEXT).unwrap();
        assert_eq!(end, line.len());
        assert_eq!(l.len(), 2);
        assert_eq!(
            pairs(&l),
            [("a".into(), "1".into()), ("b".into(), "x\"y\\z\n".into())]
        );
        assert!(scan_labels(line, 0, OM).is_err());
        let (l, end) = scan_labels(r#"{a="} # {",b="\z"} 1"#, 0, OM).unwrap();
        assert_eq!(end, 18);
        assert_eq!(l.get("a").as_deref(), Some("} # {"));
        assert_eq!(l.get("b").as_deref(), Some("\\z"));
        let (l, _) = scan_labels("{}", 0, OM).unwrap();
        assert!(l.is_empty() && l.iter().next().is_none());
    }

    #[test]
    fn rejects_bad_label_sets() {
        let cases: &[(&str, LabelSyntax, usize, &str)] = &[
            (r#"{1="1"}"#, OM, 1, "expected a label name, found `1`"),
            (r#"{a="1",a="2"}"#, OM, 7, "duplicate label name `a`"),
            (
                r#"{a="1"b}"#,
                OM,
                6,
                "expected `,` or `}` after the label value, found `b`",
            ),
            (
                r#"{a}"#,
                OM,
                2,
                "expected `=` after the label name, found `}`",
            ),
            (
                r#"{a=1}"#,
                OM,
                3,
                "expected `\"` to start the label value, found `1`",
            ),
            (
                r#"{a="1}"#,
                OM,
                6,
                "expected `\"` to close the label value, found end of line",
            ),
            (r#"{a="1",}"#, OM, 7, "expected a label name, found `}`"),
            (
                r#"{a="\t"}"#,
                TEXT,
                4,
                "invalid escape sequence `\\t` (allowed: `\\\\`, `\\\"`, `\\n`)",
            ),
            (
                r#"{__name__="x"}"#,
                TEXT,
                1,
                "label name `__name__` is reserved; the metric name goes before `{`",
            ),
        ];
        for (line, syn, col, msg) in cases {
            let (c, kind) = scan_labels(line, 0, *syn).unwrap_err();
            assert_eq!((c, kind.to_string().as_str()), (*col, *msg), "{line}");
        }
    }

    #[test]
    fn many_labels_detect_duplicates() {
        let mut line = String::from("{");
        for i in 0..40 {
            line.push_str(&format!("l{i}=\"v\","));
        }
        line.push_str("l33=\"x\"}");
        let (c, kind) = scan_labels(&line, 0, OM).unwrap_err();
        assert_eq!(kind, ErrorKind::DuplicateLabel("l33".into()));
        assert_eq!(&line[c..c + 3], "l33");
        let ok = line.replace("l33=\"x\"}", "z=\"x\"}");
        let (l, _) = scan_labels(&ok, 0, OM).unwrap();
        assert_eq!(l.len(), 41);
        assert_eq!(l.to_labels().len(), 41);
    }
}

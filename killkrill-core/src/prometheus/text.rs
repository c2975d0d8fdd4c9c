//! Rules of the Prometheus text format 0.0.4.
//!
//! This follows Prometheus' reference parser (`expfmt.TextParser` in
//! prometheus/common) line by line: blanks and tabs may surround tokens,
//! `#` lines are comments unless they are `# HELP name text` or
//! `# TYPE name type`, a family's samples may be interleaved with other
//! families, `x_sum`/`x_count` (and `x_bucket`) belong to `x` once `x` is
//! typed as a summary (histogram), a second HELP/TYPE or a TYPE after the
//! family's samples is an error, label values know only the escapes `\\`,
//! `\"`, `\n`, timestamps are integer milliseconds and the input must end
//! with a newline.
//!
//! Two deliberate differences: a metric name must be followed by a blank or
//! `{` (Go splits `metric3.14` into `metric3` and `.14`), and in strict mode
//! a histogram bucket must carry an `le` label (Go drops such a sample
//! without a word).
//!
//! Lenient mode is for scraping exporters that bend the format: CRLF line
//! ends, no final newline, unknown escapes kept as written, trailing blanks
//! after a type, OpenMetrics type names. Errors still come out, one per bad
//! line, and parsing goes on with the next line.

use std::collections::HashMap;

use super::error::{ErrorKind, Found, ParseError};
use super::escape::{check_help_escapes, unescape};
use super::family::Family;
use super::labels::{LabelSet, LabelSyntax, scan};
use super::lexer::{Line, is_blank, sample_name_end, skip_blank, token_end};
use super::number::{parse_millis, parse_value};
use super::sample::{NO_TIMESTAMP, Sample};
use crate::event::MetricType;

const TEXT_TYPES: &str = "counter, gauge, histogram, summary, untyped, gauge_histogram";

/// State of a text-format parse: families by name.
#[derive(Debug)]
pub(crate) struct TextRules<'a> {
    strict: bool,
    by_name: HashMap<&'a str, usize>,
    /// The last few names and the families they resolved to: the series of
    /// one family (`x_bucket`, `x_sum`, `x_count`) skip the map.
    recent: [(&'a str, usize); 4],
    next_recent: usize,
}

type Step<'a> = Option<Result<Sample<'a>, ParseError>>;

fn err<'a>(line: &Line<'_>, col: usize, kind: ErrorKind) -> Step<'a> {
    Some(Err(ParseError::new(line.number, Some(col), kind)))
}

fn expected<'a>(line: &Line<'_>, col: usize, what: &'static str, found: Found) -> Step<'a> {
    err(
        line,
        col,
        ErrorKind::Expected {
            expected: what,
            found,
        },
    )
}

impl<'a> TextRules<'a> {
    pub(crate) fn new(strict: bool) -> Self {
        TextRules {
            strict,
            by_name: HashMap::with_capacity(64),
            recent: [("", 0); 4],
            next_recent: 0,
        }
    }

    /// Handles one line: a sample, an error, or nothing (comment, blank).
    #[inline]
    pub(crate) fn line(&mut self, line: Line<'a>, fams: &mut Vec<Family<'a>>) -> Step<'a> {
        let b = line.text.as_bytes();
        let i = skip_blank(b, 0);
        if i == b.len() {
            return None;
        }
        let step = if b[i] == b'#' {
            self.comment(line, i + 1, fams)
        } else {
            self.sample(line, i, fams)
        };
        // Go's parser fails on a last line without `\n` whatever it holds;
        // report the line's own error first when it has one.
        if !line.terminated && self.strict && !matches!(step, Some(Err(_))) {
            return err(&line, b.len(), ErrorKind::MissingFinalNewline);
        }
        step
    }

    /// Finds (or creates) the family a name belongs to, as Go's
    /// `setOrCreateCurrentMF` does.
    fn resolve(&mut self, name: &'a str, line: usize, fams: &mut Vec<Family<'a>>) -> usize {
        // A resolved name always resolves the same way later: the map only
        // grows, and a new entry is only made for a name that resolved to
        // nothing. So the cache never goes stale.
        if let Some(&(_, i)) = self.recent.iter().find(|(n, _)| *n == name) {
            return i;
        }
        let idx = self.lookup(name, fams).unwrap_or_else(|| {
            fams.push(Family::new(name, line));
            self.by_name.insert(name, fams.len() - 1);
            fams.len() - 1
        });
        self.recent[self.next_recent] = (name, idx);
        self.next_recent = (self.next_recent + 1) % self.recent.len();
        idx
    }

    fn lookup(&self, name: &str, fams: &[Family<'a>]) -> Option<usize> {
        if let Some(&i) = self.by_name.get(name) {
            return Some(i);
        }
        const RULES: [(MetricType, &[&str]); 3] = [
            (MetricType::Summary, &["_count", "_sum"]),
            (MetricType::Histogram, &["_bucket", "_count", "_sum"]),
            (
                MetricType::GaugeHistogram,
                &["_bucket", "_count", "_sum", "_gcount", "_gsum"],
            ),
        ];
        for (kind, suffixes) in RULES {
            for s in suffixes {
                if let Some(base) = name.strip_suffix(s)
                    && let Some(&i) = self.by_name.get(base)
                    && fams[i].kind == Some(kind)
                {
                    return Some(i);
                }
            }
        }
        None
    }

    fn comment(
        &mut self,
        line: Line<'a>,
        after_hash: usize,
        fams: &mut Vec<Family<'a>>,
    ) -> Step<'a> {
        let text = line.text;
        let b = text.as_bytes();
        let j = skip_blank(b, after_hash);
        let kend = token_end(b, j);
        if kend == b.len() {
            return None;
        }
        let keyword = &text[j..kend];
        if keyword != "HELP" && keyword != "TYPE" {
            return None;
        }
        let n = skip_blank(b, kend);
        if n == b.len() {
            return None;
        }
        let nend = sample_name_end(b, n);
        if nend == b.len() {
            return None;
        }
        if nend == n || !is_blank(b[nend]) {
            return expected(
                &line,
                nend,
                "a metric name followed by a blank",
                Found::at(text, nend),
            );
        }
        let name = &text[n..nend];
        let idx = self.resolve(name, line.number, fams);
        let k = skip_blank(b, nend);
        if k == b.len() {
            return None;
        }
        let rest = &text[k..];
        let fam = &mut fams[idx];
        if keyword == "HELP" {
            if fam.help.is_some() {
                return err(
                    &line,
                    j,
                    ErrorKind::DuplicateMetadata {
                        what: "HELP",
                        family: fam.name.to_owned(),
                    },
                );
            }
            if self.strict
                && let Err((c, kind)) = check_help_escapes(rest)
            {
                return err(&line, k + c, kind);
            }
            fam.help = Some(unescape(rest));
            return None;
        }
        if fam.kind.is_some() {
            let family = fam.name.to_owned();
            let kind = if fam.samples > 0 {
                ErrorKind::MetadataAfterSamples {
                    what: "TYPE",
                    family,
                }
            } else {
                ErrorKind::DuplicateMetadata {
                    what: "TYPE",
                    family,
                }
            };
            return err(&line, j, kind);
        }
        let t = if self.strict { rest } else { rest.trim_end() };
        match text_type(t, self.strict) {
            Some(kind) => fam.kind = Some(kind),
            None => {
                return err(
                    &line,
                    k,
                    ErrorKind::UnknownType {
                        found: t.to_owned(),
                        expected: TEXT_TYPES,
                    },
                );
            }
        }
        None
    }

    #[inline]
    fn sample(&mut self, line: Line<'a>, start: usize, fams: &mut Vec<Family<'a>>) -> Step<'a> {
        let text = line.text;
        let b = text.as_bytes();
        let end = sample_name_end(b, start);
        if end == start {
            return expected(&line, start, "a metric name", Found::at(text, start));
        }
        let name = &text[start..end];
        let mut i = skip_blank(b, end);
        let mut special = [None, None];
        let labels = if b.get(i) == Some(&b'{') {
            let syn = LabelSyntax {
                text: true,
                strict_escapes: self.strict,
            };
            match scan(text, i, syn) {
                Ok(s) => {
                    i = skip_blank(b, s.end);
                    special = [s.le, s.quantile];
                    s.labels
                }
                Err((c, kind)) => return err(&line, c, kind),
            }
        } else {
            if i == end && i < b.len() {
                return expected(
                    &line,
                    i,
                    "a blank or `{` after the metric name",
                    Found::at(text, i),
                );
            }
            LabelSet::EMPTY
        };
        if i == b.len() {
            return expected(&line, i, "a value", Found::EndOfLine);
        }
        let vend = token_end(b, i);
        let Some(value) = parse_value(&text[i..vend]) else {
            return expected(
                &line,
                i,
                "a float value (e.g. `1`, `-2.5e3`, `NaN`, `+Inf`)",
                Found::Token(text[i..vend].to_owned()),
            );
        };
        let mut ts = NO_TIMESTAMP;
        let k = skip_blank(b, vend);
        if k < b.len() {
            let tend = token_end(b, k);
            match parse_millis(&text[k..tend]) {
                Some(t) => ts = t,
                None => {
                    return expected(
                        &line,
                        k,
                        "an integer timestamp in milliseconds",
                        Found::Token(text[k..tend].to_owned()),
                    );
                }
            }
            let e = skip_blank(b, tend);
            if e < b.len() {
                return expected(
                    &line,
                    e,
                    "end of line after the timestamp",
                    Found::Token(text[e..].to_owned()),
                );
            }
        }
        let idx = self.resolve(name, line.number, fams);
        let fam = &mut fams[idx];
        let kind = *fam.kind.get_or_insert(MetricType::Unknown);
        if let Some(e) = check_special_labels(&line, name, fam, kind, special, self.strict) {
            return Some(Err(e));
        }
        fam.samples += 1;
        Some(Ok(Sample {
            name,
            labels,
            value,
            ts,
            exemplar: None,
            kind,
            family: idx,
            line: line.number,
        }))
    }
}

/// `quantile` on summaries and `le` on histograms must be floats, as in Go;
/// strict mode also requires `le` on every bucket. `special` holds the raw
/// `le` and `quantile` values the label scan caught.
#[inline]
fn check_special_labels(
    line: &Line<'_>,
    name: &str,
    fam: &Family<'_>,
    kind: MetricType,
    special: [Option<&str>; 2],
    strict: bool,
) -> Option<ParseError> {
    let (label, raw, required) = match kind {
        MetricType::Summary => ("quantile", special[1], false),
        MetricType::Histogram | MetricType::GaugeHistogram => (
            "le",
            special[0],
            strict && name.len() == fam.name.len() + 7 && name.ends_with("_bucket"),
        ),
        _ => return None,
    };
    match raw {
        Some(raw) => {
            let v = unescape(raw);
            if parse_value(&v).is_some() {
                None
            } else {
                Some(ParseError::new(
                    line.number,
                    None,
                    ErrorKind::Rule(format!(
                        "expected a float as the value of the `{label}` label, found `{v}`"
                    )),
                ))
            }
        }
        None if required => Some(ParseError::new(
            line.number,
            None,
            ErrorKind::Rule(format!("histogram bucket `{name}` without an `le` label")),
        )),
        None => None,
    }
}

/// Type names of the text format; lenient mode also takes OpenMetrics names.
fn text_type(t: &str, strict: bool) -> Option<MetricType> {
    let known = [
        ("counter", MetricType::Counter),
        ("gauge", MetricType::Gauge),
        ("histogram", MetricType::Histogram),
        ("summary", MetricType::Summary),
        ("untyped", MetricType::Unknown),
        ("gauge_histogram", MetricType::GaugeHistogram),
    ];
    if let Some((_, k)) = known.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)) {
        return Some(*k);
    }
    if strict {
        None
    } else {
        MetricType::from_name(&t.to_ascii_lowercase())
    }
}

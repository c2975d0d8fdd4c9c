//! Family rules of OpenMetrics 1.0, as the OpenMetrics test suite checks
//! them.
//!
//! A family is its descriptors (`# HELP`/`# TYPE`/`# UNIT`, before any
//! sample) followed by samples whose names are the family name plus a
//! suffix its type allows (`_total`/`_created` for counters, `_bucket`/
//! `_count`/`_sum`/`_created` for histograms, ...). A sample whose name does
//! not fit starts a new, untyped family, so a counter sample without
//! `_total` becomes a family `x` that then clashes with the counter's names.
//! A family cannot reappear later (clashing names), groups must be
//! contiguous, and the value rules of each type apply.
//!
//! Strict mode applies everything the reference parser does. Lenient mode
//! (what a scraper needs: Prometheus itself does not check values or
//! ordering) keeps the syntax, metadata, type-name, `le`/`quantile`, unit
//! and `# EOF` rules, and skips the value, ordering and name-clash rules.

use std::collections::{HashSet, VecDeque};

use super::error::{ErrorKind, ParseError};
use super::family::Family;
use super::grouping::{GroupKey, group_key};
use super::histogram::{HistogramCheck, Part};
use super::lexer::Line;
use super::number::{is_canonical_if_infinite, parse_value};
use super::openmetrics::{Keyword, OM_TYPES, OmLine, check_unit, help_text, lex_line, om_type};
use super::sample::{Sample, pack_ts};
use crate::event::MetricType;

type Step<'a> = Option<Result<Sample<'a>, ParseError>>;

/// Suffixes a family's sample names may have, by type.
fn suffixes(kind: Option<MetricType>) -> &'static [&'static str] {
    match kind {
        Some(MetricType::Counter) => &["_total", "_created"],
        Some(MetricType::Summary) => &["", "_count", "_sum", "_created"],
        Some(MetricType::Histogram) => &["_count", "_sum", "_bucket", "_created"],
        Some(MetricType::GaugeHistogram) => &["_gcount", "_gsum", "_bucket"],
        Some(MetricType::Info) => &["_info"],
        _ => &[""],
    }
}

fn rule(line: usize, msg: impl Into<String>) -> ParseError {
    ParseError::new(line, None, ErrorKind::Rule(msg.into()))
}

/// State of an OpenMetrics parse.
#[derive(Debug)]
pub(crate) struct OmRules<'a> {
    strict: bool,
    current: Option<usize>,
    eof: bool,
    after_eof_reported: bool,
    seen_names: HashSet<String>,
    group: Option<(GroupKey<'a>, Option<i128>)>,
    seen_groups: HashSet<GroupKey<'a>>,
    histogram: HistogramCheck<'a>,
}

impl<'a> OmRules<'a> {
    pub(crate) fn new(strict: bool) -> Self {
        OmRules {
            strict,
            current: None,
            eof: false,
            after_eof_reported: false,
            seen_names: HashSet::new(),
            group: None,
            seen_groups: HashSet::new(),
            histogram: HistogramCheck::default(),
        }
    }

    /// Handles one line. Errors that close the previous family go to `pending`.
    pub(crate) fn line(
        &mut self,
        line: Line<'a>,
        fams: &mut Vec<Family<'a>>,
        pending: &mut VecDeque<Result<Sample<'a>, ParseError>>,
    ) -> Step<'a> {
        if self.eof {
            if self.after_eof_reported {
                return None;
            }
            self.after_eof_reported = true;
            return Some(Err(ParseError::new(
                line.number,
                Some(0),
                ErrorKind::TextAfterEof,
            )));
        }
        if line.text.is_empty() {
            // The last line may be empty only when it is `# EOF` without a
            // newline, which is handled above; anything else is a blank line.
            return self
                .strict
                .then(|| Err(ParseError::new(line.number, Some(0), ErrorKind::BlankLine)));
        }
        let lexed = match lex_line(line.text) {
            Ok(l) => l,
            Err((col, kind)) => return Some(Err(ParseError::new(line.number, Some(col), kind))),
        };
        match lexed {
            OmLine::Eof => {
                self.eof = true;
                self.finish_family(fams, pending);
                None
            }
            OmLine::Descriptor {
                keyword,
                name,
                rest,
                rest_col,
            } => self
                .descriptor(&line, keyword, name, rest, rest_col, fams, pending)
                .err()
                .map(Err),
            OmLine::Sample {
                name,
                labels,
                value,
                timestamp_nanos,
                exemplar,
            } => {
                let s = Sample {
                    name,
                    labels,
                    value,
                    ts: pack_ts(timestamp_nanos),
                    exemplar,
                    kind: MetricType::Unknown,
                    family: 0,
                    line: line.number,
                };
                Some(self.sample(s, fams, pending))
            }
        }
    }

    /// Called at the end of input.
    pub(crate) fn finish(
        &mut self,
        last_line: usize,
        fams: &mut [Family<'a>],
        pending: &mut VecDeque<Result<Sample<'a>, ParseError>>,
    ) {
        if !self.eof {
            self.finish_family(fams, pending);
            pending.push_back(Err(ParseError::new(
                last_line + 1,
                None,
                ErrorKind::MissingEof,
            )));
        }
    }

    fn start_family(
        &mut self,
        name: &'a str,
        line: usize,
        kind: Option<MetricType>,
        fams: &mut Vec<Family<'a>>,
        pending: &mut VecDeque<Result<Sample<'a>, ParseError>>,
    ) -> usize {
        self.finish_family(fams, pending);
        let mut f = Family::new(name, line);
        f.kind = kind;
        fams.push(f);
        self.current = Some(fams.len() - 1);
        self.group = None;
        self.seen_groups.clear();
        fams.len() - 1
    }

    /// The end-of-family checks: clashing names, unit, histogram groups.
    fn finish_family(
        &mut self,
        fams: &mut [Family<'a>],
        pending: &mut VecDeque<Result<Sample<'a>, ParseError>>,
    ) {
        let Some(i) = self.current.take() else {
            return;
        };
        let f = &fams[i];
        if self.strict {
            if let Some((line, msg)) = self.histogram.close() {
                pending.push_back(Err(rule(line, msg)));
            }
            let mut names: Vec<&str> = suffixes(f.kind).to_vec();
            if !names.contains(&"") {
                names.push("");
            }
            for s in names {
                let n = format!("{}{s}", f.name);
                if self.seen_names.contains(&n) {
                    pending.push_back(Err(ParseError::new(
                        f.line,
                        None,
                        ErrorKind::ClashingName { name: n },
                    )));
                    break;
                }
                self.seen_names.insert(n);
            }
        }
        if let Some(unit) = f.unit.filter(|u| !u.is_empty()) {
            let kind = f.kind();
            if kind == MetricType::Info || kind == MetricType::StateSet {
                pending.push_back(Err(ParseError::new(
                    f.line,
                    None,
                    ErrorKind::UnitNotAllowed {
                        family: f.name.to_owned(),
                        kind: kind.name(),
                    },
                )));
            } else if !f.name.strip_suffix(unit).is_some_and(|p| p.ends_with('_')) {
                pending.push_back(Err(ParseError::new(
                    f.line,
                    None,
                    ErrorKind::UnitMismatch {
                        family: f.name.to_owned(),
                        unit: unit.to_owned(),
                    },
                )));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn descriptor(
        &mut self,
        line: &Line<'a>,
        keyword: Keyword,
        name: &'a str,
        rest: &'a str,
        rest_col: usize,
        fams: &mut Vec<Family<'a>>,
        pending: &mut VecDeque<Result<Sample<'a>, ParseError>>,
    ) -> Result<(), ParseError> {
        let at = |col: usize, kind: ErrorKind| ParseError::new(line.number, Some(col), kind);
        let idx = match self.current {
            Some(i) if fams[i].name == name => {
                if fams[i].samples > 0 {
                    return Err(at(
                        2,
                        ErrorKind::MetadataAfterSamples {
                            what: keyword.name(),
                            family: name.to_owned(),
                        },
                    ));
                }
                i
            }
            _ => self.start_family(name, line.number, None, fams, pending),
        };
        let f = &mut fams[idx];
        let dup = match keyword {
            Keyword::Help => f.help.is_some(),
            Keyword::Type => f.kind.is_some(),
            Keyword::Unit => f.unit.is_some(),
        };
        if dup {
            return Err(at(
                2,
                ErrorKind::DuplicateMetadata {
                    what: keyword.name(),
                    family: name.to_owned(),
                },
            ));
        }
        match keyword {
            Keyword::Help => f.help = Some(help_text(rest)),
            Keyword::Type => {
                f.kind = Some(om_type(rest).ok_or_else(|| {
                    at(
                        rest_col,
                        ErrorKind::UnknownType {
                            found: rest.to_owned(),
                            expected: OM_TYPES,
                        },
                    )
                })?);
            }
            Keyword::Unit => {
                check_unit(rest, rest_col).map_err(|(c, k)| at(c, k))?;
                f.unit = Some(rest);
            }
        }
        Ok(())
    }

    fn sample(
        &mut self,
        mut s: Sample<'a>,
        fams: &mut Vec<Family<'a>>,
        pending: &mut VecDeque<Result<Sample<'a>, ParseError>>,
    ) -> Result<Sample<'a>, ParseError> {
        let fits = self.current.is_some_and(|i| {
            let f = &fams[i];
            s.name
                .strip_prefix(f.name)
                .is_some_and(|suffix| suffixes(f.kind).contains(&suffix))
        });
        let idx = match self.current {
            Some(i) if fits => i,
            _ => self.start_family(s.name, s.line, Some(MetricType::Unknown), fams, pending),
        };
        let f = &fams[idx];
        let kind = f.kind();
        let family = f.name;
        let suffix = &s.name[family.len()..];
        s.kind = kind;
        s.family = idx;
        let line = s.line;
        let is_hist = matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram);

        // Structural rules, both modes.
        let mut part = Part::Other;
        if kind == MetricType::StateSet && s.labels.get(family).is_none() {
            return Err(rule(
                line,
                format!("stateset sample without a label named `{family}` (the family name)"),
            ));
        }
        if is_hist && suffix == "_bucket" {
            let le = s.labels.get("le");
            let v = le.as_deref().and_then(parse_value);
            match (le, v) {
                (Some(raw), Some(v)) if !v.is_nan() && is_canonical_if_infinite(&raw, v) => {
                    part = Part::Bucket(v);
                }
                _ => {
                    return Err(rule(
                        line,
                        "histogram bucket without a valid `le` label (a number; infinity written `+Inf`)",
                    ));
                }
            }
        }
        if kind == MetricType::Summary && suffix.is_empty() {
            let q = s.labels.get("quantile");
            let ok = q.as_deref().is_some_and(|raw| {
                parse_value(raw)
                    .is_some_and(|v| (0.0..=1.0).contains(&v) && is_canonical_if_infinite(raw, v))
            });
            if !ok {
                return Err(rule(
                    line,
                    "summary quantile without a `quantile` label between 0 and 1",
                ));
            }
        }
        if self.strict {
            self.value_rules(&s, kind, family, suffix, part)?;
        }
        fams[idx].samples += 1;
        Ok(s)
    }

    /// Value, ordering and exemplar rules (strict mode).
    fn value_rules(
        &mut self,
        s: &Sample<'a>,
        kind: MetricType,
        family: &'a str,
        suffix: &str,
        part: Part,
    ) -> Result<(), ParseError> {
        let line = s.line;
        let v = s.value;
        let is_hist = matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram);
        let integral = v.is_finite() && v.fract() == 0.0;
        if is_hist && suffix == "_bucket" && !integral {
            return Err(rule(line, "histogram bucket counts must be integers"));
        }
        if (suffix == "_count" || suffix == "_gcount") && !integral {
            return Err(rule(line, "`_count` values must be integers"));
        }
        // Grouping and timestamps.
        let exclude = match kind {
            MetricType::Summary if suffix.is_empty() => Some("quantile"),
            MetricType::StateSet => Some(family),
            _ if is_hist && suffix == "_bucket" => Some("le"),
            _ => None,
        };
        let key = if kind == MetricType::Info {
            GroupKey::new()
        } else {
            group_key(&s.labels, exclude)
        };
        let ts = s.timestamp_nanos();
        match &self.group {
            Some((g, prev)) if *g == key => {
                if prev.is_some() != ts.is_some() {
                    return Err(rule(
                        line,
                        "mix of samples with and without timestamps in one series group",
                    ));
                }
                if kind != MetricType::Info && prev.zip(ts).is_some_and(|(p, t)| p > t) {
                    return Err(rule(line, "timestamps go backwards within a series group"));
                }
            }
            _ => {
                if self.seen_groups.contains(&key) {
                    return Err(rule(
                        line,
                        "series group is not contiguous: its samples must not be interleaved with other groups of the family",
                    ));
                }
                self.seen_groups.insert(key.clone());
            }
        }
        if is_hist {
            let p = match suffix {
                "_count" | "_gcount" => Part::Count,
                "_sum" => Part::Sum,
                "_gsum" => Part::GSum,
                _ => part,
            };
            if let Some((l, msg)) = self.histogram.add(&key, ts, p, v, line).into_iter().next() {
                return Err(rule(l, msg));
            }
        }
        self.group = Some((key, ts));
        // Values.
        match kind {
            MetricType::StateSet if v != 0.0 && v != 1.0 => {
                return Err(rule(line, "stateset values must be 0 or 1"));
            }
            MetricType::Info if v != 1.0 => return Err(rule(line, "info values must be 1")),
            MetricType::Summary if suffix.is_empty() && v < 0.0 => {
                return Err(rule(line, "summary quantile values cannot be negative"));
            }
            _ => {}
        }
        let counter_like = matches!(
            suffix,
            "_total" | "_sum" | "_count" | "_bucket" | "_gcount" | "_gsum"
        );
        if counter_like && v.is_nan() {
            return Err(rule(line, format!("`{suffix}` values cannot be NaN")));
        }
        if counter_like && suffix != "_gsum" && v < 0.0 {
            return Err(rule(line, format!("`{suffix}` values cannot be negative")));
        }
        if s.exemplar.is_some() {
            let ok = (is_hist && suffix == "_bucket")
                || (kind == MetricType::Counter && suffix == "_total");
            if !ok {
                return Err(rule(
                    line,
                    "exemplars are only allowed on counter `_total` and histogram `_bucket` samples",
                ));
            }
        }
        Ok(())
    }
}

//! Metric families: the metadata the parser collects, and owned families
//! for callers that want a whole exposition in memory.
//!
//! The parser streams samples and records one [`Family`] per metric family
//! (from `# HELP`/`# TYPE`/`# UNIT` lines or from a sample with no
//! metadata). Each sample points at its family by index. [`parse_families`]
//! gathers everything into owned [`MetricFamily`] values, which is also
//! what the [encoder](super::encode) writes.

use std::borrow::Cow;

use super::error::ParseError;
use super::parser::{ParseOptions, Parser};
use crate::event::{Exemplar, MetricMetadata, MetricSample, MetricType};

/// A metric family as declared in the input, borrowed from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Family<'a> {
    /// Family name as written in its metadata (or the first sample's name
    /// when it has none).
    pub name: &'a str,
    /// Type from `# TYPE`; `None` while neither a TYPE line nor a sample
    /// fixed it.
    pub kind: Option<MetricType>,
    /// HELP text, unescaped.
    pub help: Option<Cow<'a, str>>,
    /// UNIT (OpenMetrics).
    pub unit: Option<&'a str>,
    /// 1-based line where the family first appeared.
    pub line: usize,
    /// Samples parsed for it so far.
    pub samples: usize,
}

impl<'a> Family<'a> {
    pub(crate) fn new(name: &'a str, line: usize) -> Self {
        Family {
            name,
            kind: None,
            help: None,
            unit: None,
            line,
            samples: 0,
        }
    }

    /// The family's type, `Unknown` when none was given.
    pub fn kind(&self) -> MetricType {
        self.kind.unwrap_or(MetricType::Unknown)
    }

    /// The event model's metadata for this family.
    pub fn to_metadata(&self) -> MetricMetadata {
        MetricMetadata {
            family: self.name.to_owned(),
            kind: self.kind(),
            help: self.help.as_ref().map(|h| h.clone().into_owned()),
            unit: self.unit.map(str::to_owned),
        }
    }
}

/// An owned metric family: metadata and its samples in input order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricFamily {
    /// Name, type, HELP and UNIT.
    pub metadata: MetricMetadata,
    /// The family's samples (series named as written, e.g. `x_bucket`).
    pub samples: Vec<FamilySample>,
}

/// A sample with the exemplar written on its line, if any.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FamilySample {
    /// The sample.
    pub sample: MetricSample,
    /// Its exemplar (OpenMetrics).
    pub exemplar: Option<Exemplar>,
}

/// Parses a whole exposition into owned families, in order of first
/// appearance. Families with no samples are kept (they carry metadata).
///
/// # Errors
/// The first [`ParseError`], including a timestamp Killkrill cannot store.
pub fn parse_families(input: &str, options: ParseOptions) -> Result<Vec<MetricFamily>, ParseError> {
    let mut parser = Parser::new(input, options);
    let mut samples: Vec<Vec<FamilySample>> = Vec::new();
    for item in parser.by_ref() {
        let s = item?;
        if samples.len() <= s.family {
            samples.resize_with(s.family + 1, Vec::new);
        }
        samples[s.family].push(FamilySample {
            sample: s.to_metric_sample()?,
            exemplar: s.to_exemplar()?,
        });
    }
    samples.resize_with(parser.families().len(), Vec::new);
    Ok(parser
        .families()
        .iter()
        .zip(samples)
        .map(|(f, samples)| MetricFamily {
            metadata: f.to_metadata(),
            samples,
        })
        .collect())
}

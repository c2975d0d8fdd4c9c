//! Prometheus exposition formats: the text format 0.0.4 and OpenMetrics 1.0.
//!
//! This is what a scrape target or a pushing client sends, so it is parsed
//! on the hot path of every metrics receiver. The design follows from that:
//!
//! - **Streaming and zero-copy.** [`Parser`] walks the input line by line
//!   (`memchr` for the newlines) and yields [`Sample`]s whose name and
//!   labels are slices of the input; a label value is copied only when it
//!   contains an escape. Callers that keep samples convert them with
//!   [`Sample::to_metric_sample`].
//! - **One grammar per file.** The text format's rules (`text.rs`, after
//!   Prometheus' Go parser) and OpenMetrics' (`openmetrics.rs` for the line
//!   grammar, `om_rules.rs` for families, `histogram.rs` for histogram
//!   consistency) share only the lexer, label scanner, number parser and
//!   escapes.
//! - **Strict and lenient.** Strict OpenMetrics classifies the OpenMetrics
//!   test suite exactly; strict text matches Prometheus' reference parser.
//!   Lenient mode is for scraping: harmless deviations pass, every bad line
//!   is still an error (with its line, column and what was expected), and
//!   parsing continues with the next line. See `docs/src/prometheus-formats.md`.
//! - **Round trips.** [`encode`] writes families back in either format so
//!   that parsing the output gives the same families.

mod encoder;
mod error;
mod escape;
mod family;
mod grouping;
mod histogram;
mod labels;
mod lexer;
mod number;
mod om_rules;
mod openmetrics;
mod parser;
mod sample;
mod text;

pub use encoder::{EncodeError, encode};
pub use error::{ErrorKind, Found, ParseError};
pub use family::{Family, FamilySample, MetricFamily, parse_families};
pub use labels::{LabelIter, LabelSet};
pub use lexer::{is_valid_label_name, is_valid_metric_name};
pub use parser::{Format, Mode, ParseOptions, Parser};
pub use sample::{ExemplarRef, Sample};

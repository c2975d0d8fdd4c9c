//! `parse_field`: run a parser on a field (e.g. JSON inside a syslog
//! message) and merge what it finds into the record.
//!
//! ```toml
//! [[transforms]]
//! type = "parse_field"
//! field = "message"        # or attributes.<name>
//! parser = "json"          # a name in the parser registry
//! prefix = "json."         # prepended to attribute names; default none
//! header = "fill"          # header values found: "fill" absent ones (default),
//!                          # "overwrite" (the only mode that replaces the
//!                          # timestamp, which is never absent), or "ignore"
//! remove_field = false     # remove the parsed field after a successful parse
//! on_error = "keep"        # "keep" (default), "mark" (set parse_error), "drop"
//! max_bytes = 1048576      # longer fields are not parsed (counted as errors)
//! ```
//!
//! Parse errors are counted in `killkrill_transform_parse_errors_total`;
//! records dropped by `on_error = "drop"` in `killkrill_dropped_events_total`
//! with reason `parse_error`. A record whose field is absent is left alone.

use std::sync::Arc;

use metrics::counter;
use serde::Deserialize;

use super::{ConfigError, Ctx, FieldParser, FieldPath, ParsedFields, Transform};
use crate::event::LogRecord;
use crate::pipeline::{Batch, self_metrics};

/// What to do with a record whose field does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnParseError {
    /// Leave the record as it is (the error is counted).
    #[default]
    Keep,
    /// Keep it and set `parse_error` (when not already set).
    Mark,
    /// Drop the record (counted with reason `parse_error`).
    Drop,
}

/// How header values found by the parser are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderMerge {
    /// Set those the record lacks.
    #[default]
    Fill,
    /// Replace the record's.
    Overwrite,
    /// Keep only the attributes.
    Ignore,
}

/// Config of `parse_field`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParseFieldConfig {
    /// The field to parse.
    pub field: String,
    /// The parser's registry name.
    pub parser: String,
    /// Prefix for the attribute names found.
    #[serde(default)]
    pub prefix: String,
    /// How header values are merged.
    #[serde(default)]
    pub header: HeaderMerge,
    /// Remove the field after a successful parse.
    #[serde(default)]
    pub remove_field: bool,
    /// What to do when parsing fails.
    #[serde(default)]
    pub on_error: OnParseError,
    /// Fields longer than this are not parsed; default 1 MiB.
    pub max_bytes: Option<usize>,
}

/// The running `parse_field`.
pub struct ParseField {
    name: String,
    field: FieldPath,
    parser_name: String,
    parser: Arc<dyn FieldParser>,
    prefix: String,
    header: HeaderMerge,
    remove_field: bool,
    on_error: OnParseError,
    max_bytes: usize,
}

impl ParseFieldConfig {
    pub(crate) fn build(&self, cx: &Ctx<'_>) -> Result<ParseField, ConfigError> {
        let field = cx.field("field", &self.field)?;
        let parser = cx.ctx.parsers.get(&self.parser).ok_or_else(|| {
            cx.err(
                "parser",
                format!(
                    "unknown parser {:?}: expected one of {}",
                    self.parser,
                    cx.ctx.parsers.names().join(", ")
                ),
            )
        })?;
        let max_bytes = self.max_bytes.unwrap_or(1 << 20);
        if max_bytes == 0 {
            return Err(cx.err("max_bytes", "must be at least 1"));
        }
        if self.remove_field && !field.is_writable() {
            return Err(cx.err("remove_field", format!("{field} cannot be removed")));
        }
        Ok(ParseField {
            name: cx.name.clone(),
            field,
            parser_name: self.parser.clone(),
            parser,
            prefix: self.prefix.clone(),
            header: self.header,
            remove_field: self.remove_field,
            on_error: self.on_error,
            max_bytes,
        })
    }
}

fn merge<T>(slot: &mut Option<T>, found: Option<T>, how: HeaderMerge) {
    match (how, found) {
        (HeaderMerge::Overwrite, Some(v)) => *slot = Some(v),
        (HeaderMerge::Fill, Some(v)) if slot.is_none() => *slot = Some(v),
        _ => {}
    }
}

impl ParseField {
    /// Parses one record; `false` when it should be dropped.
    fn parse_one(&self, r: &mut LogRecord) -> bool {
        let Some(input) = self.field.get_bytes(r) else {
            return true;
        };
        let mut found = ParsedFields::default();
        let result = if input.len() > self.max_bytes {
            Err(format!(
                "{} is {} bytes, over the limit of {}",
                self.field,
                input.len(),
                self.max_bytes
            ))
        } else {
            self.parser
                .parse(&input, &mut found)
                .map_err(|e| e.to_string())
        };
        drop(input);
        if let Err(e) = result {
            counter!(self_metrics::TRANSFORM_PARSE_ERRORS, "transform" => self.name.clone(), "parser" => self.parser_name.clone())
                .increment(1);
            match self.on_error {
                OnParseError::Keep => {}
                OnParseError::Mark => {
                    if r.parse_error.is_none() {
                        r.parse_error = Some(format!("{} ({}): {e}", self.field, self.parser_name));
                    }
                }
                OnParseError::Drop => return false,
            }
            return true;
        }
        if self.remove_field {
            if self.field == FieldPath::Message {
                r.message = None;
            } else {
                self.field.take(r);
            }
        }
        let h = self.header;
        if h != HeaderMerge::Ignore {
            // A record always has a timestamp, so only `overwrite` replaces it.
            if let Some(ts) = found.timestamp
                && h == HeaderMerge::Overwrite
            {
                r.timestamp = ts;
            }
            merge(&mut r.severity, found.severity, h);
            merge(&mut r.facility, found.facility, h);
            merge(&mut r.host, found.host, h);
            merge(&mut r.app, found.app, h);
            merge(&mut r.procid, found.procid, h);
            merge(&mut r.msgid, found.msgid, h);
            merge(&mut r.message, found.message, h);
            r.structured_data.extend(found.structured_data);
        }
        r.attributes.reserve(found.attributes.len());
        for (k, v) in found.attributes {
            let name = if self.prefix.is_empty() {
                k
            } else {
                format!("{}{k}", self.prefix)
            };
            r.attributes.push((name, v));
        }
        true
    }
}

impl Transform for ParseField {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&self, batch: &mut Batch) {
        let before = batch.logs.len();
        batch.logs.retain_mut(|r| self.parse_one(r));
        self_metrics::dropped("transform", "parse_error", before - batch.logs.len());
    }
}

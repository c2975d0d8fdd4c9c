//! Transforms: per-event processing that workers run between the queue and
//! the sinks.
//!
//! Each transform has a typed config ([`TransformConfig`], a serde enum
//! tagged by `type`, unknown keys rejected) that [`TransformChain::build`]
//! validates once into a running object; a mistake is reported with the key
//! that holds it (`transforms[2].pattern: ...`) at start-up, never at the
//! first event. Running a transform cannot fail: an event a transform cannot
//! handle is kept unchanged, marked or dropped as its config says, and every
//! drop is counted in `killkrill_dropped_events_total{stage="transform",reason}`.
//!
//! Transforms act on log records. Metric samples and metadata pass through
//! untouched (relabelling is a separate concern, done by the aggregation
//! config).
//!
//! The running objects are plain structs behind the [`Transform`] trait, so
//! embedders can add their own to a chain with [`TransformChain::push`].

mod enrich;
mod field;
mod filter;
mod json_log_parser;
mod parse_field;
mod parser;
mod redact;
mod regex_config;
mod rename;
mod sample;

use serde::Deserialize;

use crate::pipeline::Batch;

pub use enrich::{Enrich, EnrichConfig};
pub use field::{FieldPath, InvalidFieldPath};
pub use filter::{Filter, FilterAction, FilterConfig};
pub use json_log_parser::JsonLogFieldParser;
pub use parse_field::{HeaderMerge, OnParseError, ParseField, ParseFieldConfig};
pub use parser::{FieldParseError, FieldParser, JsonFieldParser, ParsedFields, ParserRegistry};
pub use redact::{Redact, RedactConfig};
pub use rename::{DropFields, DropFieldsConfig, Rename, RenameConfig};
pub use sample::{Sample, SampleConfig};

/// A running transform.
pub trait Transform: Send + Sync {
    /// The label used in metrics and logs, e.g. `2:filter`.
    fn name(&self) -> &str;

    /// Applies the transform to every log record of the batch, removing the
    /// records it drops (and counting them).
    fn apply(&self, batch: &mut Batch);
}

/// One transform's config, tagged by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransformConfig {
    /// Keep or drop events by severity, field value, presence or regex.
    Filter(FilterConfig),
    /// Add static fields and this machine's host name.
    Enrich(EnrichConfig),
    /// Move fields to new names.
    Rename(RenameConfig),
    /// Remove fields.
    DropFields(DropFieldsConfig),
    /// Mask what regexes match in the message or fields.
    Redact(RedactConfig),
    /// Keep 1 in N events, always keeping the severe ones.
    Sample(SampleConfig),
    /// Run a parser on a field and merge what it finds.
    ParseField(ParseFieldConfig),
}

impl TransformConfig {
    /// The `type` value.
    pub const fn type_name(&self) -> &'static str {
        match self {
            TransformConfig::Filter(_) => "filter",
            TransformConfig::Enrich(_) => "enrich",
            TransformConfig::Rename(_) => "rename",
            TransformConfig::DropFields(_) => "drop_fields",
            TransformConfig::Redact(_) => "redact",
            TransformConfig::Sample(_) => "sample",
            TransformConfig::ParseField(_) => "parse_field",
        }
    }

    /// Validates the config and builds the running transform. `key` is where
    /// the config sits (e.g. `transforms[2]`), used in error messages.
    ///
    /// # Errors
    /// [`ConfigError`] naming the offending key.
    pub fn build(&self, key: &str, ctx: &BuildContext) -> Result<Box<dyn Transform>, ConfigError> {
        let name = key
            .rsplit_once('[')
            .and_then(|(_, i)| i.strip_suffix(']'))
            .map_or_else(
                || self.type_name().to_owned(),
                |i| format!("{i}:{}", self.type_name()),
            );
        let cx = Ctx { key, name, ctx };
        Ok(match self {
            TransformConfig::Filter(c) => Box::new(c.build(&cx)?),
            TransformConfig::Enrich(c) => Box::new(c.build(&cx)?),
            TransformConfig::Rename(c) => Box::new(c.build(&cx)?),
            TransformConfig::DropFields(c) => Box::new(c.build(&cx)?),
            TransformConfig::Redact(c) => Box::new(c.build(&cx)?),
            TransformConfig::Sample(c) => Box::new(c.build(&cx)?),
            TransformConfig::ParseField(c) => Box::new(c.build(&cx)?),
        })
    }
}

/// What building a transform may need from outside its config.
#[derive(Clone)]
pub struct BuildContext {
    /// Parsers that `parse_field` can name.
    pub parsers: ParserRegistry,
    /// This machine's host name, for `enrich`; `None` if unknown.
    pub host_name: Option<String>,
}

impl BuildContext {
    /// The built-in parsers and the host name from the system.
    pub fn from_system() -> Self {
        BuildContext {
            parsers: ParserRegistry::with_builtin(),
            host_name: enrich::system_host_name(),
        }
    }
}

impl Default for BuildContext {
    fn default() -> Self {
        Self::from_system()
    }
}

/// Build-time context handed to each config's `build`.
pub(crate) struct Ctx<'a> {
    key: &'a str,
    name: String,
    ctx: &'a BuildContext,
}

impl Ctx<'_> {
    /// An error at `key.sub`.
    pub(crate) fn err(&self, sub: &str, message: impl Into<String>) -> ConfigError {
        let key = if sub.is_empty() {
            self.key.to_owned()
        } else if self.key.is_empty() {
            sub.to_owned()
        } else {
            format!("{}.{sub}", self.key)
        };
        ConfigError {
            key,
            message: message.into(),
        }
    }

    /// Parses a field path found at `key.sub`.
    pub(crate) fn field(&self, sub: &str, path: &str) -> Result<FieldPath, ConfigError> {
        path.parse()
            .map_err(|e: InvalidFieldPath| self.err(sub, e.to_string()))
    }
}

/// A config value is wrong; `key` says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// Dotted path of the key, e.g. `transforms[2].pattern`.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Transforms applied in order.
#[derive(Default)]
pub struct TransformChain {
    transforms: Vec<Box<dyn Transform>>,
}

impl std::fmt::Debug for TransformChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.transforms.iter().map(|t| t.name()))
            .finish()
    }
}

impl TransformChain {
    /// Builds every config, naming each by its index under `key` (e.g.
    /// `transforms` gives `transforms[0]`, `transforms[1]`, ...).
    ///
    /// # Errors
    /// The first [`ConfigError`].
    pub fn build(
        key: &str,
        configs: &[TransformConfig],
        ctx: &BuildContext,
    ) -> Result<Self, ConfigError> {
        let transforms = configs
            .iter()
            .enumerate()
            .map(|(i, c)| c.build(&format!("{key}[{i}]"), ctx))
            .collect::<Result<_, _>>()?;
        Ok(TransformChain { transforms })
    }

    /// Appends a transform.
    pub fn push(&mut self, t: Box<dyn Transform>) {
        self.transforms.push(t);
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.transforms.is_empty()
    }

    /// Applies every transform in order.
    pub fn apply(&self, batch: &mut Batch) {
        for t in &self.transforms {
            if batch.logs.is_empty() {
                return;
            }
            t.apply(batch);
        }
    }
}

#[cfg(test)]
mod tests;

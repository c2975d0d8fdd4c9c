//! `filter`: keep or drop log records by severity, field value, field
//! presence or a regex.
//!
//! ```toml
//! [[transforms]]
//! type = "filter"
//! action = "drop"                 # "keep" (default): keep what matches, drop the rest
//! severity_at_least = "warning"   # warning or more severe (err, crit, ...)
//! field = "attributes.env"        # the field the next three test
//! equals = "staging"
//! exists = true
//! regex = "^health"
//! ```
//!
//! Every condition given must hold for a record to match (AND); at least one
//! is required. A record without a severity never matches
//! `severity_at_least`. `field` defaults to `message` for `regex`. Regexes
//! match the raw bytes of the field, so a message that is not UTF-8 can be
//! filtered; `\xff` means the character U+00FF, write `(?-u:\xff)` for the
//! byte.

use serde::Deserialize;

use super::{ConfigError, Ctx, FieldPath, Transform, regex_config};
use crate::event::{LogRecord, Severity};
use crate::pipeline::{Batch, self_metrics};

/// What to do with matching records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterAction {
    /// Keep matching records, drop the others.
    #[default]
    Keep,
    /// Drop matching records, keep the others.
    Drop,
}

/// Config of `filter`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Keep or drop what matches.
    #[serde(default)]
    pub action: FilterAction,
    /// Matches records at this severity or more severe (`warning` matches
    /// `warning`, `err`, `crit`, `alert`, `emerg`).
    pub severity_at_least: Option<String>,
    /// The field that `equals`, `exists` and `regex` test.
    pub field: Option<String>,
    /// Matches when the field's text equals this.
    pub equals: Option<String>,
    /// Matches when the field is present (`true`) or absent (`false`).
    pub exists: Option<bool>,
    /// Matches when the regex finds a match in the field (default `message`).
    pub regex: Option<String>,
}

enum Test {
    Equals(String),
    Exists(bool),
    Regex(regex::bytes::Regex),
}

/// The running `filter`.
pub struct Filter {
    name: String,
    action: FilterAction,
    severity_at_least: Option<Severity>,
    field: FieldPath,
    tests: Vec<Test>,
}

impl FilterConfig {
    pub(crate) fn build(&self, cx: &Ctx<'_>) -> Result<Filter, ConfigError> {
        let severity_at_least = match &self.severity_at_least {
            None => None,
            Some(s) => Some(
                Severity::from_name(s)
                    .ok_or_else(|| cx.err("severity_at_least", format!("unknown severity {s:?}: expected emerg, alert, crit, err, warning, notice, info or debug")))?,
            ),
        };
        let field = match &self.field {
            Some(f) => cx.field("field", f)?,
            None if self.equals.is_some() || self.exists.is_some() => {
                let which = if self.equals.is_some() {
                    "equals"
                } else {
                    "exists"
                };
                return Err(cx.err(
                    "field",
                    format!("missing: `{which}` needs a `field` to test"),
                ));
            }
            None => FieldPath::Message,
        };
        let mut tests = Vec::new();
        if let Some(v) = &self.equals {
            tests.push(Test::Equals(v.clone()));
        }
        if let Some(e) = self.exists {
            tests.push(Test::Exists(e));
        }
        if let Some(p) = &self.regex {
            tests.push(Test::Regex(regex_config::bytes(cx, "regex", p)?));
        }
        if tests.is_empty() && severity_at_least.is_none() {
            return Err(cx.err(
                "",
                "a filter needs at least one of severity_at_least, equals, exists, regex",
            ));
        }
        Ok(Filter {
            name: cx.name.clone(),
            action: self.action,
            severity_at_least,
            field,
            tests,
        })
    }
}

impl Filter {
    fn matches(&self, r: &LogRecord) -> bool {
        if let Some(min) = self.severity_at_least
            && r.severity.is_none_or(|s| s > min)
        {
            return false;
        }
        self.tests.iter().all(|t| match t {
            Test::Equals(v) => self.field.get_text(r).is_some_and(|t| t == v.as_str()),
            Test::Exists(e) => self.field.exists(r) == *e,
            Test::Regex(re) => self.field.get_bytes(r).is_some_and(|b| re.is_match(&b)),
        })
    }
}

impl Transform for Filter {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&self, batch: &mut Batch) {
        let before = batch.logs.len();
        let keep_matching = self.action == FilterAction::Keep;
        batch.logs.retain(|r| self.matches(r) == keep_matching);
        self_metrics::dropped("transform", "filtered", before - batch.logs.len());
    }
}

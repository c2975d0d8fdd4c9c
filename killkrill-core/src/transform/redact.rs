//! `redact`: mask what regexes match in the message or other fields.
//!
//! ```toml
//! [[transforms]]
//! type = "redact"
//! fields = ["message", "attributes.user"]   # default: ["message"]
//! builtin = ["credit_card", "email"]         # named patterns
//! patterns = ["token=[A-Za-z0-9]+"]          # your own
//! replacement = "[REDACTED]"                 # default; inserted literally
//! ```
//!
//! All patterns are combined into one regex and every match is replaced.
//! The message is matched as bytes, so a message that is not UTF-8 is still
//! redacted and its other bytes are kept as they were. Only string values of
//! attributes are redacted (numbers are left alone).

use serde::Deserialize;

use super::{ConfigError, Ctx, FieldPath, Transform, regex_config};
use crate::event::FieldValue;
use crate::pipeline::Batch;

/// Named patterns for `builtin`.
pub const BUILTIN: &[(&str, &str)] = &[
    // 13 to 19 digits, optionally grouped by spaces or dashes.
    ("credit_card", r"\b(?:\d[ -]?){12,18}\d\b"),
    ("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    (
        "ipv4",
        r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
    ),
    ("bearer_token", r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
];

/// Config of `redact`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactConfig {
    /// Fields to redact; default `["message"]`.
    pub fields: Option<Vec<String>>,
    /// Regexes whose matches are masked.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Names of built-in patterns: `credit_card`, `email`, `ipv4`, `bearer_token`.
    #[serde(default)]
    pub builtin: Vec<String>,
    /// What each match becomes; default `[REDACTED]`.
    pub replacement: Option<String>,
}

/// The running `redact`.
pub struct Redact {
    name: String,
    fields: Vec<FieldPath>,
    bytes: regex::bytes::Regex,
    replacement: String,
}

impl RedactConfig {
    pub(crate) fn build(&self, cx: &Ctx<'_>) -> Result<Redact, ConfigError> {
        let mut alternatives = Vec::new();
        for (i, p) in self.patterns.iter().enumerate() {
            // Compile alone first so an error names the pattern's own key.
            regex_config::bytes(cx, &format!("patterns[{i}]"), p)?;
            alternatives.push(format!("(?:{p})"));
        }
        for (i, b) in self.builtin.iter().enumerate() {
            let (_, p) = BUILTIN.iter().find(|(n, _)| n == b).ok_or_else(|| {
                let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
                cx.err(
                    &format!("builtin[{i}]"),
                    format!(
                        "unknown pattern {b:?}: expected one of {}",
                        names.join(", ")
                    ),
                )
            })?;
            alternatives.push(format!("(?:{p})"));
        }
        if alternatives.is_empty() {
            return Err(cx.err("", "redact needs `patterns` or `builtin`"));
        }
        let bytes = regex_config::bytes(cx, "patterns", &alternatives.join("|"))?;
        let fields = match &self.fields {
            None => vec![FieldPath::Message],
            Some(list) if list.is_empty() => {
                return Err(cx.err("fields", "empty: name at least one field"));
            }
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let key = format!("fields[{i}]");
                    let p = cx.field(&key, f)?;
                    if matches!(
                        p,
                        FieldPath::Severity | FieldPath::Facility | FieldPath::SdParam(..)
                    ) {
                        return Err(cx.err(&key, format!("{p} cannot be redacted")));
                    }
                    Ok(p)
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Redact {
            name: cx.name.clone(),
            fields,
            bytes,
            replacement: self
                .replacement
                .clone()
                .unwrap_or_else(|| "[REDACTED]".into()),
        })
    }
}

impl Redact {
    fn redact_text(&self, s: &mut String) {
        if !self.bytes.is_match(s.as_bytes()) {
            return;
        }
        let out = self.bytes.replace_all(
            s.as_bytes(),
            regex::bytes::NoExpand(self.replacement.as_bytes()),
        );
        // Matches on valid UTF-8 end on character boundaries in Unicode mode,
        // and the replacement is UTF-8, so this is valid; lossy is a guard.
        *s = String::from_utf8_lossy(&out).into_owned();
    }
}

impl Transform for Redact {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&self, batch: &mut Batch) {
        for r in &mut batch.logs {
            for f in &self.fields {
                match f {
                    FieldPath::Message => {
                        if let Some(m) = &mut r.message
                            && self.bytes.is_match(m)
                        {
                            *m = self
                                .bytes
                                .replace_all(m, regex::bytes::NoExpand(self.replacement.as_bytes()))
                                .into_owned();
                        }
                    }
                    FieldPath::Attribute(n) => {
                        for (k, v) in &mut r.attributes {
                            if k == n
                                && let FieldValue::Str(s) = v
                            {
                                self.redact_text(s);
                            }
                        }
                    }
                    FieldPath::Host => r
                        .host
                        .as_mut()
                        .into_iter()
                        .for_each(|s| self.redact_text(s)),
                    FieldPath::App => r.app.as_mut().into_iter().for_each(|s| self.redact_text(s)),
                    FieldPath::Procid => r
                        .procid
                        .as_mut()
                        .into_iter()
                        .for_each(|s| self.redact_text(s)),
                    FieldPath::Msgid => r
                        .msgid
                        .as_mut()
                        .into_iter()
                        .for_each(|s| self.redact_text(s)),
                    FieldPath::Source => r
                        .source
                        .as_mut()
                        .into_iter()
                        .for_each(|s| self.redact_text(s)),
                    FieldPath::ParseError => r
                        .parse_error
                        .as_mut()
                        .into_iter()
                        .for_each(|s| self.redact_text(s)),
                    FieldPath::Severity | FieldPath::Facility | FieldPath::SdParam(..) => {}
                }
            }
        }
    }
}

//! `rename` and `drop_fields`: move and remove fields.
//!
//! ```toml
//! [[transforms]]
//! type = "rename"
//! fields = { "attributes.hostname" = "host", "attributes.usr" = "attributes.user" }
//!
//! [[transforms]]
//! type = "drop_fields"
//! fields = ["attributes.password", "procid"]
//! ```
//!
//! A rename moves the value (replacing the target), and does nothing when the
//! source is absent. A message that is not valid UTF-8 is not moved into a
//! text field, since that would lose bytes; it stays the message. A value
//! moved into `severity` or `facility` that is not a valid name stays where
//! it was.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, Ctx, FieldPath, Transform};
use crate::pipeline::Batch;

/// Config of `rename`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameConfig {
    /// Source field path → target field path.
    pub fields: BTreeMap<String, String>,
}

/// The running `rename`.
pub struct Rename {
    name: String,
    moves: Vec<(FieldPath, FieldPath)>,
}

impl RenameConfig {
    pub(crate) fn build(&self, cx: &Ctx<'_>) -> Result<Rename, ConfigError> {
        if self.fields.is_empty() {
            return Err(cx.err("fields", "empty: name at least one field to rename"));
        }
        let mut moves = Vec::new();
        for (from, to) in &self.fields {
            let key = format!("fields.{from:?}");
            let src = cx.field(&key, from)?;
            let dst = cx.field(&key, to)?;
            if !src.is_writable() || !dst.is_writable() {
                return Err(cx.err(&key, "structured data cannot be renamed"));
            }
            if src == dst {
                return Err(cx.err(&key, "source and target are the same field"));
            }
            moves.push((src, dst));
        }
        Ok(Rename {
            name: cx.name.clone(),
            moves,
        })
    }
}

impl Transform for Rename {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&self, batch: &mut Batch) {
        for r in &mut batch.logs {
            for (src, dst) in &self.moves {
                if matches!(dst, FieldPath::Severity | FieldPath::Facility) {
                    // Only move what the target can hold.
                    let Some(v) = src.get_text(r).map(|t| t.into_owned()) else {
                        continue;
                    };
                    if dst.set(r, v.into()) {
                        src.take(r);
                    }
                } else if let Some(v) = src.take(r) {
                    dst.set(r, v);
                }
            }
        }
    }
}

/// Config of `drop_fields`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropFieldsConfig {
    /// Field paths to remove.
    pub fields: Vec<String>,
}

/// The running `drop_fields`.
pub struct DropFields {
    name: String,
    fields: Vec<FieldPath>,
}

impl DropFieldsConfig {
    pub(crate) fn build(&self, cx: &Ctx<'_>) -> Result<DropFields, ConfigError> {
        if self.fields.is_empty() {
            return Err(cx.err("fields", "empty: name at least one field to drop"));
        }
        let mut fields = Vec::new();
        for (i, f) in self.fields.iter().enumerate() {
            let key = format!("fields[{i}]");
            let p = cx.field(&key, f)?;
            if !p.is_writable() {
                return Err(cx.err(
                    &key,
                    "structured data parameters cannot be dropped one by one",
                ));
            }
            fields.push(p);
        }
        Ok(DropFields {
            name: cx.name.clone(),
            fields,
        })
    }
}

impl Transform for DropFields {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&self, batch: &mut Batch) {
        for r in &mut batch.logs {
            for f in &self.fields {
                if *f == FieldPath::Message {
                    r.message = None; // dropped on purpose, valid UTF-8 or not
                } else {
                    f.take(r);
                }
            }
        }
    }
}

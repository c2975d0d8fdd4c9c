//! `enrich`: add static fields and this machine's host name.
//!
//! ```toml
//! [[transforms]]
//! type = "enrich"
//! fields = { "attributes.env" = "prod", "attributes.region" = "eu-1", "app" = "billing" }
//! host_name = "attributes.collector"   # where to put this machine's host name
//! overwrite = false                    # default: only fill fields that are absent
//! ```
//!
//! The host name is read once, at build time: from the build context (the
//! binary may take it from its config), else `/proc/sys/kernel/hostname`,
//! `/etc/hostname` or `$HOSTNAME`. Asking for it when none is known is a
//! config error, not a silently missing field.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, Ctx, FieldPath, Transform};
use crate::event::FieldValue;
use crate::pipeline::Batch;

/// Config of `enrich`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// Field path → value (string, number, boolean).
    #[serde(default)]
    pub fields: BTreeMap<String, FieldValue>,
    /// A field path that receives this machine's host name.
    pub host_name: Option<String>,
    /// Replace values that are already present.
    #[serde(default)]
    pub overwrite: bool,
}

/// The running `enrich`.
pub struct Enrich {
    name: String,
    fields: Vec<(FieldPath, FieldValue)>,
    overwrite: bool,
}

impl EnrichConfig {
    pub(crate) fn build(&self, cx: &Ctx<'_>) -> Result<Enrich, ConfigError> {
        let mut fields = Vec::new();
        for (k, v) in &self.fields {
            let key = format!("fields.{k:?}");
            let path = cx.field(&key, k)?;
            if !path.is_writable() {
                return Err(cx.err(&key, "structured data cannot be written"));
            }
            if matches!(v, FieldValue::Null) {
                return Err(cx.err(&key, "a static field needs a value, not null"));
            }
            if matches!(path, FieldPath::Severity | FieldPath::Facility) {
                let mut probe = crate::event::LogRecord::default();
                if !path.set(&mut probe, v.clone()) {
                    return Err(cx.err(&key, format!("{v} is not a {path} name")));
                }
            }
            fields.push((path, v.clone()));
        }
        if let Some(target) = &self.host_name {
            let path = cx.field("host_name", target)?;
            if !path.is_writable() || matches!(path, FieldPath::Severity | FieldPath::Facility) {
                return Err(cx.err("host_name", format!("{path} cannot hold a host name")));
            }
            let host = cx.ctx.host_name.clone().ok_or_else(|| {
                cx.err(
                    "host_name",
                    "this machine's host name is unknown (no /proc/sys/kernel/hostname, /etc/hostname or $HOSTNAME); set it in the config",
                )
            })?;
            fields.push((path, FieldValue::Str(host)));
        }
        if fields.is_empty() {
            return Err(cx.err("", "enrich needs `fields` or `host_name`"));
        }
        Ok(Enrich {
            name: cx.name.clone(),
            fields,
            overwrite: self.overwrite,
        })
    }
}

impl Transform for Enrich {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&self, batch: &mut Batch) {
        for r in &mut batch.logs {
            for (path, value) in &self.fields {
                if self.overwrite || !path.exists(r) {
                    path.set(r, value.clone());
                }
            }
        }
    }
}

/// This machine's host name, from the kernel, `/etc/hostname` or `$HOSTNAME`.
pub(crate) fn system_host_name() -> Option<String> {
    let from_file = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
}

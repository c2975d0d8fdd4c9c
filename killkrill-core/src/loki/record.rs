//! From Loki's stream labels, entry line and structured metadata to a [`LogRecord`].
//!
//! Every stream label and every structured-metadata pair becomes an attribute (stream
//! labels first, in the order sent), so nothing is lost and a record can be pushed
//! back to Loki with the same labels. On top of that, the labels people use for the
//! record's header fields fill them in, so severity filters, `host=` and `app=`
//! work on Loki data as on syslog:
//!
//! | record field | first of these labels (entry metadata before stream labels) |
//! |---|---|
//! | `severity` | `level`, `severity`, `detected_level`, `lvl` (via [`Severity::from_name`]; a value it does not know leaves severity unset) |
//! | `host` | `host`, `hostname`, `node_name`, `nodename` |
//! | `app` | `service_name`, `service`, `app`, `application`, `app_kubernetes_io_name`, `container`, `job` |
//!
//! `service_name` comes first because Loki 3 derives it itself from the same list
//! (`job` last, as it often names the scraper rather than the program).

use crate::decode_budget::{RECORD_OVERHEAD, attribute_bytes};
use crate::event::{FieldValue, LogRecord, Severity, Timestamp};

const SEVERITY_LABELS: &[&str] = &["level", "severity", "detected_level", "lvl"];
const HOST_LABELS: &[&str] = &["host", "hostname", "node_name", "nodename"];
const APP_LABELS: &[&str] = &[
    "service_name",
    "service",
    "app",
    "application",
    "app_kubernetes_io_name",
    "container",
    "job",
];

/// The value of the first label in `names` that `pairs` has.
fn first<'a>(pairs: &'a [(String, FieldValue)], names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|want| {
        pairs.iter().find_map(|(n, v)| match v {
            FieldValue::Str(s) if n == want && !s.is_empty() => Some(s.as_str()),
            _ => None,
        })
    })
}

/// What a stream contributes to each of its records, computed once per stream.
pub(super) struct StreamContext {
    attributes: Vec<(String, FieldValue)>,
    severity: Option<Severity>,
    host: Option<String>,
    app: Option<String>,
}

impl StreamContext {
    pub fn new(labels: Vec<(String, String)>) -> Self {
        let attributes: Vec<(String, FieldValue)> = labels
            .into_iter()
            .map(|(n, v)| (n, FieldValue::Str(v)))
            .collect();
        StreamContext {
            severity: first(&attributes, SEVERITY_LABELS).and_then(Severity::from_name),
            host: first(&attributes, HOST_LABELS).map(str::to_owned),
            app: first(&attributes, APP_LABELS).map(str::to_owned),
            attributes,
        }
    }

    /// Estimated bytes of one record of this stream before its own line and
    /// metadata: what each entry copies.
    pub fn bytes_per_entry(&self) -> usize {
        let s = |o: &Option<String>| o.as_ref().map_or(0, String::len);
        self.attributes.iter().fold(
            RECORD_OVERHEAD + s(&self.host) + s(&self.app),
            |n, (k, v)| {
                let v = match v {
                    FieldValue::Str(v) => v.as_str(),
                    _ => "",
                };
                n.saturating_add(attribute_bytes(k, v))
            },
        )
    }

    /// One record: the stream's fields, overridden by the entry's metadata.
    pub fn record(
        &self,
        ts: Timestamp,
        line: Vec<u8>,
        metadata: Vec<(String, String)>,
    ) -> LogRecord {
        let mut attributes = Vec::with_capacity(self.attributes.len() + metadata.len());
        attributes.extend_from_slice(&self.attributes);
        let mut rec = LogRecord {
            timestamp: ts,
            severity: self.severity,
            host: self.host.clone(),
            app: self.app.clone(),
            message: Some(line),
            ..LogRecord::default()
        };
        if !metadata.is_empty() {
            let meta: Vec<(String, FieldValue)> = metadata
                .into_iter()
                .map(|(n, v)| (n, FieldValue::Str(v)))
                .collect();
            if let Some(s) = first(&meta, SEVERITY_LABELS).and_then(Severity::from_name) {
                rec.severity = Some(s);
            }
            if let Some(h) = first(&meta, HOST_LABELS) {
                rec.host = Some(h.to_owned());
            }
            if let Some(a) = first(&meta, APP_LABELS) {
                rec.app = Some(a.to_owned());
            }
            attributes.extend(meta);
        }
        rec.attributes = attributes;
        rec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect()
    }

    #[test]
    fn well_known_labels() {
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            &'a [(&'a str, &'a str)],
            Option<Severity>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            (&[("job", "varlogs")], &[], None, None, Some("varlogs")),
            (
                &[
                    ("level", "WARN"),
                    ("host", "h1"),
                    ("app", "api"),
                    ("job", "j"),
                ],
                &[],
                Some(Severity::Warning),
                Some("h1"),
                Some("api"),
            ),
            (
                &[("service_name", "svc"), ("app", "a")],
                &[],
                None,
                None,
                Some("svc"),
            ),
            (
                &[("severity", "error"), ("hostname", "h2")],
                &[("level", "debug")],
                Some(Severity::Debug),
                Some("h2"),
                None,
            ),
            (&[("detected_level", "unknown")], &[], None, None, None),
            (
                &[("job", "j")],
                &[("detected_level", "fatal"), ("host", "m")],
                Some(Severity::Critical),
                Some("m"),
                Some("j"),
            ),
        ];
        for (labels, meta, sev, host, app) in cases {
            let ctx = StreamContext::new(pairs(labels));
            let r = ctx.record(Timestamp::EPOCH, b"x".to_vec(), pairs(meta));
            assert_eq!(
                (r.severity, r.host.as_deref(), r.app.as_deref()),
                (*sev, *host, *app),
                "{labels:?} {meta:?}"
            );
            assert_eq!(
                r.attributes.len(),
                labels.len() + meta.len(),
                "every label is kept"
            );
        }
    }
}

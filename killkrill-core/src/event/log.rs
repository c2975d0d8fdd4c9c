//! Log records and their one canonical JSON form.
//!
//! A [`LogRecord`] is what every log source becomes: syslog (5424 and 3164),
//! JSON logs, Loki push. Its JSON form is the only one Killkrill shows — the
//! `parse` CLI, the REST API, live tail and the Python bindings all print the
//! same keys in the same order:
//!
//! ```json
//! {"id": "…", "tenant": "default", "timestamp": "2026-11-25T17:12:36.000000000Z",
//!  "severity": "err", "facility": "daemon", "host": "web1", "app": "nginx",
//!  "procid": "812", "msgid": null, "structured_data": {"origin": {"ip": "10.0.0.1"}},
//!  "message": "upstream timed out", "source": "syslog-tcp",
//!  "attributes": {"k8s.pod": "web-1"}, "parse_error": null}
//! ```
//!
//! The header keys (`timestamp` through `message`) are always present, null
//! when absent. `id`, `tenant`, `source`, `attributes` and `parse_error`
//! appear only when they apply (a record from `killkrill parse` has no id or
//! tenant yet). A message that is not valid UTF-8 is shown lossily in
//! `message` and exactly in `message_base64`, so no byte is lost on the way
//! through JSON. A structured-data parameter that occurs more than once in
//! an element becomes an array of its values.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::{EventId, Facility, FieldValue, SdElement, Severity, Tenant, Timestamp};

/// One log event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogRecord {
    /// Assigned by the receiver; `None` before that.
    pub id: Option<EventId>,
    /// Assigned by the receiver from the caller's credentials.
    pub tenant: Option<Tenant>,
    /// Event time: the sender's timestamp, or the receive time if it sent none.
    pub timestamp: Timestamp,
    /// Severity, if the source said.
    pub severity: Option<Severity>,
    /// Syslog facility, if the source said.
    pub facility: Option<Facility>,
    /// Host name or address of the originator.
    pub host: Option<String>,
    /// Application (syslog APP-NAME / tag, or the service of a JSON log).
    pub app: Option<String>,
    /// Process id or other process identifier.
    pub procid: Option<String>,
    /// Syslog MSGID.
    pub msgid: Option<String>,
    /// RFC 5424 structured data, in order.
    pub structured_data: Vec<SdElement>,
    /// The message bytes, normally UTF-8 but kept exactly when not.
    pub message: Option<Vec<u8>>,
    /// Which listener or endpoint received it (`syslog-udp`, `http`, `loki`, ...).
    pub source: Option<String>,
    /// Other fields, in order (JSON log fields, Loki stream labels, ...).
    pub attributes: Vec<(String, FieldValue)>,
    /// Set when the parser could not parse the input and kept it raw.
    pub parse_error: Option<String>,
}

impl LogRecord {
    /// The message as text, replacing invalid UTF-8 with U+FFFD.
    pub fn message_str(&self) -> Option<Cow<'_, str>> {
        self.message.as_deref().map(String::from_utf8_lossy)
    }

    /// The first value of attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&FieldValue> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Writes the canonical JSON form (one line, no trailing newline).
    ///
    /// # Errors
    /// Only the writer's own I/O errors.
    pub fn write_json(&self, out: impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer(out, self).map_err(std::io::Error::other)
    }

    /// The canonical JSON form as a string.
    pub fn to_json(&self) -> String {
        // Serialising this type into memory cannot fail: every key is a
        // string and every value is representable.
        serde_json::to_string(self).unwrap_or_default()
    }
}

struct SdJson<'a>(&'a [SdElement]);

impl Serialize for SdJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for el in self.0 {
            m.serialize_entry(&el.id, &ParamsJson(&el.params))?;
        }
        m.end()
    }
}

struct ParamsJson<'a>(&'a [(String, String)]);

impl Serialize for ParamsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let params = self.0;
        let mut m = s.serialize_map(None)?;
        for (i, (name, value)) in params.iter().enumerate() {
            if params[..i].iter().any(|(n, _)| n == name) {
                continue; // already written with its first occurrence
            }
            let repeats = params[i + 1..].iter().any(|(n, _)| n == name);
            if repeats {
                let all: Vec<&str> = params
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
                    .collect();
                m.serialize_entry(name, &all)?;
            } else {
                m.serialize_entry(name, value)?;
            }
        }
        m.end()
    }
}

struct AttrsJson<'a>(&'a [(String, FieldValue)]);

impl Serialize for AttrsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Serialize for LogRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(id) = &self.id {
            m.serialize_entry("id", id)?;
        }
        if let Some(t) = &self.tenant {
            m.serialize_entry("tenant", t)?;
        }
        m.serialize_entry("timestamp", &self.timestamp)?;
        m.serialize_entry("severity", &self.severity)?;
        m.serialize_entry("facility", &self.facility)?;
        m.serialize_entry("host", &self.host)?;
        m.serialize_entry("app", &self.app)?;
        m.serialize_entry("procid", &self.procid)?;
        m.serialize_entry("msgid", &self.msgid)?;
        if self.structured_data.is_empty() {
            m.serialize_entry("structured_data", &None::<()>)?;
        } else {
            m.serialize_entry("structured_data", &SdJson(&self.structured_data))?;
        }
        match &self.message {
            None => m.serialize_entry("message", &None::<()>)?,
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => m.serialize_entry("message", text)?,
                Err(_) => {
                    m.serialize_entry("message", &String::from_utf8_lossy(bytes))?;
                    m.serialize_entry("message_base64", &BASE64.encode(bytes))?;
                }
            },
        }
        if let Some(src) = &self.source {
            m.serialize_entry("source", src)?;
        }
        if !self.attributes.is_empty() {
            m.serialize_entry("attributes", &AttrsJson(&self.attributes))?;
        }
        if let Some(e) = &self.parse_error {
            m.serialize_entry("parse_error", e)?;
        }
        m.end()
    }
}

/// One SD parameter value in JSON: a string, or an array for a repeated name.
#[derive(Deserialize)]
#[serde(untagged)]
enum ParamJson {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogRecordJson {
    #[serde(default)]
    id: Option<EventId>,
    #[serde(default)]
    tenant: Option<Tenant>,
    timestamp: Timestamp,
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    facility: Option<Facility>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    procid: Option<String>,
    #[serde(default)]
    msgid: Option<String>,
    #[serde(default)]
    structured_data: Option<ordered_map::OrderedMap<ordered_map::OrderedMap<ParamJson>>>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    message_base64: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    attributes: Option<ordered_map::OrderedMap<FieldValue>>,
    #[serde(default)]
    parse_error: Option<String>,
}

impl<'de> Deserialize<'de> for LogRecord {
    /// Reads the canonical JSON form back (the Python client and `loadgen
    /// --verify` use this). Unknown keys are errors.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = LogRecordJson::deserialize(d)?;
        let message = match (j.message_base64, j.message) {
            (Some(b64), _) => Some(BASE64.decode(b64).map_err(serde::de::Error::custom)?),
            (None, m) => m.map(String::into_bytes),
        };
        let structured_data = j
            .structured_data
            .map(|sd| {
                sd.0.into_iter()
                    .map(|(id, params)| SdElement {
                        id,
                        params: params
                            .0
                            .into_iter()
                            .flat_map(|(name, v)| match v {
                                ParamJson::One(v) => vec![(name, v)],
                                ParamJson::Many(vs) => {
                                    vs.into_iter().map(|v| (name.clone(), v)).collect()
                                }
                            })
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(LogRecord {
            id: j.id,
            tenant: j.tenant,
            timestamp: j.timestamp,
            severity: j.severity,
            facility: j.facility,
            host: j.host,
            app: j.app,
            procid: j.procid,
            msgid: j.msgid,
            structured_data,
            message,
            source: j.source,
            attributes: j.attributes.map(|a| a.0).unwrap_or_default(),
            parse_error: j.parse_error,
        })
    }
}

/// A JSON object read into a `Vec` so the key order survives.
mod ordered_map {
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{MapAccess, Visitor};

    pub(super) struct OrderedMap<V>(pub Vec<(String, V)>);

    impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V2<V>(std::marker::PhantomData<V>);
            impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
                type Value = OrderedMap<V>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0));
                    while let Some((k, v)) = a.next_entry::<String, V>()? {
                        out.push((k, v));
                    }
                    Ok(OrderedMap(out))
                }
            }
            d.deserialize_map(V2(std::marker::PhantomData))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LogRecord {
        LogRecord {
            id: Some(EventId::from_parts(1_764_090_756_000, 42)),
            tenant: Some(Tenant::new("team-a").unwrap()),
            timestamp: Timestamp::parse_rfc3339("2026-11-25T17:12:36.5Z").unwrap(),
            severity: Some(Severity::Error),
            facility: Some(Facility::Daemon),
            host: Some("web1".into()),
            app: Some("nginx".into()),
            procid: Some("812".into()),
            msgid: None,
            structured_data: vec![
                SdElement {
                    id: "origin".into(),
                    params: vec![
                        ("ip".into(), "10.0.0.1".into()),
                        ("ip".into(), "10.0.0.2".into()),
                        ("software".into(), "x".into()),
                    ],
                },
                SdElement {
                    id: "empty@1".into(),
                    params: vec![],
                },
            ],
            message: Some(b"upstream \"timed\" out".to_vec()),
            source: Some("syslog-tcp".into()),
            attributes: vec![
                ("z".into(), FieldValue::Int(1)),
                ("a.b".into(), FieldValue::Str("c".into())),
            ],
            parse_error: None,
        }
    }

    #[test]
    fn canonical_json_has_fixed_keys_in_order() {
        let json = sample().to_json();
        assert_eq!(
            json,
            concat!(
                r#"{"id":"019abc00-bba0-7000-8000-00000000002a","tenant":"team-a","#,
                r#""timestamp":"2026-11-25T17:12:36.500000000Z","severity":"err","facility":"daemon","#,
                r#""host":"web1","app":"nginx","procid":"812","msgid":null,"#,
                r#""structured_data":{"origin":{"ip":["10.0.0.1","10.0.0.2"],"software":"x"},"empty@1":{}},"#,
                r#""message":"upstream \"timed\" out","source":"syslog-tcp","#,
                r#""attributes":{"z":1,"a.b":"c"}}"#
            )
        );
    }

    #[test]
    fn absent_header_values_are_null_and_optional_keys_are_omitted() {
        let r = LogRecord {
            timestamp: Timestamp::EPOCH,
            parse_error: Some("column 3: expected '>'".into()),
            ..LogRecord::default()
        };
        assert_eq!(
            r.to_json(),
            r#"{"timestamp":"1970-01-01T00:00:00.000000000Z","severity":null,"facility":null,"host":null,"app":null,"procid":null,"msgid":null,"structured_data":null,"message":null,"parse_error":"column 3: expected '>'"}"#
        );
    }

    #[test]
    fn invalid_utf8_survives_the_round_trip() {
        let mut r = sample();
        r.message = Some(vec![b'a', 0xff, 0xfe, b'z']);
        let json = r.to_json();
        assert!(
            json.contains(r#""message":"a��z","message_base64":"Yf/+eg==""#),
            "{json}"
        );
        let back: LogRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn json_round_trip_keeps_order_and_repeats() {
        let r = sample();
        let back: LogRecord = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_json::from_str::<LogRecord>(
            r#"{"timestamp":"1970-01-01T00:00:00Z","mesage":"typo"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `mesage`"), "{err}");
    }
}

//! Field paths: how transform configs name a part of a log record.
//!
//! The well-known fields go by their canonical JSON names (`message`, `host`,
//! `app`, `procid`, `msgid`, `source`, `parse_error`, `severity`,
//! `facility`); attributes go by `attributes.<name>` (the name may contain
//! dots: `attributes.k8s.pod`); a structured-data parameter by
//! `structured_data.<SD-ID>.<PARAM>` (read-only). Being explicit about
//! `attributes.` keeps a JSON field called `host` from being confused with
//! the record's host.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::event::{Facility, FieldValue, LogRecord, Severity};

/// A field of a log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPath {
    /// The message (bytes; read as text lossily).
    Message,
    /// `host`.
    Host,
    /// `app`.
    App,
    /// `procid`.
    Procid,
    /// `msgid`.
    Msgid,
    /// `source`.
    Source,
    /// `parse_error`.
    ParseError,
    /// `severity` (as its canonical name).
    Severity,
    /// `facility` (as its canonical name).
    Facility,
    /// `attributes.<name>` (the first attribute of that name).
    Attribute(String),
    /// `structured_data.<id>.<param>` (the first value); read-only.
    SdParam(String, String),
}

/// The text is not a field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown field {0:?}: expected message, host, app, procid, msgid, source, parse_error, severity, facility, attributes.<name> or structured_data.<id>.<param>"
)]
pub struct InvalidFieldPath(pub String);

impl FromStr for FieldPath {
    type Err = InvalidFieldPath;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || InvalidFieldPath(s.to_owned());
        Ok(match s {
            "message" => FieldPath::Message,
            "host" => FieldPath::Host,
            "app" => FieldPath::App,
            "procid" => FieldPath::Procid,
            "msgid" => FieldPath::Msgid,
            "source" => FieldPath::Source,
            "parse_error" => FieldPath::ParseError,
            "severity" => FieldPath::Severity,
            "facility" => FieldPath::Facility,
            _ => {
                if let Some(name) = s.strip_prefix("attributes.") {
                    if name.is_empty() {
                        return Err(err());
                    }
                    FieldPath::Attribute(name.to_owned())
                } else if let Some(rest) = s.strip_prefix("structured_data.") {
                    let (id, param) = rest.split_once('.').ok_or_else(err)?;
                    if id.is_empty() || param.is_empty() {
                        return Err(err());
                    }
                    FieldPath::SdParam(id.to_owned(), param.to_owned())
                } else {
                    return Err(err());
                }
            }
        })
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldPath::Message => f.write_str("message"),
            FieldPath::Host => f.write_str("host"),
            FieldPath::App => f.write_str("app"),
            FieldPath::Procid => f.write_str("procid"),
            FieldPath::Msgid => f.write_str("msgid"),
            FieldPath::Source => f.write_str("source"),
            FieldPath::ParseError => f.write_str("parse_error"),
            FieldPath::Severity => f.write_str("severity"),
            FieldPath::Facility => f.write_str("facility"),
            FieldPath::Attribute(n) => write!(f, "attributes.{n}"),
            FieldPath::SdParam(i, p) => write!(f, "structured_data.{i}.{p}"),
        }
    }
}

impl FieldPath {
    /// True for paths that can be written (everything but SD parameters).
    pub fn is_writable(&self) -> bool {
        !matches!(self, FieldPath::SdParam(..))
    }

    fn text_slot<'r>(&self, r: &'r mut LogRecord) -> Option<&'r mut Option<String>> {
        Some(match self {
            FieldPath::Host => &mut r.host,
            FieldPath::App => &mut r.app,
            FieldPath::Procid => &mut r.procid,
            FieldPath::Msgid => &mut r.msgid,
            FieldPath::Source => &mut r.source,
            FieldPath::ParseError => &mut r.parse_error,
            _ => return None,
        })
    }

    /// The raw bytes of a field, for regexes and parsers: the message as it
    /// is, text fields as UTF-8, other attribute values in their text form.
    pub fn get_bytes<'r>(&self, r: &'r LogRecord) -> Option<Cow<'r, [u8]>> {
        match self {
            FieldPath::Message => r.message.as_deref().map(Cow::Borrowed),
            _ => self.get_text(r).map(|t| match t {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            }),
        }
    }

    /// The field as text (the message lossily, numbers in their JSON spelling).
    pub fn get_text<'r>(&self, r: &'r LogRecord) -> Option<Cow<'r, str>> {
        let s = |o: &'r Option<String>| o.as_deref().map(Cow::Borrowed);
        match self {
            FieldPath::Message => r.message_str(),
            FieldPath::Host => s(&r.host),
            FieldPath::App => s(&r.app),
            FieldPath::Procid => s(&r.procid),
            FieldPath::Msgid => s(&r.msgid),
            FieldPath::Source => s(&r.source),
            FieldPath::ParseError => s(&r.parse_error),
            FieldPath::Severity => r.severity.map(|v| Cow::Borrowed(v.name())),
            FieldPath::Facility => r.facility.map(|v| Cow::Borrowed(v.name())),
            FieldPath::Attribute(n) => r.attribute(n).map(FieldValue::to_text),
            FieldPath::SdParam(id, p) => r
                .structured_data
                .iter()
                .find(|e| &e.id == id)
                .and_then(|e| e.param(p))
                .map(Cow::Borrowed),
        }
    }

    /// True when the field is present.
    pub fn exists(&self, r: &LogRecord) -> bool {
        match self {
            FieldPath::Message => r.message.is_some(),
            FieldPath::Severity => r.severity.is_some(),
            FieldPath::Facility => r.facility.is_some(),
            FieldPath::Attribute(n) => r.attributes.iter().any(|(k, _)| k == n),
            _ => self.get_text(r).is_some(),
        }
    }

    /// Removes the field and returns its value (every attribute of that name
    /// is removed; the first one's value is returned). The message comes back
    /// as a string only when it is valid UTF-8; otherwise it is left in place
    /// and `None` is returned, so no byte is lost.
    pub fn take(&self, r: &mut LogRecord) -> Option<FieldValue> {
        if let Some(slot) = self.text_slot(r) {
            return slot.take().map(FieldValue::Str);
        }
        match self {
            FieldPath::Message => {
                let bytes = r.message.take()?;
                match String::from_utf8(bytes) {
                    Ok(s) => Some(FieldValue::Str(s)),
                    Err(e) => {
                        r.message = Some(e.into_bytes());
                        None
                    }
                }
            }
            FieldPath::Severity => r.severity.take().map(|s| FieldValue::from(s.name())),
            FieldPath::Facility => r.facility.take().map(|f| FieldValue::from(f.name())),
            FieldPath::Attribute(n) => {
                let first = r.attributes.iter().position(|(k, _)| k == n)?;
                let value = std::mem::take(&mut r.attributes[first].1);
                r.attributes.retain(|(k, _)| k != n);
                Some(value)
            }
            _ => None,
        }
    }

    /// Sets the field. Attributes keep any type and replace the first
    /// attribute of that name (appending when there is none); text fields
    /// take the value's text form; `severity` and `facility` take a name
    /// (`warn`, `local3`, `4`) and are left unchanged when it is not one,
    /// which is reported as `false`.
    pub fn set(&self, r: &mut LogRecord, value: FieldValue) -> bool {
        if let Some(slot) = self.text_slot(r) {
            *slot = Some(into_text(value));
            return true;
        }
        match self {
            FieldPath::Message => {
                r.message = Some(into_text(value).into_bytes());
                true
            }
            FieldPath::Severity => match Severity::from_name(&value.to_text()) {
                Some(s) => {
                    r.severity = Some(s);
                    true
                }
                None => false,
            },
            FieldPath::Facility => match Facility::from_name(&value.to_text()) {
                Some(f) => {
                    r.facility = Some(f);
                    true
                }
                None => false,
            },
            FieldPath::Attribute(n) => {
                match r.attributes.iter_mut().find(|(k, _)| k == n) {
                    Some((_, v)) => *v = value,
                    None => r.attributes.push((n.clone(), value)),
                }
                true
            }
            FieldPath::SdParam(..) => false,
            _ => false,
        }
    }
}

fn into_text(v: FieldValue) -> String {
    match v {
        FieldValue::Str(s) => s,
        other => other.to_text().into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SdElement;

    #[test]
    fn paths_parse_and_print() {
        for (text, path) in [
            ("message", FieldPath::Message),
            ("severity", FieldPath::Severity),
            ("attributes.k8s.pod", FieldPath::Attribute("k8s.pod".into())),
            (
                "structured_data.origin.ip",
                FieldPath::SdParam("origin".into(), "ip".into()),
            ),
        ] {
            assert_eq!(text.parse::<FieldPath>().unwrap(), path);
            assert_eq!(path.to_string(), text);
        }
        for bad in ["", "msg", "attributes.", "structured_data.x", "Host"] {
            assert!(bad.parse::<FieldPath>().is_err(), "{bad}");
        }
    }

    #[test]
    fn get_set_take() {
        let mut r = LogRecord {
            message: Some(vec![0xff, b'a']),
            structured_data: vec![SdElement {
                id: "origin".into(),
                params: vec![("ip".into(), "10.0.0.1".into())],
            }],
            attributes: vec![
                ("n".into(), FieldValue::Int(3)),
                ("n".into(), FieldValue::Null),
            ],
            ..LogRecord::default()
        };
        let n: FieldPath = "attributes.n".parse().unwrap();
        assert_eq!(n.get_text(&r).unwrap(), "3");
        assert_eq!(
            "structured_data.origin.ip"
                .parse::<FieldPath>()
                .unwrap()
                .get_text(&r)
                .unwrap(),
            "10.0.0.1"
        );
        // Invalid UTF-8 messages are not taken (they would lose bytes).
        assert_eq!(FieldPath::Message.take(&mut r), None);
        assert_eq!(r.message.as_deref(), Some(&[0xff, b'a'][..]));
        assert_eq!(n.take(&mut r), Some(FieldValue::Int(3)));
        assert!(r.attributes.is_empty());
        assert!(FieldPath::Severity.set(&mut r, "warn".into()));
        assert_eq!(r.severity, Some(Severity::Warning));
        assert!(!FieldPath::Severity.set(&mut r, "loud".into()));
        assert!(FieldPath::Host.set(&mut r, FieldValue::Int(7)));
        assert_eq!(r.host.as_deref(), Some("7"));
    }
}

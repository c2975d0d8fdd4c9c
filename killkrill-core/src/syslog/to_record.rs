//! From the borrowed [`SyslogMessage`] to the owned [`LogRecord`].
//!
//! This is the one place where a parsed message is copied. Field mapping:
//! HOSTNAME → `host`, APP-NAME/TAG → `app`, PROCID → `procid`, MSGID →
//! `msgid`, STRUCTURED-DATA → `structured_data` (unescaped), MSG →
//! `message` (bytes as sent, BOM removed), PRI → `severity`/`facility`. The
//! record's timestamp is the message's own, or the receive time the caller
//! passes when the message has none. A Cisco sequence number becomes the
//! attribute `syslog.sequence`; a lenient parse error becomes `parse_error`.

use super::message::SyslogMessage;
use crate::event::{FieldValue, LogRecord, Timestamp};

/// Attribute name of a Cisco-style sequence number.
pub const SEQUENCE_ATTRIBUTE: &str = "syslog.sequence";

impl SyslogMessage<'_> {
    /// An owned [`LogRecord`] with this message's fields. `received` becomes
    /// the timestamp when the message carries none. `id`, `tenant` and
    /// `source` are left for the receiver to set.
    pub fn to_record(&self, received: Timestamp) -> LogRecord {
        let mut attributes = Vec::new();
        if let Some(seq) = self.sequence {
            let v = i64::try_from(seq)
                .map_or_else(|_| FieldValue::Str(seq.to_string()), FieldValue::Int);
            attributes.push((SEQUENCE_ATTRIBUTE.to_owned(), v));
        }
        LogRecord {
            id: None,
            tenant: None,
            timestamp: self.timestamp.unwrap_or(received),
            severity: self.severity,
            facility: self.facility,
            host: self.hostname.map(str::to_owned),
            app: self.appname.map(str::to_owned),
            procid: self.procid.map(str::to_owned),
            msgid: self.msgid.map(str::to_owned),
            structured_data: self.structured_data.to_elements(),
            message: self.message.map(<[u8]>::to_vec),
            source: None,
            attributes,
            parse_error: self.parse_error.map(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::event::{Facility, SdElement, Severity, Timestamp};
    use crate::syslog::{Clock, ParseOptions, SyslogParser};

    #[test]
    fn fields_map_and_receive_time_fills_in() {
        let received = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let p = SyslogParser::new(ParseOptions::default().with_clock(Clock::Fixed(received)));
        let r = p
            .parse_lenient(br#"<165>1 2003-10-11T22:14:15.003Z web1 app 77 ID9 [a b="c\]"] hi"#)
            .to_record(received);
        assert_eq!(
            r.timestamp,
            Timestamp::parse_rfc3339("2003-10-11T22:14:15.003Z").unwrap()
        );
        assert_eq!(
            (r.severity, r.facility),
            (Some(Severity::Notice), Some(Facility::Local4))
        );
        assert_eq!(
            (
                r.host.as_deref(),
                r.app.as_deref(),
                r.procid.as_deref(),
                r.msgid.as_deref()
            ),
            (Some("web1"), Some("app"), Some("77"), Some("ID9"))
        );
        assert_eq!(
            r.structured_data,
            vec![SdElement {
                id: "a".into(),
                params: vec![("b".into(), "c]".into())]
            }]
        );
        assert_eq!(r.message.as_deref(), Some(&b"hi"[..]));
        assert_eq!(r.parse_error, None);

        let r = p.parse_lenient(b"<156>pyapp: hello").to_record(received);
        assert_eq!(r.timestamp, received);
        assert_eq!(r.app.as_deref(), Some("pyapp"));

        let r = p
            .parse_lenient(b"<189>77: *Mar  1 18:48:50 UTC: %SYS-5: x")
            .to_record(received);
        assert_eq!(
            r.attribute(super::SEQUENCE_ATTRIBUTE),
            Some(&crate::event::FieldValue::Int(77))
        );

        let r = p.parse_lenient(b"<1>1 bad").to_record(received);
        assert!(r.parse_error.unwrap().contains("column 5"));
        assert_eq!(r.message.as_deref(), Some(&b"<1>1 bad"[..]));
    }
}

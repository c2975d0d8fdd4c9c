//! `json_log`: the project's JSON-log parser as a field parser.
//!
//! Where the plain `json` parser turns an object into attributes, this one
//! runs [`JsonLogParser`] — the parser behind `POST /api/v1/logs` — so a JSON
//! log line embedded in a syslog message gets the same treatment as one
//! posted directly: `ts`/`time`/... become the timestamp, `level` the
//! severity, `msg` the message, `host`/`app`/... the header, nested objects
//! flattened into dotted attribute names.

use super::{FieldParseError, FieldParser, ParsedFields};
use crate::event::Timestamp;
use crate::json_logs::{JsonLogLimits, JsonLogParser, Mode};

/// One JSON log object in a field, through [`JsonLogParser`] (strict).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLogFieldParser {
    parser: JsonLogParser,
}

impl JsonLogFieldParser {
    /// With these limits.
    pub const fn new(limits: JsonLogLimits) -> Self {
        JsonLogFieldParser {
            parser: JsonLogParser::new(limits, Mode::Strict),
        }
    }
}

impl FieldParser for JsonLogFieldParser {
    fn parse(&self, input: &[u8], out: &mut ParsedFields) -> Result<(), FieldParseError> {
        // A record without a timestamp of its own gets this sentinel, which
        // is mapped back to "no timestamp found".
        const NONE: Timestamp = Timestamp::MIN;
        let mut records = Vec::with_capacity(1);
        self.parser
            .parse_body(input, NONE, &mut records)
            .map_err(|e| FieldParseError::new(e.to_string()))?;
        let mut records = records.into_iter();
        let (Some(r), None) = (records.next(), records.next()) else {
            return Err(FieldParseError::new("expected exactly one JSON log object"));
        };
        out.timestamp = (r.timestamp != NONE).then_some(r.timestamp);
        out.severity = r.severity;
        out.facility = r.facility;
        out.host = r.host;
        out.app = r.app;
        out.procid = r.procid;
        out.msgid = r.msgid;
        out.message = r.message;
        out.structured_data = r.structured_data;
        out.attributes = r.attributes;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FieldValue, Severity};

    #[test]
    fn header_fields_are_recognised() {
        let mut out = ParsedFields::default();
        JsonLogFieldParser::default()
            .parse(
                br#"{"ts":"2026-11-25T17:12:36Z","level":"warn","msg":"slow","http":{"status":503}}"#,
                &mut out,
            )
            .unwrap();
        assert_eq!(
            out.timestamp,
            Some(Timestamp::parse_rfc3339("2026-11-25T17:12:36Z").unwrap())
        );
        assert_eq!(out.severity, Some(Severity::Warning));
        assert_eq!(out.message.as_deref(), Some(&b"slow"[..]));
        assert_eq!(
            out.attributes,
            vec![("http.status".to_owned(), FieldValue::Int(503))]
        );
        let mut none = ParsedFields::default();
        JsonLogFieldParser::default()
            .parse(br#"{"a":1}"#, &mut none)
            .unwrap();
        assert_eq!(none.timestamp, None);
    }

    #[test]
    fn errors_and_several_records_are_refused() {
        let p = JsonLogFieldParser::default();
        assert!(p.parse(b"{nope", &mut ParsedFields::default()).is_err());
        let e = p
            .parse(b"[{\"a\":1},{\"a\":2}]", &mut ParsedFields::default())
            .unwrap_err();
        assert_eq!(e.message, "expected exactly one JSON log object");
    }
}

//! A one-line summary of a log record, so table rows can state the whole
//! expected record: header fields that are set, attributes in order with
//! their values as JSON (so `a=1` and `a="1"` differ), and the parse error.

use killkrill_core::event::{LogRecord, Timestamp};
use killkrill_core::json_logs::{JsonLogLimits, JsonLogParser, Mode};

/// The receive time the tests pass in; shown as `ts=recv`.
pub const RECEIVED: Timestamp = Timestamp::from_nanos(42);

pub fn brief(r: &LogRecord) -> String {
    let mut parts = Vec::new();
    if r.timestamp == RECEIVED {
        parts.push("ts=recv".to_owned());
    } else {
        parts.push(format!("ts={}", r.timestamp.as_nanos()));
    }
    if let Some(s) = r.severity {
        parts.push(format!("sev={s}"));
    }
    if let Some(f) = r.facility {
        parts.push(format!("fac={f}"));
    }
    for (name, v) in [
        ("host", &r.host),
        ("app", &r.app),
        ("procid", &r.procid),
        ("msgid", &r.msgid),
    ] {
        if let Some(v) = v {
            parts.push(format!("{name}={v}"));
        }
    }
    if let Some(m) = r.message_str() {
        parts.push(format!("msg={m}"));
    }
    for (k, v) in &r.attributes {
        parts.push(format!(
            "{k}={}",
            serde_json::to_string(v).expect("a field value serialises")
        ));
    }
    if let Some(e) = &r.parse_error {
        parts.push(format!("error=[{e}]"));
    }
    parts.join(" ")
}

/// Parses `body` and returns the briefs, or the error text.
pub fn parse_with(limits: JsonLogLimits, mode: Mode, body: &[u8]) -> Result<Vec<String>, String> {
    let p = JsonLogParser::new(limits, mode);
    let mut out = Vec::new();
    match p.parse_body(body, RECEIVED, &mut out) {
        Ok(report) => {
            assert_eq!(report.records, out.len(), "report counts every record");
            Ok(out.iter().map(brief).collect())
        }
        Err(e) => {
            assert!(out.is_empty(), "a failed body leaves the output as it was");
            Err(e.to_string())
        }
    }
}

/// Strict parse with default limits.
pub fn strict(body: &str) -> Result<Vec<String>, String> {
    parse_with(JsonLogLimits::DEFAULT, Mode::Strict, body.as_bytes())
}

/// The brief of the only record of a strict parse.
pub fn one(body: &str) -> String {
    match strict(body) {
        Ok(mut v) if v.len() == 1 => v.remove(0),
        other => panic!("{body}: expected one record, got {other:?}"),
    }
}

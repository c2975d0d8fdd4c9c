//! Writing RFC 5424: the inverse of the parser, for load generators, relays
//! and the round-trip property test.
//!
//! The writer always produces a message the strict parser accepts: header
//! fields are cut to their RFC limits and bytes outside printable US-ASCII
//! become `_`; SD names are treated the same way; SD values are escaped;
//! timestamps are written in UTC with microseconds (RFC 5424 allows at most
//! six fraction digits, so nanoseconds are truncated). What the writer cannot
//! repair is left to the caller: a repeated SD-ID, a header field that is
//! literally `-` (which reads back as absent), and a message that itself
//! starts with a BOM (which reads back without it).

use crate::event::{Facility, LogRecord, Severity};

/// Appends `record` to `out` as one RFC 5424 message (no framing, no newline).
/// A missing facility is written as `user`, a missing severity as `notice`.
pub fn format_rfc5424(record: &LogRecord, out: &mut Vec<u8>) {
    let fac = record.facility.unwrap_or(Facility::User).code();
    let sev = record.severity.unwrap_or(Severity::Notice).code();
    out.push(b'<');
    push_decimal(out, u64::from(fac) * 8 + u64::from(sev));
    out.extend_from_slice(b">1 ");
    push_timestamp(out, record);
    out.push(b' ');
    push_field(out, record.host.as_deref(), 255);
    out.push(b' ');
    push_field(out, record.app.as_deref(), 48);
    out.push(b' ');
    push_field(out, record.procid.as_deref(), 128);
    out.push(b' ');
    push_field(out, record.msgid.as_deref(), 32);
    out.push(b' ');
    if record.structured_data.is_empty() {
        out.push(b'-');
    }
    for el in &record.structured_data {
        out.push(b'[');
        push_sd_name(out, &el.id);
        for (name, value) in &el.params {
            out.push(b' ');
            push_sd_name(out, name);
            out.extend_from_slice(b"=\"");
            for &c in value.as_bytes() {
                if matches!(c, b'"' | b'\\' | b']') {
                    out.push(b'\\');
                }
                out.push(c);
            }
            out.push(b'"');
        }
        out.push(b']');
    }
    if let Some(msg) = record.message.as_deref()
        && !msg.is_empty()
    {
        out.push(b' ');
        out.extend_from_slice(msg);
    }
}

fn push_decimal(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_timestamp(out: &mut Vec<u8>, record: &LogRecord) {
    // `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` → keep 6 fraction digits.
    let text = record.timestamp.to_rfc3339();
    let b = text.as_bytes();
    out.extend_from_slice(&b[..26]);
    out.push(b'Z');
}

fn push_field(out: &mut Vec<u8>, value: Option<&str>, max: usize) {
    match value {
        None | Some("") => out.push(b'-'),
        Some(v) => out.extend(
            v.bytes()
                .take(max)
                .map(|c| if (33..=126).contains(&c) { c } else { b'_' }),
        ),
    }
}

fn push_sd_name(out: &mut Vec<u8>, name: &str) {
    if name.is_empty() {
        out.push(b'_');
        return;
    }
    out.extend(name.bytes().take(super::MAX_SD_NAME).map(|c| {
        if (33..=126).contains(&c) && !matches!(c, b'=' | b']' | b'"') {
            c
        } else {
            b'_'
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{SdElement, Timestamp};

    #[test]
    fn writes_what_the_strict_parser_reads() {
        let rec = LogRecord {
            timestamp: Timestamp::parse_rfc3339("2026-11-25T17:12:36.123456789Z").unwrap(),
            severity: Some(Severity::Error),
            facility: Some(Facility::Daemon),
            host: Some("web 1".into()),
            app: Some("nginx".into()),
            procid: None,
            msgid: Some(String::new()),
            structured_data: vec![SdElement {
                id: "origin".into(),
                params: vec![("ip".into(), "a\"b]c\\".into())],
            }],
            message: Some(b"upstream timed out".to_vec()),
            ..LogRecord::default()
        };
        let mut out = Vec::new();
        format_rfc5424(&rec, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"<27>1 2026-11-25T17:12:36.123456Z web_1 nginx - - [origin ip="a\"b\]c\\"] upstream timed out"#
        );
    }
}

//! Reading the shared conformance corpora in `testdata/corpora/syslog/`
//! and comparing a parsed message with a corpus `Msg` object.

#![allow(dead_code)]

use std::collections::BTreeMap;

use killkrill_core::event::Timestamp;
use killkrill_core::syslog::{BOM, SyslogMessage};
use serde_json::Value;

/// The cases of `testdata/corpora/syslog/<name>.json`.
pub fn load(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/../testdata/corpora/syslog/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str::<Vec<Value>>(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// `input`, or the bytes of `input_hex`.
pub fn input(case: &Value) -> Vec<u8> {
    match case["input"].as_str() {
        Some(s) => s.as_bytes().to_vec(),
        None => hex(case["input_hex"].as_str().expect("input or input_hex")),
    }
}

/// The expected message bytes of a `Msg` (message or message_hex).
pub fn message_bytes(exp: &Value) -> Option<Vec<u8>> {
    match (
        exp["message"].as_str(),
        exp.get("message_hex").and_then(Value::as_str),
    ) {
        (Some(s), _) => Some(s.as_bytes().to_vec()),
        (None, Some(h)) => Some(hex(h)),
        (None, None) => None,
    }
}

fn opt_str(v: &Value) -> Option<&str> {
    v.as_str()
}

/// Compares the header fields of `got` with the corpus `Msg` `exp`; with
/// `only_present`, fields that are null in `exp` are not compared (for
/// go-syslog's partial results). Mismatches are appended to `errs`.
pub fn check_header(
    got: &SyslogMessage<'_>,
    exp: &Value,
    only_present: bool,
    ctx: &str,
    errs: &mut Vec<String>,
) {
    let mut cmp = |field: &str, got: Value| {
        let want = &exp[field];
        if only_present && want.is_null() {
            return;
        }
        if got != *want {
            errs.push(format!("{ctx}: {field}: got {got}, want {want}"));
        }
    };
    cmp("priority", got.priority().into());
    cmp("facility", got.facility.map(|f| f.code()).into());
    cmp("severity", got.severity.map(|s| s.code()).into());
    cmp("version", got.version.into());
    cmp("hostname", got.hostname.into());
    cmp("appname", got.appname.into());
    cmp("procid", got.procid.into());
    cmp("msgid", got.msgid.into());
    let want_ts = opt_str(&exp["timestamp"]);
    if !(only_present && want_ts.is_none()) {
        let want = want_ts.map(|t| Timestamp::parse_rfc3339(t).expect("corpus timestamp"));
        if got.timestamp != want {
            errs.push(format!(
                "{ctx}: timestamp: got {:?}, want {want_ts:?}",
                got.timestamp.map(|t| t.to_rfc3339())
            ));
        }
    }
}

/// Our structured data as `{SD-ID: {name: value}}`.
pub fn sd_map(got: &SyslogMessage<'_>) -> Option<BTreeMap<String, BTreeMap<String, String>>> {
    if got.structured_data.is_empty() {
        return None;
    }
    Some(
        got.structured_data
            .elements()
            .map(|e| {
                (
                    e.id().to_owned(),
                    e.params()
                        .map(|p| (p.name().to_owned(), p.value().into_owned()))
                        .collect(),
                )
            })
            .collect(),
    )
}

/// The corpus `structured_data` object as the same map.
pub fn sd_map_expected(exp: &Value) -> Option<BTreeMap<String, BTreeMap<String, String>>> {
    let obj = exp["structured_data"].as_object()?;
    Some(
        obj.iter()
            .map(|(id, params)| {
                let params = params
                    .as_object()
                    .expect("params object")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
                    .collect();
                (id.clone(), params)
            })
            .collect(),
    )
}

/// Compares the whole message: header, structured data and MSG. The
/// corpus keeps a leading BOM in the message (go-syslog does); we remove it
/// and set `bom`, so the expected message is compared without it.
pub fn check_full(got: &SyslogMessage<'_>, exp: &Value, ctx: &str, errs: &mut Vec<String>) {
    check_header(got, exp, false, ctx, errs);
    if sd_map(got) != sd_map_expected(exp) {
        errs.push(format!(
            "{ctx}: structured_data: got {:?}, want {}",
            sd_map(got),
            exp["structured_data"]
        ));
    }
    let want = message_bytes(exp);
    let (want_msg, want_bom) = match &want {
        Some(m) => match m.strip_prefix(BOM) {
            Some(rest) => (Some(rest.to_vec()), true),
            None => (Some(m.clone()), false),
        },
        None => (None, false),
    };
    let want_msg = want_msg.filter(|m| !m.is_empty());
    if got.message.map(<[u8]>::to_vec) != want_msg || got.bom != want_bom {
        errs.push(format!(
            "{ctx}: message: got {:?} (bom {}), want {:?} (bom {want_bom})",
            got.message.map(String::from_utf8_lossy),
            got.bom,
            want_msg.as_deref().map(String::from_utf8_lossy)
        ));
    }
}

/// Fails the test with every collected mismatch.
pub fn finish(what: &str, checked: usize, errs: &[String]) {
    assert!(checked > 0, "{what}: no case checked");
    assert!(
        errs.is_empty(),
        "{what}: {} mismatches:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

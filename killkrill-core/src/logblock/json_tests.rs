//! The block JSON writer against serde's output for the same records.

use proptest::prelude::*;

use super::*;
use crate::event::{EventId, LogRecord, SdElement, Tenant, Timestamp};
use crate::logblock::encode_payload;

/// Text that needs every kind of escape, and multi-byte UTF-8 (2, 3 and 4
/// bytes, including U+2028 which serde does not escape), in runs long
/// enough for the word-at-a-time scan.
const TEXT: &str = "[a-z \\x00-\\x1f\"\\\\/\\x7féß€\u{2028}😀]{0,40}";

fn arb_opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof!["web[0-9]{2}", TEXT])
}

fn arb_field() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        Just(FieldValue::Null),
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i64>().prop_map(FieldValue::Int),
        Just(FieldValue::Int(i64::MIN)),
        Just(FieldValue::Int(0)),
        any::<f64>().prop_map(FieldValue::Float),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(1e21),
            Just(-0.0),
            Just(0.1),
        ]
        .prop_map(FieldValue::Float),
        TEXT.prop_map(FieldValue::Str),
    ]
}

fn arb_message() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop_oneof![
        TEXT.prop_map(String::into_bytes),
        // Invalid UTF-8 too: message_base64.
        prop::collection::vec(any::<u8>(), 0..60),
    ])
}

prop_compose! {
    fn arb_record()(
        ts in any::<i64>(),
        id in any::<u128>(),
        sev in prop::option::of(0u8..8),
        fac in prop::option::of(0u8..24),
        host in arb_opt_text(), app in arb_opt_text(), procid in arb_opt_text(),
        msgid in arb_opt_text(), source in arb_opt_text(),
        // Few parameter names, so repeated names (arrays) are common.
        sd in prop::collection::vec(
            (prop_oneof!["[a-z@0-9]{1,5}", TEXT],
             prop::collection::vec((prop_oneof!["[a-c]", TEXT], TEXT), 0..5)),
            0..3),
        message in arb_message(),
        attributes in prop::collection::vec((prop_oneof!["[a-c.]{1,3}", TEXT], arb_field()), 0..5),
        parse_error in prop::option::of(TEXT),
    ) -> LogRecord {
        LogRecord {
            id: Some(EventId::from_u128(id)),
            tenant: Some(Tenant::new("team-a").unwrap()),
            timestamp: Timestamp::from_nanos(ts),
            severity: sev.and_then(Severity::from_code),
            facility: fac.and_then(Facility::from_code),
            host, app, procid, msgid,
            structured_data: sd.into_iter().map(|(id, params)| SdElement { id, params }).collect(),
            message, source, attributes, parse_error,
        }
    }
}

/// Encodes `records` into one block, decodes it, and requires the writer's
/// bytes to equal serde's for both the decoded and the original records.
fn check(records: &[LogRecord]) -> Result<(), TestCaseError> {
    let payload = encode_payload(records, 1).unwrap();
    let block = DecodedBlock::decode(&Tenant::new("team-a").unwrap(), &payload).unwrap();
    prop_assert_eq!(block.len(), records.len());
    let mut out = Vec::new();
    // Twice: the second pass writes from what the first learnt of which
    // messages are plain (copied as they are).
    for _ in 0..2 {
        for (i, original) in records.iter().enumerate() {
            out.clear();
            block.write_json(i, &mut out).unwrap();
            let ours = String::from_utf8(out.clone()).expect("UTF-8");
            let serde = serde_json::to_string(&block.record(i).unwrap()).unwrap();
            prop_assert_eq!(&ours, &serde);
            prop_assert_eq!(&ours, &original.to_json());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn writer_matches_serde(records in prop::collection::vec(arb_record(), 1..12)) {
        check(&records)?;
    }

    #[test]
    fn strings_escape_as_serde_does(s in TEXT) {
        let mut out = Vec::new();
        write_json_str(&mut out, &s);
        prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap());
    }
}

#[test]
fn every_byte_in_every_word_position_escapes_as_serde_does() {
    for b in 0u8..0x80 {
        for pos in 0..17 {
            let mut s = "x".repeat(17);
            s.replace_range(pos..=pos, &char::from(b).to_string());
            let mut out = Vec::new();
            write_json_str(&mut out, &s);
            let serde = serde_json::to_string(&s).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde,
                "byte {b:#x} at {pos}"
            );
            // Plain (copied as is) exactly when serde leaves it unescaped.
            let unescaped = serde == format!("\"{s}\"");
            assert_eq!(
                !needs_escape(s.as_bytes()),
                unescaped,
                "byte {b:#x} at {pos}"
            );
        }
    }
}

#[test]
fn plain_is_exactly_what_serde_leaves_unescaped() {
    // ASCII bytes at every word position: checked with the escaping, in
    // `every_byte_in_every_word_position_escapes_as_serde_does`.
    // Multi-byte UTF-8 (U+2028 included) is plain; invalid UTF-8 is not.
    let text = "é€\u{2028}😀 plain";
    let bad = b"caf\xe9".as_slice();
    let block = {
        let records: Vec<LogRecord> = [Some(text.as_bytes().to_vec()), Some(bad.to_vec()), None]
            .into_iter()
            .map(|message| LogRecord {
                id: Some(EventId::from_u128(1)),
                message,
                ..LogRecord::default()
            })
            .collect();
        let payload = encode_payload(&records, 1).unwrap();
        DecodedBlock::decode(&Tenant::default(), &payload).unwrap()
    };
    assert!(block.plain.is_plain(3, 0, text.as_bytes()));
    assert!(!block.plain.is_plain(3, 1, bad));
}

#[test]
fn a_hand_written_record_with_every_field() {
    let r = LogRecord {
        id: Some(EventId::from_parts(1_764_090_756_000, 42)),
        tenant: Some(Tenant::new("team-a").unwrap()),
        timestamp: Timestamp::parse_rfc3339("2026-11-25T17:12:36.5Z").unwrap(),
        severity: Some(Severity::Error),
        facility: Some(Facility::Daemon),
        host: Some("web\"1\"".into()),
        app: Some("ngïnx".into()),
        procid: Some("812".into()),
        msgid: None,
        structured_data: vec![
            SdElement {
                id: "origin".into(),
                params: vec![
                    ("ip".into(), "10.0.0.1".into()),
                    ("software".into(), "x\ty".into()),
                    ("ip".into(), "10.0.0.2".into()),
                ],
            },
            SdElement {
                id: "empty@1".into(),
                params: vec![],
            },
        ],
        message: Some("line one\nline \u{1}two \\ 😀".as_bytes().to_vec()),
        source: Some("syslog-tcp".into()),
        attributes: vec![
            ("z".into(), FieldValue::Int(-17)),
            ("f".into(), FieldValue::Float(2.5)),
            ("n".into(), FieldValue::Float(f64::NAN)),
            ("b".into(), FieldValue::Bool(true)),
            ("u".into(), FieldValue::Null),
            ("a.b".into(), FieldValue::Str("c\u{7f}".into())),
        ],
        parse_error: Some("column 3: expected '>'".into()),
    };
    let mut bad = r.clone();
    bad.message = Some(vec![b'a', 0xff, 0xfe, b'"']);
    bad.structured_data.clear();
    bad.attributes.clear();
    bad.parse_error = None;
    bad.source = None;
    let empty = LogRecord {
        id: Some(EventId::from_u128(1)),
        tenant: Some(Tenant::new("team-a").unwrap()),
        timestamp: Timestamp::from_nanos(-1),
        ..LogRecord::default()
    };
    check(&[r, bad, empty]).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A page's rows from several blocks, in any order and more than one
    /// read-ahead's worth: the same bytes as each row's `write_json`, comma
    /// separated.
    #[test]
    fn rows_from_several_blocks_match_one_by_one(
        blocks in prop::collection::vec(prop::collection::vec(arb_record(), 1..6), 1..5),
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..40),
    ) {
        let tenant = Tenant::new("team-a").unwrap();
        let decoded: Vec<DecodedBlock> = blocks
            .iter()
            .map(|b| DecodedBlock::decode(&tenant, &encode_payload(b, 1).unwrap()).unwrap())
            .collect();
        let rows: Vec<(&DecodedBlock, usize)> = picks
            .iter()
            .map(|(b, i)| {
                let block = &decoded[b.index(decoded.len())];
                (block, i.index(block.len()))
            })
            .collect();
        let mut want = Vec::new();
        for (k, (block, i)) in rows.iter().enumerate() {
            if k > 0 {
                want.push(b',');
            }
            block.write_json(*i, &mut want).unwrap();
        }
        let mut got = Vec::new();
        write_json_rows(&rows, |&(b, i)| (b, i), &mut got).unwrap();
        prop_assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
    }
}

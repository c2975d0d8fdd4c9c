//! Round-trip and summary tests for blocks.

use proptest::prelude::*;

use super::*;
use crate::event::{
    EventId, Facility, FieldValue, LogRecord, SdElement, Severity, Tenant, Timestamp,
};

fn tenant() -> Tenant {
    Tenant::new("t1").unwrap()
}

fn arb_opt_str() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof!["[a-c]{1,3}", ".{0,8}"])
}

fn arb_field() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        Just(FieldValue::Null),
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i64>().prop_map(FieldValue::Int),
        any::<f64>().prop_map(FieldValue::Float),
        ".{0,6}".prop_map(FieldValue::Str),
    ]
}

prop_compose! {
    fn arb_record()(
        ts in any::<i64>(),
        id in any::<u128>(),
        sev in prop::option::of(0u8..8),
        fac in prop::option::of(0u8..24),
        host in arb_opt_str(), app in arb_opt_str(), procid in arb_opt_str(),
        msgid in arb_opt_str(), source in arb_opt_str(),
        sd in prop::collection::vec(("[a-z@0-9]{1,5}", prop::collection::vec(("[a-c]{1,2}", ".{0,5}"), 0..4)), 0..3),
        message in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        attributes in prop::collection::vec(("[a-c.]{1,3}", arb_field()), 0..4),
        parse_error in prop::option::of(".{0,10}"),
    ) -> LogRecord {
        LogRecord {
            id: Some(EventId::from_u128(id)),
            tenant: Some(tenant()),
            timestamp: Timestamp::from_nanos(ts),
            severity: sev.and_then(Severity::from_code),
            facility: fac.and_then(Facility::from_code),
            host, app, procid, msgid,
            structured_data: sd.into_iter().map(|(id, params)| SdElement { id, params }).collect(),
            message, source, attributes, parse_error,
        }
    }
}

/// Bitwise comparison (NaN == NaN) so float attributes compare exactly.
fn same(a: &LogRecord, b: &LogRecord) -> bool {
    let fa = |r: &LogRecord| {
        r.attributes
            .iter()
            .map(|(k, v)| match v {
                FieldValue::Float(f) => (k.clone(), FieldValue::Int(f.to_bits() as i64), 1),
                other => (k.clone(), other.clone(), 0),
            })
            .collect::<Vec<_>>()
    };
    let strip = |r: &LogRecord| LogRecord {
        attributes: Vec::new(),
        ..r.clone()
    };
    strip(a) == strip(b) && fa(a) == fa(b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_field_round_trips(mut records in prop::collection::vec(arb_record(), 0..40), level in 1i32..4) {
        records.sort_by_key(|r| (r.timestamp, r.id));
        let payload = encode_payload(&records, level).unwrap();
        let back = DecodedBlock::decode(&tenant(), &payload).unwrap().records().unwrap();
        prop_assert_eq!(back.len(), records.len());
        for (a, b) in records.iter().zip(&back) {
            prop_assert!(same(a, b), "{:?}\n!=\n{:?}", a, b);
        }
    }

    #[test]
    fn severity_lists_hold_exactly_the_records_within_the_bound(
        sevs in prop::collection::vec(prop::option::of(0u8..8), 1..200),
    ) {
        let records: Vec<LogRecord> = sevs
            .iter()
            .enumerate()
            .map(|(i, &s)| rec(i as i64, i as u128 + 1, s.and_then(Severity::from_code), "h", "m"))
            .collect();
        let block = DecodedBlock::from_frame(tenant(), encode::encode_frame(&records)).unwrap();
        for m in 0u8..=8 {
            let want: Vec<u32> = sevs
                .iter()
                .enumerate()
                .filter(|(_, s)| s.is_some_and(|s| s <= m))
                .map(|(i, _)| i as u32)
                .collect();
            match block.severity_at_most(m) {
                Some(list) => {
                    prop_assert!(m < 8);
                    prop_assert!(want.len() * SEVERITY_LIST_SHARE <= sevs.len());
                    prop_assert_eq!(list, &want[..]);
                }
                None => prop_assert!(m == 8 || want.len() * SEVERITY_LIST_SHARE > sevs.len()),
            }
        }
    }

    #[test]
    fn corrupt_payloads_are_errors_not_panics(records in prop::collection::vec(arb_record(), 1..10), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let frame = encode::encode_frame(&records);
        let mut bad = frame.clone();
        for (at, x) in flips {
            let i = at % bad.len();
            bad[i] ^= x | 1;
        }
        // Either an error or some records; never a panic.
        let _outcome = DecodedBlock::from_frame(tenant(), bad).map(|b| b.records());
        let truncated = frame[..frame.len() / 2].to_vec();
        prop_assert!(DecodedBlock::from_frame(tenant(), truncated).is_err());
    }
}

fn rec(ts: i64, id: u128, sev: Option<Severity>, host: &str, msg: &str) -> LogRecord {
    LogRecord {
        id: Some(EventId::from_u128(id)),
        tenant: Some(tenant()),
        timestamp: Timestamp::from_nanos(ts),
        severity: sev,
        host: Some(host.into()),
        message: Some(msg.as_bytes().to_vec()),
        attributes: vec![("user".into(), FieldValue::Int(42))],
        structured_data: vec![SdElement {
            id: "origin".into(),
            params: vec![("ip".into(), "10.0.0.1".into())],
        }],
        ..LogRecord::default()
    }
}

#[test]
fn batches_are_cut_sorted_deduplicated_and_summarised() {
    let opts = BlockOptions {
        max_records: 2,
        threads: 2,
        ..BlockOptions::default()
    };
    let records = vec![
        rec(30, 3, Some(Severity::Error), "b", "Disk FULL"),
        rec(10, 1, None, "a", "hello world"),
        rec(20, 2, Some(Severity::Informational), "a", "x"),
        rec(10, 1, None, "a", "hello world"),
    ];
    let blocks = build_blocks(records.clone(), &opts).unwrap();
    assert_eq!(blocks.len(), 2);
    let s0 = &blocks[0].summary;
    assert_eq!(
        (s0.min_ts.as_nanos(), s0.max_ts.as_nanos(), s0.count),
        (10, 20, 2)
    );
    assert_eq!(s0.severity_counts[NO_SEVERITY], 1);
    assert!(s0.hosts.all_equal("a"));
    let s1 = &blocks[1].summary;
    assert_eq!(s1.count_at_or_above(Severity::Error), 1);
    let tok = s1.tokens.as_ref().unwrap();
    assert!(tok.may_contain(token_hash(b"disk")) && tok.may_contain(token_hash(b"full")));
    assert!(tok.may_contain(token_hash(b"10")), "field value tokens");
    assert!(tok.may_contain(field_hash("origin.ip", "10.0.0.1")));
    assert!(tok.may_contain(field_hash("user", "42")));
    assert!(!tok.may_contain(token_hash(b"hello")));
    // Same batch, any order: same blocks.
    let mut shuffled = records.clone();
    shuffled.reverse();
    let again = build_blocks(shuffled, &opts).unwrap();
    let ids = |b: &[EncodedBlock]| b.iter().map(|b| b.summary.id).collect::<Vec<_>>();
    assert_eq!(ids(&again), ids(&blocks));
    let mut no_id = records;
    no_id[2].id = None;
    assert_eq!(
        build_blocks(no_id, &opts).unwrap_err(),
        BlockError::InvalidRecord {
            index: 2,
            reason: "has no id"
        }
    );
}

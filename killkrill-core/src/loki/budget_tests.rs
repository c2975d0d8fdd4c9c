//! Small pushes that decode into huge ones, and label sets built to make checks
//! quadratic: refused before the copies are made, with an error naming the limit.

use killkrill_proto::logproto as pb;
use prost::Message;

use super::*;

/// One stream `{big="<value_len bytes>"}` with `entries` empty entries at time 0.
fn proto_fan_out(value_len: usize, entries: usize) -> Vec<u8> {
    let e = pb::EntryAdapter {
        timestamp: Some(prost_types::Timestamp {
            seconds: 0,
            nanos: 0,
        }),
        ..Default::default()
    };
    let req = pb::PushRequest {
        streams: vec![pb::StreamAdapter {
            labels: format!("{{big=\"{}\"}}", "v".repeat(value_len)),
            entries: vec![e; entries],
            hash: 0,
        }],
        format: String::new(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

fn json_fan_out(value_len: usize, entries: usize) -> Vec<u8> {
    let mut s = format!(
        r#"{{"streams":[{{"stream":{{"big":"{}"}},"values":["#,
        "v".repeat(value_len)
    );
    for i in 0..entries {
        s.push_str(if i == 0 {
            r#"["0",""]"#
        } else {
            r#",["0",""]"#
        });
    }
    s.push_str("]}]}");
    s.into_bytes()
}

#[test]
fn protobuf_one_long_label_times_a_million_entries_is_refused() {
    let body = proto_fan_out(1 << 20, 1_000_000);
    assert!(body.len() < 400_000, "{}", body.len());
    let e = decode(&body, LokiEncoding::Protobuf, &Limits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "stream 0: label \"big\": value is 1048576 bytes, more than the limit of 8192"
    );
    let lifted = Limits {
        max_label_value_bytes: 2 << 20,
        ..Limits::default()
    };
    let e = decode(&body, LokiEncoding::Protobuf, &lifted).unwrap_err();
    assert_eq!(
        e,
        LokiError::TooLargeDecoded {
            stream: 0,
            max: 256 << 20
        }
    );
    assert!(e.to_string().contains("268435456 bytes of memory"), "{e}");
}

#[test]
fn json_a_long_label_times_many_entries_is_refused() {
    // 8 KiB (the label limit) × 100,000 entries: ~800 MB from a 900 KB body.
    let body = json_fan_out(8 << 10, 100_000);
    let e = decode(&body, LokiEncoding::Json, &Limits::default()).unwrap_err();
    assert_eq!(
        e,
        LokiError::TooLargeDecoded {
            stream: 0,
            max: 256 << 20
        }
    );
    // The same stream with a few entries is fine.
    let body = json_fan_out(8 << 10, 10);
    assert_eq!(
        decode(&body, LokiEncoding::Json, &Limits::default())
            .unwrap()
            .len(),
        10
    );
}

#[test]
fn the_budget_is_exact_at_its_edge() {
    // {job="api"}, app from `job`, two entries "ab" and "c":
    // 2 × (64 + 3 (app) + 56 + 6) + 3 = 261.
    let body = br#"{"streams":[{"stream":{"job":"api"},"values":[["1","ab"],["2","c"]]}]}"#;
    let at = |max_output_bytes| {
        decode(
            body,
            LokiEncoding::Json,
            &Limits {
                max_output_bytes,
                ..Limits::default()
            },
        )
    };
    assert_eq!(at(261).unwrap().len(), 2);
    assert!(matches!(
        at(260).unwrap_err(),
        LokiError::TooLargeDecoded {
            stream: 0,
            max: 260
        }
    ));
}

#[test]
fn long_label_names_are_refused_and_cut_in_the_message() {
    let name = "n".repeat(2000);
    let body = format!(r#"{{"streams":[{{"stream":{{"{name}":"v"}},"values":[]}}]}}"#);
    let e = decode(body.as_bytes(), LokiEncoding::Json, &Limits::default())
        .unwrap_err()
        .to_string();
    let want = format!(
        "streams[0]: stream: label \"{}\"…: name is 2000 bytes, more than the limit of 1024",
        "n".repeat(64)
    );
    assert!(e.contains(&want), "{e}");
}

#[test]
fn huge_label_sets_are_checked_in_linear_time() {
    // 200,000 distinct labels: a scan per label for duplicates (as before) is
    // 2·10^10 comparisons; the count limit answers after one pass.
    let n = 200_000;
    let mut json = String::from(r#"{"streams":[{"stream":{"#);
    let mut text = String::from("{");
    for i in 0..n {
        let sep = if i == 0 { "" } else { "," };
        json.push_str(&format!(r#"{sep}"l{i}":"v""#));
        text.push_str(&format!(r#"{sep}l{i}="v""#));
    }
    json.push_str(r#"},"values":[]}]}"#);
    text.push('}');
    let e = decode(json.as_bytes(), LokiEncoding::Json, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("stream: 200000 labels, more than the limit of 64"),
        "{e}"
    );
    let labels = parse_labels(&text).unwrap();
    assert_eq!(labels.len(), n);
    // Duplicates are still found, late in a large set too.
    let dup = format!("{},l7=\"x\"}}", &text[..text.len() - 1]);
    let e = parse_labels(&dup).unwrap_err();
    assert!(e.ends_with("duplicate label name \"l7\""), "{e}");
    let meta: String = (0..40).map(|i| format!(r#""k{i}":"v","#)).collect();
    let body = format!(
        r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[["1","x",{{{meta}"k3":"again"}}]]}}]}}"#
    );
    let e = decode(body.as_bytes(), LokiEncoding::Json, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("duplicate name \"k3\""), "{e}");
}

//! Fuzzes the JSON logs parser: any bytes, in both modes, with the default
//! limits and with small ones (so the limit paths are reached), checking
//! the invariants the API promises rather than only "no panic":
//!
//! - lenient mode fails only for body-level limits (size, record count);
//! - strict success means lenient gives the same records and no errors;
//! - a strict record error means lenient reports at least one error;
//! - the output is untouched when a body fails, and `records` counts it;
//! - an NDJSON body parsed whole and line by line gives the same records.
//!
//! ```text
//! cd fuzz && CARGO_TARGET_DIR=/work/target-fuzz cargo fuzz run -s none json_logs \
//!     -- -runs=1000000 -dict=json_logs.dict
//! ```

#![no_main]

use killkrill_core::event::{LogRecord, Timestamp};
use killkrill_core::json_logs::{
    JsonLogLimits, JsonLogParser, Mode, Problem, Shape, detect_shape,
};
use libfuzzer_sys::fuzz_target;

const SMALL: JsonLogLimits = JsonLogLimits {
    max_body_bytes: 4096,
    max_records: 16,
    max_fields: 8,
    max_depth: 4,
    max_string_bytes: 16,
    max_line_bytes: 96,
};

const T: Timestamp = Timestamp::from_nanos(1);

fn body_level(p: &Problem) -> bool {
    matches!(
        p,
        Problem::TooManyRecords { .. } | Problem::BodyTooLarge { .. }
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let limits = if selector & 1 == 0 {
        JsonLogLimits::DEFAULT
    } else {
        SMALL
    };
    let strict = JsonLogParser::new(limits, Mode::Strict);
    let lenient = JsonLogParser::new(limits, Mode::Lenient);

    let mut s_out = vec![LogRecord::default()];
    let s = strict.parse_body(body, T, &mut s_out);
    let mut l_out = Vec::new();
    let l = lenient.parse_body(body, T, &mut l_out);

    match &s {
        Ok(report) => assert_eq!(report.records + 1, s_out.len()),
        Err(e) => {
            assert_eq!(s_out.len(), 1, "a failed body leaves the output alone");
            let _ = e.to_string();
        }
    }
    match (&s, &l) {
        (Ok(sr), Ok(lr)) => {
            assert_eq!(&s_out[1..], &l_out[..]);
            assert!(lr.errors.is_empty() && sr.errors.is_empty());
        }
        (Ok(_), Err(e)) => panic!("lenient failed where strict did not: {e}"),
        (Err(se), Ok(lr)) => {
            assert!(!body_level(&se.problem), "{se}");
            assert!(!lr.errors.is_empty(), "strict failed with {se}");
        }
        (Err(_), Err(le)) => assert!(body_level(&le.problem), "{le}"),
    }
    let Ok(report) = l else { return };
    assert_eq!(report.records, l_out.len());
    assert!(l_out.len() <= limits.max_records);
    for e in &report.errors {
        let _ = e.to_string();
    }
    for r in &l_out {
        if r.parse_error.is_none() {
            assert!(r.attributes.len() <= limits.max_fields);
            for (k, v) in &r.attributes {
                assert!(k.len() <= limits.max_string_bytes);
                // (An integer above i64::MAX is kept as its digits: at most 20.)
                if let killkrill_core::event::FieldValue::Str(s) = v {
                    assert!(s.len() <= limits.max_string_bytes.max(20));
                }
            }
        }
        let _ = r.to_json();
    }

    // NDJSON: whole body and line by line agree.
    if detect_shape(body) == Shape::Ndjson {
        let mut lp = lenient.line_parser();
        let mut by_line = Vec::new();
        let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            match lp.parse_line(line, i as u64 + 1, T) {
                Ok(Some(p)) => by_line.push(p.record),
                Ok(None) => {}
                Err(e) => panic!("lenient line parser failed: {e}"),
            }
        }
        assert_eq!(by_line, l_out);
    }
});

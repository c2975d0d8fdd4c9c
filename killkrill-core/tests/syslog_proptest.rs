//! Property tests: RFC 5424 format → parse round trip, no panics on
//! arbitrary bytes, and framing independent of how the stream is chunked.

use bytes::BytesMut;
use killkrill_core::event::{Facility, LogRecord, SdElement, Severity, Timestamp};
use killkrill_core::framing::{Frame, FramingConfig, FramingMode, SyslogFramer};
use killkrill_core::syslog::{BOM, Format, ParseOptions, SyslogParser, format_rfc5424};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

fn header_field(max: usize) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(
        proptest::string::string_regex(&format!("[!-~]{{1,{max}}}")).expect("regex"),
    )
    .prop_filter("'-' reads back as absent", |v| v.as_deref() != Some("-"))
}

fn sd_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r"[!#-<>-\\^-~]{1,32}").expect("regex")
}

fn structured_data() -> impl Strategy<Value = Vec<SdElement>> {
    proptest::collection::vec(
        (
            sd_name(),
            proptest::collection::vec((sd_name(), any::<String>()), 0..4),
        ),
        0..4,
    )
    .prop_map(|els| {
        let mut seen = std::collections::HashSet::new();
        els.into_iter()
            .filter(|(id, _)| seen.insert(id.clone()))
            .map(|(id, params)| SdElement { id, params })
            .collect()
    })
}

prop_compose! {
    fn record()(
        fac in 0u8..24,
        sev in 0u8..8,
        micros in -2_208_988_800_000_000i64..7_258_118_400_000_000,
        host in header_field(255),
        app in header_field(48),
        procid in header_field(128),
        msgid in header_field(32),
        sd in structured_data(),
        message in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..300)
            .prop_filter("a leading BOM reads back as the bom flag", |m| !m.starts_with(BOM))),
    ) -> LogRecord {
        LogRecord {
            timestamp: Timestamp::from_nanos(micros * 1000),
            facility: Facility::from_code(fac),
            severity: Severity::from_code(sev),
            host, app, procid, msgid,
            structured_data: sd,
            message,
            ..LogRecord::default()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn rfc5424_format_then_parse_is_identity(rec in record()) {
        let mut wire = Vec::new();
        format_rfc5424(&rec, &mut wire);
        let p = SyslogParser::new(ParseOptions::default().with_format(Format::Rfc5424));
        let msg = p.parse_strict(&wire).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&wire))))?;
        prop_assert_eq!(msg.version, Some(1));
        prop_assert_eq!(msg.to_record(Timestamp::EPOCH), rec.clone());
        // Auto-detection reads the same message.
        let auto = SyslogParser::default().parse_strict(&wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(auto, msg);
    }

    #[test]
    fn parsers_never_panic_and_lenient_keeps_every_byte(input in proptest::collection::vec(any::<u8>(), 0..400)) {
        for format in [Format::Auto, Format::Rfc5424, Format::Rfc3164] {
            for compliant in [false, true] {
                let p = SyslogParser::new(ParseOptions::default().with_format(format).with_compliant_msg(compliant));
                let strict = p.parse_strict(&input);
                let lenient = p.parse_lenient(&input);
                if lenient.parse_error.is_some() {
                    prop_assert_eq!(lenient.message, (!input.is_empty()).then_some(&input[..]));
                }
                if let Ok(m) = &strict {
                    prop_assert!(m.parse_error.is_none());
                    let _ = m.structured_data.to_elements();
                }
                let _ = lenient.structured_data.to_elements();
                let _ = lenient.key_values().count();
                let _ = lenient.to_record(Timestamp::EPOCH);
            }
        }
    }

    #[test]
    fn syslog_shaped_input_never_panics(
        head in prop::sample::select(vec!["<13>", "<165>1 ", "<1>1 - - - - - ", "1 ", "<189>12: ", "<13>Jan  9 ", "", "<34>2019-02-13T"]),
        tail in "[ -~\\[\\]\"\\\\=:]{0,120}",
    ) {
        let input = format!("{head}{tail}");
        for format in [Format::Auto, Format::Rfc5424, Format::Rfc3164] {
            let p = SyslogParser::new(ParseOptions::default().with_format(format));
            let _ = p.parse_strict(input.as_bytes());
            let m = p.parse_lenient(input.as_bytes());
            let _ = m.structured_data.to_elements();
        }
    }

    #[test]
    fn framer_never_panics_and_accounts_for_every_byte(
        input in proptest::collection::vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(0u8), Just(b' '), Just(b'<'), Just(b'1')], 0..600),
        cuts in proptest::collection::vec(1usize..50, 0..20),
        max in 1usize..64,
        mode in prop::sample::select(vec![FramingMode::Auto, FramingMode::OctetCounting, FramingMode::NonTransparent]),
    ) {
        let mut framer = SyslogFramer::new(FramingConfig { max_frame_len: max, mode });
        let mut buf = BytesMut::new();
        let mut rest = &input[..];
        let mut delivered = 0usize;
        for cut in cuts.iter().copied().chain(std::iter::once(usize::MAX)) {
            let n = cut.min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(f) = framer.decode(&mut buf).expect("no I/O") {
                if let Frame::Message(m) = f { prop_assert!(m.len() <= max); delivered += 1; }
            }
        }
        while let Some(f) = framer.decode_eof(&mut buf).expect("no I/O") {
            if let Frame::Message(m) = f { prop_assert!(m.len() <= max); delivered += 1; }
        }
        prop_assert!(buf.is_empty());
        let stats = framer.stats();
        prop_assert_eq!(stats.bytes, input.len() as u64);
        prop_assert_eq!(stats.messages, delivered as u64);
    }

    #[test]
    fn chunking_does_not_change_the_frames(
        msgs in proptest::collection::vec(
            (0u8..4, proptest::string::string_regex("<[0-9]{1,3}>[^\n\r\u{0}]{0,80}").unwrap()),
            1..30),
        cuts in proptest::collection::vec(1usize..40, 0..40),
    ) {
        let mut stream = Vec::new();
        for (how, m) in &msgs {
            match how {
                0 => { stream.extend_from_slice(format!("{} ", m.len()).as_bytes()); stream.extend_from_slice(m.as_bytes()); }
                1 => { stream.extend_from_slice(m.as_bytes()); stream.push(b'\n'); }
                2 => { stream.extend_from_slice(m.as_bytes()); stream.extend_from_slice(b"\r\n"); }
                _ => { stream.extend_from_slice(m.as_bytes()); stream.push(0); }
            }
        }
        let want: Vec<&[u8]> = msgs.iter().map(|(_, m)| m.as_bytes()).collect();
        let mut framer = SyslogFramer::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut rest = &stream[..];
        for cut in cuts.iter().copied().chain(std::iter::once(usize::MAX)) {
            let n = cut.min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(f) = framer.decode(&mut buf).expect("no I/O") { got.push(f); }
        }
        while let Some(f) = framer.decode_eof(&mut buf).expect("no I/O") { got.push(f); }
        let got: Vec<Vec<u8>> = got.into_iter().map(|f| match f {
            Frame::Message(m) => m.to_vec(),
            Frame::Bad(b) => panic!("bad frame in a valid stream: {b}"),
        }).collect();
        prop_assert_eq!(got, want);
    }
}

//! RFC 5424 parsing of arbitrary bytes: no panic, lenient mode keeps every
//! byte of a frame it could not parse, and both modes agree on the error.
#![no_main]

use killkrill_core::event::Timestamp;
use killkrill_core::syslog::{Format, ParseOptions, SyslogParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for compliant in [false, true] {
        let p = SyslogParser::new(
            ParseOptions::default()
                .with_format(Format::Rfc5424)
                .with_compliant_msg(compliant),
        );
        let lenient = p.parse_lenient(data);
        if let Some(e) = lenient.parse_error {
            assert_eq!(lenient.message, (!data.is_empty()).then_some(data));
            assert!(e.column() <= data.len());
        }
        match p.parse_strict(data) {
            Ok(m) => {
                assert!(m.parse_error.is_none());
                let rec = m.to_record(Timestamp::EPOCH);
                assert_eq!(
                    rec.structured_data.len(),
                    m.structured_data.elements().count()
                );
            }
            Err(e) => {
                assert!(e.column() <= data.len());
                // Lenient mode skips whitespace before PRI; otherwise both
                // modes must report the same error.
                if !data.first().is_some_and(u8::is_ascii_whitespace) {
                    assert_eq!(lenient.parse_error, Some(e));
                }
            }
        }
        let _ = lenient.to_record(Timestamp::EPOCH);
    }
});

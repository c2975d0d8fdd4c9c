//! RFC 3164 (and auto-detected) parsing of arbitrary bytes, through the
//! year inference and a named time zone: no panic, lenient keeps every byte.
#![no_main]

use killkrill_core::event::Timestamp;
use killkrill_core::syslog::{Clock, Format, ParseOptions, SyslogParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Timestamp::from_nanos(1_767_225_600_000_000_000);
    for format in [Format::Rfc3164, Format::Auto] {
        let p = SyslogParser::new(
            ParseOptions::default()
                .with_format(format)
                .with_clock(Clock::Fixed(now))
                .with_time_zone_name("Europe/Paris")
                .expect("zone"),
        );
        let lenient = p.parse_lenient(data);
        if lenient.parse_error.is_some() {
            assert_eq!(lenient.message, (!data.is_empty()).then_some(data));
        }
        let _ = lenient.key_values().count();
        let _ = lenient.to_record(now);
        if let Ok(m) = p.parse_strict(data) {
            let _ = m.to_record(now);
        }
    }
});

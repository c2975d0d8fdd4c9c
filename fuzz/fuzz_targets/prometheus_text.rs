//! Fuzzes the exposition parsers: text 0.0.4 and OpenMetrics 1.0, strict
//! and lenient. Besides "never panics", it checks two properties:
//!
//! - an input strict mode accepts, lenient mode accepts with the same
//!   samples (lenient only ever relaxes);
//! - a strictly valid OpenMetrics exposition, encoded again, parses
//!   strictly to the same families. Inputs with empty label values are
//!   skipped there: the event model drops `l=""` (as Prometheus does),
//!   which can legitimately change OpenMetrics grouping.
#![no_main]

use killkrill_core::prometheus::{
    Format, MetricFamily, ParseOptions, Parser, encode, parse_families,
};
use libfuzzer_sys::fuzz_target;

fn debug_samples(input: &str, options: ParseOptions) -> Result<String, ()> {
    let mut out = String::new();
    for item in Parser::new(input, options) {
        let s = item.map_err(|_| ())?;
        out.push_str(&format!("{:?} {:?}\n", s.to_metric_sample(), s.to_exemplar()));
    }
    Ok(out)
}

/// Families compared through their Debug text, so NaN equals NaN.
fn same(a: &[MetricFamily], b: &[MetricFamily]) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

fuzz_target!(|data: &[u8]| {
    for options in [
        ParseOptions::text(),
        ParseOptions::text().lenient(),
        ParseOptions::openmetrics(),
        ParseOptions::openmetrics().lenient(),
    ] {
        if let Ok(parser) = Parser::from_bytes(data, options) {
            for s in parser.flatten() {
                let n: usize = s.labels.iter().map(|(k, v)| k.len() + v.len()).sum();
                assert!(n <= data.len() * 2);
                let _converted = s.to_metric_sample();
            }
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for strict in [ParseOptions::text(), ParseOptions::openmetrics()] {
        if let Ok(samples) = debug_samples(text, strict) {
            assert_eq!(Ok(samples), debug_samples(text, strict.lenient()), "lenient differs");
        }
    }
    if text.contains("=\"\"") {
        return;
    }
    if let Ok(fams) = parse_families(text, ParseOptions::openmetrics()) {
        let mut out = String::new();
        encode(&fams, Format::OpenMetrics, &mut out).expect("parsed families encode");
        let again = parse_families(&out, ParseOptions::openmetrics())
            .unwrap_or_else(|e| panic!("re-encoded output does not parse: {e}\n{out}"));
        assert!(same(&fams, &again), "round trip differs:\n{out}");
    }
});

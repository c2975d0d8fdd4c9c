//! The shared conformance corpora for the exposition formats:
//! `testdata/corpora/openmetrics/cases.json` (the OpenMetrics test suite,
//! strict OpenMetrics mode) and `testdata/corpora/prometheus/text_cases.json`
//! (prometheus/common's text parser corpus, strict text mode), plus the
//! `alltypes` files Prometheus' own parser tests use.

use killkrill_core::prometheus::{
    ErrorKind, Format, ParseError, ParseOptions, Parser, parse_families,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    input: String,
    should_parse: bool,
}

fn corpus(path: &str) -> Vec<Case> {
    let full = format!("{}/../testdata/corpora/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn data(path: &str) -> String {
    let full = format!("{}/../testdata/corpora/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Parses `input` and returns the errors (empty = parses).
fn errors(input: &str, options: ParseOptions) -> Vec<ParseError> {
    Parser::new(input, options).filter_map(Result::err).collect()
}

/// Cases whose samples parse but hold a time Killkrill cannot store; the
/// document itself is valid and the parser accepts it.
const UNSTORABLE_TIMESTAMPS: &[(&str, &str)] = &[(
    "timestamps",
    "a_total{foo=\"4\"} has 12345678901234567890.1234567890 s, beyond i64 nanoseconds",
)];

#[test]
fn openmetrics_suite_is_classified_exactly() {
    let cases = corpus("openmetrics/cases.json");
    assert_eq!(cases.len(), 211);
    let mut wrong = Vec::new();
    let (mut good, mut bad) = (0, 0);
    for c in &cases {
        let errs = errors(&c.input, ParseOptions::openmetrics());
        if errs.is_empty() != c.should_parse {
            wrong.push(format!("{}: should_parse={} errors={errs:?}", c.name, c.should_parse));
        }
        if c.should_parse {
            good += 1;
            // Every sample of a valid case becomes an event-model sample,
            // except the enumerated out-of-range timestamps.
            let unstorable: Vec<_> = Parser::new(&c.input, ParseOptions::openmetrics())
                .map(|s| s.expect("parsed above"))
                .filter(|s| s.to_metric_sample().is_err() || s.to_exemplar().is_err())
                .map(|s| s.line)
                .collect();
            let listed = UNSTORABLE_TIMESTAMPS.iter().any(|(n, _)| *n == c.name);
            assert_eq!(!unstorable.is_empty(), listed, "{}: {unstorable:?}", c.name);
        } else {
            bad += 1;
        }
    }
    assert!(wrong.is_empty(), "{} misclassified:\n{}", wrong.len(), wrong.join("\n"));
    assert_eq!((good, bad), (44, 167));
}

#[test]
fn text_corpus_is_classified_exactly() {
    let cases = corpus("prometheus/text_cases.json");
    assert_eq!(cases.len(), 26);
    let mut wrong = Vec::new();
    for c in &cases {
        let errs = errors(&c.input, ParseOptions::text());
        if errs.is_empty() != c.should_parse {
            wrong.push(format!("{}: should_parse={} errors={errs:?}", c.name, c.should_parse));
        }
    }
    assert!(wrong.is_empty(), "{} misclassified:\n{}", wrong.len(), wrong.join("\n"));
}

//! The shared conformance corpora for the exposition formats:
//! `testdata/corpora/openmetrics/cases.json` (the OpenMetrics test suite,
//! strict OpenMetrics mode) and `testdata/corpora/prometheus/text_cases.json`
//! (prometheus/common's text parser corpus, strict text mode), plus the
//! `alltypes` files Prometheus' own parser tests use.

use killkrill_core::event::MetricType;
use killkrill_core::prometheus::{ErrorKind, ParseError, ParseOptions, Parser, parse_families};
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
    Parser::new(input, options)
        .filter_map(Result::err)
        .collect()
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
            wrong.push(format!(
                "{}: should_parse={} errors={errs:?}",
                c.name, c.should_parse
            ));
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
    assert!(
        wrong.is_empty(),
        "{} misclassified:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
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
            wrong.push(format!(
                "{}: should_parse={} errors={errs:?}",
                c.name, c.should_parse
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} misclassified:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The samples promtool reports for a file: every line that is neither
/// empty nor a `#` line. Counted here without the parser.
fn expected_samples(text: &str) -> usize {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

/// Parses a whole file, asserting no errors; returns (samples, families).
fn count(text: &str, options: ParseOptions) -> (usize, usize) {
    let mut p = Parser::new(text, options);
    let mut n = 0;
    for s in p.by_ref() {
        let s = s.unwrap_or_else(|e| panic!("{options:?}: {e}"));
        s.to_metric_sample().expect("storable");
        n += 1;
    }
    (n, p.families().len())
}

#[test]
fn alltypes_text_file_parses_with_promtools_counts() {
    let text = data("prometheus/alltypes.237mfs.prom.txt");
    let want = expected_samples(&text);
    assert_eq!(want, 1857);
    assert_eq!(count(&text, ParseOptions::text()), (want, 237));
    assert_eq!(count(&text, ParseOptions::text().lenient()), (want, 237));
    let fams = parse_families(&text, ParseOptions::text()).expect("parses");
    let kinds = |k: MetricType| fams.iter().filter(|f| f.metadata.kind == k).count();
    assert_eq!(
        [
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::Summary
        ]
        .map(kinds),
        [112, 97, 15, 13]
    );
    assert!(
        fams.iter()
            .all(|f| f.metadata.help.is_some() && !f.samples.is_empty())
    );
    let gc = fams
        .iter()
        .find(|f| f.metadata.family == "go_gc_duration_seconds")
        .expect("family");
    let names: Vec<_> = gc.samples.iter().map(|s| s.sample.name.as_str()).collect();
    assert_eq!(
        names[..],
        ["go_gc_duration_seconds"; 5][..]
            .iter()
            .copied()
            .chain(["go_gc_duration_seconds_sum", "go_gc_duration_seconds_count"])
            .collect::<Vec<_>>()[..]
    );
    assert_eq!(gc.samples[2].sample.labels.get("quantile"), Some("0.5"));
    assert_eq!(gc.samples[2].sample.value, 0.000135819);
    assert_eq!(gc.samples[6].sample.value, 190932.0);
    assert!(
        gc.samples
            .iter()
            .all(|s| s.sample.kind == MetricType::Summary)
    );
    let kuma = fams
        .iter()
        .find(|f| f.metadata.family == "prometheus_sd_kuma_fetch_duration_seconds")
        .expect("family");
    assert!(kuma.samples[1].sample.value.is_nan());
}

#[test]
fn alltypes_openmetrics_file_parses_leniently_and_fails_strict_rules() {
    let text = data("prometheus/alltypes.5mfs.om.txt");
    let want = expected_samples(&text);
    assert_eq!(want, 53);
    assert_eq!(
        count(&text, ParseOptions::openmetrics().lenient()),
        (want, 5)
    );
    // The file is what Prometheus' client writes, but its histogram has
    // negative buckets together with a (negative) `_sum`, which OpenMetrics
    // 1.0 forbids: strict mode says so, at that line.
    let errs = errors(&text, ParseOptions::openmetrics());
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].line, 33);
    assert_eq!(
        errs[0].to_string(),
        "line 33: `_sum` values cannot be negative"
    );
    // Exemplars stay with their bucket.
    let fams = parse_families(&text, ParseOptions::openmetrics().lenient()).expect("parses");
    let h = &fams[2];
    assert_eq!(
        (h.metadata.family.as_str(), h.metadata.kind),
        ("rpc_durations_histogram_seconds", MetricType::Histogram)
    );
    let with: Vec<_> = h.samples.iter().filter(|s| s.exemplar.is_some()).collect();
    assert_eq!(with.len(), 6);
    let e = with[0].exemplar.as_ref().expect("exemplar");
    assert_eq!(
        with[0].sample.labels.get("le"),
        Some("-0.0002899999999999998")
    );
    assert_eq!(e.labels.get("dummyID"), Some("17783"));
    assert_eq!(e.value, -0.0003825067330956884);
    assert_eq!(
        e.timestamp.map(|t| t.as_nanos()),
        Some(1_726_839_814_223_908_200)
    );
    assert_eq!(
        fams[0].samples[0].sample.labels.len(),
        0,
        "empty label values are no labels"
    );
    let created = &fams[1].samples[1].sample;
    assert_eq!(
        (created.name.as_str(), created.kind),
        (
            "promhttp_metric_handler_errors_created",
            MetricType::Counter
        )
    );
}

#[test]
fn one_histogram_openmetrics_file_parses_strictly() {
    let text = data("prometheus/1histogram.om.txt");
    assert!(
        !text.ends_with('\n'),
        "the file ends in `# EOF` without a newline"
    );
    let want = expected_samples(&text);
    assert_eq!(want, 42);
    assert_eq!(count(&text, ParseOptions::openmetrics()), (want, 1));
}

#[test]
fn openmetrics_lenient_mode_accepts_every_valid_case_too() {
    for c in corpus("openmetrics/cases.json")
        .iter()
        .filter(|c| c.should_parse)
    {
        let strict: Vec<_> = Parser::new(&c.input, ParseOptions::openmetrics()).collect();
        let lenient: Vec<_> =
            Parser::new(&c.input, ParseOptions::openmetrics().lenient()).collect();
        // Debug text, so that NaN values compare equal.
        assert_eq!(format!("{strict:?}"), format!("{lenient:?}"), "{}", c.name);
    }
}

#[test]
fn missing_eof_is_reported_after_the_last_line() {
    let errs = errors("a 1\nb 2\n", ParseOptions::openmetrics());
    assert_eq!(
        errs,
        [ParseError {
            line: 3,
            column: None,
            kind: ErrorKind::MissingEof
        }]
    );
}

//! Error messages of the exposition parsers: where (line, column) and what
//! was expected, one case per line. Also what lenient mode lets through.

use killkrill_core::prometheus::{ParseOptions, Parser, parse_families};

/// Builds the options a case runs with.
type Options = fn() -> ParseOptions;

/// (input, options, expected error `Display`): the first error must be this.
const CASES: &[(&str, Options, &str)] = &[
    // Text format 0.0.4.
    (
        "a 1\nb 2",
        ParseOptions::text,
        "line 2, column 3: expected a newline at the end of input",
    ),
    (
        "a{b=\"x\"} y\n",
        ParseOptions::text,
        "line 1, column 9: expected a float value (e.g. `1`, `-2.5e3`, `NaN`, `+Inf`), found `y`",
    ),
    (
        "a 1 2.5\n",
        ParseOptions::text,
        "line 1, column 4: expected an integer timestamp in milliseconds, found `2.5`",
    ),
    (
        "a 1 2 3\n",
        ParseOptions::text,
        "line 1, column 6: expected end of line after the timestamp, found `3`",
    ),
    (
        "a\n",
        ParseOptions::text,
        "line 1, column 1: expected a value, found end of line",
    ),
    (
        "a{\n",
        ParseOptions::text,
        "line 1, column 2: expected a label name, found end of line",
    ),
    (
        "a{b=\"1\",b=\"2\"} 1\n",
        ParseOptions::text,
        "line 1, column 8: duplicate label name `b`",
    ),
    (
        "a{b=\"\\x\"} 1\n",
        ParseOptions::text,
        "line 1, column 5: invalid escape sequence `\\x` (allowed: `\\\\`, `\\\"`, `\\n`)",
    ),
    (
        "a{__name__=\"b\"} 1\n",
        ParseOptions::text,
        "line 1, column 2: label name `__name__` is reserved; the metric name goes before `{`",
    ),
    (
        "\n\n# TYPE a gauge\n# TYPE a counter\n",
        ParseOptions::text,
        "line 4, column 2: second TYPE line for metric family `a`",
    ),
    (
        "a 1\n# TYPE a gauge\n",
        ParseOptions::text,
        "line 2, column 2: TYPE for metric family `a` after its samples; metadata must come first",
    ),
    (
        "# HELP a x\n# HELP a y\n",
        ParseOptions::text,
        "line 2, column 2: second HELP line for metric family `a`",
    ),
    (
        "# HELP a x\\ty\n",
        ParseOptions::text,
        "line 1, column 10: invalid escape sequence `\\t` (allowed: `\\\\`, `\\\"`, `\\n`)",
    ),
    (
        "# TYPE a gauge \n",
        ParseOptions::text,
        "line 1, column 9: unknown metric type `gauge `, expected one of counter, gauge, histogram, summary, untyped, gauge_histogram",
    ),
    (
        "# TYPE a-b gauge\n",
        ParseOptions::text,
        "line 1, column 8: expected a metric name followed by a blank, found `-`",
    ),
    (
        "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
        ParseOptions::text,
        "line 2: expected a float as the value of the `le` label, found `x`",
    ),
    (
        "# TYPE h histogram\nh_bucket 1\n",
        ParseOptions::text,
        "line 2: histogram bucket `h_bucket` without an `le` label",
    ),
    (
        "a-b 1\n",
        ParseOptions::text,
        "line 1, column 1: expected a blank or `{` after the metric name, found `-`",
    ),
    (
        "{a=\"b\"} 1\n",
        ParseOptions::text,
        "line 1, column 0: expected a metric name, found `{`",
    ),
    // OpenMetrics 1.0.
    (
        "a 1\n",
        ParseOptions::openmetrics,
        "line 2: expected `# EOF` as the last line",
    ),
    (
        "a 1\n\n# EOF\n",
        ParseOptions::openmetrics,
        "line 2, column 0: blank line; OpenMetrics does not allow empty lines",
    ),
    (
        "# EOF\na 1\n",
        ParseOptions::openmetrics,
        "line 2, column 0: expected end of input after `# EOF`",
    ),
    (
        "# TYPE a counter\na 1\n# EOF\n",
        ParseOptions::openmetrics,
        "line 2: metric name `a` clashes with an earlier family; a family's lines must be contiguous",
    ),
    (
        "a 1\nb 1\na 2\n# EOF\n",
        ParseOptions::openmetrics,
        "line 3: metric name `a` clashes with an earlier family; a family's lines must be contiguous",
    ),
    (
        "# TYPE a counter\na_total -1\n# EOF\n",
        ParseOptions::openmetrics,
        "line 2: `_total` values cannot be negative",
    ),
    (
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\nh_sum 1\n# EOF\n",
        ParseOptions::openmetrics,
        "line 4: histogram group has no `+Inf` bucket as its last bucket",
    ),
    (
        "# TYPE h histogram\nh_bucket{le=\"+inf\"} 1\n# EOF\n",
        ParseOptions::openmetrics,
        "line 2: histogram bucket without a valid `le` label (a number; infinity written `+Inf`)",
    ),
    (
        "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n# EOF\n",
        ParseOptions::openmetrics,
        "line 3: histogram buckets must be in increasing `le` order",
    ),
    (
        "# TYPE s summary\ns{quantile=\"2\"} 1\n# EOF\n",
        ParseOptions::openmetrics,
        "line 2: summary quantile without a `quantile` label between 0 and 1",
    ),
    (
        "# TYPE a gauge\na 1 # {t=\"1\"} 1\n# EOF\n",
        ParseOptions::openmetrics,
        "line 2: exemplars are only allowed on counter `_total` and histogram `_bucket` samples",
    ),
    (
        "# TYPE a gauge\na 1 2\na 1 1\n# EOF\n",
        ParseOptions::openmetrics,
        "line 3: timestamps go backwards within a series group",
    ),
    (
        "# TYPE a untyped\n# EOF\n",
        ParseOptions::openmetrics,
        "line 1, column 9: unknown metric type `untyped`, expected one of counter, gauge, histogram, gaugehistogram, summary, info, stateset, unknown",
    ),
    (
        "# UNIT a s\n# EOF\n",
        ParseOptions::openmetrics,
        "line 1: unit `s` is not a suffix of metric family `a` (expected a name ending in `_s`)",
    ),
    (
        "# HELP a x\na 1\n# HELP a y\n# EOF\n",
        ParseOptions::openmetrics,
        "line 3, column 2: HELP for metric family `a` after its samples; metadata must come first",
    ),
    (
        "a{a=\"1\"}  1\n# EOF\n",
        ParseOptions::openmetrics,
        "line 1, column 9: expected a number (e.g. `1`, `1.5e3`, `NaN`, `+Inf`), found ' '",
    ),
    (
        "a 1 1e\n# EOF\n",
        ParseOptions::openmetrics,
        "line 1, column 4: expected a timestamp in seconds (e.g. `1.5`) or `#` and an exemplar, found `1e`",
    ),
    (
        "a 1\r\n# EOF\n",
        ParseOptions::openmetrics,
        "line 1, column 2: expected a number (e.g. `1`, `1.5e3`, `NaN`, `+Inf`), found `1\r`",
    ),
];

#[test]
fn errors_name_the_line_and_what_was_expected() {
    for (input, options, want) in CASES {
        let first = Parser::new(input, options()).find_map(Result::err);
        let got = first.map(|e| e.to_string());
        assert_eq!(got.as_deref(), Some(*want), "input {input:?}");
    }
}

#[test]
fn strict_mode_stops_lenient_mode_goes_on() {
    let input = "a 1\nb{ 2\nc 3\nd x\ne 5\n";
    let strict: Vec<_> = Parser::new(input, ParseOptions::text()).collect();
    assert_eq!(strict.len(), 2);
    assert!(strict[0].is_ok() && strict[1].is_err());
    let mut p = Parser::new(input, ParseOptions::text().lenient());
    let lenient: Vec<_> = p
        .by_ref()
        .map(|r| r.map(|s| s.name).map_err(|e| e.line))
        .collect();
    assert_eq!(lenient, [Ok("a"), Err(2), Ok("c"), Err(4), Ok("e")]);
    assert_eq!(p.errors(), 2);
}

#[test]
fn lenient_text_accepts_what_exporters_bend() {
    // CRLF, no final newline, an unknown escape kept as written, a type
    // with trailing blanks and an OpenMetrics type name.
    let input = "# TYPE a gauge  \r\n# TYPE i info\r\na{p=\"C:\\dir\"} 1\r\ni_x 2";
    assert!(Parser::new(input, ParseOptions::text()).any(|r| r.is_err()));
    let fams = parse_families(input, ParseOptions::text().lenient()).expect("lenient parses");
    let a = &fams[0].samples[0].sample;
    assert_eq!((a.labels.get("p"), a.value), (Some("C:\\dir"), 1.0));
    assert_eq!(fams[1].metadata.kind.name(), "info");
    assert_eq!(fams[2].samples[0].sample.value, 2.0);
}

#[test]
fn openmetrics_lenient_skips_value_rules_but_not_syntax() {
    let input = "# TYPE a counter\na_total -1\na_total{x=\"1\"} NaN 1 # {t=\"1\"} 1\n# TYPE b gauge\nb{ 1\nb 2\n# EOF\n";
    let strict: Vec<_> = Parser::new(input, ParseOptions::openmetrics())
        .filter_map(Result::err)
        .map(|e| e.line)
        .collect();
    assert_eq!(strict, [2]);
    let lenient: Vec<_> = Parser::new(input, ParseOptions::openmetrics().lenient())
        .map(|r| r.map(|s| s.value.to_string()).map_err(|e| e.line))
        .collect();
    assert_eq!(
        lenient,
        [Ok("-1".into()), Ok("NaN".into()), Err(5), Ok("2".into())]
    );
}

#[test]
fn unstorable_timestamps_are_errors_when_converting() {
    let input = "a 1 99999999999999\n";
    let s = Parser::new(input, ParseOptions::text())
        .next()
        .expect("a sample")
        .expect("parses");
    assert_eq!(s.timestamp_nanos(), Some(99_999_999_999_999_000_000));
    let e = s.to_metric_sample().expect_err("beyond 2262");
    assert_eq!(
        e.to_string(),
        "line 1: timestamp out of range; Killkrill stores timestamps between 1677-09-21 and 2262-04-11"
    );
}

#[test]
fn invalid_utf8_is_located() {
    let e = Parser::from_bytes(b"a 1\nb{x=\"\xc3\x28\"} 1\n", ParseOptions::text())
        .expect_err("not utf-8");
    assert_eq!(
        e.to_string(),
        "line 2, column 5: invalid UTF-8; the exposition formats are UTF-8 text"
    );
}

//! Every case of `testdata/corpora/syslog/rfc5424.json` (go-syslog's RFC 5424
//! table): valid cases parse with every field equal, in strict and lenient
//! mode; invalid cases are rejected in strict mode with the corpus' error
//! kind and column, and kept raw in lenient mode with the header fields
//! go-syslog had completed.

mod corpus;

use killkrill_core::syslog::{Format, ParseOptions, SyslogParser};

fn parser(compliant: bool) -> SyslogParser {
    SyslogParser::new(
        ParseOptions::default()
            .with_format(Format::Rfc5424)
            .with_compliant_msg(compliant),
    )
}

#[test]
fn rfc5424_corpus() {
    let cases = corpus::load("rfc5424");
    assert_eq!(cases.len(), 205);
    let mut errs = Vec::new();
    let mut checked = 0;
    for case in &cases {
        let id = case["id"].as_str().expect("id");
        let input = corpus::input(case);
        let compliant = case["mode"] == "compliant_msg";
        let p = parser(compliant);
        let lenient = p.parse_lenient(&input);
        if case["valid"] == true {
            match p.parse_strict(&input) {
                Ok(m) => corpus::check_full(&m, &case["expected"], id, &mut errs),
                Err(e) => errs.push(format!("{id}: valid but rejected: {e}")),
            }
            corpus::check_full(
                &lenient,
                &case["expected"],
                &format!("{id} (lenient)"),
                &mut errs,
            );
            if lenient.parse_error.is_some() {
                errs.push(format!("{id}: lenient parse_error on a valid case"));
            }
        } else {
            let want_kind = case["error_kind"].as_str().expect("error_kind");
            let want_col = case["error_column"].as_u64().expect("error_column") as usize;
            match p.parse_strict(&input) {
                Ok(_) => errs.push(format!("{id}: invalid but accepted in strict mode")),
                Err(e) => {
                    if (e.kind().as_str(), e.column()) != (want_kind, want_col) {
                        errs.push(format!(
                            "{id}: error {}@{} ({e}), want {want_kind}@{want_col}",
                            e.kind(),
                            e.column()
                        ));
                    }
                    if lenient.parse_error != Some(e) {
                        errs.push(format!(
                            "{id}: lenient parse_error {:?} != strict {e:?}",
                            lenient.parse_error
                        ));
                    }
                }
            }
            let want_raw = (!input.is_empty()).then_some(&input[..]);
            if lenient.message != want_raw || !lenient.structured_data.is_empty() {
                errs.push(format!("{id}: lenient did not keep the frame raw"));
            }
            if !case["partial"].is_null() {
                corpus::check_header(
                    &lenient,
                    &case["partial"],
                    true,
                    &format!("{id} (partial)"),
                    &mut errs,
                );
            }
            if case.get("valid_without_compliant_msg") == Some(&serde_json::Value::Bool(true))
                && let Err(e) = parser(false).parse_strict(&input)
            {
                errs.push(format!("{id}: must be valid without compliant_msg: {e}"));
            }
        }
        checked += 1;
    }
    corpus::finish("rfc5424.json", checked, &errs);
}

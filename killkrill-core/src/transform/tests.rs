//! Table-driven tests of every transform and every config error.

use serde::Deserialize;

use super::*;
use crate::event::{EventId, FieldValue, LogRecord, Severity, Tenant, Timestamp};
use crate::pipeline::BatchId;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    transforms: Vec<TransformConfig>,
}

fn ctx() -> BuildContext {
    BuildContext {
        parsers: ParserRegistry::with_builtin(),
        host_name: Some("collector-1".into()),
    }
}

fn build(toml_text: &str, ctx: &BuildContext) -> Result<TransformChain, String> {
    let f: File = toml::from_str(&format!("transforms = [{toml_text}]"))
        .map_err(|e| e.message().to_owned())?;
    TransformChain::build("transforms", &f.transforms, ctx).map_err(|e| e.to_string())
}

#[test]
fn config_errors_name_the_key() {
    let no_host = BuildContext {
        host_name: None,
        ..ctx()
    };
    let cases: &[(&str, &str)] = &[
        (
            r#"{ type = "explode" }"#,
            "unknown variant `explode`, expected one of `filter`, `enrich`, `rename`, `drop_fields`, `redact`, `sample`, `parse_field`",
        ),
        (
            r#"{ type = "filter", severity = "err" }"#,
            "unknown field `severity`",
        ),
        (
            r#"{ type = "filter" }"#,
            "transforms[0]: a filter needs at least one of severity_at_least, equals, exists, regex",
        ),
        (
            r#"{ type = "filter", severity_at_least = "loud" }"#,
            r#"transforms[0].severity_at_least: unknown severity "loud""#,
        ),
        (
            r#"{ type = "filter", equals = "x" }"#,
            "transforms[0].field: missing: `equals` needs a `field` to test",
        ),
        (
            r#"{ type = "filter", field = "msg", equals = "x" }"#,
            r#"transforms[0].field: unknown field "msg": expected message, host"#,
        ),
        (
            r#"{ type = "filter", regex = "(" }"#,
            "transforms[0].regex: invalid regex: regex parse error",
        ),
        (
            r#"{ type = "filter", regex = "\\w{1000}{1000}" }"#,
            "transforms[0].regex: invalid regex: Compiled regex exceeds size limit",
        ),
        (
            r#"{ type = "filter", regex = "" }"#,
            "transforms[0].regex: pattern is empty",
        ),
        (
            r#"{ type = "enrich" }"#,
            "transforms[0]: enrich needs `fields` or `host_name`",
        ),
        (
            r#"{ type = "enrich", fields = { severity = "loud" } }"#,
            r#"transforms[0].fields."severity": loud is not a severity name"#,
        ),
        (
            r#"{ type = "enrich", fields = { "attributes.x" = 1 }, host_name = "facility" }"#,
            "transforms[0].host_name: facility cannot hold a host name",
        ),
        (
            r#"{ type = "enrich", fields = { "structured_data.a.b" = "x" } }"#,
            r#"transforms[0].fields."structured_data.a.b": structured data cannot be written"#,
        ),
        (
            r#"{ type = "rename", fields = {} }"#,
            "transforms[0].fields: empty: name at least one field to rename",
        ),
        (
            r#"{ type = "rename", fields = { host = "host" } }"#,
            r#"transforms[0].fields."host": source and target are the same field"#,
        ),
        (
            r#"{ type = "rename", fields = { host = "hostname" } }"#,
            r#"transforms[0].fields."host": unknown field "hostname""#,
        ),
        (
            r#"{ type = "drop_fields", fields = ["procid", "structured_data.a.b"] }"#,
            "transforms[0].fields[1]: structured data parameters cannot be dropped one by one",
        ),
        (
            r#"{ type = "redact" }"#,
            "transforms[0]: redact needs `patterns` or `builtin`",
        ),
        (
            r#"{ type = "redact", builtin = ["ssn"] }"#,
            r#"transforms[0].builtin[0]: unknown pattern "ssn": expected one of credit_card, email, ipv4, bearer_token"#,
        ),
        (
            r#"{ type = "redact", patterns = ["ok", "("] }"#,
            "transforms[0].patterns[1]: invalid regex",
        ),
        (
            r#"{ type = "redact", builtin = ["email"], fields = ["severity"] }"#,
            "transforms[0].fields[0]: severity cannot be redacted",
        ),
        (
            r#"{ type = "sample", rate = 0 }"#,
            "transforms[0].rate: must be at least 1",
        ),
        (
            r#"{ type = "sample", rate = 2, keep_severity_at_least = "bad" }"#,
            r#"transforms[0].keep_severity_at_least: unknown severity "bad""#,
        ),
        (
            r#"{ type = "parse_field", field = "message", parser = "xml" }"#,
            r#"transforms[0].parser: unknown parser "xml": expected one of json, json_log"#,
        ),
        (
            r#"{ type = "parse_field", field = "message", parser = "json", max_bytes = 0 }"#,
            "transforms[0].max_bytes: must be at least 1",
        ),
        (
            r#"{ type = "parse_field", field = "message", parser = "json", on_error = "ignore" }"#,
            "unknown variant `ignore`, expected one of `keep`, `mark`, `drop`",
        ),
    ];
    for (config, want) in cases {
        let err = build(config, &ctx())
            .err()
            .unwrap_or_else(|| panic!("{config} built"));
        assert!(err.starts_with(want), "{config}\n got: {err}\nwant: {want}");
    }
    // The index in the key is the transform's position.
    let err = build(
        r#"{ type = "sample", rate = 2 }, { type = "sample", rate = 0 }"#,
        &ctx(),
    )
    .unwrap_err();
    assert!(err.starts_with("transforms[1].rate"), "{err}");
    let err = build(r#"{ type = "enrich", host_name = "host" }"#, &no_host).unwrap_err();
    assert!(
        err.starts_with("transforms[0].host_name: this machine's host name is unknown"),
        "{err}"
    );
}

fn rec(n: u128, sev: Option<Severity>, msg: &[u8], attrs: &[(&str, FieldValue)]) -> LogRecord {
    LogRecord {
        id: Some(EventId::from_parts(1_764_090_756_000, n)),
        timestamp: Timestamp::from_secs(1_764_090_756),
        severity: sev,
        host: Some("web1".into()),
        message: Some(msg.to_vec()),
        attributes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        ..LogRecord::default()
    }
}

fn run(config: &str, input: Vec<LogRecord>) -> Vec<LogRecord> {
    let chain = build(config, &ctx()).unwrap_or_else(|e| panic!("{config}: {e}"));
    let mut b = Batch::new(BatchId::from_u128(1), Tenant::default(), Timestamp::EPOCH);
    b.logs = input;
    chain.apply(&mut b);
    b.logs
}

use Severity::{Error as Err_, Informational as Info, Warning as Warn};

fn s(v: &str) -> FieldValue {
    FieldValue::Str(v.into())
}

#[test]
fn filter_cases() {
    let input = || {
        vec![
            rec(1, Some(Err_), b"db timeout", &[("env", s("prod"))]),
            rec(
                2,
                Some(Info),
                b"ok",
                &[("env", s("staging")), ("user", s("bob"))],
            ),
            rec(3, Some(Warn), b"time out \xff", &[]),
            rec(4, None, b"no severity", &[("env", s("prod"))]),
        ]
    };
    let ids = |v: Vec<LogRecord>| -> Vec<u128> {
        v.iter().map(|r| r.id.unwrap().as_u128() & 0xFF).collect()
    };
    let cases: &[(&str, &[u128])] = &[
        (
            r#"{ type = "filter", severity_at_least = "warning" }"#,
            &[1, 3],
        ),
        (
            r#"{ type = "filter", severity_at_least = "err", action = "drop" }"#,
            &[2, 3, 4],
        ),
        (
            r#"{ type = "filter", action = "drop", field = "attributes.env", equals = "staging" }"#,
            &[1, 3, 4],
        ),
        (
            r#"{ type = "filter", field = "attributes.user", exists = false }"#,
            &[1, 3, 4],
        ),
        (
            r#"{ type = "filter", field = "attributes.env", exists = true }"#,
            &[1, 2, 4],
        ),
        (r#"{ type = "filter", regex = "time ?out" }"#, &[1, 3]),
        (
            r#"{ type = "filter", regex = "(?-u:\\xff)", action = "drop" }"#,
            &[1, 2, 4],
        ),
        (
            r#"{ type = "filter", field = "severity", equals = "info" }"#,
            &[2],
        ),
        (
            r#"{ type = "filter", severity_at_least = "warning", field = "attributes.env", equals = "prod" }"#,
            &[1],
        ),
    ];
    for (config, want) in cases {
        assert_eq!(ids(run(config, input())), *want, "{config}");
    }
}

#[test]
fn field_transform_cases() {
    type Case = (&'static str, LogRecord, LogRecord);
    let base = || {
        rec(
            1,
            Some(Info),
            b"hello",
            &[
                ("hostname", s("db7")),
                ("lvl", s("warn")),
                ("password", s("hunter2")),
            ],
        )
    };
    let with = |f: &dyn Fn(&mut LogRecord)| {
        let mut r = base();
        f(&mut r);
        r
    };
    let cases: Vec<Case> = vec![
        (
            r#"{ type = "enrich", fields = { "attributes.env" = "prod", app = "billing", host = "ignored" }, host_name = "attributes.collector" }"#,
            base(),
            with(&|r| {
                r.app = Some("billing".into());
                r.attributes.push(("env".into(), s("prod")));
                r.attributes.push(("collector".into(), s("collector-1")));
            }),
        ),
        (
            r#"{ type = "enrich", fields = { host = "forced", "attributes.n" = 3 }, overwrite = true }"#,
            base(),
            with(&|r| {
                r.host = Some("forced".into());
                r.attributes.push(("n".into(), FieldValue::Int(3)));
            }),
        ),
        (
            r#"{ type = "rename", fields = { "attributes.hostname" = "host", "attributes.lvl" = "severity", "app" = "attributes.a" } }"#,
            base(),
            with(&|r| {
                r.host = Some("db7".into());
                r.severity = Some(Warn);
                r.attributes.retain(|(k, _)| k == "password");
            }),
        ),
        (
            r#"{ type = "rename", fields = { "attributes.password" = "severity", message = "attributes.text" } }"#,
            base(),
            with(&|r| {
                // "hunter2" is no severity: it stays where it was.
                r.message = None;
                r.attributes.push(("text".into(), s("hello")));
            }),
        ),
        (
            r#"{ type = "drop_fields", fields = ["attributes.password", "severity", "message", "procid"] }"#,
            base(),
            with(&|r| {
                r.severity = None;
                r.message = None;
                r.attributes.retain(|(k, _)| k != "password");
            }),
        ),
        (
            r#"{ type = "redact", builtin = ["credit_card", "email"], fields = ["message", "attributes.user"] }"#,
            rec(
                1,
                None,
                b"card 4111 1111 1111 1111 from a@b.io \xff",
                &[
                    ("user", s("x@y.org")),
                    ("n", FieldValue::Int(4_111_111_111_111_111)),
                ],
            ),
            rec(
                1,
                None,
                b"card [REDACTED] from [REDACTED] \xff",
                &[
                    ("user", s("[REDACTED]")),
                    ("n", FieldValue::Int(4_111_111_111_111_111)),
                ],
            ),
        ),
        (
            r#"{ type = "redact", patterns = ["token=\\w+"], replacement = "token=***", fields = ["attributes.q"] }"#,
            rec(1, None, b"token=abc", &[("q", s("a=1&token=s3cr3t&b=2"))]),
            rec(1, None, b"token=abc", &[("q", s("a=1&token=***&b=2"))]),
        ),
        (
            r#"{ type = "parse_field", field = "message", parser = "json", prefix = "j.", remove_field = true }"#,
            rec(
                1,
                None,
                br#"{"user":"bob","n":3,"tags":["a"]}"#,
                &[("k", s("v"))],
            ),
            with(&|r| {
                r.severity = None;
                r.message = None;
                r.attributes = vec![
                    ("k".into(), s("v")),
                    ("j.user".into(), s("bob")),
                    ("j.n".into(), FieldValue::Int(3)),
                    ("j.tags".into(), s(r#"["a"]"#)),
                ];
            }),
        ),
        (
            r#"{ type = "parse_field", field = "attributes.payload", parser = "json" }"#,
            rec(1, None, b"m", &[("payload", s(r#"{"a":true}"#))]),
            rec(
                1,
                None,
                b"m",
                &[
                    ("payload", s(r#"{"a":true}"#)),
                    ("a", FieldValue::Bool(true)),
                ],
            ),
        ),
        (
            r#"{ type = "parse_field", field = "message", parser = "json", on_error = "mark" }"#,
            rec(1, None, b"{not json", &[]),
            with(&|r| {
                r.severity = None;
                r.message = Some(b"{not json".to_vec());
                r.attributes.clear();
                r.parse_error =
                    Some("message (json): key must be a string at line 1 column 2".into());
            }),
        ),
        (
            r#"{ type = "parse_field", field = "message", parser = "json", max_bytes = 4, on_error = "mark" }"#,
            rec(1, None, b"{\"a\":1}", &[]),
            with(&|r| {
                r.severity = None;
                r.message = Some(b"{\"a\":1}".to_vec());
                r.attributes.clear();
                r.parse_error =
                    Some("message (json): message is 7 bytes, over the limit of 4".into());
            }),
        ),
    ];
    for (config, input, want) in cases {
        let out = run(config, vec![input]);
        assert_eq!(out, vec![want], "{config}");
    }
    // on_error = "drop" removes the record; "keep" leaves it untouched.
    assert!(
        run(
            r#"{ type = "parse_field", field = "message", parser = "json", on_error = "drop" }"#,
            vec![rec(1, None, b"[", &[])]
        )
        .is_empty()
    );
    let kept = run(
        r#"{ type = "parse_field", field = "message", parser = "json" }"#,
        vec![rec(1, None, b"[", &[])],
    );
    assert_eq!(kept, vec![rec(1, None, b"[", &[])]);
}

#[test]
fn parse_field_merges_header_values_from_a_plugged_in_parser() {
    struct Kv;
    impl FieldParser for Kv {
        fn parse(&self, input: &[u8], out: &mut ParsedFields) -> Result<(), FieldParseError> {
            let text = std::str::from_utf8(input).map_err(|_| FieldParseError::new("not UTF-8"))?;
            for pair in text.split_whitespace() {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    FieldParseError::new(format!("expected key=value, found {pair:?}"))
                })?;
                match k {
                    "level" => out.severity = Severity::from_name(v),
                    "host" => out.host = Some(v.into()),
                    "msg" => out.message = Some(v.as_bytes().to_vec()),
                    _ => out.attributes.push((k.into(), v.into())),
                }
            }
            Ok(())
        }
    }
    let mut c = ctx();
    c.parsers.register("kv", std::sync::Arc::new(Kv));
    let input = || rec(1, None, b"level=err host=db2 msg=boom user=bob", &[]);
    for (header, sev, host, msg) in [
        (
            "fill",
            Some(Err_),
            "web1",
            &b"level=err host=db2 msg=boom user=bob"[..],
        ),
        ("overwrite", Some(Err_), "db2", b"boom"),
        (
            "ignore",
            None,
            "web1",
            b"level=err host=db2 msg=boom user=bob",
        ),
    ] {
        let f: File = toml::from_str(&format!(r#"transforms = [{{ type = "parse_field", field = "message", parser = "kv", header = "{header}" }}]"#)).unwrap();
        let chain = TransformChain::build("t", &f.transforms, &c).unwrap();
        let mut b = Batch::new(BatchId::from_u128(1), Tenant::default(), Timestamp::EPOCH);
        b.logs = vec![input()];
        chain.apply(&mut b);
        let r = &b.logs[0];
        assert_eq!(
            (r.severity, r.host.as_deref(), r.message.as_deref()),
            (sev, Some(host), Some(msg)),
            "{header}"
        );
        assert_eq!(r.attributes, vec![("user".to_owned(), s("bob"))]);
    }
}

#[test]
fn sample_is_deterministic_and_keeps_errors() {
    let input: Vec<LogRecord> = (0..10_000u128)
        .map(|i| rec(i, Some(if i % 10 == 0 { Err_ } else { Info }), b"m", &[]))
        .collect();
    let config = r#"{ type = "sample", rate = 4 }"#;
    let a = run(config, input.clone());
    let b = run(config, input.clone());
    assert_eq!(
        a, b,
        "same input, same choice (redelivery keeps the same records)"
    );
    let errors = a.iter().filter(|r| r.severity == Some(Err_)).count();
    assert_eq!(errors, 1_000, "every error kept");
    let infos = a.len() - errors;
    // 9,000 info records at 1 in 4: 2,250 expected; 5 sigma is about 200.
    assert!((2_050..2_450).contains(&infos), "{infos}");
    let all = run(r#"{ type = "sample", rate = 1 }"#, input.clone());
    assert_eq!(all.len(), 10_000);
    let strict = run(
        r#"{ type = "sample", rate = 1000000, keep_severity_at_least = "emerg" }"#,
        input,
    );
    assert!(strict.len() < 5, "{}", strict.len());
}

#[test]
fn a_chain_applies_in_order_and_leaves_metrics_alone() {
    let chain = build(
        r#"{ type = "parse_field", field = "message", parser = "json" },
           { type = "filter", field = "attributes.level", equals = "error" },
           { type = "drop_fields", fields = ["attributes.level"] }"#,
        &ctx(),
    )
    .unwrap();
    let mut b = Batch::new(BatchId::from_u128(1), Tenant::default(), Timestamp::EPOCH);
    b.logs = vec![
        rec(1, None, br#"{"level":"error","x":1}"#, &[]),
        rec(2, None, br#"{"level":"info"}"#, &[]),
    ];
    b.metrics.push(crate::event::MetricSample {
        name: "up".into(),
        value: 1.0,
        ..Default::default()
    });
    chain.apply(&mut b);
    assert_eq!(b.logs.len(), 1);
    assert_eq!(
        b.logs[0].attributes,
        vec![("x".to_owned(), FieldValue::Int(1))]
    );
    assert_eq!(b.metrics.len(), 1);
}

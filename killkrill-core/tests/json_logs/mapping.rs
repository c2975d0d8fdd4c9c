//! Field mapping: every alias, precedence, flattening, duplicates, and every
//! timestamp form, one table row per case.

use killkrill_core::json_logs::{ALIASES, JsonLogLimits, JsonLogParser, Mode};

use crate::brief::{RECEIVED, brief, one, parse_with, strict};

#[test]
fn every_alias() {
    let cases: &[(&str, &str)] = &[
        // timestamp
        (
            r#"{"timestamp":"2025-11-25T17:12:36Z"}"#,
            "ts=1764090756000000000",
        ),
        (r#"{"ts":1764090756}"#, "ts=1764090756000000000"),
        (r#"{"time":1764090756000}"#, "ts=1764090756000000000"),
        (r#"{"@timestamp":"1764090756"}"#, "ts=1764090756000000000"),
        // severity: names, syslog codes, pino/bunyan, OpenTelemetry
        (r#"{"level":"warn"}"#, "ts=recv sev=warning"),
        (r#"{"level":"Fatal"}"#, "ts=recv sev=crit"),
        (r#"{"level":3}"#, "ts=recv sev=err"),
        (r#"{"level":30}"#, "ts=recv sev=info"),
        (r#"{"level":"50"}"#, "ts=recv sev=err"),
        (r#"{"severity":"ERROR"}"#, "ts=recv sev=err"),
        (r#"{"severity":7}"#, "ts=recv sev=debug"),
        (r#"{"severity_number":9}"#, "ts=recv sev=info"),
        (r#"{"severity_number":21}"#, "ts=recv sev=crit"),
        // message
        (r#"{"message":"m"}"#, "ts=recv msg=m"),
        (r#"{"msg":"m"}"#, "ts=recv msg=m"),
        (r#"{"log":"m\n"}"#, "ts=recv msg=m\n"),
        (r#"{"msg":42}"#, "ts=recv msg=42"),
        // app
        (r#"{"service_name":"a"}"#, "ts=recv app=a"),
        (r#"{"service":"a"}"#, "ts=recv app=a"),
        (r#"{"app":"a"}"#, "ts=recv app=a"),
        (r#"{"source":"a"}"#, "ts=recv app=a"),
        // host
        (r#"{"host":"h"}"#, "ts=recv host=h"),
        (r#"{"hostname":"h"}"#, "ts=recv host=h"),
        // facility, procid, msgid
        (r#"{"facility":"local3"}"#, "ts=recv fac=local3"),
        (r#"{"facility":3}"#, "ts=recv fac=daemon"),
        (r#"{"procid":"812"}"#, "ts=recv procid=812"),
        (r#"{"pid":812}"#, "ts=recv procid=812"),
        (r#"{"msgid":"ID47"}"#, "ts=recv msgid=ID47"),
        // all at once, attributes in between keep their order
        (
            r#"{"a":1,"ts":1,"level":"info","b":2,"msg":"m","app":"x","host":"h","pid":7,"msgid":"i","facility":"user","c":3}"#,
            "ts=1000000000 sev=info fac=user host=h app=x procid=7 msgid=i msg=m a=1 b=2 c=3",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(one(body), *want, "{body}");
    }
}

#[test]
fn alias_table_is_the_documented_one() {
    let flat: Vec<&str> = ALIASES
        .iter()
        .flat_map(|(_, keys)| keys.iter().copied())
        .collect();
    assert_eq!(
        flat,
        [
            "timestamp",
            "ts",
            "time",
            "@timestamp",
            "level",
            "severity",
            "severity_number",
            "message",
            "msg",
            "log",
            "service_name",
            "service",
            "app",
            "source",
            "host",
            "hostname",
            "facility",
            "procid",
            "pid",
            "msgid",
        ]
    );
}

#[test]
fn precedence_and_losers_stay_attributes() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"@timestamp":1,"time":2,"ts":3,"timestamp":4}"#,
            "ts=4000000000 @timestamp=1 time=2 ts=3",
        ),
        (r#"{"ts":"bad","time":5}"#, r#"ts=5000000000 ts="bad""#),
        (
            r#"{"timestamp":null,"ts":5}"#,
            "ts=5000000000 timestamp=null",
        ),
        (
            r#"{"severity":"err","level":"info"}"#,
            r#"ts=recv sev=info severity="err""#,
        ),
        (
            r#"{"level":"loud","severity":"warn"}"#,
            r#"ts=recv sev=warning level="loud""#,
        ),
        (r#"{"level":"loud"}"#, r#"ts=recv level="loud""#),
        (r#"{"level":8}"#, "ts=recv level=8"),
        (r#"{"level":2.5}"#, "ts=recv level=2.5"),
        (
            r#"{"severity_number":"9"}"#,
            r#"ts=recv severity_number="9""#,
        ),
        (
            r#"{"severity_number":17,"severity":"info"}"#,
            "ts=recv sev=info severity_number=17",
        ),
        (
            r#"{"log":"l","msg":"m","message":"M"}"#,
            r#"ts=recv msg=M log="l" msg="m""#,
        ),
        (
            r#"{"source":"s","app":"a","service":"v","service_name":"n"}"#,
            r#"ts=recv app=n source="s" app="a" service="v""#,
        ),
        (
            r#"{"hostname":"b","host":"a"}"#,
            r#"ts=recv host=a hostname="b""#,
        ),
        (r#"{"pid":1,"procid":"p"}"#, "ts=recv procid=p pid=1"),
        (
            r#"{"message":true,"msg":"m"}"#,
            "ts=recv msg=m message=true",
        ),
        (
            r#"{"message":["a"],"msg":"m"}"#,
            r#"ts=recv msg=m message="[\"a\"]""#,
        ),
        (
            r#"{"message":{},"msg":"m"}"#,
            r#"ts=recv msg=m message="{}""#,
        ),
        (r#"{"message":1.5}"#, "ts=recv message=1.5"),
        (r#"{"host":null}"#, "ts=recv host=null"),
        (r#"{"host":{"name":"h"}}"#, r#"ts=recv host.name="h""#),
        (r#"{"facility":99}"#, "ts=recv facility=99"),
        (r#"{"facility":"mars"}"#, r#"ts=recv facility="mars""#),
        (
            r#"{"Level":"info","MSG":"m"}"#,
            r#"ts=recv Level="info" MSG="m""#,
        ),
    ];
    for (body, want) in cases {
        assert_eq!(one(body), *want, "{body}");
    }
}

#[test]
fn flattening_and_value_types() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"http":{"status":500,"req":{"method":"GET"}},"a":1}"#,
            r#"ts=recv http.status=500 http.req.method="GET" a=1"#,
        ),
        (
            r#"{"tags":["a", 1, true,null,1.5,{"k":"v","k":2},[]]}"#,
            r#"ts=recv tags="[\"a\",1,true,null,1.5,{\"k\":\"v\",\"k\":2},[]]""#,
        ),
        (r#"{"t":[]}"#, r#"ts=recv t="[]""#),
        (
            r#"{"t":["\u00e9\n\"\u0001"]}"#,
            r#"ts=recv t="[\"é\\n\\\"\\u0001\"]""#,
        ),
        (r#"{"e":{}}"#, r#"ts=recv e="{}""#),
        (r#"{"x":{"y":{}}}"#, r#"ts=recv x.y="{}""#),
        (
            r#"{"big":18446744073709551615,"neg":-9223372036854775808,"f":1e3,"z":-0.0}"#,
            r#"ts=recv big="18446744073709551615" neg=-9223372036854775808 f=1000.0 z=-0.0"#,
        ),
        (r#"{"huge":1e400}"#, "error"),
        (r#"{"s":"a\"b\\\u00e9\n"}"#, r#"ts=recv s="a\"b\\é\n""#),
        (
            r#"{"n":null,"t":true,"f":false}"#,
            "ts=recv n=null t=true f=false",
        ),
        (r#"{"":1,"a":{"":2}}"#, "ts=recv =1 a.=2"),
        (r#"{"k\u00e9y":1}"#, "ts=recv kéy=1"),
        (
            r#"{"a":{"b":1},"c":2,"a":{"d":3}}"#,
            "ts=recv a.b=1 c=2 a.d=3",
        ),
    ];
    for (body, want) in cases {
        match strict(body) {
            Ok(v) => assert_eq!(v, vec![want.to_string()], "{body}"),
            Err(e) => assert_eq!(*want, "error", "{body}: {e}"),
        }
    }
}

#[test]
fn duplicates_last_wins_in_first_place_and_are_counted() {
    let cases: &[(&str, &str, u64)] = &[
        (r#"{"a":1,"b":2,"a":3}"#, "ts=recv a=3 b=2", 1),
        (r#"{"a.b":1,"a":{"b":2}}"#, "ts=recv a.b=2", 1),
        (r#"{"a":{"b":1},"a.b":2,"a.b":3}"#, "ts=recv a.b=3", 2),
        (r#"{"level":"info","level":"error"}"#, "ts=recv sev=err", 1),
        (r#"{"msg":"x","msg":["y"]}"#, r#"ts=recv msg="[\"y\"]""#, 1),
        (r#"{"msg":["y"],"msg":"x"}"#, "ts=recv msg=x", 1),
        (r#"{"ts":2,"ts":[1]}"#, r#"ts=recv ts="[1]""#, 1),
        // An empty key is an ordinary key, never confused with an alias.
        (r#"{"":1,"ts":1,"":2}"#, "ts=1000000000 =2", 1),
        (
            r#"{"":1,"msg":"x","level":"y"}"#,
            r#"ts=recv msg=x =1 level="y""#,
            0,
        ),
    ];
    let p = JsonLogParser::new(JsonLogLimits::DEFAULT, Mode::Strict);
    for (body, want, dups) in cases {
        let mut out = Vec::new();
        let report = p.parse_body(body.as_bytes(), RECEIVED, &mut out).unwrap();
        assert_eq!(brief(&out[0]), *want, "{body}");
        assert_eq!(report.duplicate_fields, *dups, "{body}");
    }

    // Past 32 fields the duplicate check uses a hash index; same semantics.
    let mut body = String::from("{");
    for i in 0..40 {
        body.push_str(&format!("\"f{i}\":{i},"));
    }
    body.push_str("\"f5\":\"five\",\"f39\":null,\"f40\":40,\"\":0,\"level\":\"?\",\"\":1}");
    let mut out = Vec::new();
    let report = p.parse_body(body.as_bytes(), RECEIVED, &mut out).unwrap();
    assert_eq!(report.duplicate_fields, 3);
    let attrs = &out[0].attributes;
    assert_eq!(attrs.len(), 43);
    assert_eq!(attrs[5], ("f5".to_owned(), "five".into()));
    assert_eq!(attrs[39].1, killkrill_core::event::FieldValue::Null);
    assert_eq!(attrs[40].0, "f40");
    assert_eq!(attrs[41], (String::new(), 1.into()));
    assert_eq!(attrs[42], ("level".to_owned(), "?".into()));
}

#[test]
fn timestamp_units_and_forms() {
    let cases: &[(&str, &str)] = &[
        (r#"{"ts":1764090756}"#, "ts=1764090756000000000"),
        (r#"{"ts":1764090756123}"#, "ts=1764090756123000000"),
        (r#"{"ts":1764090756123456}"#, "ts=1764090756123456000"),
        (r#"{"ts":1764090756123456789}"#, "ts=1764090756123456789"),
        (r#"{"ts":1764090756.25}"#, "ts=1764090756250000000"),
        (r#"{"ts":1764090756123.5}"#, "ts=1764090756123500000"),
        (r#"{"ts":"1764090756.123456789"}"#, "ts=1764090756123456789"),
        (r#"{"ts":"1764090756123"}"#, "ts=1764090756123000000"),
        (
            r#"{"ts":"2025-11-25T18:12:36.123+01:00"}"#,
            "ts=1764090756123000000",
        ),
        (
            r#"{"ts":"2025-11-25 17:12:36.123456789z"}"#,
            "ts=1764090756123456789",
        ),
        (r#"{"ts":-1}"#, "ts=-1000000000"),
        (r#"{"ts":0}"#, "ts=0"),
        (r#"{}"#, "ts=recv"),
        (r#"{"ts":null}"#, "ts=recv ts=null"),
    ];
    for (body, want) in cases {
        assert_eq!(one(body), *want, "{body}");
    }
}

#[test]
fn unreadable_timestamps() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"ts":"2025-11-25"}"#,
            r#"line 1: field "ts": invalid timestamp "2025-11-25": invalid RFC 3339 timestamp at column 10: expected 'T' between date and time"#,
            r#"ts=recv ts="2025-11-25" error=[field "ts": invalid timestamp "2025-11-25": invalid RFC 3339 timestamp at column 10: expected 'T' between date and time]"#,
        ),
        (
            r#"{"ts":99999999999}"#,
            r#"line 1: field "ts": invalid timestamp 99999999999: epoch number outside the representable range 1677-09-21..2262-04-11"#,
            r#"ts=recv ts=99999999999 error=[field "ts": invalid timestamp 99999999999: epoch number outside the representable range 1677-09-21..2262-04-11]"#,
        ),
        (
            r#"{"time":true,"ts":"x"}"#,
            r#"line 1: field "ts": invalid timestamp "x": invalid RFC 3339 timestamp at column 0: expected 4-digit year"#,
            r#"ts=recv time=true ts="x" error=[field "ts": invalid timestamp "x": invalid RFC 3339 timestamp at column 0: expected 4-digit year]"#,
        ),
        (
            r#"{"@timestamp":1.5e300}"#,
            r#"line 1: field "@timestamp": invalid timestamp 1.5e300: epoch number outside the representable range 1677-09-21..2262-04-11"#,
            r#"ts=recv @timestamp=1.5e+300 error=[field "@timestamp": invalid timestamp 1.5e300: epoch number outside the representable range 1677-09-21..2262-04-11]"#,
        ),
    ];
    for (body, strict_err, lenient) in cases {
        assert_eq!(strict(body), Err(strict_err.to_string()), "{body}");
        let got = parse_with(JsonLogLimits::DEFAULT, Mode::Lenient, body.as_bytes());
        assert_eq!(got, Ok(vec![lenient.to_string()]), "{body}");
    }

    // Long values are cut in the message.
    let long = format!(r#"{{"ts":"{}"}}"#, "9".repeat(20) + &"x".repeat(100));
    let err = strict(&long).unwrap_err();
    assert!(
        err.starts_with(&format!(
            r#"line 1: field "ts": invalid timestamp "{}…": "#,
            "9".repeat(20) + &"x".repeat(44)
        )),
        "{err}"
    );
}

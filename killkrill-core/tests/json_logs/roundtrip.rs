//! Round trip: generated records with generated fields are written as JSON
//! objects in each of the three body shapes, parsed, and must equal the
//! records the documented mapping predicts.

use killkrill_core::event::{Facility, FieldValue, LogRecord, Severity, Timestamp};
use killkrill_core::json_logs::{JsonLogLimits, JsonLogParser, Mode, Shape};
use proptest::prelude::*;

use crate::brief::RECEIVED;

/// A generated JSON value.
#[derive(Debug, Clone)]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Big(u64),
    Float(f64),
    Str(String),
    Obj(Vec<(String, Val)>),
    Arr(Vec<Val>),
}

/// A generated header field: the alias key, its JSON text, and what it sets.
#[derive(Debug, Clone)]
struct Header {
    key: &'static str,
    json: String,
    set: Set,
}

#[derive(Debug, Clone)]
enum Set {
    Timestamp(i64),
    Severity(Severity),
    Message(String),
    App(String),
    Host(String),
    Facility(Facility),
    Procid(String),
    Msgid(String),
}

#[derive(Debug, Clone)]
enum Entry {
    Header(Header),
    Field(String, Val),
}

#[derive(Debug, Clone)]
struct Rec {
    entries: Vec<Entry>,
    /// Spaces after `:` and `,` (also inside arrays, which the parser
    /// compacts).
    spaced: bool,
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter)
}

/// Keys start with `x`, so none is an alias, and have no dot, so flattened
/// names cannot collide.
fn key() -> impl Strategy<Value = String> {
    "x[a-z0-9_é\"\\\\ \n\u{1}😀]{0,6}"
}

fn unique(entries: Vec<(String, Val)>) -> Vec<(String, Val)> {
    let mut seen = std::collections::HashSet::new();
    entries
        .into_iter()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect()
}

fn val() -> impl Strategy<Value = Val> {
    let leaf = prop_oneof![
        Just(Val::Null),
        any::<bool>().prop_map(Val::Bool),
        any::<i64>().prop_map(Val::Int),
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(Val::Big),
        // Decimal fractions with few digits: exact through text and back.
        (-1_000_000_000i64..1_000_000_000, 0u32..4)
            .prop_map(|(m, e)| Val::Float(m as f64 / 10f64.powi(e as i32 + 1))),
        text().prop_map(Val::Str),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec((key(), inner.clone()), 0..4).prop_map(|e| Val::Obj(unique(e))),
            prop::collection::vec(inner, 0..4).prop_map(Val::Arr),
        ]
    })
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// Writes `v` as JSON, with spaces when `spaced`.
fn write(v: &Val, spaced: bool, out: &mut String) {
    let (colon, comma) = if spaced { (": ", ", ") } else { (":", ",") };
    match v {
        Val::Null => out.push_str("null"),
        Val::Bool(b) => out.push_str(&b.to_string()),
        Val::Int(i) => out.push_str(&i.to_string()),
        Val::Big(u) => out.push_str(&u.to_string()),
        Val::Float(f) => out.push_str(&serde_json::to_string(f).expect("finite")),
        Val::Str(s) => out.push_str(&json_str(s)),
        Val::Obj(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(comma);
                }
                out.push_str(&json_str(k));
                out.push_str(colon);
                write(v, spaced, out);
            }
            out.push('}');
        }
        Val::Arr(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(comma);
                }
                write(v, spaced, out);
            }
            out.push(']');
        }
    }
}

/// The attributes the documented flattening makes of field `name = v`.
fn flatten(name: &str, v: &Val, out: &mut Vec<(String, FieldValue)>) {
    let value = match v {
        Val::Null => FieldValue::Null,
        Val::Bool(b) => FieldValue::Bool(*b),
        Val::Int(i) => FieldValue::Int(*i),
        Val::Big(u) => FieldValue::Str(u.to_string()),
        Val::Float(f) => FieldValue::Float(*f),
        Val::Str(s) => FieldValue::Str(s.clone()),
        Val::Obj(entries) if entries.is_empty() => FieldValue::Str("{}".to_owned()),
        Val::Obj(entries) => {
            for (k, v) in entries {
                flatten(&format!("{name}.{k}"), v, out);
            }
            return;
        }
        Val::Arr(_) => {
            let mut s = String::new();
            write(v, false, &mut s);
            FieldValue::Str(s)
        }
    };
    out.push((name.to_owned(), value));
}

fn header() -> impl Strategy<Value = Header> {
    const SEC: i64 = 1_000_000_000;
    // 1973-03-03 .. 2262: every epoch unit is unambiguous there.
    let ts = 100_000_000_000_000_000i64..9_200_000_000_000_000_000;
    let ts_alias = prop::sample::select(&["timestamp", "ts", "time", "@timestamp"][..]);
    let timestamp = (ts, ts_alias, 0u8..7).prop_map(|(ns, key, form)| {
        let (json, at) = match form {
            0 => (json_str(&Timestamp::from_nanos(ns).to_rfc3339()), ns),
            1 => ((ns / SEC).to_string(), ns / SEC * SEC),
            2 => ((ns / 1_000_000).to_string(), ns / 1_000_000 * 1_000_000),
            3 => ((ns / 1_000).to_string(), ns / 1_000 * 1_000),
            4 => (ns.to_string(), ns),
            5 => (json_str(&format!("{}.{:09}", ns / SEC, ns % SEC)), ns),
            _ => (
                // Quarters of a second are exact in binary floating point.
                format!("{}.{}", ns / SEC, ["0", "25", "5", "75"][(ns % 4) as usize]),
                ns / SEC * SEC + (ns % 4) * SEC / 4,
            ),
        };
        Header {
            key,
            json,
            set: Set::Timestamp(at),
        }
    });
    let sev_alias = prop::sample::select(&["level", "severity"][..]);
    let severity = (sev_alias, 0usize..19).prop_map(|(key, i)| {
        let (json, sev) = [
            ("\"info\"", Severity::Informational),
            ("\"WARN\"", Severity::Warning),
            ("\"error\"", Severity::Error),
            ("\"fatal\"", Severity::Critical),
            ("\"debug\"", Severity::Debug),
            ("\"trace\"", Severity::Debug),
            ("\"notice\"", Severity::Notice),
            ("0", Severity::Emergency),
            ("1", Severity::Alert),
            ("2", Severity::Critical),
            ("3", Severity::Error),
            ("4", Severity::Warning),
            ("6", Severity::Informational),
            ("10", Severity::Debug),
            ("20", Severity::Debug),
            ("30", Severity::Informational),
            ("40", Severity::Warning),
            ("50", Severity::Error),
            ("60", Severity::Critical),
        ][i];
        Header {
            key,
            json: json.to_owned(),
            set: Set::Severity(sev),
        }
    });
    let string_header = |keys: &'static [&'static str], make: fn(String) -> Set| {
        (prop::sample::select(keys), text()).prop_map(move |(key, s)| Header {
            key,
            json: json_str(&s),
            set: make(s),
        })
    };
    let facility = (0u8..24, any::<bool>()).prop_map(|(code, as_name)| {
        let f = Facility::from_code(code).expect("code < 24");
        let json = if as_name {
            json_str(f.name())
        } else {
            code.to_string()
        };
        Header {
            key: "facility",
            json,
            set: Set::Facility(f),
        }
    });
    let pid = (0i64..4_000_000).prop_map(|p| Header {
        key: "pid",
        json: p.to_string(),
        set: Set::Procid(p.to_string()),
    });
    prop_oneof![
        timestamp,
        severity,
        string_header(&["message", "msg", "log"], Set::Message),
        string_header(&["service_name", "service", "app", "source"], Set::App),
        string_header(&["host", "hostname"], Set::Host),
        facility,
        string_header(&["procid"], Set::Procid),
        pid,
        string_header(&["msgid"], Set::Msgid),
    ]
}

fn rec() -> impl Strategy<Value = Rec> {
    let fields = prop::collection::vec((key(), val()), 0..8).prop_map(unique);
    let headers = prop::collection::vec(header(), 0..6);
    (fields, headers, any::<bool>())
        .prop_flat_map(|(fields, headers, spaced)| {
            // One alias per header field, so precedence does not enter here.
            let mut kinds = std::collections::HashSet::new();
            let mut entries: Vec<Entry> = headers
                .into_iter()
                .filter(|h| kinds.insert(std::mem::discriminant(&h.set)))
                .map(Entry::Header)
                .collect();
            entries.extend(fields.into_iter().map(|(k, v)| Entry::Field(k, v)));
            (Just(entries).prop_shuffle(), Just(spaced))
        })
        .prop_map(|(entries, spaced)| Rec { entries, spaced })
}

impl Rec {
    /// The record as one JSON object; `multiline` puts each field on its
    /// own line (the single-object shape).
    fn json(&self, multiline: bool) -> String {
        let (colon, comma) = if self.spaced {
            (": ", ", ")
        } else {
            (":", ",")
        };
        let sep = if multiline { ",\n  " } else { comma };
        let mut out = String::from(if multiline { "{\n  " } else { "{" });
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            match e {
                Entry::Header(h) => {
                    out.push_str(&json_str(h.key));
                    out.push_str(colon);
                    out.push_str(&h.json);
                }
                Entry::Field(k, v) => {
                    out.push_str(&json_str(k));
                    out.push_str(colon);
                    write(v, self.spaced, &mut out);
                }
            }
        }
        out.push_str(if multiline { "\n}" } else { "}" });
        out
    }

    fn expected(&self) -> LogRecord {
        let mut r = LogRecord {
            timestamp: RECEIVED,
            ..LogRecord::default()
        };
        for e in &self.entries {
            match e {
                Entry::Field(k, v) => flatten(k, v, &mut r.attributes),
                Entry::Header(h) => match &h.set {
                    Set::Timestamp(ns) => r.timestamp = Timestamp::from_nanos(*ns),
                    Set::Severity(s) => r.severity = Some(*s),
                    Set::Message(m) => r.message = Some(m.clone().into_bytes()),
                    Set::App(a) => r.app = Some(a.clone()),
                    Set::Host(h) => r.host = Some(h.clone()),
                    Set::Facility(f) => r.facility = Some(*f),
                    Set::Procid(p) => r.procid = Some(p.clone()),
                    Set::Msgid(m) => r.msgid = Some(m.clone()),
                },
            }
        }
        r
    }
}

fn parse(body: &str, mode: Mode) -> (Shape, Vec<LogRecord>) {
    let p = JsonLogParser::new(JsonLogLimits::DEFAULT, mode);
    let mut out = Vec::new();
    let report = p
        .parse_body(body.as_bytes(), RECEIVED, &mut out)
        .unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.duplicate_fields, 0);
    (report.shape.expect("shape is set"), out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn generated_records_round_trip_in_every_shape(
        recs in prop::collection::vec(rec(), 1..6),
        crlf in any::<bool>(),
        blank_every in 0usize..4,
        mode in prop::sample::select(&[Mode::Strict, Mode::Lenient][..]),
    ) {
        let expected: Vec<LogRecord> = recs.iter().map(Rec::expected).collect();

        let nl = if crlf { "\r\n" } else { "\n" };
        let mut ndjson = String::new();
        for (i, r) in recs.iter().enumerate() {
            if blank_every > 0 && i % blank_every == 0 {
                ndjson.push_str(nl);
            }
            ndjson.push_str(&r.json(false));
            ndjson.push_str(nl);
        }
        let (shape, got) = parse(&ndjson, mode);
        prop_assert_eq!(shape, Shape::Ndjson);
        prop_assert_eq!(&got, &expected);

        let items: Vec<String> = recs.iter().map(|r| r.json(false)).collect();
        let array = format!("[{}]", items.join(if crlf { ",\r\n" } else { "," }));
        let (shape, got) = parse(&array, mode);
        prop_assert_eq!(shape, Shape::Array);
        prop_assert_eq!(&got, &expected);

        for (r, want) in recs.iter().zip(&expected) {
            let object = r.json(true);
            let (shape, got) = parse(&object, mode);
            prop_assert_eq!(shape, Shape::Object);
            prop_assert_eq!(&got, &vec![want.clone()]);
        }
    }
}

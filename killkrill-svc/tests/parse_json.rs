//! `killkrill parse --format json`, run as the real binary.

use std::io::Write;
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn killkrill(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_killkrill"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let input = stdin.to_vec();
    // Write from another thread so a large input cannot deadlock against a
    // full stdout pipe.
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().expect("the binary runs");
    writer
        .join()
        .expect("writer thread")
        .expect("stdin written");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

/// The canonical record without its `timestamp` (the receive time of raw
/// records is not known in advance).
fn without_timestamp(line: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(line).expect("a JSON record");
    let obj = v.as_object_mut().expect("an object");
    assert!(obj.remove("timestamp").is_some(), "{line}");
    v
}

const NDJSON: &[u8] =
    b"{\"ts\":1764090756,\"level\":\"warn\",\"msg\":\"slow\",\"http\":{\"status\":503}}\n\
\n\
not json\r\n\
{\"a\":[1, 2],\"pid\":812}\n";

#[test]
fn ndjson_lenient_prints_every_line_and_reports_errors() {
    let r = killkrill(&["parse", "--format", "json"], NDJSON);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "line 3, column 1: expected ident\n");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert_eq!(
        lines[0],
        concat!(
            r#"{"timestamp":"2025-11-25T17:12:36.000000000Z","severity":"warning","facility":null,"#,
            r#""host":null,"app":null,"procid":null,"msgid":null,"structured_data":null,"#,
            r#""message":"slow","attributes":{"http.status":503}}"#
        )
    );
    assert_eq!(
        without_timestamp(lines[1]),
        serde_json::json!({"severity":null,"facility":null,"host":null,"app":null,"procid":null,
            "msgid":null,"structured_data":null,"message":"not json",
            "parse_error":"column 1: expected ident"})
    );
    assert_eq!(
        without_timestamp(lines[2]),
        serde_json::json!({"severity":null,"facility":null,"host":null,"app":null,"procid":"812",
            "msgid":null,"structured_data":null,"message":null,"attributes":{"a":"[1,2]"}})
    );
}

#[test]
fn ndjson_strict_reports_and_exits_1() {
    let r = killkrill(&["parse", "--format", "json", "--strict"], NDJSON);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "line 3, column 1: expected ident\n");
    assert_eq!(r.stdout.lines().count(), 2, "good lines are still printed");
}

#[test]
fn count_summary() {
    let r = killkrill(&["parse", "--format", "json", "--output", "count"], NDJSON);
    assert_eq!(r.code, 0);
    assert_eq!(r.stderr, "line 3, column 1: expected ident\n");
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("summary");
    assert_eq!(v["messages"], 3);
    assert_eq!(v["errors"], 1);
    assert_eq!(v["bytes"], NDJSON.len());
    assert!(v["seconds"].as_f64().expect("seconds") >= 0.0);
    assert_eq!(r.stdout.lines().count(), 1);
}

#[test]
fn array_and_multiline_object_bodies() {
    let r = killkrill(
        &["parse", "--format", "json", "--strict"],
        b"\n[{\"msg\":\"a\",\"ts\":\"2025-11-25T17:12:36Z\"},\n {\"msg\":\"b\",\"ts\":1764090756000}]\n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let msgs: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("record"))
        .collect();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["message"], "a");
    assert_eq!(msgs[1]["message"], "b");
    assert_eq!(msgs[1]["timestamp"], "2025-11-25T17:12:36.000000000Z");

    let r = killkrill(
        &["parse", "--format", "json", "--strict"],
        b"[{\"a\":1},\n[2]]",
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "index 1, line 2, column 0: expected a JSON object, found an array\n"
    );
    assert_eq!(r.stdout, "");

    let r = killkrill(
        &["parse", "--format", "json"],
        b"\xef\xbb\xbf{\n  \"msg\": \"pretty\",\n  \"host\": \"h\"\n}\n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = without_timestamp(r.stdout.trim());
    assert_eq!(v["message"], "pretty");
    assert_eq!(v["host"], "h");

    let r = killkrill(
        &["parse", "--format", "json", "--strict"],
        b"{\n  \"msg\": \"pretty\",\n  \"host\": h\n}\n",
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "line 3, column 10: expected value\n");
}

#[test]
fn over_long_lines_are_skipped_without_buffering() {
    let long = format!("{{\"msg\":\"{}\"}}", "x".repeat(2_000_000));
    let input = format!("{{\"a\":1}}\n{long}\r\n{{\"b\":2}}\n");
    let r = killkrill(&["parse", "--format", "json"], input.as_bytes());
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stderr,
        format!(
            "line 2: line of {} bytes is longer than 1048576 bytes\n",
            long.len()
        )
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    let raw = without_timestamp(lines[1]);
    assert_eq!(
        raw["parse_error"],
        format!(
            "line of {} bytes is longer than 1048576 bytes; only the first 1048576 bytes are kept",
            long.len()
        )
    );
    assert_eq!(raw["message"].as_str().expect("message").len(), 1_048_576);
    assert_eq!(without_timestamp(lines[2])["attributes"]["b"], 2);

    let r = killkrill(
        &["parse", "--format", "json", "--strict", "--output", "count"],
        input.as_bytes(),
    );
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("summary");
    assert_eq!(v["messages"], 2);
    assert_eq!(v["errors"], 1);
    assert_eq!(v["bytes"], input.len());
}

#[test]
fn many_lines_stream_through() {
    let mut input = Vec::new();
    for i in 0..50_000 {
        writeln!(
            input,
            r#"{{"ts":{},"level":"info","msg":"line {i}","n":{i},"ctx":{{"k":"v"}}}}"#,
            1_764_090_756_000i64 + i
        )
        .expect("write to a Vec");
    }
    let r = killkrill(
        &["parse", "--format", "json", "--output", "count", "--strict"],
        &input,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("summary");
    assert_eq!(v["messages"], 50_000);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["bytes"], input.len());
}

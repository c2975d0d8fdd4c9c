//! `killkrill parse --format syslog`, run as the real binary.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn killkrill(args: &[&str], stdin: Stdio) -> Output {
    Command::new(env!("CARGO_BIN_EXE_killkrill"))
        .args(args)
        .stdin(stdin)
        .output()
        .expect("run killkrill")
}

fn with_input(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_killkrill"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn killkrill");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Line `i` of the generated file: RFC 5424 with structured data, RFC 3164,
/// or (every 10,000th line) an RFC 5424 line with month 13.
fn line(i: usize, out: &mut Vec<u8>) {
    const HOSTS: [&str; 4] = [
        "web-042.prod.example.com",
        "db-7.eu-west-1.internal",
        "lb01",
        "10.0.3.17",
    ];
    let host = HOSTS[i % 4];
    if i % 10_000 == 9_999 {
        writeln!(
            out,
            "<13>1 2026-13-25T17:12:36Z {host} app - - - broken line {i}"
        )
        .expect("vec");
    } else if i.is_multiple_of(2) {
        writeln!(
            out,
            "<165>1 2026-11-25T17:{:02}:{:02}.{:06}Z {host} nginx {} ACCESS [req@32473 id=\"{i:08x}\" status=\"200\"][origin ip=\"10.0.{}.{}\"] GET /api/v1/items?page={i} took {}ms",
            i % 60, (i / 60) % 60, i % 1_000_000, 1000 + i % 5000, i % 256, (i / 256) % 256, i % 97
        )
        .expect("vec");
    } else {
        writeln!(
            out,
            "<34>Nov {:>2} 17:{:02}:{:02} {host} sshd[{}]: Accepted publickey for deploy from 10.0.{}.{} port {} ssh2: ED25519 SHA256:Zm9vYmFyYmF6cXV4{i:08x}",
            1 + i % 28, i % 60, (i / 60) % 60, 1000 + i % 5000, i % 256, (i / 256) % 256, 40000 + i % 20000
        )
        .expect("vec");
    }
}

#[test]
fn a_million_lines_are_counted_right() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("syslog-1m.log");
    let mut data = Vec::with_capacity(200 * 1_000_000);
    for i in 0..1_000_000 {
        line(i, &mut data);
    }
    std::fs::write(&path, &data).expect("write test file");
    let out = killkrill(
        &["parse", "--format", "syslog", "--output", "count"],
        Stdio::from(std::fs::File::open(&path).expect("open test file")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = lines(&out.stdout);
    assert_eq!(summary.len(), 1);
    let s = &summary[0];
    assert_eq!(s["messages"], 1_000_000, "{s}");
    assert_eq!(s["errors"], 100, "{s}");
    assert_eq!(s["bytes"], data.len() as u64, "{s}");
    assert!(s["seconds"].as_f64().is_some_and(|t| t > 0.0), "{s}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 100);
    assert!(
        stderr.starts_with(
            "frame 10000, column 12: invalid TIMESTAMP: expected a month (01-12) (timestamp)\n"
        ),
        "{stderr}"
    );
    std::fs::remove_file(&path).expect("remove test file");
}

#[test]
fn json_output_is_one_canonical_record_per_frame() {
    let input: &[u8] =
        b"<165>1 2003-10-11T22:14:15.003Z web1 evntslog 77 ID47 [ex@32473 iut=\"3\"] An event\n\
        <34>Oct 11 22:14:15 mymachine su[12]: 'su root' failed\r\n\
        <156>pyapp: from python\0\
        48 <13>1 2026-01-01T00:00:00Z octet - - - - counted";
    let out = with_input(&["parse", "--format", "syslog"], input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = lines(&out.stdout);
    assert_eq!(recs.len(), 4);
    let r = &recs[0];
    assert_eq!(r["timestamp"], "2003-10-11T22:14:15.003000000Z");
    assert_eq!(
        (r["severity"].as_str(), r["facility"].as_str()),
        (Some("notice"), Some("local4"))
    );
    assert_eq!(
        (
            r["host"].as_str(),
            r["app"].as_str(),
            r["procid"].as_str(),
            r["msgid"].as_str()
        ),
        (Some("web1"), Some("evntslog"), Some("77"), Some("ID47"))
    );
    assert_eq!(
        r["structured_data"],
        serde_json::json!({"ex@32473": {"iut": "3"}})
    );
    assert_eq!(r["message"], "An event");
    assert!(r.get("id").is_none() && r.get("tenant").is_none() && r.get("parse_error").is_none());
    assert_eq!(
        (
            recs[1]["host"].as_str(),
            recs[1]["app"].as_str(),
            recs[1]["procid"].as_str()
        ),
        (Some("mymachine"), Some("su"), Some("12"))
    );
    assert_eq!(recs[1]["message"], "'su root' failed");
    assert_eq!(
        (
            recs[2]["app"].as_str(),
            recs[2]["message"].as_str(),
            recs[2]["host"].is_null()
        ),
        (Some("pyapp"), Some("from python"), true)
    );
    // No timestamp in the message: the receive time, which is now.
    assert!(
        recs[2]["timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with("20"))
    );
    assert_eq!(
        (recs[3]["host"].as_str(), recs[3]["message"].as_str()),
        (Some("octet"), Some("counted"))
    );
}

#[test]
fn strict_fails_with_frame_and_column_lenient_keeps_raw() {
    let input: &[u8] = b"<13>1 - h a - - - ok\n<13>1 2026-01-01T00:00:00 h a - - - no offset\n<13>1 - h a - - - ok again\n";
    let strict = with_input(&["parse", "--format", "syslog", "--strict"], input);
    assert_eq!(strict.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&strict.stderr),
        "frame 2, column 25: invalid TIMESTAMP: expected 'Z' or an offset such as +01:00 (timestamp)\n"
    );
    let recs = lines(&strict.stdout);
    assert_eq!(
        recs.len(),
        2,
        "the bad frame is rejected, the others printed"
    );

    let lenient = with_input(&["parse", "--format", "syslog"], input);
    assert_eq!(lenient.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&lenient.stderr),
        String::from_utf8_lossy(&strict.stderr)
    );
    let recs = lines(&lenient.stdout);
    assert_eq!(recs.len(), 3);
    assert_eq!(
        recs[1]["message"],
        "<13>1 2026-01-01T00:00:00 h a - - - no offset"
    );
    assert_eq!(
        recs[1]["parse_error"],
        "invalid TIMESTAMP at column 25: expected 'Z' or an offset such as +01:00 (timestamp)"
    );

    let count = with_input(
        &[
            "parse", "--format", "syslog", "--strict", "--output", "count",
        ],
        input,
    );
    assert_eq!(count.status.code(), Some(1));
    let s = &lines(&count.stdout)[0];
    assert_eq!(
        (
            s["messages"].as_u64(),
            s["errors"].as_u64(),
            s["bytes"].as_u64()
        ),
        (Some(2), Some(1), Some(input.len() as u64))
    );

    let clean = with_input(
        &[
            "parse", "--format", "syslog", "--strict", "--output", "count",
        ],
        b"<13>1 - h a - - - ok\n",
    );
    assert_eq!(clean.status.code(), Some(0));
}

#[test]
fn bad_frames_are_reported_and_framing_recovers() {
    let mut input = b"<13>1 - h a - - - before\n70000 <13>1 - h a - - - ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 70_000 - 18));
    input.extend_from_slice(b"<13>1 - h a - - - after\n");
    let out = with_input(
        &["parse", "--format", "syslog", "--output", "count"],
        &input,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "frame 2: octet count 70000 exceeds the maximum frame size 65536; skipped 70000 bytes\n"
    );
    let s = &lines(&out.stdout)[0];
    assert_eq!(
        (s["messages"].as_u64(), s["errors"].as_u64()),
        (Some(2), Some(1))
    );
}

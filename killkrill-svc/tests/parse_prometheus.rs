//! `killkrill parse --format prometheus|openmetrics`, run as the real binary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn corpus(path: &str) -> Vec<u8> {
    let full = format!("{}/../testdata/corpora/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn killkrill(args: &[&str], stdin: Vec<u8>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_killkrill"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("killkrill starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || {
        // The binary may stop reading early (size limit); that is not an error here.
        match pipe.write_all(&stdin) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => panic!("writing stdin: {e}"),
        }
    });
    let out = child.wait_with_output().expect("killkrill runs");
    writer.join().expect("stdin writer");
    out
}

fn summary(out: &Output) -> serde_json::Value {
    let text = String::from_utf8(out.stdout.clone()).expect("utf-8");
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn counts_the_alltypes_text_file() {
    let input = corpus("prometheus/alltypes.237mfs.prom.txt");
    let out = killkrill(
        &[
            "parse",
            "--format",
            "prometheus",
            "--strict",
            "--output",
            "count",
        ],
        input.clone(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    assert_eq!(s["samples"], 1857);
    assert_eq!(s["errors"], 0);
    assert_eq!(s["bytes"], input.len());
    assert!(s["seconds"].as_f64().is_some_and(|x| x >= 0.0));
    assert!(out.stderr.is_empty());
}

#[test]
fn prints_one_sample_per_line() {
    let out = killkrill(
        &["parse", "--format", "prometheus"],
        corpus("prometheus/alltypes.237mfs.prom.txt"),
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1857);
    assert_eq!(
        lines[0],
        r#"{"name":"go_gc_cycles_automatic_gc_cycles_total","labels":{},"value":190932.0,"timestamp":null,"type":"counter"}"#
    );
    assert!(lines.contains(&r#"{"name":"go_gc_duration_seconds","labels":{"quantile":"0.5"},"value":0.000135819,"timestamp":null,"type":"summary"}"#));
    assert!(lines.contains(&r#"{"name":"prometheus_sd_kuma_fetch_duration_seconds","labels":{"quantile":"0.9"},"value":"NaN","timestamp":null,"type":"summary"}"#));
    assert!(lines.contains(&r#"{"name":"go_gc_heap_allocs_by_size_bytes_bucket","labels":{"le":"+Inf"},"value":44046288803.0,"timestamp":null,"type":"histogram"}"#));
}

#[test]
fn openmetrics_lenient_counts_and_strict_fails_with_the_line() {
    let input = corpus("prometheus/alltypes.5mfs.om.txt");
    let out = killkrill(
        &["parse", "--format", "openmetrics", "--output", "count"],
        input.clone(),
    );
    assert!(out.status.success());
    assert_eq!(
        (
            summary(&out)["samples"].clone(),
            summary(&out)["errors"].clone()
        ),
        (53.into(), 0.into())
    );
    let out = killkrill(
        &[
            "parse",
            "--format",
            "openmetrics",
            "--strict",
            "--output",
            "count",
        ],
        input,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "line 33: `_sum` values cannot be negative\n"
    );
    assert_eq!(summary(&out)["errors"], 1);
}

#[test]
fn bad_lines_are_reported_and_counted() {
    let input = b"a 1\nb{x=\"1\" 2\nc 3 4.5\nd 4\n".to_vec();
    let out = killkrill(
        &["parse", "--format", "prometheus", "--output", "count"],
        input.clone(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        (
            summary(&out)["samples"].clone(),
            summary(&out)["errors"].clone()
        ),
        (2.into(), 2.into())
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "line 2, column 8: expected `,` or `}` after the label value, found `2`\n\
         line 3, column 4: expected an integer timestamp in milliseconds, found `4.5`\n"
    );
    let out = killkrill(&["parse", "--format", "prometheus", "--strict"], input);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"name\":\"a\",\"labels\":{},\"value\":1.0,\"timestamp\":null,\"type\":\"unknown\"}\n"
    );
}

#[test]
fn invalid_utf8_is_located() {
    let out = killkrill(
        &["parse", "--format", "prometheus", "--output", "count"],
        b"a 1\nb{x=\"\xff\"} 2\nc 3\n".to_vec(),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "line 2, column 5: invalid UTF-8; the exposition formats are UTF-8 text\n"
    );
    assert_eq!(
        summary(&out)["samples"],
        3,
        "lenient mode goes on with the bytes replaced"
    );
}

#[test]
fn input_over_the_limit_is_refused() {
    let input = vec![b'\n'; 64 * 1024 * 1024 + 1];
    let out = killkrill(
        &["parse", "--format", "openmetrics", "--output", "count"],
        input,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "killkrill parse: input is larger than the 64 MiB limit for an exposition\n"
    );
}

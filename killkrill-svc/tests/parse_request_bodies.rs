//! `killkrill parse --format remote-write|loki`, run as the real binary on the body
//! captured from Prometheus and on bodies built from the protobuf types.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use killkrill_proto::{logproto, prometheus_v2 as v2};
use prost::Message;

const CAPTURED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/captured/prometheus-2.42.0+ds-remote-write-v1-series.snappy"
);

fn killkrill(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_killkrill"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the killkrill binary starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(stdin).expect("killkrill reads stdin");
    drop(input);
    child.wait_with_output().expect("killkrill exits")
}

fn lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn captured_prometheus_request() {
    let body = std::fs::read(CAPTURED).unwrap();
    let out = killkrill(&["parse", "--format", "remote-write"], &body);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples = lines(&out.stdout);
    assert!(samples.len() > 300);
    let up = samples
        .iter()
        .find(|s| s["name"] == "up" && s["labels"]["job"] == "prometheus")
        .unwrap();
    assert_eq!(up["value"], 1.0);
    assert_eq!(up["labels"]["job"], "prometheus");
    assert_eq!(up["type"], "unknown");
    assert!(up["timestamp"].as_i64().unwrap() > 1_700_000_000_000_000_000);
    let info = samples
        .iter()
        .find(|s| s["name"] == "prometheus_build_info")
        .unwrap();
    assert_eq!(info["labels"]["version"], "2.42.0+ds");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "remote write 1.0 request: 379 series, {} samples, 1 native histograms (8 samples),",
            samples.len() - 8
        )),
        "{stderr}"
    );

    let out = killkrill(
        &["parse", "--format", "remote-write", "--output", "count"],
        &body,
    );
    assert!(out.status.success());
    let summary = &lines(&out.stdout)[0];
    assert_eq!(summary["samples"], samples.len());
    assert_eq!(
        (summary["errors"].as_u64(), summary["bytes"].as_u64()),
        (Some(0), Some(body.len() as u64))
    );
}

#[test]
fn remote_write_v2_by_content_type() {
    let req = v2::Request {
        symbols: ["", "__name__", "jobs_total", "job", "x", "Jobs."]
            .map(String::from)
            .to_vec(),
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![v2::Sample {
                value: 3.0,
                timestamp: 1000,
                start_timestamp: 0,
            }],
            metadata: Some(v2::Metadata {
                r#type: v2::metadata::MetricType::Counter as i32,
                help_ref: 5,
                unit_ref: 0,
            }),
            ..Default::default()
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let ct = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
    let out = killkrill(
        &["parse", "--format", "remote-write", "--content-type", ct],
        &body,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"name\":\"jobs_total\",\"labels\":{\"job\":\"x\"},\"value\":3.0,\"timestamp\":1000000000,\"type\":\"counter\"}\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("remote write 2.0 request: 1 series, 1 samples, 0 native histograms (0 samples), 0 exemplars, 1 metadata"));
}

#[test]
fn rejected_bodies_exit_1_and_say_why() {
    let cases: &[(&[&str], &[u8], &str)] = &[
        (
            &["--format", "remote-write"],
            b"garbage",
            "request: body is not valid snappy block-format data",
        ),
        (
            &[
                "--format",
                "remote-write",
                "--content-type",
                "application/x-protobuf;proto=foo.Bar",
            ],
            b"",
            "--content-type: unsupported remote write message proto=\"foo.Bar\"",
        ),
        (
            &["--format", "loki", "--content-type", "application/json"],
            br#"{"streams":[{"stream":{"a":"b"},"values":[["x","l"]]}]}"#,
            "request: invalid Loki JSON push body: streams[0]: values: [0]: timestamp: invalid value: string \"x\"",
        ),
        (
            &["--format", "loki", "--content-type", "text/plain"],
            b"",
            "--content-type: unsupported media type \"text/plain\"",
        ),
    ];
    for (args, body, want) in cases {
        let mut a = vec!["parse"];
        a.extend_from_slice(args);
        let out = killkrill(&a, body);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with(want), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn loki_json_and_protobuf() {
    let body = br#"{"streams":[{"stream":{"job":"api","level":"error"},"values":[["1700000000000000000","boom",{"trace_id":"t"}]]}]}"#;
    let out = killkrill(
        &[
            "parse",
            "--format",
            "loki",
            "--content-type",
            "application/json",
        ],
        body,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        concat!(
            r#"{"timestamp":"2023-11-14T22:13:20.000000000Z","severity":"err","facility":null,"host":null,"app":"api","#,
            r#""procid":null,"msgid":null,"structured_data":null,"message":"boom","#,
            r#""attributes":{"job":"api","level":"error","trace_id":"t"}}"#,
            "\n"
        )
    );
    let req = logproto::PushRequest {
        streams: vec![logproto::StreamAdapter {
            labels: r#"{job="api", level="error"}"#.into(),
            entries: vec![logproto::EntryAdapter {
                timestamp: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                line: "boom".into(),
                structured_metadata: vec![logproto::LabelPairAdapter {
                    name: "trace_id".into(),
                    value: "t".into(),
                }],
                parsed: vec![],
            }],
            hash: 0,
        }],
        format: String::new(),
    };
    let pb = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    // No --content-type: protobuf, as Loki assumes.
    let out2 = killkrill(&["parse", "--format", "loki"], &pb);
    assert!(
        out2.status.success(),
        "{}",
        String::from_utf8_lossy(&out2.stderr)
    );
    assert_eq!(
        out2.stdout, out.stdout,
        "both encodings give the same records"
    );
    let out3 = killkrill(&["parse", "--format", "loki", "--output", "count"], &pb);
    let summary = &lines(&out3.stdout)[0];
    assert_eq!(
        (summary["messages"].as_u64(), summary["errors"].as_u64()),
        (Some(1), Some(0))
    );
}

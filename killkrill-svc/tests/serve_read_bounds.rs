//! Read routes bound what a caller with the `read` permission can make the
//! server hold or recurse through: a request body over
//! `MAX_READ_BODY_BYTES` is a 413 (it was read whole, without limit), and
//! a PromQL query nested deeper than the engine's limit is a 400 naming
//! the limit (it overflowed the stack and aborted every role in the
//! process). The server answers normally afterwards.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use killkrill_svc::serve::http::MAX_READ_BODY_BYTES;
use support::{config, http};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_bodies_and_query_depth_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();

    // A body just over the limit on the Prometheus API and the native routes.
    let big = format!("query={}", "x".repeat(MAX_READ_BODY_BYTES));
    for path in ["/api/v1/query", "/api/v1/query_range", "/api/v1/series"] {
        let r = http(addr, "POST", path, &[FORM], big.as_bytes()).await;
        assert_eq!(r.status, 413, "{path}: {}", r.text());
    }

    // 20,000 chained operators (40 KB): refused by the engine before parsing.
    let deep = format!("query=1{}", "*1".repeat(20_000));
    for path in ["/api/v1/query", "/api/v1/format_query"] {
        let r = http(addr, "POST", path, &[FORM], deep.as_bytes()).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let j = r.json();
        assert_eq!(j["errorType"], "bad_data", "{j}");
        assert!(
            j["error"]
                .as_str()
                .unwrap()
                .contains("levels of operators and brackets, at most 256"),
            "{j}"
        );
    }
    // Nested parentheses in a series selector (`match[]`).
    let nested = format!("match[]={}up{}", "(".repeat(20_000), ")".repeat(20_000));
    let r = http(addr, "POST", "/api/v1/series", &[FORM], nested.as_bytes()).await;
    assert_eq!(r.status, 400, "{}", r.text());

    // Still serving: a small query answers.
    let r = http(addr, "POST", "/api/v1/query", &[FORM], b"query=1%2B1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["result"][1], "2", "{}", r.text());
    h.shutdown().await;
}

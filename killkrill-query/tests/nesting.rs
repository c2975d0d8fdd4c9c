//! Deeply nested queries: the deepest the engine accepts evaluate (instant
//! and range) on threads with the default 2 MiB stack, and deeper ones are
//! refused as bad data before they are parsed — before the limit, a query
//! such as `1*1*…*1` with tens of thousands of operators overflowed the
//! stack in planning, evaluation or dropping its tree and aborted the
//! process.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use killkrill_query::{
    Engine, EngineConfig, ErrorKind, MAX_NESTING, MAX_QUERY_BYTES, MemorySource, QueryValue,
};

fn engine() -> Engine {
    let mut s = MemorySource::new();
    s.add_str(
        &[("__name__", "temp"), ("room", "x")],
        (0..=20).map(|i| (i * 15_000, -2.0)).collect(),
    );
    Engine::new(Arc::new(s), EngineConfig::default())
}

/// The deepest query of each shape that the limit allows, and its value at
/// t = 60 s.
fn deepest() -> Vec<(String, f64)> {
    let n = MAX_NESTING;
    vec![
        // Left-deep binary chain: n operators.
        (format!("1{}", "*1".repeat(n)), 1.0),
        // n parentheses around a selector.
        (
            format!("{}temp{{room=\"x\"}}{}", "(".repeat(n), ")".repeat(n)),
            -2.0,
        ),
        // Nested function calls and aggregations.
        (format!("{}temp{}", "abs(".repeat(n), ")".repeat(n)), 2.0),
        (format!("{}temp{}", "sum(".repeat(n), ")".repeat(n)), -2.0),
        // Unary minus n times on a vector (even: the value itself).
        (format!("{}temp", "- ".repeat(n)), -2.0),
        // Vector-to-vector binary chain (one-to-one matching at each level).
        (
            format!("temp{}", " + temp".repeat(n)),
            -2.0 * (n as f64 + 1.0),
        ),
    ]
}

fn value(v: &QueryValue) -> f64 {
    match v {
        QueryValue::Scalar { v, .. } => *v,
        QueryValue::Vector(s) => {
            assert_eq!(s.len(), 1, "{v:?}");
            s[0].v
        }
        QueryValue::Matrix(m) => {
            assert_eq!(m.len(), 1, "{v:?}");
            m[0].points.last().unwrap().1
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_deepest_allowed_queries_evaluate() {
    let e = engine();
    for (q, want) in deepest() {
        let head: String = q.chars().take(40).collect();
        eprintln!("{head}…");
        let v = e
            .instant(&q, 60_000, None)
            .await
            .unwrap_or_else(|err| panic!("{head}…: {err}"));
        assert_eq!(value(&v), want, "{head}…");
        let v = e
            .range(&q, 0, 120_000, 15_000, None)
            .await
            .unwrap_or_else(|err| panic!("{head}…: {err}"));
        assert_eq!(value(&v), want, "{head}… (range)");
    }
}

#[tokio::test]
async fn deeper_or_longer_queries_are_refused_not_crashing() {
    let e = engine();
    for q in [
        format!("1{}", "*1".repeat(MAX_NESTING + 1)),
        format!("1{}", "*1".repeat(100_000)),
        format!("{}1{}", "(".repeat(30_000), ")".repeat(30_000)),
        format!("{}temp", "-".repeat(60_000)),
        format!("temp{{room=\"{}\"}}", "x".repeat(MAX_QUERY_BYTES)),
    ] {
        let err = e.instant(&q, 60_000, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadData, "{err}");
        assert!(err.to_string().contains("at most"), "{err}");
        let err = e.range(&q, 0, 60_000, 15_000, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadData, "{err}");
    }
}

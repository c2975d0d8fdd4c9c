//! The Prometheus HTTP API, called in-process with `tower::ServiceExt::oneshot`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use killkrill_query::{ApiState, EngineConfig, MemorySource, router};
use serde_json::{Value, json};
use tower::ServiceExt;

fn app() -> axum::Router {
    app_with(EngineConfig::default())
}

fn app_with(cfg: EngineConfig) -> axum::Router {
    let mut s = MemorySource::new();
    let pts: Vec<(i64, f64)> = (0..=20).map(|i| (i * 15_000, i as f64 * 15.0)).collect();
    s.add_str(
        &[("__name__", "up"), ("job", "api"), ("instance", "a")],
        pts.clone(),
    );
    s.add_str(
        &[("__name__", "up"), ("job", "web"), ("instance", "b")],
        pts,
    );
    s.add_str(&[("__name__", "temp"), ("room", "x")], vec![(60_000, 21.5)]);
    router(ApiState::new(Arc::new(s), cfg))
}

async fn call(app: axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/json"
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

async fn get(uri: &str) -> (StatusCode, Value) {
    call(app(), Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post(uri: &str, form: &str) -> (StatusCode, Value) {
    let req = Request::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap();
    call(app(), req).await
}

#[tokio::test]
async fn instant_query_vector() {
    let (st, v) = get("/api/v1/query?query=up%7Bjob%3D%22api%22%7D&time=60").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v,
        json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "instance": "a", "job": "api"}, "value": [60, "60"]}
        ]}})
    );
}

#[tokio::test]
async fn instant_query_post_form_rfc3339_and_scalar() {
    let (st, v) = post(
        "/api/v1/query",
        "query=scalar(temp)%20*%202&time=1970-01-01T00:01:00.5Z",
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["data"],
        json!({"resultType": "scalar", "result": [60.5, "43"]})
    );
    let (_, v) = get("/api/v1/query?query=%22hello%22&time=1").await;
    assert_eq!(
        v["data"],
        json!({"resultType": "string", "result": [1, "hello"]})
    );
    let (_, v) = get("/api/v1/query?query=up%5B30s%5D&time=60").await;
    assert_eq!(v["data"]["resultType"], "matrix");
    assert_eq!(
        v["data"]["result"][0]["values"].as_array().unwrap().len(),
        3
    );
}

#[tokio::test]
async fn range_query() {
    let (st, v) =
        get("/api/v1/query_range?query=sum%20by%20(job)%20(up)&start=0&end=60&step=30s").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["data"],
        json!({"resultType": "matrix", "result": [
            {"metric": {"job": "api"}, "values": [[0, "0"], [30, "30"], [60, "60"]]},
            {"metric": {"job": "web"}, "values": [[0, "0"], [30, "30"], [60, "60"]]}
        ]})
    );
    let (st, v) = post("/api/v1/query_range", "query=time()&start=0&end=1&step=0.5").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v["data"]["result"][0]["values"],
        json!([[0, "0"], [0.5, "0.5"], [1, "1"]])
    );
}

#[tokio::test]
async fn errors_use_prometheus_types_and_codes() {
    let cases: &[(&str, StatusCode, &str, &str)] = &[
        (
            "/api/v1/query?query=sum(",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "parse error",
        ),
        (
            "/api/v1/query",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "\"query\"",
        ),
        (
            "/api/v1/query?query=up&time=abc",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "\"time\"",
        ),
        (
            "/api/v1/query?query=sort_by_label(up,%22job%22)",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "sort_by_label",
        ),
        (
            "/api/v1/query_range?query=up&start=10&end=0&step=1",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "end timestamp",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=10&step=0",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "step",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=10",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "\"step\"",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=100000&step=1",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "maximum resolution",
        ),
        (
            "/api/v1/query?query=up%20/%20on()%20up&time=60",
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            "many-to-many",
        ),
        (
            "/api/v1/series",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "match[]",
        ),
    ];
    for (uri, status, kind, text) in cases {
        let (st, v) = get(uri).await;
        assert_eq!(st, *status, "{uri}: {v}");
        assert_eq!(v["status"], "error", "{uri}");
        assert_eq!(v["errorType"], *kind, "{uri}");
        assert!(v["error"].as_str().unwrap().contains(text), "{uri}: {v}");
    }
}

#[tokio::test]
async fn limits_are_422_and_timeouts_503() {
    let cfg = EngineConfig {
        max_samples: 5,
        ..EngineConfig::default()
    };
    let req = Request::get("/api/v1/query?query=up&time=60")
        .body(Body::empty())
        .unwrap();
    let (st, v) = call(app_with(cfg), req).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"].as_str().unwrap().contains("max_samples"), "{v}");
    let (st, v) = get("/api/v1/query?query=up&time=60&timeout=0s").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["errorType"], "timeout");
}

#[tokio::test]
async fn series_labels_and_values() {
    let (st, v) = get("/api/v1/series?match[]=up&match[]=temp").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v["data"],
        json!([
            {"__name__": "temp", "room": "x"},
            {"__name__": "up", "instance": "a", "job": "api"},
            {"__name__": "up", "instance": "b", "job": "web"}
        ])
    );
    let (_, v) = post(
        "/api/v1/series",
        "match%5B%5D=up%7Bjob%3D%22web%22%7D&start=0&end=300",
    )
    .await;
    assert_eq!(
        v["data"],
        json!([{"__name__": "up", "instance": "b", "job": "web"}])
    );
    // Time range excludes temp (only sample at 60 s).
    let (_, v) = get("/api/v1/series?match[]=temp&start=100&end=200").await;
    assert_eq!(v["data"], json!([]));
    let (_, v) = get("/api/v1/labels").await;
    assert_eq!(v["data"], json!(["__name__", "instance", "job", "room"]));
    let (_, v) = get("/api/v1/labels?match[]=temp").await;
    assert_eq!(v["data"], json!(["__name__", "room"]));
    let (_, v) = get("/api/v1/label/job/values").await;
    assert_eq!(v["data"], json!(["api", "web"]));
    let (_, v) = get("/api/v1/label/__name__/values").await;
    assert_eq!(v["data"], json!(["temp", "up"]));
    let (st, v) = get("/api/v1/label/0bad/values").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn format_query_exemplars_rules_alerts() {
    let (st, v) = get("/api/v1/format_query?query=sum%20by(job)(rate(up%5B5m%5D))").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"], "sum by (job) (rate(up[5m]))");
    let (st, v) = get("/api/v1/format_query?query=sum(").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (_, v) = post("/api/v1/query_exemplars", "query=up&start=0&end=10").await;
    assert_eq!(v, json!({"status": "success", "data": []}));
    let (_, v) = get("/api/v1/rules").await;
    assert_eq!(v["data"], json!({"groups": []}));
    let (_, v) = get("/api/v1/alerts").await;
    assert_eq!(v["data"], json!({"alerts": []}));
}

#[tokio::test]
async fn metadata_and_buildinfo() {
    let (st, v) = get("/api/v1/metadata").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, json!({"status": "success", "data": {}}));
    let (st, v) = get("/api/v1/status/buildinfo").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));
}

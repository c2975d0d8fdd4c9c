//! `GET /api/v1/openapi.json`: the OpenAPI 3 document of every HTTP route.
//!
//! Hand-written (`openapi.json` next to this file) and checked by the
//! `serve_openapi` test: every route the router declares must appear in it
//! with its methods, and every documented operation must be routed.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The document.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`.
pub async fn get_openapi() -> Response {
    let mut r = OPENAPI_JSON.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

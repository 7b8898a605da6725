//! `GET /`: the dashboard, one page compiled into the binary (no CDN): nodes with their health and
//! load, live streams with their viewers per edge, where the scheduler sends a selected stream's
//! viewers, a player for that stream (HLS through hls.js, served at `/assets/hls.min.js` from the
//! binary — see `build.rs`), and the live event feed (Server-Sent Events from `/api/v1/events`).
//! A play token in the page's own `?token=` goes with its requests.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../../assets/dashboard.html");

/// hls.js's minified build, or empty when this binary was built without npm (build.rs says so).
const HLS_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js"));

pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], PAGE).into_response()
}

pub async fn hls_js() -> Response {
    if HLS_JS.is_empty() {
        let why = "this ferrocast binary was built without hls.js (npm was not available to build.rs); \
                   rebuild with Node.js and npm installed, or with FERROCAST_HLS_JS=/path/to/hls.min.js\n";
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], why).into_response();
    }
    // The file changes only with the binary; a day of caching spares a reload of 620 KB.
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")],
        HLS_JS,
    )
        .into_response()
}

//! `GET /`: the dashboard, one page compiled into the binary (no CDN): nodes with their health and
//! load, live streams with their viewers per edge, where the scheduler sends a selected stream's
//! viewers, a player for that stream (HLS through hls.js, served at `/assets/hls.min.js` from the
//! binary — see `build.rs`), charts of viewers and bitrate per node and per stream over the last
//! 15 minutes (uPlot, `/assets/uplot.min.js`, from `/api/v1/stats/history`), and the live event
//! feed (Server-Sent Events from `/api/v1/events`). A play token in the page's own `?token=` goes
//! with its requests.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../../assets/dashboard.html");

/// hls.js's and uPlot's minified builds, or empty when this binary was built without npm
/// (build.rs says so).
const HLS_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js"));
const UPLOT_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/uplot.min.js"));
const UPLOT_CSS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/uplot.min.css"));

pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], PAGE).into_response()
}

pub async fn hls_js() -> Response {
    asset(HLS_JS, "text/javascript; charset=utf-8", "hls.js")
}

pub async fn uplot_js() -> Response {
    asset(UPLOT_JS, "text/javascript; charset=utf-8", "uPlot")
}

pub async fn uplot_css() -> Response {
    asset(UPLOT_CSS, "text/css; charset=utf-8", "uPlot")
}

fn asset(bytes: &'static [u8], content_type: &'static str, what: &str) -> Response {
    if bytes.is_empty() {
        let why = format!(
            "this ferrocast binary was built without {what} (npm was not available to build.rs); \
             rebuild with Node.js and npm installed (see crates/index/build.rs for offline builds)\n"
        );
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], why).into_response();
    }
    // The files change only with the binary; a day of caching spares reloads.
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=86400")], bytes).into_response()
}

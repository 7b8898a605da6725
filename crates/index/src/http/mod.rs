//! The index server's HTTP API: the directory, the scheduler, node registration, the hook
//! receiver, token minting and the operational endpoints. Handlers are small functions over the
//! shared state; none of them does network I/O (the directory they read is already in memory).
//! Admin routes take the [`admin::AdminKey`] extractor; the directory routes take
//! [`caller::Caller`] and show each caller what it may see.

pub mod admin;
pub mod caller;
mod clusters;
mod dashboard;
mod directory_api;
pub mod events;

pub use serve::serve;
mod hooks;
mod ops;
mod play;
mod play_answer;
mod register;
mod serve;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use crate::state::IndexState;

pub fn router(state: Arc<IndexState>) -> Router {
    Router::new()
        .route("/api/v1/streams", get(directory_api::streams))
        .route("/api/v1/streams/", get(directory_api::streams))
        .route("/api/streams", get(directory_api::streams))
        .route("/api/v1/streams/{app}/{stream}", get(directory_api::stream))
        .route("/api/v1/nodes", get(directory_api::nodes))
        .route("/api/v1/nodes/", get(directory_api::nodes))
        .route("/api/v1/nodes/{name}", get(directory_api::node))
        .route("/api/v1/play/{app}/{stream}", get(play::play_json))
        .route("/play/{app}/{file}", get(play::play_redirect))
        .route("/play/{app}/{stream}/index.m3u8", get(play::play_redirect_ll))
        .route("/play/{app}/{stream}/whep", axum::routing::post(play::play_redirect_whep))
        .route("/api/v1/publish/{app}/{stream}", get(play::publish))
        .route("/api/v1/clusters", any(clusters::clusters))
        .route("/api/v1/events", get(events::events))
        .route("/", get(dashboard::page))
        .route("/assets/hls.min.js", get(dashboard::hls_js))
        .route("/assets/uplot.min.js", get(dashboard::uplot_js))
        .route("/assets/uplot.min.css", get(dashboard::uplot_css))
        .route("/api/v1/stats/history", get(directory_api::stats_history))
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .layer(axum::middleware::map_response(cors))
        // Admin routes (which also refuse requests a browser sends) and the nodes' own calls: no
        // page of another origin may read their answers.
        .route("/api/v1/tokens", post(tokens::mint))
        .route("/api/v1/tokens/revoke", post(tokens::revoke))
        .route("/api/v1/history", get(ops::history))
        .route("/api/v1/reload", post(ops::reload))
        .route("/api/v1/srs/register", post(register::register))
        .route("/api/v1/hooks", post(hooks::hook))
        .fallback(not_found)
        .with_state(state)
}

/// Browsers (the dashboard, hls.js on other origins) may read the answers of the public routes.
async fn cors(mut resp: Response) -> Response {
    resp.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    resp
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(StatusCode::NOT_FOUND, format!("no such endpoint: {}", uri.path()))
}

/// A JSON error: `{"code": <HTTP status>, "error": "<what went wrong and what to do>"}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "code": status.as_u16(), "error": message.into() });
    (status, axum::Json(body)).into_response()
}

/// The value of `name` in a raw query string (`+` and `%XX` decoded).
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v).into_owned())
    })
}

/// A query value with `+` and `%XX` decoded (borrowed when there is nothing to decode).
pub fn percent_decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.bytes().any(|b| b == b'+' || b == b'%') {
        return s.into();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                // Two hex digits exactly (`from_str_radix` alone would take `%+5`).
                let hex = Some(&bytes[i + 1..i + 3])
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_decode() {
        let q = Some("proto=flv&region=eu%2Dwest&token=a+b&empty");
        assert_eq!(query_param(q, "region").as_deref(), Some("eu-west"));
        assert_eq!(query_param(q, "token").as_deref(), Some("a b"));
        assert_eq!(query_param(q, "empty").as_deref(), Some(""));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param(Some("a=%4"), "a").as_deref(), Some("%4"));
        assert_eq!(query_param(Some("a=%zz"), "a").as_deref(), Some("%zz"));
        assert_eq!(query_param(Some("a=%+5"), "a").as_deref(), Some("% 5"), "a sign is no hex digit");
        assert_eq!(query_param(Some("a=%-5x"), "a").as_deref(), Some("%-5x"));
    }
}

//! `GET /api/v1/streams`, `/api/v1/streams/{app}/{stream}`, `/api/v1/nodes`, `/api/v1/nodes/{name}`:
//! the directory as JSON. A stream query with `?token=<play token>` sees only the streams that
//! token may play.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{error, json as shape, query_param};
use crate::auth::{Action, Claims, TokenError, now_secs, token_in};
use crate::state::IndexState;

/// Default and largest page of the stream list.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// The claims of the play token in `q`, checked against the caller; `None` without a token.
fn play_token(
    st: &IndexState,
    q: Option<&str>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Option<Claims>, TokenError> {
    let Some(token) = q.and_then(token_in) else { return Ok(None) };
    let xff = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = st.resolver.load().client_ip(peer.ip(), xff);
    let auth = st.auth.load();
    auth.verify(token).and_then(|c| c.usable(Action::Play, client, now_secs()).map(|()| c)).map(Some)
}

/// Live streams, sorted by key; `app=` and `prefix=` (of the stream name) filter, `vhost=` too;
/// `start=` and `count=` page (`total` counts the filtered list); `token=` (a play token) keeps
/// the streams it may play.
pub async fn streams(
    State(st): State<Arc<IndexState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = q.as_deref();
    let token = match play_token(&st, q, peer, &headers) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::FORBIDDEN, e.to_string()),
    };
    let dir = st.directory.load();
    let app = query_param(q, "app");
    let prefix = query_param(q, "prefix").or_else(|| query_param(q, "name"));
    let vhost = query_param(q, "vhost");
    let start: usize = query_param(q, "start").and_then(|v| v.parse().ok()).unwrap_or(0);
    let count: usize = query_param(q, "count").and_then(|v| v.parse().ok()).unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let matching = dir.sorted_streams().filter(|s| {
        app.as_deref().is_none_or(|a| *s.app == *a)
            && vhost.as_deref().is_none_or(|v| *s.vhost == *v)
            && prefix.as_deref().is_none_or(|p| s.stream.starts_with(p))
            && token.as_ref().is_none_or(|c| c.pattern.covers(&s.app, &s.stream))
    });
    let mut total = 0;
    let mut page = Vec::new();
    for s in matching {
        if total >= start && page.len() < count {
            page.push(shape::stream(&dir, s));
        }
        total += 1;
    }
    Json(json!({ "code": 0, "total": total, "start": start, "count": page.len(), "streams": page })).into_response()
}

pub async fn stream(
    State(st): State<Arc<IndexState>>,
    Path((app, stream)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    match play_token(&st, q.as_deref(), peer, &headers) {
        Ok(Some(c)) if !c.pattern.covers(&app, crate::srs::strip_ext(&stream)) => {
            return error(StatusCode::FORBIDDEN, format!("the token is for {}, not {app}/{stream}", c.pattern));
        }
        Ok(_) => {}
        Err(e) => return error(StatusCode::FORBIDDEN, e.to_string()),
    }
    let vhost = query_param(q.as_deref(), "vhost").unwrap_or_else(|| "__defaultVhost__".into());
    let key = crate::directory::stream_key(&vhost, &app, crate::srs::strip_ext(&stream));
    let dir = st.directory.load();
    match dir.streams.get(key.as_str()) {
        Some(s) => Json(json!({ "code": 0, "stream": shape::stream(&dir, s) })).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("stream {key} is not live on any node")),
    }
}

pub async fn nodes(State(st): State<Arc<IndexState>>) -> Response {
    let dir = st.directory.load();
    let cap = st.config.load().scheduler.default_max_viewers;
    let nodes: Vec<_> = (0..dir.nodes.len()).map(|i| shape::node(&dir, i, cap)).collect();
    Json(json!({ "code": 0, "nodes": nodes })).into_response()
}

pub async fn node(State(st): State<Arc<IndexState>>, Path(name): Path<String>) -> Response {
    let dir = st.directory.load();
    let cap = st.config.load().scheduler.default_max_viewers;
    match dir.nodes.binary_search_by(|n| n.spec.name.as_str().cmp(&name)) {
        Ok(i) => Json(json!({ "code": 0, "node": shape::node(&dir, i, cap) })).into_response(),
        Err(_) => error(StatusCode::NOT_FOUND, format!("no node named {name:?}; GET /api/v1/nodes lists them")),
    }
}

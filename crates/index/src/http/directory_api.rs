//! `GET /api/v1/streams`, `/api/v1/streams/{app}/{stream}`, `/api/v1/nodes`, `/api/v1/nodes/{name}`:
//! the directory as JSON, cut to what the [`Caller`] may see (streams of token-protected apps only
//! with a play token that covers them, node errors only for admins).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::caller::Caller;
use super::{error, query_param};
use crate::directory::json as shape;
use crate::state::IndexState;

/// Default and largest page of the stream list.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Live streams, sorted by key; `app=` and `prefix=` (of the stream name) filter, `vhost=` too;
/// `start=` and `count=` page (`total` counts the filtered list); streams the caller may not see
/// are left out as if they were not live.
pub async fn streams(State(st): State<Arc<IndexState>>, caller: Caller, RawQuery(q): RawQuery) -> Response {
    let q = q.as_deref();
    let auth = st.auth.load();
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
            && caller.may_see(&auth, &s.app, &s.stream)
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
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Response {
    if !caller.may_see(&st.auth.load(), &app, crate::srs::strip_ext(&stream)) {
        return caller.refusal(&app, &stream);
    }
    let vhost = query_param(q.as_deref(), "vhost").unwrap_or_else(|| crate::directory::DEFAULT_VHOST.into());
    let key = crate::directory::stream_key(&vhost, &app, crate::srs::strip_ext(&stream));
    let dir = st.directory.load();
    match dir.streams.get(key.as_str()) {
        Some(s) => Json(json!({ "code": 0, "stream": shape::stream(&dir, s) })).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("stream {key} is not live on any node")),
    }
}

/// Every node; `last_error` is only a word ("unreachable" or "error") unless the caller is an admin.
pub async fn nodes(State(st): State<Arc<IndexState>>, caller: Caller) -> Response {
    let dir = st.directory.load();
    let cap = st.config.load().scheduler.default_max_viewers;
    let nodes: Vec<_> = (0..dir.nodes.len()).map(|i| shape::node(&dir, i, cap, caller.is_admin())).collect();
    Json(json!({ "code": 0, "nodes": nodes })).into_response()
}

/// The last 15 minutes of viewers and bitrate per node, and per stream the caller may see.
pub async fn stats_history(State(st): State<Arc<IndexState>>, caller: Caller) -> Response {
    let auth = st.auth.load();
    Json(st.stats_history.series(|app, stream| caller.may_see(&auth, app, stream))).into_response()
}

pub async fn node(State(st): State<Arc<IndexState>>, caller: Caller, Path(name): Path<String>) -> Response {
    let dir = st.directory.load();
    let cap = st.config.load().scheduler.default_max_viewers;
    match dir.nodes.binary_search_by(|n| n.spec.name.as_str().cmp(&name)) {
        Ok(i) => Json(json!({ "code": 0, "node": shape::node(&dir, i, cap, caller.is_admin()) })).into_response(),
        Err(_) => error(StatusCode::NOT_FOUND, format!("no node named {name:?}; GET /api/v1/nodes lists them")),
    }
}

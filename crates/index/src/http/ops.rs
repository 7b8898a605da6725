//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`, and the admin routes ([`AdminKey`])
//! `POST /api/v1/reload` and `/api/v1/history` (which tells where every stream ran, and why nodes
//! went down).

use crate::store::StoreError;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::admin::AdminKey;
use super::error;
use crate::clock::now_ms;
use crate::config::Role;
use crate::state::IndexState;
use crate::store::HistoryQuery;

/// The process is alive and serving HTTP: a constant JSON answer (also the baseline the
/// scheduler's request rate is compared with in bench/index.sh).
pub async fn healthz() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], r#"{"code":0,"status":"ok"}"#).into_response()
}

/// Ready when the index has a fresh view (a successful poll within 3 intervals) of at least one
/// origin; load balancers send traffic to ready replicas only. In shared mode the answer also says
/// `redis` ("up"/"down") and `role` ("leader", "follower", or "standalone" while Redis is down).
/// Redis down alone does not make a replica unready: it still answers from its directory, which it
/// keeps fresh by polling on its own; so a Redis outage never takes every replica out of a load
/// balancer. Alert on `ferrocast_index_redis_up` instead. `store` says whether the database
/// answers ("up"/"down") for the same reason without changing readiness: scheduling never waits
/// on it, and history writes queue while it is down (`ferrocast_index_store_up`).
pub async fn readyz(State(st): State<Arc<IndexState>>) -> Response {
    let dir = st.directory.load();
    let fresh_ms = 3 * st.config.load().poll.interval_ms;
    let now = now_ms();
    let fresh = dir
        .nodes
        .iter()
        .filter(|n| n.spec.role == Role::Origin && n.health.schedulable())
        .filter(|n| n.last_ok_ms.is_some_and(|t| now.saturating_sub(t) <= fresh_ms))
        .count();
    let mut body = json!({ "ready": fresh > 0, "fresh_origins": fresh, "nodes": dir.nodes.len() });
    body["store"] = json!({
        "backend": st.store.kind(),
        "state": if st.store.health().down.load(std::sync::atomic::Ordering::Relaxed) { "down" } else { "up" },
    });
    if let Some(sh) = &st.replicas {
        body["redis"] = json!(if sh.is_up() { "up" } else { "down" });
        body["role"] = json!(sh.role().as_str());
    }
    let status = if fresh > 0 { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

pub async fn metrics(State(st): State<Arc<IndexState>>) -> Response {
    let mut text = st.metrics.render(&st.directory.load());
    crate::metrics::render_replicas(&mut text, st.replicas.as_deref());
    crate::metrics::render_store(&mut text, &st.store);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Re-reads the config file (flags still win) without dropping state. SIGHUP does the same.
pub async fn reload(State(st): State<Arc<IndexState>>, _admin: AdminKey) -> Response {
    match crate::reload(&st) {
        Ok(msg) => Json(json!({ "code": 0, "message": msg })).into_response(),
        Err(e) => {
            tracing::warn!("reload refused: {e}");
            error(StatusCode::BAD_REQUEST, format!("reload refused, the running config stays: {e}"))
        }
    }
}

/// Stream sessions and node state changes: `stream=` (key or prefix), `node=`, `since_ms=`, `limit=`.
pub async fn history(State(st): State<Arc<IndexState>>, _admin: AdminKey, Query(q): Query<HistoryQuery>) -> Response {
    match st.store.history(q).await {
        Ok(h) => Json(json!({ "code": 0, "sessions": h.sessions, "node_events": h.node_events })).into_response(),
        Err(e @ (StoreError::Unavailable(_) | StoreError::Busy)) => {
            error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the history now: {e}"))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the history: {e}")),
    }
}

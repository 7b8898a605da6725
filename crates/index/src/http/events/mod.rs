//! `GET /api/v1/events`: a WebSocket when the request asks for an upgrade, Server-Sent Events
//! otherwise (as when it sends `Accept: text/event-stream`). Both carry the same feed: `?app=` and
//! `?stream=` filter stream events; a WebSocket resumes after `?since=ID`, an SSE stream after its
//! `Last-Event-ID` header (or `?since=`). A listener sees what its caller may see (play token or
//! admin key, as on the stream routes).

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{RawQuery, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::caller::Caller;
use super::{error, query_param};

pub mod feed;
mod sse;
mod ws;

use crate::state::IndexState;
use feed::{Feed, Filter};

pub async fn events(
    State(st): State<Arc<IndexState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let q = q.as_deref();
    let non_empty = |v: String| (!v.is_empty()).then_some(v);
    let filter =
        Filter { app: query_param(q, "app").and_then(non_empty), stream: query_param(q, "stream").and_then(non_empty) };
    let since = match parse_id("since", query_param(q, "since")) {
        Ok(since) => since,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let token_sig = Caller::token_signature(&headers, q);
    let limits = st.config.load().http.clone();
    // A new listener costs a snapshot of the directory: their number is capped.
    let Some(slot) = st.events.join(limits.max_listeners) else {
        tracing::warn!(max = limits.max_listeners, "event listener refused: http.max_listeners reached");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the index serves http.max_listeners ({}) event listeners already: try again later",
                limits.max_listeners
            ),
        );
    };
    match upgrade {
        Ok(upgrade) => {
            let upgrade =
                upgrade.max_message_size(limits.ws_max_message_bytes).max_frame_size(limits.ws_max_message_bytes);
            ws::respond(upgrade, Feed::open(st, filter, caller, since).holding(slot).revocable(token_sig))
        }
        // A WebSocket request that is not a valid one: say why, do not answer with SSE.
        Err(rejection) if headers.contains_key(header::UPGRADE) => rejection.into_response(),
        Err(_) => {
            let last = headers.get("last-event-id").map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
            let last = match parse_id("Last-Event-ID", last) {
                Ok(last) => last,
                Err(why) => return error(StatusCode::BAD_REQUEST, why),
            };
            sse::respond(Feed::open(st, filter, caller, last.or(since)).holding(slot).revocable(token_sig))
        }
    }
}

/// An event id from the query or a header; empty is none.
fn parse_id(what: &str, value: Option<String>) -> Result<Option<u64>, String> {
    match value.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            format!("{what}={v:?} is not an event id: pass the id of the last event received, a whole number")
        }),
    }
}

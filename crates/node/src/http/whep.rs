//! WHEP over HTTP (the IETF WebRTC-HTTP egress protocol): `POST /{app}/{stream}/whep` with an SDP
//! offer answers `201 Created`, the SDP answer and the session's URL in `Location`; `DELETE` on
//! that URL ends the session; `OPTIONS` answers browsers' CORS preflights. The node gathers its
//! one candidate up front, so trickle (`PATCH`) is a 405.
//!
//! The viewer is admitted like any player: `on_play` with its token (`?token=` or, the WHEP way,
//! `Authorization: Bearer`), an `rtc-play` client in the API, `on_stop` when the session ends.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::serve::ConnInfo;
use crate::admission::Delivery;
use crate::context::NodeContext;
use crate::key::{StreamKey, vhost_from};
use crate::stats::ClientKind;

/// The largest SDP offer taken.
const MAX_OFFER: usize = 64 * 1024;

fn answer(status: StatusCode, text: impl Into<String>) -> Response {
    let mut r = super::plain(status, &text.into());
    cors(r.headers_mut());
    r
}

fn cors(h: &mut HeaderMap) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Location"));
}

/// `OPTIONS`: what a browser asks before its POST or DELETE.
pub fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    cors(h);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, DELETE, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Content-Type, Authorization"));
    h.insert("accept-post", HeaderValue::from_static("application/sdp"));
    r
}

/// `PATCH` (trickle ICE): not needed, the node's candidate is in the answer.
pub fn no_trickle() -> Response {
    answer(StatusCode::METHOD_NOT_ALLOWED, "trickle ICE is not used: the answer holds the node's candidate")
}

/// The viewer's query, with a bearer token moved into it as `token=` (how hooks see tokens).
fn param_with_bearer(query: &str, headers: &HeaderMap) -> String {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic() && b != b'&' && b != b'#'));
    match bearer {
        Some(token) if !query.contains("token=") => {
            let sep = if query.is_empty() { "?" } else { "&" };
            format!("{query}{sep}token={token}")
        }
        _ => query.to_string(),
    }
}

/// `POST /{app}/{stream}/whep`.
pub async fn offer(
    ctx: Arc<NodeContext>,
    conn: &ConnInfo,
    headers: &HeaderMap,
    (app, stream): (&str, &str),
    query: &str,
    body: Bytes,
) -> Response {
    let sdp_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/sdp"));
    if !sdp_type {
        return answer(StatusCode::UNSUPPORTED_MEDIA_TYPE, "a WHEP offer is Content-Type: application/sdp");
    }
    if body.len() > MAX_OFFER {
        return answer(StatusCode::PAYLOAD_TOO_LARGE, format!("an SDP offer is at most {MAX_OFFER} bytes"));
    }
    let Ok(sdp) = String::from_utf8(body.to_vec()) else {
        return answer(StatusCode::BAD_REQUEST, "the SDP offer is not UTF-8");
    };
    let param = param_with_bearer(query, headers);
    let key = match StreamKey::parse(&vhost_from(&param), app, stream) {
        Ok(key) => key,
        Err(e) => return super::bad_name(e),
    };
    // Origin cluster: the offer goes (307, method and body kept) to the origin holding the
    // stream. The Location keeps the viewer's own query, never a token from its header.
    let path = format!("/{app}/{stream}/whep");
    if let Some(mut to) = super::redirect_elsewhere(&ctx, &key, (&path, query), StatusCode::TEMPORARY_REDIRECT).await {
        cors(to.headers_mut());
        return to;
    }
    let Some(whep) = ctx.whep.get().cloned() else {
        return answer(StatusCode::NOT_FOUND, "WebRTC is not enabled on this node (start it with --webrtc-udp)");
    };
    // A session costs the stream's bitrate for as long as it lasts: capped per viewer address
    // and in all before any hook runs.
    let ip = crate::client_addr::client_ip(headers, conn.peer.ip(), &ctx.config.trusted_proxies);
    let Some(permit) = whep.limiter.try_acquire(ip) else {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebRTC sessions on this node, or from your address (--max-connections, --max-connections-per-ip)",
        );
    };
    let player = super::Player {
        key: &key,
        app,
        name: stream.to_string(),
        kind: ClientKind::RtcPlay,
        ip: ip.to_string(),
        param,
        kick: CancellationToken::new(),
        delivery: Delivery::Frames,
    };
    let viewer = match super::admit_player(&ctx, headers, player).await {
        Ok(viewer) => viewer,
        Err(refused) => return answer(StatusCode::FORBIDDEN, refused),
    };
    let client = viewer.id().to_string();
    match whep.offer(sdp, viewer, permit).await {
        Ok(a) => {
            info!(stream = %key, %client, session = %a.id, "whep viewer started");
            let location = format!("/{app}/{stream}/whep/{}", a.id);
            let mut r = (StatusCode::CREATED, a.sdp).into_response();
            let h = r.headers_mut();
            cors(h);
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
            if let Ok(v) = HeaderValue::from_str(&location) {
                h.insert(header::LOCATION, v);
            }
            r
        }
        Err(e) => {
            info!(stream = %key, %client, "whep offer refused: {e}");
            let status = match e {
                crate::whep::Refused::BadOffer(_) => StatusCode::BAD_REQUEST,
                crate::whep::Refused::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            answer(status, e.to_string())
        }
    }
}

/// `DELETE /{app}/{stream}/whep/{id}`: ends the session.
pub async fn delete(ctx: Arc<NodeContext>, id: &str) -> Response {
    match ctx.whep.get() {
        Some(whep) => {
            whep.close(id.to_string()).await;
            answer(StatusCode::OK, "session ended")
        }
        None => answer(StatusCode::NOT_FOUND, "WebRTC is not enabled on this node"),
    }
}

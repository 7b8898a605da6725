//! HTTP-FLV players: `GET /{app}/{stream}.flv`.
//!
//! The response is the FLV header followed by the tags each frame carries pre-encoded: one write
//! per batch of the player's feed (`hub::feed` has the write window), the frames shared rather
//! than copied (`flv_chunks`). A player that arrives before the publisher waits (bounded by the play
//! wait); if no publisher comes, it gets a 404 rather than an empty stream.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ferrocast_media::flv::flv_header;
use tracing::{info, warn};

use super::flv_chunks::TagChunks;
use super::serve::ConnInfo;
use crate::admission::{Delivery, Viewer};
use crate::context::NodeContext;
use crate::hub::FeedEnd;
use crate::key::{StreamKey, vhost_from};
use crate::stats::ClientKind;
use crate::stats::delivery::WriteProto;

pub async fn play(
    State(ctx): State<Arc<NodeContext>>,
    axum::Extension(conn): axum::Extension<ConnInfo>,
    Path((app, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(name) = file.strip_suffix(".flv") else {
        return super::plain(StatusCode::NOT_FOUND, "not found: only {app}/{stream}.flv is served here");
    };
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    let key = match StreamKey::parse(&vhost_from(&query), &app, name) {
        Ok(key) => key,
        Err(e) => return super::bad_name(e),
    };
    let path = format!("/{app}/{file}");
    if let Some(to) = super::redirect_elsewhere(&ctx, &key, (&path, &query), StatusCode::FOUND).await {
        return to;
    }
    let player = super::Player {
        key: &key,
        app: &app,
        name: file.clone(),
        kind: ClientKind::FlvPlay,
        ip: super::client_ip(&ctx, &headers, &conn),
        param: query,
        kick: conn.kick.clone(),
        delivery: Delivery::Frames,
    };
    let mut viewer = match super::admit_player(&ctx, &headers, player).await {
        Ok(viewer) => viewer,
        Err(refused) => return super::plain(StatusCode::FORBIDDEN, &refused),
    };
    // Wait for the first media before answering, so a stream that never comes is a 404.
    let first = tokio::select! {
        b = viewer.next_batch() => b,
        _ = conn.kick.cancelled() => Err(FeedEnd::Closed),
    };
    let first = match first {
        Ok(batch) => batch,
        Err(FeedEnd::NoPublisher) => {
            info!(stream = %key, "http-flv: no such stream");
            return super::plain(StatusCode::NOT_FOUND, &format!("stream {key} is not being published"));
        }
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    };
    viewer.begin();
    info!(stream = %key, client = viewer.id(), "http-flv play started");
    let header = Bytes::copy_from_slice(&flv_header(true, true)[..]);
    let state = FlvBody { ctx, viewer, pending: Some(header), chunks: TagChunks::start(first) };
    let stream = futures_util::stream::unfold(state, next_chunk);
    Response::builder()
        .header(header::CONTENT_TYPE, "video/x-flv")
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The response body's state. However the play ends (stream end, kick, client gone), dropping it
/// drops the viewer, and the hook service hears `on_stop`. A kick (API `DELETE` of the client)
/// closes the connection in `serve`, which drops the body: the body does not watch for it.
struct FlvBody {
    ctx: Arc<NodeContext>,
    viewer: Viewer,
    /// The FLV header, before any tag.
    pending: Option<Bytes>,
    /// The tags still to send, without copies (see [`TagChunks`]).
    chunks: TagChunks,
}

async fn next_chunk(mut s: FlvBody) -> Option<(Result<Bytes, Infallible>, FlvBody)> {
    if let Some(chunk) = s.pending.take().or_else(|| s.chunks.next_chunk()) {
        s.viewer.guard().traffic().add_send(chunk.len() as u64);
        return Some((Ok(chunk), s));
    }
    match s.viewer.next_batch().await {
        Ok(packets) => {
            if let Some(oldest) = packets.first() {
                // Handed to the HTTP stack, which asks for the next batch once this one is written.
                s.ctx.delivery.wrote(WriteProto::Flv, oldest.received);
            }
            s.chunks.push_batch(packets);
            let chunk = s.chunks.next_chunk()?;
            s.viewer.guard().traffic().add_send(chunk.len() as u64);
            Some((Ok(chunk), s))
        }
        Err(FeedEnd::TooSlow) => {
            warn!(client = s.viewer.id(), skipped = s.viewer.skipped(), "slow http-flv player dropped");
            None
        }
        Err(end) => {
            info!(client = s.viewer.id(), ?end, "http-flv play ended");
            None
        }
    }
}

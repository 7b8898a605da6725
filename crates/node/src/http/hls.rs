//! HLS over HTTP: `GET /{app}/{stream}.m3u8` and `GET /{app}/{stream}-{seq}.ts`, both answered
//! from the in-memory segment window, and the admission both HLS variants share (the LL-HLS
//! routes are in `super::llhls`). The viewer's query (its token) and its session id (`hls_ctx`)
//! are carried into the segment URLs; a segment is served only to the session admitted for its
//! stream from the requesting address (see `crate::hls::HlsSessions`). A segment that has left
//! the window is a 404, never a stale or partial one.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::client_ip;
use super::serve::ConnInfo;
use crate::admission::Delivery;
use crate::context::NodeContext;
use crate::key::{StreamKey, vhost_from};
use crate::stats::ClientKind;

/// Splits `hls_ctx` out of a query: (the session id, the rest with its leading `?` or "").
fn split_session(query: &str) -> (Option<String>, String) {
    let mut id = None;
    let rest: Vec<&str> = query
        .trim_start_matches('?')
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter(|kv| match kv.strip_prefix("hls_ctx=") {
            Some(v) => {
                id = Some(v.to_string());
                false
            }
            None => true,
        })
        .collect();
    (id, if rest.is_empty() { String::new() } else { format!("?{}", rest.join("&")) })
}

/// The answer to a request that is refused (boxed: a `Response` is large).
pub type Refusal = Box<Response>;

/// A viewer admitted to a stream's HLS: its stream, its session id (`hls_ctx`), its address, and
/// the query (token) its URIs carry.
pub struct Admitted {
    pub key: StreamKey,
    pub id: String,
    pub ip: String,
    pub param: String,
}

/// The admission every HLS playlist request goes through (TS and LL-HLS alike): the viewer's
/// session if it has one (by `hls_ctx`, or by address, stream and query), else `on_play` and a
/// new session, kept only once the stream has something to play (`ready`). Before that exists
/// (a just-started stream) it waits up to two segment durations, on an edge plus the time to
/// reach the origin. `path` is the playlist's path, for an origin cluster's redirect.
pub async fn admit_viewer(
    ctx: &Arc<NodeContext>,
    conn: &ConnInfo,
    headers: &HeaderMap,
    (app, name, path): (&str, &str, &str),
    query: &str,
    ready: impl Fn(&StreamKey) -> bool,
) -> Result<Admitted, Refusal> {
    let (session, param) = split_session(query);
    let key = StreamKey::parse(&vhost_from(&param), app, name).map_err(|e| Box::new(super::bad_name(e)))?;
    if session.is_none()
        && let Some(to) = super::redirect_elsewhere(ctx, &key, (path, &param), StatusCode::FOUND).await
    {
        return Err(Box::new(to));
    }
    let ip = client_ip(ctx, headers, conn);
    let sessions = &ctx.hls.sessions;
    let existing = session.filter(|id| sessions.touch(id, &key, &ip, 0)).or_else(|| sessions.find(&ip, &key, &param));
    // A new viewer is admitted (checked by on_play) now, kept only if the stream exists.
    let mut new_viewer = None;
    if existing.is_none() {
        let player = super::Player {
            key: &key,
            app,
            // As SRS names an HLS client (both variants): the API may show it as the stream's name.
            name: format!("{name}.m3u8"),
            kind: ClientKind::HlsPlay,
            ip: ip.clone(),
            param: param.clone(),
            kick: CancellationToken::new(),
            delivery: Delivery::Segments,
        };
        match super::admit_player(ctx, headers, player).await {
            Ok(viewer) => new_viewer = Some(viewer),
            Err(refused) => return Err(Box::new(super::plain(StatusCode::FORBIDDEN, &refused))),
        }
    }
    let mut wait = Duration::from_millis(u64::from(ctx.config.hls.fragment_ms) * 2);
    if let Some(edge) = &ctx.edge {
        // On an edge the viewer's admission started the pull; segmenting goes with it.
        ctx.hls.ensure(ctx, &ctx.hub.source(&key));
        wait += edge.config.connect_timeout();
    }
    let deadline = tokio::time::Instant::now() + wait;
    while !ready(&key) {
        if tokio::time::Instant::now() >= deadline {
            return Err(Box::new(super::plain(
                StatusCode::NOT_FOUND,
                &format!("stream {key} has no HLS segments (is it being published?)"),
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = match (existing, new_viewer) {
        (Some(id), _) => id,
        (None, Some(mut viewer)) => {
            info!(stream = %key, client = viewer.id(), "hls viewer started");
            viewer.begin();
            match sessions.insert(viewer) {
                Some(id) => id,
                None => {
                    warn!(stream = %key, "hls viewer refused: the session table is full");
                    let full = (StatusCode::SERVICE_UNAVAILABLE, "too many HLS viewers on this node\n");
                    return Err(Box::new(full.into_response()));
                }
            }
        }
        (None, None) => return Err(Box::new(super::plain(StatusCode::NOT_FOUND, "no session"))),
    };
    Ok(Admitted { key, id, ip, param })
}

/// The session a segment (or part, or init segment) request names: its `hls_ctx` must be a
/// session admitted (by `on_play`) for this stream from this address. Anything else is a 403,
/// whether or not the resource exists, so resource names reveal nothing either.
pub fn session_of(
    ctx: &NodeContext,
    conn: &ConnInfo,
    headers: &HeaderMap,
    app: &str,
    name: &str,
    query: &str,
) -> Result<Admitted, Refusal> {
    let (session, param) = split_session(query);
    let key = StreamKey::parse(&vhost_from(&param), app, name).map_err(|e| Box::new(super::bad_name(e)))?;
    let ip = client_ip(ctx, headers, conn);
    let Some(id) = session.filter(|id| ctx.hls.sessions.touch(id, &key, &ip, 0)) else {
        warn!(stream = %key, %ip, "hls segment refused: no session admitted for this stream from this address");
        let refused = (StatusCode::FORBIDDEN, "segments need the hls_ctx of a playlist this address was given\n");
        return Err(Box::new(refused.into_response()));
    };
    Ok(Admitted { key, id, ip, param })
}

/// The URI of `file` for an admitted viewer: its query (token) and its `hls_ctx`.
pub fn viewer_uri(v: &Admitted, file: &str) -> String {
    let sep = if v.param.is_empty() { "?" } else { "&" };
    format!("{file}{}{sep}hls_ctx={}", v.param, v.id)
}

/// The live playlist, `{stream}.m3u8`.
pub async fn playlist(
    ctx: Arc<NodeContext>,
    conn: &ConnInfo,
    headers: &HeaderMap,
    app: &str,
    name: &str,
    query: &str,
) -> Response {
    let ready =
        |key: &StreamKey| ctx.hls.get(key).is_some_and(|s| s.lock().unwrap_or_else(|e| e.into_inner()).has_segments());
    let path = format!("/{app}/{name}.m3u8");
    let v = match admit_viewer(&ctx, conn, headers, (app, name, &path), query, ready).await {
        Ok(v) => v,
        Err(response) => return *response,
    };
    // The name is escaped: whatever it holds, it stays one URI on one line.
    let stream = crate::key::escape_segment(&v.key.stream);
    let uri = |seq: u64| viewer_uri(&v, &format!("{stream}-{seq}.ts"));
    let segmenter = ctx.hls.get(&v.key);
    let text = segmenter.and_then(|s| s.lock().unwrap_or_else(|e| e.into_inner()).playlist(uri));
    let Some(text) = text else { return super::plain(StatusCode::NOT_FOUND, "the stream ended") };
    ctx.hls.sessions.touch(&v.id, &v.key, &v.ip, text.len() as u64);
    (
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        text,
    )
        .into_response()
}

/// One segment, `{stream}-{seq}.ts`, for an admitted session (see [`session_of`]).
pub async fn segment(
    ctx: Arc<NodeContext>,
    conn: &ConnInfo,
    headers: &HeaderMap,
    app: &str,
    file: &str,
    query: &str,
) -> Response {
    let Some((name, seq)) = file.strip_suffix(".ts").and_then(|f| f.rsplit_once('-')) else {
        return super::plain(StatusCode::NOT_FOUND, "not a segment name: expected {stream}-{seq}.ts");
    };
    let Ok(seq) = seq.parse::<u64>() else { return super::plain(StatusCode::NOT_FOUND, "not a segment number") };
    let v = match session_of(&ctx, conn, headers, app, name, query) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let found = ctx.hls.get(&v.key).and_then(|s| s.lock().unwrap_or_else(|e| e.into_inner()).segment(seq));
    match found {
        Some(seg) => {
            ctx.hls.sessions.touch(&v.id, &v.key, &v.ip, seg.data.len() as u64);
            ([(header::CONTENT_TYPE, "video/mp2t"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], seg.data.clone())
                .into_response()
        }
        None => super::plain(StatusCode::NOT_FOUND, &format!("segment {seq} of {} is not in the live window", v.key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_id_is_split_from_the_query() {
        assert_eq!(split_session("?token=a&hls_ctx=x1"), (Some("x1".into()), "?token=a".into()));
        assert_eq!(split_session("?hls_ctx=x1"), (Some("x1".into()), String::new()));
        assert_eq!(split_session(""), (None, String::new()));
        assert_eq!(split_session("?token=a"), (None, "?token=a".into()));
    }
}

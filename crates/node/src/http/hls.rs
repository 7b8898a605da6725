//! HLS over HTTP: `GET /{app}/{stream}.m3u8` and `GET /{app}/{stream}-{seq}.ts`, both answered
//! from the in-memory segment window. The viewer's query (its token) and its session id
//! (`hls_ctx`) are carried into the segment URLs; a segment is served only to the session admitted
//! for its stream from the requesting address (see `crate::hls::HlsSessions`). A segment that has
//! left the window is a 404, never a stale or partial one.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::flv::client_ip;
use super::serve::ConnInfo;
use crate::admission::{self, Delivery, ViewerRequest};
use crate::context::NodeContext;
use crate::key::{StreamKey, vhost_from};
use crate::stats::{ClientInfo, ClientKind};

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("{what}\n")).into_response()
}

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

/// The live playlist. Before the first segment of a just-started stream exists, waits up to two
/// segment durations for it. The first request of a viewer opens its session (after `on_play`).
pub async fn playlist(
    ctx: Arc<NodeContext>,
    conn: &ConnInfo,
    headers: &HeaderMap,
    app: &str,
    name: &str,
    query: &str,
) -> Response {
    let (session, param) = split_session(query);
    let key = match StreamKey::parse(&vhost_from(&param), app, name) {
        Ok(key) => key,
        Err(e) => return super::bad_name(e),
    };
    if session.is_none()
        && let Some(to) = super::redirect_elsewhere(&ctx, &key, &format!("/{app}/{name}.m3u8"), &param).await
    {
        return to;
    }
    let ip = client_ip(&ctx, headers, conn);
    let sessions = &ctx.hls.sessions;
    let existing = session.filter(|id| sessions.touch(id, &key, &ip, 0)).or_else(|| sessions.find(&ip, &key, &param));
    // A new viewer is admitted (checked by on_play) now, kept only if the stream exists.
    let mut new_viewer = None;
    if existing.is_none() {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let info = ClientInfo {
            key: key.clone(),
            name: format!("{name}.m3u8"),
            kind: ClientKind::HlsPlay,
            ip: ip.clone(),
            tc_url: format!("http://{host}/{app}"),
            page_url: headers.get(header::REFERER).and_then(|h| h.to_str().ok()).unwrap_or("").to_string(),
            swf_url: String::new(),
        };
        let request =
            ViewerRequest { info, param: param.clone(), kick: CancellationToken::new(), delivery: Delivery::Segments };
        match admission::admit(&ctx, request).await {
            Ok(viewer) => new_viewer = Some(viewer),
            Err(refused) => {
                let e = refused.reason;
                warn!(stream = %key, client = refused.client, "hls play refused at admission: {e}");
                return (StatusCode::FORBIDDEN, format!("play refused: {e}\n")).into_response();
            }
        }
    }
    let mut wait = Duration::from_millis(u64::from(ctx.config.hls.fragment_ms) * 2);
    if let Some(edge) = &ctx.edge {
        // On an edge the viewer's admission started the pull; segmenting goes with it.
        ctx.hls.ensure(&ctx, &ctx.hub.source(&key));
        wait += edge.config.connect_timeout();
    }
    let deadline = tokio::time::Instant::now() + wait;
    let segmenter = loop {
        if let Some(s) = ctx.hls.get(&key).filter(|s| s.lock().unwrap_or_else(|e| e.into_inner()).has_segments()) {
            break s;
        }
        if tokio::time::Instant::now() >= deadline {
            return not_found(&format!("stream {key} has no HLS segments (is it being published?)"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = match (existing, new_viewer) {
        (Some(id), _) => id,
        (None, Some(mut viewer)) => {
            info!(stream = %key, client = viewer.id(), "hls viewer started");
            viewer.begin();
            match sessions.insert(viewer) {
                Some(id) => id,
                None => {
                    warn!(stream = %key, "hls viewer refused: the session table is full");
                    return (StatusCode::SERVICE_UNAVAILABLE, "too many HLS viewers on this node\n").into_response();
                }
            }
        }
        (None, None) => return not_found("no session"),
    };
    let sep = if param.is_empty() { "?" } else { "&" };
    // The name is escaped: whatever it holds, it stays one URI on one line.
    let stream = crate::key::escape_segment(&key.stream);
    let uri = |seq: u64| format!("{stream}-{seq}.ts{param}{sep}hls_ctx={id}");
    let text = segmenter.lock().unwrap_or_else(|e| e.into_inner()).playlist(uri).unwrap_or_default();
    sessions.touch(&id, &key, &ip, text.len() as u64);
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

/// One segment, `{stream}-{seq}.ts`, served only to a session admitted (by `on_play`) for this
/// stream from this address: its `hls_ctx` must name it. Anything else is a 403, whether or not
/// the segment exists, so segment numbers reveal nothing either.
pub async fn segment(
    ctx: Arc<NodeContext>,
    conn: &ConnInfo,
    headers: &HeaderMap,
    app: &str,
    file: &str,
    query: &str,
) -> Response {
    let Some((name, seq)) = file.strip_suffix(".ts").and_then(|f| f.rsplit_once('-')) else {
        return not_found("not a segment name: expected {stream}-{seq}.ts");
    };
    let Ok(seq) = seq.parse::<u64>() else { return not_found("not a segment number") };
    let (session, param) = split_session(query);
    let key = match StreamKey::parse(&vhost_from(&param), app, name) {
        Ok(key) => key,
        Err(e) => return super::bad_name(e),
    };
    let ip = client_ip(&ctx, headers, conn);
    let Some(id) = session.filter(|id| ctx.hls.sessions.touch(id, &key, &ip, 0)) else {
        warn!(stream = %key, %ip, "hls segment refused: no session admitted for this stream from this address");
        return (StatusCode::FORBIDDEN, "segments need the hls_ctx of a playlist this address was given\n")
            .into_response();
    };
    let found = ctx.hls.get(&key).and_then(|s| s.lock().unwrap_or_else(|e| e.into_inner()).segment(seq));
    match found {
        Some(seg) => {
            ctx.hls.sessions.touch(&id, &key, &ip, seg.data.len() as u64);
            ([(header::CONTENT_TYPE, "video/mp2t"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], seg.data.clone())
                .into_response()
        }
        None => not_found(&format!("segment {seq} of {key} is not in the live window")),
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

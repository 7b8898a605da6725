//! HLS over HTTP: `GET /{app}/{stream}.m3u8` and `GET /{app}/{stream}-{seq}.ts`, both answered
//! from the in-memory segment window. The viewer's query (its token) is carried into the segment
//! URLs. A segment that has left the window is a 404, never a stale or partial one.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::context::NodeContext;
use crate::key::{StreamKey, vhost_from};

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("{what}\n")).into_response()
}

/// The live playlist. Before the first segment of a just-started stream exists, waits up to two
/// segment durations for it.
pub async fn playlist(ctx: Arc<NodeContext>, app: &str, name: &str, query: &str) -> Response {
    let key = StreamKey::new(&vhost_from(query), app, name);
    let wait = Duration::from_millis(u64::from(ctx.config.hls.fragment_ms) * 2);
    let deadline = tokio::time::Instant::now() + wait;
    let stream = key.stream.clone();
    let uri = |seq: u64| format!("{stream}-{seq}.ts{query}");
    loop {
        if let Some(text) = ctx.hls.get(&key).and_then(|s| s.lock().unwrap_or_else(|e| e.into_inner()).playlist(uri)) {
            return (
                [
                    (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
                    (header::CACHE_CONTROL, "no-cache"),
                    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                ],
                text,
            )
                .into_response();
        }
        if tokio::time::Instant::now() >= deadline {
            return not_found(&format!("stream {key} has no HLS segments (is it being published?)"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One segment, `{stream}-{seq}.ts`.
pub async fn segment(ctx: Arc<NodeContext>, app: &str, file: &str, query: &str) -> Response {
    let Some((name, seq)) = file.strip_suffix(".ts").and_then(|f| f.rsplit_once('-')) else {
        return not_found("not a segment name: expected {stream}-{seq}.ts");
    };
    let Ok(seq) = seq.parse::<u64>() else { return not_found("not a segment number") };
    let key = StreamKey::new(&vhost_from(query), app, name);
    let found = ctx.hls.get(&key).and_then(|s| s.lock().unwrap_or_else(|e| e.into_inner()).segment(seq));
    match found {
        Some(seg) => {
            ([(header::CONTENT_TYPE, "video/mp2t"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], seg.data.clone())
                .into_response()
        }
        None => not_found(&format!("segment {seq} of {key} is not in the live window")),
    }
}

//! Low-Latency HLS over HTTP: `GET /{app}/{stream}/index.m3u8` (blocking reloads with `_HLS_msn`
//! and `_HLS_part`), its init segment `init-{v}.mp4`, segments `{msn}.m4s` and parts
//! `{msn}.{part}.m4s`, all from the in-memory window (`crate::hls::PartSegmenter`).
//!
//! Admission, sessions and tokens are the TS variant's (`super::hls`): the playlist request is
//! checked by `on_play` and opens the session, and every other resource needs that session's
//! `hls_ctx` from the same address. A request for the next part (the playlist's preload hint) or
//! for a playlist that names a part not cut yet waits until it is, at most three target
//! durations (then 503); a playlist more than two segments (or three target durations of parts)
//! ahead is a 400 (RFC 8216bis 6.2.5.2), a part or segment that far ahead a 404, and one that has
//! left the window a 404.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::hls::{Admitted, Refusal, admit_viewer, session_of, viewer_uri};
use super::plain;
use super::serve::ConnInfo;
use crate::context::NodeContext;
use crate::hls::{LlStream, Readiness};

/// The LL-HLS resources of one stream: `/{app}/{stream}/{file}`.
pub async fn serve(
    ctx: Arc<NodeContext>,
    conn: &ConnInfo,
    headers: &HeaderMap,
    (app, stream, file): (&str, &str, &str),
    query: &str,
) -> Response {
    if file == "index.m3u8" {
        return playlist(ctx, conn, headers, (app, stream), query).await;
    }
    let v = match session_of(&ctx, conn, headers, app, stream, query) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let Some(ll) = ctx.hls.get_ll(&v.key) else {
        return plain(StatusCode::NOT_FOUND, &format!("stream {} is not being segmented here", v.key));
    };
    if let Some(version) = file.strip_prefix("init-").and_then(|f| f.strip_suffix(".mp4")) {
        let init = version.parse().ok().and_then(|v| ll.parts.lock().unwrap_or_else(|e| e.into_inner()).init(v));
        return match init {
            Some(data) => media_response(&ctx, &v, vec![data]),
            None => plain(StatusCode::NOT_FOUND, "no such init segment (the stream's codecs changed?)"),
        };
    }
    let Some(name) = file.strip_suffix(".m4s") else {
        return plain(
            StatusCode::NOT_FOUND,
            "not an LL-HLS resource: index.m3u8, init-{v}.mp4, {msn}.m4s or {msn}.{part}.m4s",
        );
    };
    let (msn, part) = match name.split_once('.') {
        Some((msn, part)) => (msn.parse::<u64>(), part.parse::<u32>().map(Some)),
        None => (name.parse::<u64>(), Ok(None)),
    };
    let (Ok(msn), Ok(part)) = (msn, part) else { return plain(StatusCode::NOT_FOUND, "not a segment or part number") };
    match wait_for(&ll, msn, part).await {
        Ok(()) => {}
        Err(Readiness::TooFar) => {
            return plain(StatusCode::NOT_FOUND, &format!("{file} is too far ahead of the live window"));
        }
        Err(_) => return plain(StatusCode::SERVICE_UNAVAILABLE, &format!("{file} was not ready in time")),
    }
    let parts = ll.parts.lock().unwrap_or_else(|e| e.into_inner());
    let data = match part {
        Some(p) => parts.part(msn, p as usize).map(|p| vec![p.data.clone()]),
        None => parts.segment(msn).map(|s| s.data()),
    };
    drop(parts);
    match data {
        Some(data) => media_response(&ctx, &v, data),
        None => plain(StatusCode::NOT_FOUND, &format!("{file} is not in the live window")),
    }
}

fn media_response(ctx: &NodeContext, v: &Admitted, data: Vec<bytes::Bytes>) -> Response {
    let len: usize = data.iter().map(bytes::Bytes::len).sum();
    ctx.hls.sessions.touch(&v.id, &v.key, &v.ip, len as u64);
    let body = Body::from_stream(futures_util::stream::iter(data.into_iter().map(Ok::<_, std::convert::Infallible>)));
    ([(header::CONTENT_TYPE, "video/mp4"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], body).into_response()
}

/// The blocking-reload directives of a playlist request, and the query without them (what the
/// viewer's URIs carry).
fn split_directives(query: &str) -> Result<(Option<u64>, Option<u32>, String), Refusal> {
    let (mut msn, mut part) = (None, None);
    let mut rest = Vec::new();
    for kv in query.trim_start_matches('?').split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("_HLS_msn", v)) => {
                msn = Some(v.parse().map_err(|_| Box::new(plain(StatusCode::BAD_REQUEST, "_HLS_msn is not a number")))?)
            }
            Some(("_HLS_part", v)) => {
                part =
                    Some(v.parse().map_err(|_| Box::new(plain(StatusCode::BAD_REQUEST, "_HLS_part is not a number")))?)
            }
            Some(("_HLS_skip", _)) => {} // delta updates are not offered (no CAN-SKIP-UNTIL)
            _ => rest.push(kv),
        }
    }
    if part.is_some() && msn.is_none() {
        return Err(Box::new(plain(StatusCode::BAD_REQUEST, "_HLS_part needs _HLS_msn")));
    }
    Ok((msn, part, if rest.is_empty() { String::new() } else { format!("?{}", rest.join("&")) }))
}

/// Waits until segment `msn` (or its part `part`) exists, at most three target durations.
async fn wait_for(ll: &LlStream, msn: u64, part: Option<u32>) -> Result<(), Readiness> {
    let target = ll.parts.lock().unwrap_or_else(|e| e.into_inner()).target_ms();
    let limit = Duration::from_millis(u64::from(target) * 3);
    let deadline = tokio::time::Instant::now() + limit;
    let mut progress = ll.progress.subscribe();
    loop {
        // Subscribed first, so a part cut between this check and the wait is not missed.
        match ll.parts.lock().unwrap_or_else(|e| e.into_inner()).readiness(msn, part) {
            Readiness::Ready => return Ok(()),
            Readiness::TooFar => return Err(Readiness::TooFar),
            Readiness::Wait => {}
        }
        match tokio::time::timeout_at(deadline, progress.changed()).await {
            Ok(Ok(())) => {}
            _ => return Err(Readiness::Wait),
        }
    }
}

async fn playlist(
    ctx: Arc<NodeContext>,
    conn: &ConnInfo,
    headers: &HeaderMap,
    (app, stream): (&str, &str),
    query: &str,
) -> Response {
    let (msn, part, query) = match split_directives(query) {
        Ok(d) => d,
        Err(response) => return *response,
    };
    let ready = |key: &crate::key::StreamKey| {
        ctx.hls.get_ll(key).is_some_and(|ll| ll.parts.lock().unwrap_or_else(|e| e.into_inner()).has_segments())
    };
    let path = format!("/{app}/{stream}/index.m3u8");
    let v = match admit_viewer(&ctx, conn, headers, (app, stream, &path), &query, ready).await {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let Some(ll) = ctx.hls.get_ll(&v.key) else { return plain(StatusCode::NOT_FOUND, "the stream ended") };
    if let Some(msn) = msn {
        match wait_for(&ll, msn, part).await {
            Ok(()) => {}
            Err(Readiness::TooFar) => {
                return plain(StatusCode::BAD_REQUEST, "_HLS_msn is more than two segments ahead of the live playlist");
            }
            Err(_) => {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the requested part was not cut in time: is the publisher stalled?",
                );
            }
        }
    }
    let parts = ll.parts.lock().unwrap_or_else(|e| e.into_inner());
    let (text, target) = (parts.playlist(|file| viewer_uri(&v, file)), parts.target_ms());
    drop(parts);
    let Some(text) = text else { return plain(StatusCode::NOT_FOUND, "the stream ended") };
    ctx.hls.sessions.touch(&v.id, &v.key, &v.ip, text.len() as u64);
    // A blocking answer names one playlist version: it may be kept (by this viewer: its URIs carry
    // its session). The plain playlist changes with every part.
    let cache = match msn {
        Some(_) => format!("private, max-age={}", (target * 3).div_ceil(1000)),
        None => "no-cache".to_string(),
    };
    (
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, cache.as_str()),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_directives_are_parsed_and_kept_out_of_the_viewers_query() {
        let (msn, part, rest) = split_directives("?token=a&_HLS_msn=12&_HLS_part=3&hls_ctx=x").unwrap();
        assert_eq!((msn, part, rest.as_str()), (Some(12), Some(3), "?token=a&hls_ctx=x"));
        let (msn, part, rest) = split_directives("?_HLS_msn=4&_HLS_skip=YES").unwrap();
        assert_eq!((msn, part, rest.as_str()), (Some(4), None, ""));
        assert_eq!(split_directives("?_HLS_part=1").unwrap_err().status(), StatusCode::BAD_REQUEST);
        assert_eq!(split_directives("?_HLS_msn=-1").unwrap_err().status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            split_directives("?_HLS_msn=99999999999999999999999").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }
}

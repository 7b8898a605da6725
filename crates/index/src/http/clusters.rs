//! `/api/v1/clusters`: SRS's origin-cluster stream locator, answered from the directory for the
//! whole cluster. A real SRS origin configured with `origin_cluster on; coworkers INDEX:8000;`
//! asks it when a player (normally an edge) wants a stream the origin does not have, and redirects
//! the player (RTMP 302) to the origin named here; Ferrocast origins and edges ask the same way.
//!
//! The answer is SRS's, byte for byte in shape (the `data` wrapper is required: SRS reads
//! `data.origin.ip` and `data.origin.port`), with `"origin": null` when no origin has the stream:
//!
//! ```json
//! {"code":0,"data":{"query":{"ip":"10.0.0.9","vhost":"__defaultVhost__","app":"live","stream":"cam1"},
//!  "origin":{"ip":"10.0.0.5","port":1935,"vhost":"__defaultVhost__","api":"10.0.0.5:1985",
//!            "routers":["10.0.0.5:1985"]}}}
//! ```
//!
//! Beyond SRS's fields, `origin.http` is the origin's HTTP base URL when the index knows it, so
//! a Ferrocast origin can redirect an HTTP-FLV or HLS player too (SRS reads only what it knows).
//!
//! Any method, as SRS (its origins POST with an empty body). Each origin's part of the answer is
//! rendered once per directory build ([`crate::targets::ClusterOrigin`]), as play answers are. Where a stream of an app whose play
//! needs a token lives is told only to callers who may see it, or to node callers (the hook
//! receiver's `?secret=` or `--hook-allow` networks): a coworker origin is one.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::percent_decode;
use super::play::sees_stream;
use crate::auth::Action;
use crate::directory::{DEFAULT_VHOST, Directory, StreamEntry, stream_key};
use crate::state::IndexState;
use crate::targets::push_json_str;

/// The query, decoded; absent keys are empty, as SRS reads them.
#[derive(Default)]
struct ClustersQuery {
    vhost: String,
    ip: String,
    app: String,
    stream: String,
    secret: Option<String>,
}

impl ClustersQuery {
    fn parse(q: Option<&str>) -> ClustersQuery {
        let mut out = ClustersQuery::default();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).into_owned();
            match k {
                "vhost" => out.vhost = v,
                "ip" => out.ip = v,
                "app" => out.app = v,
                "stream" => out.stream = v,
                "secret" => out.secret = Some(v),
                _ => {}
            }
        }
        out
    }
}

/// `GET|POST /api/v1/clusters?vhost=&ip=&app=&stream=&coworker=`.
pub async fn clusters(
    State(st): State<Arc<IndexState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = ClustersQuery::parse(q.as_deref());
    let stream = crate::srs::strip_ext(&query.stream);
    // Open apps are told to anyone; a protected app's only to who may play it or to a node.
    let may_know = !st.auth.load().needs_token(Action::Play, &query.app)
        || st.auth.load().hook_caller(query.secret.as_deref(), peer.ip()).is_ok()
        || sees_stream(&st, &headers, q.as_deref(), peer, &query.app, stream).await;
    let dir = st.directory.load();
    let origin = if may_know { locate(&dir, &query.vhost, &query.app, stream) } else { None };
    let vhost = if query.vhost.is_empty() { DEFAULT_VHOST } else { &query.vhost };
    let mut out = Vec::with_capacity(320);
    out.extend_from_slice(b"{\"code\":0,\"data\":{\"query\":{\"ip\":");
    push_json_str(&mut out, &query.ip);
    out.extend_from_slice(b",\"vhost\":");
    push_json_str(&mut out, vhost);
    out.extend_from_slice(b",\"app\":");
    push_json_str(&mut out, &query.app);
    out.extend_from_slice(b",\"stream\":");
    push_json_str(&mut out, stream);
    out.extend_from_slice(b"},\"origin\":");
    match origin.and_then(|(dir, entry)| dir.nodes[entry.origins[0].node].targets.cluster.as_ref()) {
        Some(found) => {
            out.extend_from_slice(found.before_vhost.as_bytes());
            push_json_str(&mut out, vhost);
            out.extend_from_slice(found.after_vhost.as_bytes());
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}}");
    super::play::json_response(out)
}

/// The stream's entry with an origin holding it: in `vhost`, else (as SRS) in the default vhost.
fn locate<'d>(dir: &'d Directory, vhost: &str, app: &str, stream: &str) -> Option<(&'d Directory, &'d StreamEntry)> {
    let found = |v: &str| dir.streams.get(stream_key(v, app, stream).as_str()).filter(|e| !e.origins.is_empty());
    let entry = if vhost.is_empty() { None } else { found(vhost) }.or_else(|| found(DEFAULT_VHOST))?;
    Some((dir, entry))
}

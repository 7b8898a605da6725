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
//! Any method, as SRS (its origins POST with an empty body). Where a stream of an app whose play
//! needs a token lives is told only to callers who may see it, or to node callers (the hook
//! receiver's `?secret=` or `--hook-allow` networks): a coworker origin is one.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::percent_decode;
use super::play::sees_stream;
use crate::directory::{DEFAULT_VHOST, Directory, StreamEntry, stream_key};
use crate::state::IndexState;

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
    let node_caller = st.auth.load().hook_caller(query.secret.as_deref(), peer.ip()).is_ok();
    let may_know = node_caller || sees_stream(&st, &headers, q.as_deref(), peer, &query.app, stream).await;
    let dir = st.directory.load();
    let origin = if may_know { locate(&dir, &query.vhost, &query.app, stream) } else { None };
    let vhost = if query.vhost.is_empty() { DEFAULT_VHOST } else { &query.vhost };
    Json(json!({
        "code": 0,
        "data": {
            "query": { "ip": query.ip, "vhost": vhost, "app": query.app, "stream": stream },
            "origin": origin.map_or(Value::Null, |(dir, entry)| origin_json(dir, entry, vhost)),
        }
    }))
    .into_response()
}

/// The stream's entry with an origin holding it: in `vhost`, else (as SRS) in the default vhost.
fn locate<'d>(dir: &'d Directory, vhost: &str, app: &str, stream: &str) -> Option<(&'d Directory, &'d StreamEntry)> {
    let found = |v: &str| dir.streams.get(stream_key(v, app, stream).as_str()).filter(|e| !e.origins.is_empty());
    let entry = if vhost.is_empty() { None } else { found(vhost) }.or_else(|| found(DEFAULT_VHOST))?;
    Some((dir, entry))
}

/// `{"ip","port","vhost","api","routers"}` of the stream's first origin (its primary).
fn origin_json(dir: &Directory, entry: &StreamEntry, vhost: &str) -> Value {
    let node = &dir.nodes[entry.origins[0].node];
    let rtmp = node.spec.rtmp.as_deref().and_then(|u| reqwest::Url::parse(u).ok());
    let api = reqwest::Url::parse(&node.spec.api).ok();
    let host = rtmp.as_ref().or(api.as_ref()).and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    let port = rtmp.as_ref().and_then(|u| u.port()).unwrap_or(1935);
    let api = api
        .as_ref()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_default();
    let mut origin = json!({ "ip": host, "port": port, "vhost": vhost, "api": api, "routers": [api] });
    // Beyond SRS's fields: the origin's HTTP base, for an HTTP-FLV/HLS redirect (SRS ignores it).
    if let Some(http) = &node.spec.http {
        origin["http"] = json!(http.trim_end_matches('/'));
    }
    origin
}

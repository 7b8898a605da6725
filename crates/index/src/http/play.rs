//! The scheduler's HTTP face: `GET /api/v1/play/{app}/{stream}` (JSON), `GET /play/{app}/{stream}.flv`
//! and `.m3u8` (302 to the chosen edge, so players can use the index URL directly),
//! `GET /play/{app}/{stream}` (RTMP, JSON), and `GET /api/v1/publish/{app}/{stream}`.
//!
//! With access control on, the URLs handed out carry a token where the app's rules want one:
//! a fresh play token for viewers, a fresh publish token only for admins ([`AdminKey`]; anyone
//! else must bring their own). A token in the request goes on unchanged.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::admin::{AdminKey, Refusal};
use super::play_answer::{self, PlayPath, ViewerInfo};
use super::{error, query_param};
use crate::auth::{Action, token_in};
use crate::directory::{DEFAULT_VHOST, Directory, stream_key};
use crate::scheduler;
use crate::state::IndexState;
use crate::targets::Proto;

/// The viewer's query without the index's own parameters, as it goes on to the edge.
fn forwarded_query(q: Option<&str>, vhost: &str) -> String {
    let mut parts: Vec<&str> = q
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let k = p.split_once('=').map_or(*p, |(k, _)| k);
            k != "proto" && k != "region"
        })
        .collect();
    let vhost_param;
    if vhost != DEFAULT_VHOST && !parts.iter().any(|p| p.starts_with("vhost=")) {
        vhost_param = format!("vhost={vhost}");
        parts.push(&vhost_param);
    }
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

/// `fwd` (a forwarded query) with a fresh token for `action` on `app/stream`.
fn add_token(st: &IndexState, fwd: String, action: Action, app: &str, stream: &str) -> Result<String, Box<Response>> {
    let auth = st.auth.load();
    match auth.mint(action, &format!("{app}/{stream}"), auth.url_ttl(), None) {
        Ok(token) => Ok(format!("{fwd}{}token={token}", if fwd.is_empty() { '?' } else { '&' })),
        Err(e) => Err(Box::new(error(StatusCode::BAD_REQUEST, format!("cannot mint a token for {app}/{stream}: {e}")))),
    }
}

/// A scheduling decision: the JSON answer and the chosen URL.
struct Decision {
    body: Vec<u8>,
    url: String,
}

/// Picks the node for a viewer. Errors are the HTTP answer to give.
fn decide(
    st: &IndexState,
    app: &str,
    stream: &str,
    proto: Proto,
    query: Option<&str>,
    peer: IpAddr,
    headers: &HeaderMap,
) -> Result<Decision, Box<Response>> {
    let stream = crate::srs::strip_ext(stream);
    let vhost = query_param(query, "vhost");
    let vhost = vhost.as_deref().unwrap_or(DEFAULT_VHOST);
    let resolver = st.resolver.load();
    let xff = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = resolver.client_ip(peer, xff);
    let param = query_param(query, "region");
    let (region, source) = resolver.resolve(param.as_deref(), client);
    let fallback = resolver.fallback_order(&region);
    let dir: arc_swap::Guard<Arc<Directory>> = st.directory.load();
    let cfg = st.config.load();
    let key = stream_key(vhost, app, stream);
    let entry = dir.streams.get(key.as_str());
    let mut fwd = forwarded_query(query, vhost);
    if st.auth.load().needs_token(Action::Play, app) && query.and_then(token_in).is_none() {
        fwd = add_token(st, fwd, Action::Play, app, stream)?;
    }
    let want = 1 + cfg.scheduler.alternatives;
    let serves = |i: &usize| dir.nodes[*i].targets.base(proto).is_some();
    let mut ranked = scheduler::top_edges(&dir, &cfg.scheduler, &key, entry, &region, &fallback, want);
    let found = ranked.len();
    ranked.retain(serves);
    if ranked.len() < found {
        // Some of the best have no address for this protocol: look further.
        ranked = scheduler::rank_edges(&dir, &cfg.scheduler, &key, entry, &region, &fallback);
        ranked.retain(serves);
        ranked.truncate(want);
    }
    let Some((&chosen, alternatives)) = ranked.split_first() else {
        st.metrics.unserved();
        let up = dir.nodes.iter().filter(|n| n.health.schedulable()).count();
        return Err(Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no healthy node can serve {key} over {}: {up} of {} nodes are up (GET /api/v1/nodes shows why)",
                proto.as_str(),
                dir.nodes.len()
            ),
        )));
    };
    scheduler::assign(&dir, chosen);
    st.metrics.decision(&region, source.as_str());
    let path = PlayPath::new(proto, app, stream, &fwd);
    let viewer = ViewerInfo { ip: client, region: &region, source };
    let body = play_answer::write(&dir, chosen, alternatives, proto, &path, &key, entry.is_some(), &viewer);
    Ok(Decision { body, url: path.url(&dir, chosen, proto) })
}

fn json_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// `GET /api/v1/play/{app}/{stream}?proto=flv|rtmp|hls[&region=R]`.
pub async fn play_json(
    State(st): State<Arc<IndexState>>,
    Path((app, stream)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    req: Request,
) -> Response {
    let headers = req.headers();
    let proto = match query_param(q.as_deref(), "proto") {
        None => Proto::Flv,
        Some(p) => match Proto::parse(&p) {
            Some(p) => p,
            None => return error(StatusCode::BAD_REQUEST, format!("unknown proto {p:?}: use flv, hls or rtmp")),
        },
    };
    match decide(&st, &app, &stream, proto, q.as_deref(), peer.ip(), headers) {
        Ok(d) => json_response(d.body),
        Err(resp) => *resp,
    }
}

/// `GET /play/{app}/{stream}.flv` and `.m3u8`: 302 to the chosen edge, keeping the query string;
/// `GET /play/{app}/{stream}` answers the RTMP choice as JSON (RTMP has no redirect players follow).
pub async fn play_redirect(
    State(st): State<Arc<IndexState>>,
    Path((app, file)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    req: Request,
) -> Response {
    let headers = req.headers();
    let (stream, proto) = if let Some(s) = file.strip_suffix(".flv") {
        (s, Proto::Flv)
    } else if let Some(s) = file.strip_suffix(".m3u8") {
        (s, Proto::Hls)
    } else {
        (file.as_str(), Proto::Rtmp)
    };
    let d = match decide(&st, &app, stream, proto, q.as_deref(), peer.ip(), headers) {
        Ok(d) => d,
        Err(resp) => return *resp,
    };
    if proto == Proto::Rtmp {
        return json_response(d.body);
    }
    let mut resp = (StatusCode::FOUND, format!("{}\n", d.url)).into_response();
    if let Ok(v) = HeaderValue::from_str(&d.url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /api/v1/publish/{app}/{stream}`: the RTMP URL on the healthy origin for a publisher, and
/// the backups to move to when it fails.
pub async fn publish(
    State(st): State<Arc<IndexState>>,
    Path((app, stream)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = q.as_deref();
    let vhost = query_param(q, "vhost").unwrap_or_else(|| DEFAULT_VHOST.into());
    let key = stream_key(&vhost, &app, &stream);
    let mut fwd = forwarded_query(q, &vhost);
    if st.auth.load().needs_token(Action::Publish, &app) && q.and_then(token_in).is_none() {
        match AdminKey::check(&st, &headers, Some(peer)).await {
            Ok(_) => {}
            Err(Refusal::Missing { .. }) => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    format!(
                        "publishing {app}/{stream} needs a publish token: add ?token=<publish token> (from \
                         `ferrocast token --scope publish --stream {app}/{stream}` or POST /api/v1/tokens), or call \
                         with an admin API key (Authorization: Bearer <key>, made with `ferrocast index keys create`) \
                         to get a URL with a fresh token"
                    ),
                );
            }
            Err(refused) => return refused.response(),
        }
        fwd = match add_token(&st, fwd, Action::Publish, &app, &stream) {
            Ok(f) => f,
            Err(resp) => return *resp,
        };
    }
    let dir = st.directory.load();
    let entry = dir.streams.get(key.as_str());
    let path = PlayPath::new(Proto::Rtmp, &app, &stream, &fwd);
    let mut urls = scheduler::rank_origins(&dir, entry)
        .into_iter()
        .filter(|&i| dir.nodes[i].targets.base(Proto::Rtmp).is_some())
        .map(|i| (i, path.url(&dir, i, Proto::Rtmp)));
    let Some((chosen, url)) = urls.next() else {
        st.metrics.unserved();
        let origins = dir.nodes.iter().filter(|n| n.spec.role == crate::config::Role::Origin).count();
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no healthy origin to publish {key} to: {origins} origin(s) known, none up with an rtmp address"),
        );
    };
    let n = &dir.nodes[chosen];
    let backups: Vec<Value> = urls
        .map(|(i, url)| json!({ "url": url, "node": dir.nodes[i].spec.name, "region": dir.nodes[i].region }))
        .collect();
    Json(json!({
        "code": 0,
        "url": url,
        "node": n.spec.name,
        "region": n.region,
        "stream": { "key": key, "live": entry.is_some() },
        "backups": backups,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_goes_on_without_the_index_parameters() {
        assert_eq!(forwarded_query(Some("proto=flv&token=abc&region=eu"), DEFAULT_VHOST), "?token=abc");
        assert_eq!(forwarded_query(None, DEFAULT_VHOST), "");
        assert_eq!(forwarded_query(Some("region=eu"), "news"), "?vhost=news");
        assert_eq!(forwarded_query(Some("vhost=news&t=1"), "news"), "?vhost=news&t=1");
    }
}

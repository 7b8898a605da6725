//! The scheduler's HTTP face: `GET /api/v1/play/{app}/{stream}` (JSON), `GET /play/{app}/{stream}.flv`
//! and `.m3u8` (302 to the chosen edge, so players can use the index URL directly),
//! `GET /play/{app}/{stream}` (RTMP, JSON), and `GET /api/v1/publish/{app}/{stream}`.
//!
//! With access control on, the URLs handed out carry a token where the app's rules want one:
//! a fresh play token for viewers, a fresh publish token only for admins ([`AdminKey`]; anyone
//! else must bring their own). A token in the request goes on unchanged.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::admin::{AdminKey, Refusal};
use super::caller::Caller;
use super::play_answer::{self, Explain, PlayPath};
use super::{error, percent_decode};
use crate::auth::{Action, token_in};
use crate::directory::{DEFAULT_VHOST, Directory, stream_key};
use crate::scheduler;
use crate::state::IndexState;
use crate::targets::Proto;

static FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// What the index reads of a play or publish query; the rest goes on to the node.
struct PlayQuery<'q> {
    proto: Option<Cow<'q, str>>,
    region: Option<Cow<'q, str>>,
    vhost: Option<Cow<'q, str>>,
    /// The caller brought a (non-empty) token.
    has_token: bool,
    /// `explain=1`: say how the answer was reached.
    explain: bool,
    /// The caller's parameters without the index's own (`proto`, `region`, `explain`): `?a=1&b=2`,
    /// or empty.
    forwarded: String,
}

impl<'q> PlayQuery<'q> {
    fn parse(q: Option<&'q str>) -> PlayQuery<'q> {
        let mut pq = PlayQuery {
            proto: None,
            region: None,
            vhost: None,
            has_token: q.and_then(token_in).is_some(),
            explain: false,
            forwarded: String::new(),
        };
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "proto" => {
                    pq.proto.get_or_insert_with(|| percent_decode(v));
                    continue;
                }
                "region" => {
                    pq.region.get_or_insert_with(|| percent_decode(v));
                    continue;
                }
                "explain" => {
                    pq.explain = matches!(v, "" | "1" | "true" | "yes");
                    continue;
                }
                "vhost" => {
                    pq.vhost.get_or_insert_with(|| percent_decode(v));
                }
                _ => {}
            }
            pq.forwarded.push(if pq.forwarded.is_empty() { '?' } else { '&' });
            pq.forwarded.push_str(pair);
        }
        pq
    }

    fn vhost(&self) -> &str {
        self.vhost.as_deref().unwrap_or(DEFAULT_VHOST)
    }
}

/// `fwd` (a forwarded query) with a fresh token for `action` on `app/stream`. A token is minted
/// for one stream only: a `*` in the path is no app-wide token (those come from `POST
/// /api/v1/tokens`, for admins).
fn add_token(st: &IndexState, fwd: String, action: Action, app: &str, stream: &str) -> Result<String, Box<Response>> {
    if app.contains('*') || stream.contains('*') {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!(
                "{app}/{stream} is no stream name: the index hands out tokens for one stream; an app-wide token \
                 comes from POST /api/v1/tokens (admins only)"
            ),
        )));
    }
    let auth = st.auth.load();
    match auth.mint(action, &format!("{app}/{stream}"), auth.url_ttl(), None) {
        Ok(token) => Ok(format!("{fwd}{}token={token}", if fwd.is_empty() { '?' } else { '&' })),
        Err(e) => Err(Box::new(error(StatusCode::BAD_REQUEST, format!("cannot mint a token for {app}/{stream}: {e}")))),
    }
}

/// A scheduling decision: the JSON answer and (for a redirect) the chosen URL.
struct Decision {
    body: Vec<u8>,
    url: String,
}

/// A viewer's request as the play handlers read it.
struct PlayRequest<'a> {
    app: &'a str,
    stream: &'a str,
    proto: Proto,
    query: PlayQuery<'a>,
    peer: IpAddr,
    headers: &'a HeaderMap,
    /// Whether the caller may see the stream (and so learn whether it is live).
    sees: bool,
}

/// Picks the node for a viewer; `redirect` also builds the chosen URL. Errors are the HTTP
/// answer to give.
fn decide(st: &IndexState, req: PlayRequest<'_>, redirect: bool) -> Result<Decision, Box<Response>> {
    let PlayRequest { app, stream, proto, query, peer, headers, sees } = req;
    let stream = crate::srs::strip_ext(stream);
    let vhost = query.vhost();
    let resolver = st.resolver.load();
    let xff = headers.get(&FORWARDED_FOR).and_then(|v| v.to_str().ok());
    let client = resolver.client_ip(peer, xff);
    let (region, source) = resolver.resolve(query.region.as_deref(), client);
    let fallback = resolver.fallback_order(&region);
    let dir: arc_swap::Guard<Arc<Directory>> = st.directory.load();
    let cfg = st.config.load();
    let key = stream_key(vhost, app, stream);
    let entry = dir.streams.get(key.as_str());
    let mut fwd = query.forwarded;
    if !query.has_token && st.auth.load().needs_token(Action::Play, app) {
        fwd = add_token(st, fwd, Action::Play, app, stream)?;
    }
    let want = 1 + cfg.scheduler.alternatives;
    let serves = |i: &usize| dir.nodes[*i].targets.base(proto).is_some();
    let mut ranked = scheduler::top_edges(&dir, &cfg.scheduler, &key, entry, &region, fallback, want);
    let found = ranked.len();
    ranked.retain(serves);
    if ranked.len() < found {
        // Some of the best have no address for this protocol: look further.
        ranked = scheduler::rank_edges(&dir, &cfg.scheduler, &key, entry, &region, fallback);
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
    let path = PlayPath { proto, app, stream, query: &fwd };
    let explain = query.explain.then(|| Explain {
        key: &key,
        live: sees.then_some(entry.is_some()),
        ip: client,
        region: &region,
        source,
    });
    let body = play_answer::write(&dir, chosen, alternatives, &path, explain.as_ref());
    let url = if redirect { path.url(&dir, chosen).unwrap_or_default() } else { String::new() };
    Ok(Decision { body, url })
}

pub(super) fn json_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// The two path parameters of a scheduler route (`{app}` and `{stream}`), borrowed: the play
/// routes skip `Path`'s copies, as they run for every viewer.
fn two_params(params: &RawPathParams) -> [&str; 2] {
    let mut values = params.iter().map(|(_, v)| v);
    [values.next().unwrap_or(""), values.next().unwrap_or("")]
}

/// `GET /api/v1/play/{app}/{stream}?proto=flv|rtmp|hls|llhls|whep[&region=R]`.
pub async fn play_json(
    State(st): State<Arc<IndexState>>,
    params: RawPathParams,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let [app, stream] = two_params(&params);
    let headers = req.headers();
    let query = PlayQuery::parse(req.uri().query());
    let proto = match query.proto.as_deref() {
        None => Proto::Flv,
        Some(p) => match Proto::parse(p) {
            Some(p) => p,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown proto {p:?}: use flv, hls, llhls, whep or rtmp"),
                );
            }
        },
    };
    let sees = query.explain && sees_stream(&st, headers, req.uri().query(), peer, app, stream).await;
    let req = PlayRequest { app, stream, proto, query, peer: peer.ip(), headers, sees };
    match decide(&st, req, false) {
        Ok(d) => json_response(d.body),
        Err(resp) => *resp,
    }
}

/// `GET /play/{app}/{stream}.flv` and `.m3u8`: 302 to the chosen edge, keeping the query string;
/// `GET /play/{app}/{stream}` answers the RTMP choice as JSON (RTMP has no redirect players follow).
pub async fn play_redirect(
    State(st): State<Arc<IndexState>>,
    params: RawPathParams,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let [app, file] = two_params(&params);
    let (stream, proto) = if let Some(s) = file.strip_suffix(".flv") {
        (s, Proto::Flv)
    } else if let Some(s) = file.strip_suffix(".m3u8") {
        (s, Proto::Hls)
    } else {
        (file, Proto::Rtmp)
    };
    redirect(&st, app, stream, proto, peer, req).await
}

/// `GET /play/{app}/{stream}/index.m3u8`: 302 to the chosen edge's Low-Latency HLS playlist.
pub async fn play_redirect_ll(
    State(st): State<Arc<IndexState>>,
    params: RawPathParams,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let [app, stream] = two_params(&params);
    redirect(&st, app, stream, Proto::LlHls, peer, req).await
}

/// `POST /play/{app}/{stream}/whep`: 307 to the chosen edge's WHEP endpoint, so the player's
/// offer (method and body) goes there.
pub async fn play_redirect_whep(
    State(st): State<Arc<IndexState>>,
    params: RawPathParams,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let [app, stream] = two_params(&params);
    redirect(&st, app, stream, Proto::Whep, peer, req).await
}

async fn redirect(st: &IndexState, app: &str, stream: &str, proto: Proto, peer: SocketAddr, req: Request) -> Response {
    let headers = req.headers();
    let query = PlayQuery::parse(req.uri().query());
    let sees = query.explain && sees_stream(st, headers, req.uri().query(), peer, app, stream).await;
    let req = PlayRequest { app, stream, proto, query, peer: peer.ip(), headers, sees };
    let d = match decide(st, req, proto != Proto::Rtmp) {
        Ok(d) => d,
        Err(resp) => return *resp,
    };
    if proto == Proto::Rtmp {
        return json_response(d.body);
    }
    // A WHEP offer is a POST: only a 307 keeps its method and body.
    let status = if proto == Proto::Whep { StatusCode::TEMPORARY_REDIRECT } else { StatusCode::FOUND };
    let mut resp = (status, format!("{}\n", d.url)).into_response();
    if let Ok(v) = HeaderValue::from_str(&d.url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Whether the caller may see `app/stream` as the stream routes would show it ([`Caller`]): only
/// then does an answer say whether it is live. A token the caller brought counts, one the index
/// mints for it does not; a token that is not a valid play token sees nothing.
pub(super) async fn sees_stream(
    st: &IndexState,
    headers: &HeaderMap,
    query: Option<&str>,
    peer: SocketAddr,
    app: &str,
    stream: &str,
) -> bool {
    let stream = crate::srs::strip_ext(stream);
    match Caller::of(st, headers, query, Some(peer)).await {
        Ok(caller) => caller.may_see(&st.auth.load(), app, stream),
        Err(_) => false,
    }
}

/// `GET /api/v1/publish/{app}/{stream}[?region=R]`: the RTMP URL on the origin for a publisher
/// ([`scheduler::place_publisher`]: the stream's own origin, else the least loaded of its region),
/// and the backups to move to when it fails.
pub async fn publish(
    State(st): State<Arc<IndexState>>,
    params: RawPathParams,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let [app, stream] = two_params(&params);
    let (headers, q) = (req.headers(), req.uri().query());
    let query = PlayQuery::parse(q);
    let key = stream_key(query.vhost(), app, stream);
    // Whether it is live is anyone's to know for an open app; for a protected one, the caller's.
    let sees = !st.auth.load().needs_token(Action::Play, app) || sees_stream(&st, headers, q, peer, app, stream).await;
    let mut fwd = query.forwarded;
    if !query.has_token && st.auth.load().needs_token(Action::Publish, app) {
        match AdminKey::check(&st, headers, Some(peer)).await {
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
        fwd = match add_token(&st, fwd, Action::Publish, app, stream) {
            Ok(f) => f,
            Err(resp) => return *resp,
        };
    }
    let dir = st.directory.load();
    let entry = dir.streams.get(key.as_str());
    let resolver = st.resolver.load();
    let client = resolver.client_ip(peer.ip(), headers.get(&FORWARDED_FOR).and_then(|v| v.to_str().ok()));
    let (region, _) = resolver.resolve(query.region.as_deref(), client);
    let now = crate::clock::now_ms();
    let recent = st.placements.recent(&key, now);
    let pending = st.placements.pending_by_node(&dir);
    let fallback = resolver.fallback_order(&region);
    let want = 1 + st.config.load().scheduler.alternatives;
    let place = |want| scheduler::place_publisher(&dir, entry, recent.as_deref(), &region, fallback, &pending, want);
    let serves = |i: &usize| dir.nodes[*i].targets.base(Proto::Rtmp).is_some();
    let mut ranked = place(want);
    let found = ranked.len();
    ranked.retain(serves);
    if ranked.len() < found {
        // Some of the best have no RTMP address: look further.
        ranked = place(usize::MAX);
        ranked.retain(serves);
        ranked.truncate(want);
    }
    let Some((&chosen, backups)) = ranked.split_first() else {
        st.metrics.unserved();
        let origins = dir.nodes.iter().filter(|n| n.spec.role == crate::config::Role::Origin).count();
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no healthy origin to publish {key} to: {origins} origin(s) known, none up with an rtmp address"),
        );
    };
    dir.nodes[chosen].counters.scheduled_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    st.placements.placed(&dir, chosen, &key, now);
    let path = PlayPath { proto: Proto::Rtmp, app, stream, query: &fwd };
    let live = sees.then_some(entry.is_some());
    json_response(play_answer::write_publish(&dir, chosen, backups, &path, &key, live))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_goes_on_without_the_index_parameters() {
        let q = PlayQuery::parse(Some("proto=flv&token=abc&region=eu%2Dwest&&x=a+b"));
        assert_eq!(q.forwarded, "?token=abc&x=a+b", "the rest goes on as the caller wrote it");
        assert_eq!((q.proto.as_deref(), q.region.as_deref(), q.vhost()), (Some("flv"), Some("eu-west"), DEFAULT_VHOST));
        assert!(q.has_token);
        let q = PlayQuery::parse(None);
        assert_eq!((q.forwarded.as_str(), q.has_token), ("", false));
        let q = PlayQuery::parse(Some("region=eu&region=us"));
        assert_eq!((q.forwarded.as_str(), q.region.as_deref()), ("", Some("eu")), "the first value counts");
        let q = PlayQuery::parse(Some("explain=1&t=1"));
        assert_eq!((q.forwarded.as_str(), q.explain), ("?t=1", true));
        let q = PlayQuery::parse(Some("vhost=news&t=1&token="));
        assert_eq!((q.forwarded.as_str(), q.vhost(), q.has_token), ("?vhost=news&t=1&token=", "news", false));
    }
}

//! `POST /api/v1/hooks`: the `http_hooks` receiver for Ferrocast and SRS nodes alike. It decides
//! `on_publish` and `on_play` from the token in `param` and the per-app rules, answering SRS's way
//! (HTTP 200 with `{"code":0}` allows, a non-zero code refuses), and turns `on_publish` /
//! `on_unpublish` into events at once, before the next poll sees them. Nothing here waits on the
//! network: a node's client waits for this answer.
//!
//! Only known nodes may call: `auth.hook_secret` in the hook URL (`?secret=`) and/or the caller in
//! `auth.hook_allow`. Others get HTTP 403, which SRS also reads as a refusal.

use ferrocast_cluster::FORWARDED_KEY;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::query_param;
use crate::auth::{Action, now_secs};
use crate::directory::stream_key;
use crate::events::EventKind;
use crate::origin_replicas;
use crate::state::IndexState;

use crate::directory::DEFAULT_VHOST;

/// The allow answer, as SRS wants it.
fn allow() -> Response {
    answer(StatusCode::OK, r#"{"code":0}"#.into())
}

fn refuse(status: StatusCode, code: u16, msg: &str) -> Response {
    answer(status, json!({ "code": code, "msg": msg }).to_string())
}

fn answer(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// A field of the body as text; SRS before 4 sent `client_id` as a number.
fn field<'a>(body: &'a Value, name: &str) -> std::borrow::Cow<'a, str> {
    match body.get(name) {
        Some(Value::String(s)) => s.as_str().into(),
        Some(Value::Number(n)) => n.to_string().into(),
        _ => "".into(),
    }
}

pub async fn hook(
    State(st): State<Arc<IndexState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let auth = st.auth.load();
    if let Err(why) = auth.hook_caller(query_param(q.as_deref(), "secret").as_deref(), peer.ip()) {
        tracing::warn!(caller = %peer, "hook call refused: {why}");
        return refuse(StatusCode::FORBIDDEN, 403, &why);
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            tracing::warn!(caller = %peer, "hook call with a body that is not a JSON object");
            return refuse(
                StatusCode::BAD_REQUEST,
                400,
                "the body is not a JSON object (SRS http_hooks body expected)",
            );
        }
    };
    let action = field(&body, "action");
    let app = field(&body, "app");
    let stream = field(&body, "stream");
    // Players' extensions (`cam1.flv`) are not part of the stream's name.
    let stream = crate::srs::strip_ext(&stream);
    let vhost = field(&body, "vhost");
    let vhost = if vhost.is_empty() { DEFAULT_VHOST } else { &vhost };
    match &*action {
        "on_publish" | "on_play" => {
            let act = if action == "on_publish" { Action::Publish } else { Action::Play };
            let ip = field(&body, "ip");
            // An address that does not parse matches no address-bound token.
            let client: IpAddr = ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let checked =
                auth.check(act, &app, stream, &field(&body, "param"), client, now_secs()).map_err(|d| d.to_string());
            if let Err(denied) = checked.and_then(|()| st.revoked.check(&auth, act, &app, &field(&body, "param"))) {
                tracing::warn!(
                    node = %field(&body, "server_id"), client = %ip, stream = %stream_key(vhost, &app, stream),
                    "{action} refused: {denied}"
                );
                return refuse(StatusCode::OK, 403, &denied);
            }
            if act == Action::Publish {
                announce(&st, EventKind::StreamPublished, &body, vhost, &app, stream);
            }
            allow()
        }
        "on_unpublish" => {
            announce(&st, EventKind::StreamUnpublished, &body, vhost, &app, stream);
            let dir = st.directory.load();
            if let Some(n) = origin_replicas::calling_node(&dir, &field(&body, "server_id"), &field(&body, "tcUrl")) {
                st.primaries.unpublished(&stream_key(vhost, &app, stream), &dir.nodes[n].spec.name);
            }
            allow()
        }
        "on_forward" => forward(&st, &body, vhost, &app, stream),
        "" => refuse(StatusCode::BAD_REQUEST, 400, "the body has no \"action\" (on_publish, on_play, ...)"),
        // on_connect, on_close, on_stop, on_dvr, on_hls and whatever comes next: noted, allowed.
        _ => allow(),
    }
}

/// `on_forward`: the backup origins the calling origin pushes the stream to, as SRS's forward
/// backend answer `{"code":0,"data":{"urls":[...]}}`. A stream that itself arrived by forwarding
/// (Ferrocast marks its pushes) goes nowhere: forwarding stops after one hop.
fn forward(st: &IndexState, body: &Value, vhost: &str, app: &str, stream: &str) -> Response {
    let param = field(body, "param");
    let key = stream_key(vhost, app, stream);
    let marked = param.trim_start_matches('?').split('&').any(|p| p.split('=').next() == Some(FORWARDED_KEY));
    let dir = st.directory.load();
    // The mark counts only on a stream an origin pushed: a publisher cannot switch off the
    // replication of its own stream by adding it to its query.
    let publisher = field(body, "ip");
    let forwarded = marked && is_origin_address(&dir, &publisher);
    if marked && !forwarded {
        tracing::warn!(stream = %key, publisher = %publisher, "on_forward: {FORWARDED_KEY} from a publisher that is no origin: ignored");
    }
    let from = origin_replicas::calling_node(&dir, &field(body, "server_id"), &field(body, "tcUrl"));
    let urls: Vec<String> = if forwarded {
        Vec::new()
    } else {
        if let Some(n) = from {
            st.primaries.set(&key, &dir.nodes[n].spec.name, crate::clock::now_ms());
        }
        let cfg = st.config.load();
        origin_replicas::backups(&dir, &cfg.replication, &st.resolver.load(), from)
            .into_iter()
            .filter_map(|i| origin_replicas::forward_url(&dir, i, vhost, app, stream, &param))
            .collect()
    };
    let caller =
        from.map_or_else(|| format!("unknown node {:?}", field(body, "server_id")), |n| dir.nodes[n].spec.name.clone());
    if forwarded {
        tracing::debug!(stream = %key, from = %caller, "on_forward for a forwarded stream: no further hop");
    } else if urls.is_empty() {
        tracing::warn!(stream = %key, from = %caller, "on_forward: no healthy backup origin to replicate to");
    } else {
        tracing::info!(stream = %key, from = %caller, to = ?urls.iter().map(|u| redact(u)).collect::<Vec<_>>(), "replicating");
    }
    answer(StatusCode::OK, json!({ "code": 0, "data": { "urls": urls } }).to_string())
}

/// Whether `ip` is the address of an origin the index knows (its API or RTMP host).
fn is_origin_address(dir: &crate::directory::Directory, ip: &str) -> bool {
    let Ok(ip) = ip.trim_matches(['[', ']']).parse::<IpAddr>().map(|i| i.to_canonical()) else { return false };
    let host_is = |url: &str| {
        reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).parse::<IpAddr>()))
            == Some(Ok(ip))
    };
    dir.nodes
        .iter()
        .filter(|n| n.spec.role == crate::config::Role::Origin)
        .any(|n| host_is(&n.spec.api) || n.spec.rtmp.as_deref().is_some_and(host_is))
}

/// A URL for the log, without its query (it can hold a token).
fn redact(url: &str) -> &str {
    url.split_once('?').map_or(url, |(u, _)| u)
}

/// A hook-driven stream event (the bus skips what a hook or a poll already announced).
fn announce(st: &IndexState, kind: EventKind, body: &Value, vhost: &str, app: &str, stream: &str) {
    // A '/' inside a name would make the key read as another app's stream.
    if [vhost, app, stream].iter().any(|p| p.is_empty() || p.contains('/')) {
        tracing::debug!(vhost, app, stream, "hook for a name with '/' (or none): not announced");
        return;
    }
    let key = stream_key(vhost, app, stream);
    let data = || {
        json!({
            "key": key,
            "vhost": vhost,
            "app": app,
            "stream": stream,
            "node": field(body, "server_id"),
            "client_id": field(body, "client_id"),
            "ip": field(body, "ip"),
            "source": "hook",
        })
    };
    match kind {
        EventKind::StreamUnpublished => st.events.hook_unpublished(&key, data),
        _ => st.events.hook_published(&key, data),
    };
}

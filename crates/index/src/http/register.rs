//! `POST /api/v1/srs/register`: the body SRS's `heartbeat` section sends (and Ferrocast nodes
//! started with `--index`), so nodes join the index by their own config alone.
//!
//! SRS says nothing about a node's role or region; they come from the body's Ferrocast extension
//! keys `role` and `region`, else from the heartbeat URL's query (`.../register?role=edge&region=eu`),
//! else the node is an edge of the default region.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{error, query_param};
use crate::auth::same;
use crate::config::{NodeSpec, RegisterConfig, Role};
use crate::state::{IndexState, RegisterOutcome};

#[derive(Debug, Deserialize)]
struct Heartbeat {
    device_id: Option<String>,
    ip: Option<String>,
    server: Option<String>,
    #[serde(default)]
    rtmp: Vec<String>,
    #[serde(default)]
    http: Vec<String>,
    #[serde(default)]
    api: Vec<String>,
    role: Option<String>,
    region: Option<String>,
}

/// The port of a listen entry: `1935`, `0.0.0.0:1935`, `[::]:1935`, `tcp://0.0.0.0:1935`.
fn port(listen: &str) -> Option<u16> {
    listen.rsplit(':').next()?.trim().parse().ok().filter(|p| *p != 0)
}

fn spec_from(hb: Heartbeat, q: Option<&str>) -> Result<NodeSpec, String> {
    let name = hb
        .device_id
        .filter(|d| !d.is_empty())
        .or(hb.server)
        .ok_or("the heartbeat has no device_id (set heartbeat.device_id in the SRS config)")?;
    let ip = hb.ip.filter(|i| !i.is_empty()).ok_or("the heartbeat has no ip (set SRS_DEVICE_IP or stats.network)")?;
    let ip = node_ip(&ip)?;
    let host = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
    let api = hb.api.iter().find_map(|p| port(p)).ok_or(
        "the heartbeat lists no api port: enable `ports on;` in SRS's heartbeat section (SRS >= 6.0.156 / 7.0.15)",
    )?;
    let role = match hb.role.or_else(|| query_param(q, "role")) {
        Some(r) => r.parse::<Role>()?,
        None => Role::Edge,
    };
    let spec = NodeSpec {
        name,
        role,
        api: format!("http://{host}:{api}"),
        rtmp: hb.rtmp.iter().find_map(|p| port(p)).map(|p| format!("rtmp://{host}:{p}")),
        http: hb.http.iter().find_map(|p| port(p)).map(|p| format!("http://{host}:{p}")),
        region: hb.region.or_else(|| query_param(q, "region")).filter(|r| !r.is_empty()),
        weight: 1.0,
        max_viewers: query_param(q, "max_viewers").and_then(|v| v.parse().ok()),
        max_mbps: query_param(q, "max_mbps").and_then(|v| v.parse().ok()),
        api_token: None,
        dns_address: None,
        max_streams: query_param(q, "max_streams").and_then(|v| v.parse().ok()),
        max_mbps_in: query_param(q, "max_mbps_in").and_then(|v| v.parse().ok()),
    };
    spec.validate()?;
    Ok(spec)
}

/// The `ip` of a heartbeat: an IP address (never a host name, a path or a URL) a node can have.
fn node_ip(ip: &str) -> Result<IpAddr, String> {
    let bare = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')).unwrap_or(ip);
    let parsed: IpAddr = bare.parse().map_err(|_| format!("the heartbeat's ip {ip:?} is not an IP address"))?;
    let parsed = parsed.to_canonical();
    let unusable = parsed.is_unspecified()
        || parsed.is_multicast()
        || match parsed {
            // Link-local addresses are where cloud metadata services answer.
            IpAddr::V4(a) => a.is_link_local() || a.is_broadcast(),
            IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
        };
    if unusable {
        return Err(format!("the heartbeat's ip {parsed} is not an address a node can be polled at"));
    }
    Ok(parsed)
}

/// How a heartbeat was let in: with the secret (it may move its name), or by its source network.
#[derive(Debug, PartialEq)]
enum Admitted {
    Secret,
    Network,
}

/// Whether the heartbeat's caller may register: the secret (`?secret=` or a bearer), else a source
/// address in `register.allow` (loopback when nothing is configured).
fn admit(cfg: &RegisterConfig, secret: Option<&str>, peer: IpAddr) -> Result<Admitted, String> {
    if let (Some(want), Some(got)) = (&cfg.secret, secret)
        && same(got, want)
    {
        return Ok(Admitted::Secret);
    }
    let peer = peer.to_canonical();
    if cfg.allowed().iter().any(|n| n.contains(&peer)) {
        return Ok(Admitted::Network);
    }
    Err(match (&cfg.secret, secret) {
        (Some(_), Some(_)) => "a wrong secret: the heartbeat URL needs ?secret=<register.secret>".to_string(),
        (Some(_), None) => "no secret: put ?secret=<register.secret> in the heartbeat URL \
                            (url http://INDEX/api/v1/srs/register?secret=...)"
            .to_string(),
        (None, _) => format!(
            "a heartbeat from {peer}, which is not in register.allow: set register.secret (--register-secret) \
             and put it in the heartbeat URL, or add the node's network (--register-allow CIDR)"
        ),
    })
}

pub async fn register(
    State(st): State<Arc<IndexState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let secret = query_param(q.as_deref(), "secret").or_else(|| super::admin::bearer(&headers).map(str::to_string));
    let admitted = match admit(&st.config.load().register, secret.as_deref(), peer.ip()) {
        Ok(a) => a,
        Err(why) => {
            tracing::warn!(caller = %peer, "refused a heartbeat: {why}");
            return error(StatusCode::FORBIDDEN, why);
        }
    };
    // A heartbeat let in by its network alone may move a name only to the address it comes from.
    let hb: Heartbeat = match serde_json::from_slice(&body) {
        Ok(hb) => hb,
        Err(e) => {
            tracing::warn!("refused a heartbeat: not the JSON SRS's heartbeat sends: {e}");
            return error(StatusCode::BAD_REQUEST, format!("not the JSON SRS's heartbeat sends: {e}"));
        }
    };
    let spec = match spec_from(hb, q.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("refused a heartbeat: {e}");
            return error(StatusCode::BAD_REQUEST, e);
        }
    };
    let may_move = admitted == Admitted::Secret
        || spec.api_host().and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok())
            == Some(peer.ip().to_canonical());
    let outcome = st.register(spec.clone(), may_move);
    let refused = |status: StatusCode, why: String| {
        tracing::warn!(caller = %peer, node = %spec.name, "refused a heartbeat: {why}");
        error(status, why)
    };
    let what = match outcome {
        RegisterOutcome::Added(poller) => {
            crate::poller::start(&st, [poller]);
            "added"
        }
        RegisterOutcome::Updated => "updated",
        RegisterOutcome::Refreshed => "refreshed",
        RegisterOutcome::Configured => "configured",
        RegisterOutcome::Moved => {
            return refused(
                StatusCode::CONFLICT,
                format!(
                    "node {} is registered at another address: only a heartbeat with the secret, or from the new \
                     address, moves it",
                    spec.name
                ),
            );
        }
        RegisterOutcome::Full => {
            let max = st.config.load().register.max_nodes;
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("register.max_nodes ({max}) nodes are registered already: raise it (--register-max-nodes)"),
            );
        }
    };
    if let Some(shared) = &st.replicas {
        shared.heartbeat(&spec, st.config.load().poll.forget_registered_ms);
    }
    Json(json!({ "code": 0, "node": what })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_srs_heartbeat_makes_an_edge() {
        let path = format!("{}/../../fixtures/srs/heartbeat-register.json", env!("CARGO_MANIFEST_DIR"));
        let hb: Heartbeat = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let spec = spec_from(hb, Some("region=eu")).unwrap();
        assert_eq!(spec.name, "edge-eu-1");
        assert_eq!(spec.role, Role::Edge);
        assert_eq!(spec.api, "http://192.0.2.2:51631");
        assert_eq!(spec.rtmp.as_deref(), Some("rtmp://192.0.2.2:59993"));
        assert_eq!(spec.http.as_deref(), Some("http://192.0.2.2:45373"));
        assert_eq!(spec.region.as_deref(), Some("eu"));
    }

    #[test]
    fn body_keys_win_and_listen_forms_parse() {
        let hb: Heartbeat = serde_json::from_str(
            r#"{"device_id":"o1","ip":"10.0.0.5","api":["0.0.0.0:1985"],"rtmp":["[::]:1935"],"role":"origin","region":"us"}"#,
        )
        .unwrap();
        let spec = spec_from(hb, Some("role=edge&region=eu")).unwrap();
        assert_eq!((spec.role, spec.region.as_deref()), (Role::Origin, Some("us")));
        assert_eq!(spec.rtmp.as_deref(), Some("rtmp://10.0.0.5:1935"));
        assert_eq!(spec.http, None);
    }

    #[test]
    fn missing_ports_say_what_to_enable() {
        let hb: Heartbeat = serde_json::from_str(r#"{"device_id":"e1","ip":"10.0.0.5"}"#).unwrap();
        assert!(spec_from(hb, None).unwrap_err().contains("ports on"));
    }
}

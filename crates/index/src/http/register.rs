//! `POST /api/v1/srs/register`: the body SRS's `heartbeat` section sends (and Ferrocast nodes
//! started with `--index`), so nodes join the index by their own config alone.
//!
//! SRS says nothing about a node's role or region; they come from the body's Ferrocast extension
//! keys `role` and `region`, else from the heartbeat URL's query (`.../register?role=edge&region=eu`),
//! else the node is an edge of the default region.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{error, query_param};
use crate::config::{NodeSpec, Role};
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
    let host = if ip.contains(':') && !ip.starts_with('[') { format!("[{ip}]") } else { ip };
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
    };
    spec.validate()?;
    Ok(spec)
}

pub async fn register(State(st): State<Arc<IndexState>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
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
    if let Some(shared) = &st.replicas {
        shared.heartbeat(&spec, st.config.load().poll.forget_registered_ms);
    }
    let outcome = st.register(spec);
    let what = match outcome {
        RegisterOutcome::Added(poller) => {
            crate::poller::start(&st, [poller]);
            "added"
        }
        RegisterOutcome::Updated => "updated",
        RegisterOutcome::Refreshed => "refreshed",
        RegisterOutcome::Configured => "configured",
    };
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

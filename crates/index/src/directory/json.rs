//! The JSON shapes of directory entries and nodes: one shape for the directory API, event data
//! (`crate::events`) and the listeners' snapshots.

use serde_json::{Value, json};

use crate::directory::{Directory, Holder, StreamEntry};
use crate::nodes::{Health, NodeCounters};

pub fn stream(dir: &Directory, s: &StreamEntry) -> Value {
    let holder = |h: &Holder, viewers: bool| {
        let n = &dir.nodes[h.node];
        let mut v = json!({ "node": n.spec.name, "region": n.region, "kbps_in": h.kbps_in, "kbps_out": h.kbps_out });
        if viewers {
            v["viewers"] = json!(h.clients);
        } else {
            v["clients"] = json!(h.clients);
        }
        v
    };
    json!({
        "key": s.key,
        "vhost": s.vhost,
        "app": s.app,
        "stream": s.stream,
        "origin": s.origins.first().map(|h| &dir.nodes[h.node].spec.name),
        "origins": s.origins.iter().map(|h| holder(h, false)).collect::<Vec<_>>(),
        "edges": s.edges.iter().map(|h| holder(h, true)).collect::<Vec<_>>(),
        "viewers": s.viewers,
        "origin_viewers": s.origin_viewers,
        "peak_viewers": s.peak_viewers,
        "video": s.video.as_deref(),
        "audio": s.audio.as_deref(),
        "kbps": { "in": s.kbps_in, "out": s.kbps_out },
        "live_since_ms": s.live_since_ms,
    })
}

/// Node `i` of `dir`. Without `detail`, `api` is null and `last_error` only "unreachable" (the
/// node is down) or "error": internal addresses are for admins only.
pub fn node(dir: &Directory, i: usize, default_max_viewers: u64, detail: bool) -> Value {
    let n = &dir.nodes[i];
    let snap = n.report.as_deref();
    let cap = n.spec.max_viewers.unwrap_or(default_max_viewers);
    json!({
        "name": n.spec.name,
        "role": n.spec.role,
        "region": n.region,
        "health": n.health,
        "registered": n.registered,
        "api": detail.then_some(&n.spec.api),
        "rtmp": n.spec.rtmp,
        "http": n.spec.http,
        "weight": n.spec.weight,
        "max_viewers": cap,
        "max_mbps": n.spec.max_mbps,
        "viewers": n.viewers,
        "assigned_since_poll": dir.assigned(i),
        "load": (n.viewers as f64 / cap as f64 * 1000.0).round() / 1000.0,
        "streams": n.streams,
        "kbps": { "in": n.kbps_in, "out": n.kbps_out },
        "fails": n.fails,
        "last_error": n.last_error.as_deref().map(|e| match (detail, n.health) {
            (true, _) => e,
            (false, Health::Down) => "unreachable",
            (false, _) => "error",
        }),
        "last_ok_ms": n.last_ok_ms,
        "poll_ms": n.last_poll.map(|d| d.as_millis() as u64),
        "server": snap.and_then(|s| s.server.as_deref()),
        "service": snap.and_then(|s| s.service.as_deref()),
        "version": snap.and_then(|s| s.version.as_deref()),
        "cpu_percent": snap.and_then(|s| s.cpu_percent),
        "mem_kbyte": snap.and_then(|s| s.mem_kbyte),
        "uptime_s": snap.and_then(|s| s.uptime_s),
        "scheduled_total": NodeCounters::get(&n.counters.scheduled_total),
    })
}

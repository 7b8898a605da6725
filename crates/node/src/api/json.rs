//! SRS HTTP API v1 object shapes: the envelope and the vhost, stream and client records, field for
//! field as SRS 7 writes them (see `../shared/srs-samples/`), so SRS tooling reads ours unchanged.

use std::time::Instant;

use serde_json::{Value, json};

use crate::context::NodeContext;
use crate::stats::process::now_ms;
use crate::stats::{ClientStat, StreamStat, VhostStat};

/// `{"code":0,"server":..,"service":..,"pid":..}` plus `extra`'s fields, in that order.
pub fn envelope(ctx: &NodeContext, code: i64, extra: Value) -> Value {
    let mut v = json!({
        "code": code,
        "server": ctx.server_id,
        "service": ctx.service_id,
        "pid": ctx.pid.to_string(),
    });
    if let (Some(map), Value::Object(extra)) = (v.as_object_mut(), extra) {
        map.extend(extra);
    }
    v
}

/// An error in SRS's HTTP-200 style: `{"code":N}`.
pub fn code_only(code: i64) -> Value {
    json!({ "code": code })
}

fn kbps(t: &crate::stats::traffic::Traffic, now: Instant) -> Value {
    let (recv, send) = t.kbps(now);
    json!({ "recv_30s": recv, "send_30s": send })
}

pub fn vhost(v: &VhostStat, streams: usize, now: Instant) -> Value {
    json!({
        "id": v.id,
        "name": v.name,
        "enabled": true,
        "clients": v.clients.load(std::sync::atomic::Ordering::Relaxed),
        "streams": streams,
        "send_bytes": v.traffic.send_bytes(),
        "recv_bytes": v.traffic.recv_bytes(),
        "kbps": kbps(&v.traffic, now),
        "hls": { "enabled": false },
    })
}

pub fn stream(s: &StreamStat, now: Instant) -> Value {
    let media = s.media();
    let mut publish = json!({ "active": media.active });
    if let Some(cid) = &media.publisher_cid {
        publish["cid"] = json!(cid);
    }
    let video = media.video.as_ref().map(
        |v| json!({ "codec": v.codec, "profile": v.profile, "level": v.level, "width": v.width, "height": v.height }),
    );
    let audio = media.audio.as_ref().map(
        |a| json!({ "codec": a.codec, "sample_rate": a.sample_rate, "channel": a.channels, "profile": a.profile }),
    );
    json!({
        "id": s.id,
        "name": s.name,
        "vhost": s.vhost.id,
        "app": s.key.app,
        "tcUrl": s.tc_url,
        "url": s.key.url(),
        "live_ms": now_ms(),
        "clients": s.clients.load(std::sync::atomic::Ordering::Relaxed),
        "frames": s.frames.load(std::sync::atomic::Ordering::Relaxed),
        "send_bytes": s.traffic.send_bytes(),
        "recv_bytes": s.traffic.recv_bytes(),
        "kbps": kbps(&s.traffic, now),
        "publish": publish,
        "video": video,
        "audio": audio,
    })
}

pub fn client(c: &ClientStat, now: Instant) -> Value {
    let alive = now.saturating_duration_since(c.started).as_secs_f64();
    json!({
        "id": c.id,
        "vhost": c.stream.vhost.id,
        "stream": c.stream.id,
        "ip": c.info.ip,
        "pageUrl": c.info.page_url,
        "swfUrl": c.info.swf_url,
        "tcUrl": c.info.tc_url,
        "url": c.info.key.url(),
        "name": c.info.name,
        "type": c.info.kind.srs_name(),
        "publish": c.info.kind.is_publish(),
        "alive": (alive * 100.0).round() / 100.0,
        "send_bytes": c.traffic.send_bytes(),
        "recv_bytes": c.traffic.recv_bytes(),
        "kbps": kbps(&c.traffic, now),
    })
}

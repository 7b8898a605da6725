//! `GET /metrics` on the node's API port: what a Prometheus server scrapes to see one node's
//! delivery — clients by type, bytes in and out, player writes, the batching window in force and
//! how long frames wait in the node before the write that carries them, and with WebRTC its
//! sessions, keyframe requests and dropped packets. Behind the API token
//! when one is configured (Prometheus sends it as a bearer token).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ferrocast_cluster::prometheus::{escape, help};

use crate::context::NodeContext;
use crate::stats::ClientKind;

/// Every client type, so each series exists from the start (at 0).
const KINDS: [ClientKind; 6] = [
    ClientKind::FmlePublish,
    ClientKind::RtmpPlay,
    ClientKind::FlvPlay,
    ClientKind::HlsPlay,
    ClientKind::RtcPlay,
    ClientKind::Forward,
];

pub async fn metrics(State(ctx): State<Arc<NodeContext>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
        render(&ctx),
    )
        .into_response()
}

pub fn render(ctx: &NodeContext) -> String {
    let mut o = String::with_capacity(4096);
    help(&mut o, "ferrocast_node_info", "gauge", "This node: its id, role and version (always 1).");
    let _ = writeln!(
        o,
        "ferrocast_node_info{{server=\"{}\",role=\"{}\",version=\"{}\"}} 1",
        escape(&ctx.server_id),
        ctx.config.role,
        env!("CARGO_PKG_VERSION")
    );
    help(&mut o, "ferrocast_node_uptime_seconds", "gauge", "Seconds since the node started.");
    let _ = writeln!(o, "ferrocast_node_uptime_seconds {:.3}", ctx.started.elapsed().as_secs_f64());

    let clients = ctx.registry.clients();
    help(&mut o, "ferrocast_node_clients", "gauge", "Connected clients by SRS client type (publishers and players).");
    for kind in KINDS {
        let n = clients.iter().filter(|c| c.info.kind == kind).count();
        let _ = writeln!(o, "ferrocast_node_clients{{type=\"{}\"}} {n}", kind.srs_name());
    }
    let with_media = |s: &Arc<crate::stats::StreamStat>| {
        let m = s.media();
        m.video.is_some() || m.audio.is_some()
    };
    let streams = ctx.registry.streams().iter().filter(|s| with_media(s)).count();
    help(&mut o, "ferrocast_node_streams", "gauge", "Streams with media on this node (published here or pulled).");
    let _ = writeln!(o, "ferrocast_node_streams {streams}");

    let (recv, sent) = ctx.registry.byte_totals();
    help(
        &mut o,
        "ferrocast_node_received_bytes_total",
        "counter",
        "Bytes received from clients (publishers, players).",
    );
    let _ = writeln!(o, "ferrocast_node_received_bytes_total {recv}");
    help(&mut o, "ferrocast_node_sent_bytes_total", "counter", "Bytes sent to clients (players, pulls, forwards).");
    let _ = writeln!(o, "ferrocast_node_sent_bytes_total {sent}");

    let d = ctx.delivery.snapshot();
    help(
        &mut o,
        "ferrocast_node_player_writes_total",
        "counter",
        "Writes of live frames to players, by protocol (each player's start, sent as it joins, is not counted).",
    );
    for (proto, n) in d.writes {
        let _ = writeln!(o, "ferrocast_node_player_writes_total{{proto=\"{}\"}} {n}", proto.as_str());
    }
    help(
        &mut o,
        "ferrocast_node_merge_window_seconds",
        "gauge",
        "The batching window of player writes now: frames arriving within it leave in one write (fixed with --merge-window-ms, else adapting to the players).",
    );
    let _ = writeln!(o, "ferrocast_node_merge_window_seconds {}", ctx.feed_policy().window().as_secs_f64());
    help(
        &mut o,
        "ferrocast_node_frame_wait_seconds",
        "histogram",
        "Per player write: how long its oldest frame waited in the node, from arrival to the write.",
    );
    for (le, n) in &d.buckets {
        let le = if le.is_infinite() { "+Inf".to_string() } else { le.to_string() };
        let _ = writeln!(o, "ferrocast_node_frame_wait_seconds_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(o, "ferrocast_node_frame_wait_seconds_sum {:.6}", d.sum_seconds);
    let _ = writeln!(o, "ferrocast_node_frame_wait_seconds_count {}", d.count);
    if let Some(whep) = ctx.whep.get() {
        webrtc(&mut o, whep);
    }
    o
}

/// A node with WebRTC: sessions per engine, and what its sessions and router did.
fn webrtc(o: &mut String, whep: &crate::whep::Whep) {
    use std::sync::atomic::Ordering::Relaxed;
    help(o, "ferrocast_node_webrtc_sessions", "gauge", "WebRTC sessions per engine (connected or connecting).");
    for (engine, n) in whep.sessions().iter().enumerate() {
        let _ = writeln!(o, "ferrocast_node_webrtc_sessions{{engine=\"{engine}\"}} {n}");
    }
    let c = &whep.counters;
    help(
        o,
        "ferrocast_node_webrtc_keyframe_requests_total",
        "counter",
        "Viewers' PLI/FIR: answered from the GOP (resent), or left to the publisher's next keyframe (rate-limited, nothing to resend).",
    );
    let requests = [("resent", &c.keyframes_resent), ("next_keyframe", &c.keyframes_waited)];
    for (answer, n) in requests {
        let _ = writeln!(o, "ferrocast_node_webrtc_keyframe_requests_total{{answer=\"{answer}\"}} {}", n.load(Relaxed));
    }
    help(
        o,
        "ferrocast_node_webrtc_dropped_packets_total",
        "counter",
        "Incoming WebRTC packets dropped: naming no session (unrouted), or their engine's queue full (engine_busy).",
    );
    for (reason, n) in [("unrouted", &c.unrouted), ("engine_busy", &c.engine_busy)] {
        let _ = writeln!(o, "ferrocast_node_webrtc_dropped_packets_total{{reason=\"{reason}\"}} {}", n.load(Relaxed));
    }
    help(
        o,
        "ferrocast_node_webrtc_fell_behind_total",
        "counter",
        "WebRTC viewers that fell behind their pacer and started again at a keyframe.",
    );
    let _ = writeln!(o, "ferrocast_node_webrtc_fell_behind_total {}", c.fell_behind.load(Relaxed));
}

//! The Ferrocast media node: RTMP in; RTMP, HTTP-FLV and HLS out; the SRS HTTP API v1; SRS's
//! `http_hooks`; the edge role (pulling from origins, pushing publishers up) and an origin's
//! forwards.
//!
//! `RunningNode::start` binds the listeners (port 0 picks a free port; the bound addresses are
//! returned and logged), spawns the accept loops, a once-a-second sampler and, with an index server
//! configured, the heartbeat, and hands back a `RunningNode` whose `shutdown` ends players cleanly
//! before closing everything else.
//!
//! The way of a frame: a publisher (`rtmp_server`, or an edge's pull in `edge::relay`) pushes into
//! its stream's `hub::Source`, which keeps the start state (metadata, sequence headers, GOP) and
//! fans each `hub::Packet` out; every consumer reads it through a `hub::FrameFeed` — the RTMP and
//! HTTP-FLV player writers, the HLS segmenter (`hls`), an origin's forwards (`origin_forward`) and
//! an edge's push up (`edge::publish_up`), the last two over `rtmp_client`.
//!
//! The way of a viewer: each front end (`rtmp_server`, `http::flv`, `http::hls`) builds a
//! `admission::ViewerRequest` and calls `admission::admit`, the one place where a viewer is
//! registered, checked by the hooks, subscribed and (on an edge) pulled for; the `Viewer` it gets
//! back ends the session — `on_stop` included — when dropped.
//!
//! The trust boundary: every listener faces the internet. Connections are capped per listener and
//! per address (`limits`); names from peers pass one grammar (`key::StreamKey::parse`); an HTTP
//! client's address is the TCP peer unless a trusted proxy vouches for another (`client_addr`);
//! nothing is created for a client before `admission` lets it in; HLS segments need the session
//! token their playlist gave (`hls::HlsSessions`); the API needs its token to kick (`api`).

pub mod admission;
pub mod api;
pub mod client_addr;
pub mod cluster;
pub mod config;
pub mod context;
pub mod edge;
pub mod heartbeat;
pub mod hls;
pub mod hooks;
pub mod http;
pub mod hub;
pub mod ids;
pub mod key;
pub mod limits;
pub mod net;
pub mod origin_forward;
pub mod rtmp_client;
pub mod rtmp_server;
pub mod stats;
pub mod whep;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use config::{LogFormat, MediaConfig, NodeConfig, Role};
pub use context::NodeContext;

/// Failure to start a node.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(
        "cannot listen for {what} on {addr}: {cause} (is another server using that port? pass another address, or port 0 for any free port)"
    )]
    Bind { what: &'static str, addr: SocketAddr, cause: std::io::Error },
}

/// A started node.
pub struct RunningNode {
    pub rtmp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub ctx: Arc<NodeContext>,
    tracker: TaskTracker,
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|cause| StartError::Bind { what, addr, cause })
}

impl RunningNode {
    /// Binds and starts serving.
    pub async fn start(mut config: NodeConfig) -> Result<RunningNode, StartError> {
        config.validate().map_err(StartError::Config)?;
        config.load_secrets().map_err(StartError::Config)?;
        let rtmp = bind("RTMP", config.rtmp).await?;
        let http = bind("HTTP", config.http).await?;
        let api = bind("the API", config.api).await?;
        let local = |l: &TcpListener, fallback| l.local_addr().unwrap_or(fallback);
        let (rtmp_addr, http_addr, api_addr) =
            (local(&rtmp, config.rtmp), local(&http, config.http), local(&api, config.api));
        let webrtc = match config.webrtc_udp {
            Some(addr) => Some(whep::bind(addr, config.webrtc_engines).await?),
            None => None,
        };
        let ctx = NodeContext::new(config);
        if let Some(sockets) = webrtc {
            let limiter = ctx.conn_limiter("webrtc");
            let whep = whep::Whep::start(sockets, ctx.config.webrtc_candidate, limiter, ctx.shutdown.clone());
            let _ = ctx.whep.set(whep);
        }
        let tracker = TaskTracker::new();
        tracker.spawn(rtmp_server::serve(rtmp, ctx.clone(), tracker.clone()));
        tracker.spawn(http::serve::serve(http, http::media_router(ctx.clone()), ctx.clone(), tracker.clone(), "http"));
        tracker.spawn(http::serve::serve(api, api::router(ctx.clone()), ctx.clone(), tracker.clone(), "api"));
        tokio::spawn(sampler(ctx.clone()));
        let ports = heartbeat::BoundPorts { rtmp: rtmp_addr.port(), http: http_addr.port(), api: api_addr.port() };
        if let Some(heartbeat) = heartbeat::Heartbeat::new(ctx.clone(), ports) {
            tracker.spawn(heartbeat.run());
        }
        info!(
            role = %ctx.config.role,
            server = %ctx.server_id,
            rtmp = %rtmp_addr,
            http = %http_addr,
            api = %api_addr,
            "ferrocast node listening"
        );
        Ok(RunningNode { rtmp_addr, http_addr, api_addr, ctx, tracker })
    }

    /// Stops the node: players get a clean end of stream, publishers are closed, then every
    /// connection is closed. Returns when all connection tasks are done (or after a bound).
    pub async fn shutdown(self) {
        info!("shutting down: ending players, closing publishers");
        self.ctx.hub.close_all();
        // Give players time to write their end-of-stream: until the last one has left (bounded),
        // then a moment for the bytes to go out. A fixed pause was too short on a loaded machine.
        let players = || {
            let playing = |c: &&Arc<stats::ClientStat>| {
                matches!(c.info.kind, stats::ClientKind::RtmpPlay | stats::ClientKind::FlvPlay)
            };
            self.ctx.registry.clients().iter().filter(playing).count()
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while players() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.ctx.registry.kick_all();
        self.ctx.shutdown.cancel();
        self.tracker.close();
        // Forwarders saw their sources close and end their downstream publishes.
        self.ctx.forwards.close();
        if tokio::time::timeout(Duration::from_secs(2), self.ctx.forwards.wait()).await.is_err() {
            warn!("some forwards did not stop within 2 s");
        }
        if !self.ctx.hooks.flush(Duration::from_secs(2)).await {
            warn!("some hook notifications were still in flight at exit");
        }
        if tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await.is_err() {
            warn!("some connections did not close within 5 s");
        }
        info!("node stopped");
    }
}

/// Once a second: rate samples, CPU sample, and the stalled HTTP-FLV player watchdog.
async fn sampler(ctx: Arc<NodeContext>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        ctx.registry.sample(now);
        ctx.process.sample();
        kick_stalled_players(&ctx, now);
        for viewer in ctx.hls.sessions.expire(std::time::Duration::from_millis(ctx.config.hls.viewer_timeout_ms)) {
            tracing::info!(client = viewer.id(), "hls viewer left");
            drop(viewer); // ends the session: on_stop
        }
    }
}

/// A player whose stream received data in the last `slow_player_drop` but which took none of it
/// is stuck (its socket does not drain): disconnect it. RTMP players also time out their writes.
fn kick_stalled_players(ctx: &NodeContext, now: Instant) {
    let window = ctx.config.media.slow_player_drop();
    let Some(then) = now.checked_sub(window) else { return };
    for c in ctx.registry.clients() {
        // Forwarders watch their own sockets (see `origin_forward`): kicking one would end it for good.
        let watched = matches!(c.info.kind, stats::ClientKind::RtmpPlay | stats::ClientKind::FlvPlay);
        if !watched || c.started > then {
            continue;
        }
        let (Some((sent_then, _)), Some((_, stream_recv_then))) =
            (c.traffic.totals_at(then), c.stream.traffic.totals_at(then))
        else {
            continue;
        };
        if sent_then == c.traffic.send_bytes() && stream_recv_then < c.stream.traffic.recv_bytes() {
            warn!(client = %c.id, stream = %c.info.key, "player took no data for {window:?} while the stream flowed: disconnecting");
            c.kick.cancel();
        }
    }
}

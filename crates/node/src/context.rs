//! What every connection handler of a node shares: configuration, the hub, the statistics
//! registry, the node's SRS identity, and the shutdown signal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocast_media::GopLimits;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{NodeConfig, Role};
use crate::edge::EdgeRelays;
use crate::hub::{FeedPolicy, Hub};
use crate::ids;
use crate::stats::Registry;
use crate::stats::process::ProcessSampler;

pub struct NodeContext {
    pub config: NodeConfig,
    pub hub: Arc<Hub>,
    pub registry: Arc<Registry>,
    /// Player writes and frame waits, for `/metrics`.
    pub delivery: crate::stats::delivery::Delivery,
    /// The players whose write window adapts to the load (the default write policy).
    pub write_load: Arc<crate::hub::WriteLoad>,
    pub process: ProcessSampler,
    /// SRS `server`: stable per node (its name when given).
    pub server_id: String,
    /// SRS `service`: new on every start.
    pub service_id: String,
    pub pid: u32,
    pub started: Instant,
    pub shutdown: CancellationToken,
    /// The HLS segment windows.
    pub hls: crate::hls::HlsStreams,
    /// The http_hooks client.
    pub hooks: crate::hooks::Hooks,
    /// The upstream pulls, on an edge.
    pub edge: Option<Arc<EdgeRelays>>,
    /// The forwarders (and `on_forward` backend calls) of an origin, waited for at shutdown.
    pub forwards: TaskTracker,
    /// Where streams live (`crate::cluster`): an origin's coworkers, or an edge's index.
    pub locator: Option<crate::cluster::Locator>,
    /// WebRTC playback, when `webrtc_udp` is set (started with the node).
    pub whep: std::sync::OnceLock<Arc<crate::whep::Whep>>,
}

impl NodeContext {
    pub fn new(config: NodeConfig) -> Arc<NodeContext> {
        let gop = GopLimits { max_frames: config.media.gop_max_frames, max_bytes: config.media.gop_max_bytes };
        let server_id = config.name.clone().unwrap_or_else(ids::object_id);
        let service_id = ids::service_id();
        Arc::new(NodeContext {
            hls: crate::hls::HlsStreams::default(),
            hooks: crate::hooks::Hooks::new(config.hooks.clone(), server_id.clone(), service_id.clone()),
            hub: Hub::new(config.media.fanout_queue, gop),
            registry: Registry::new(),
            delivery: Default::default(),
            process: ProcessSampler::default(),
            server_id,
            service_id,
            pid: std::process::id(),
            started: Instant::now(),
            shutdown: CancellationToken::new(),
            edge: (config.role == Role::Edge).then(|| EdgeRelays::new(config.origins.clone(), config.edge.clone())),
            forwards: TaskTracker::new(),
            write_load: Arc::default(),
            whep: std::sync::OnceLock::new(),
            locator: crate::cluster::Locator::coworkers(&config).or_else(|| crate::cluster::Locator::index(&config)),
            config,
        })
    }

    pub fn feed_policy(&self) -> FeedPolicy {
        let m = &self.config.media;
        FeedPolicy {
            merge_window: m.merge_window(),
            adaptive: m.adaptive_window().then(|| self.write_load.clone()),
            play_wait: m.play_wait(),
            slow_drop: m.slow_player_drop(),
            max_batch: 256,
        }
    }

    /// On an edge, makes sure the stream is being pulled for a player that just subscribed.
    pub fn pull_if_edge(self: &Arc<Self>, key: &crate::key::StreamKey, param: &str, cid: &str) {
        if let Some(edge) = &self.edge {
            edge.ensure(self, key, param, cid);
        }
    }

    /// On an origin of an origin cluster, where to send a player of `key` that this origin does
    /// not have (its coworkers' answer), unless that is this origin itself. None: serve it here
    /// (wait for a publisher, as without a cluster).
    pub async fn elsewhere(&self, key: &crate::key::StreamKey, param: &str) -> Option<crate::cluster::Location> {
        if self.config.role != Role::Origin || self.hub.get(key).is_some_and(|s| s.is_publishing()) {
            return None;
        }
        let found = self.locator.as_ref()?.locate(key, param).await?;
        let me = self.config.rtmp;
        let port_is_mine = found.rtmp.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()) == Some(me.port());
        let host = found.rtmp.rsplit_once(':').map_or("", |(h, _)| h).trim_matches(|c| c == '[' || c == ']');
        let host_is_mine = host.parse::<std::net::IpAddr>().is_ok_and(|ip| {
            ip.is_loopback() || ip == me.ip() || me.ip().is_unspecified() && self.config.advertise_ip == Some(ip)
        });
        if port_is_mine && host_is_mine {
            return None;
        }
        Some(found)
    }

    /// How long an RTMP connection may take, in all, to publish or play.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.config.media.setup_timeout_ms)
    }

    /// A connection limiter for the listener `name`, as configured.
    pub fn conn_limiter(&self, name: &'static str) -> Arc<crate::limits::ConnLimiter> {
        let m = &self.config.media;
        crate::limits::ConnLimiter::new(name, m.max_connections, m.max_connections_per_ip)
    }
}

//! The media node's configuration: one struct that a TOML file deserializes into and that CLI
//! flags override key by key. Every field has a default, so an empty file is a valid config.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use ferrocast_cluster::Role;

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?}: expected \"text\" or \"json\"")),
        }
    }
}

/// The most WebRTC engines a node runs.
pub const MAX_WEBRTC_ENGINES: usize = 64;

/// Everything a media node needs to start.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Node name, shown in logs and used as the SRS `server` id when set.
    pub name: Option<String>,
    /// Origin or edge.
    pub role: Role,
    /// RTMP listen address.
    pub rtmp: SocketAddr,
    /// HTTP listen address (HTTP-FLV, HLS).
    pub http: SocketAddr,
    /// SRS HTTP API v1 listen address.
    pub api: SocketAddr,
    /// Region label, reported to the index server.
    pub region: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// Origins an edge pulls from (and forwards publishers to), `host:port`, in order of preference.
    /// An edge with an `index` asks it first, and needs none.
    pub origins: Vec<String>,
    /// Origin cluster (origins only): HTTP API base URLs of the servers that know where streams
    /// live (SRS `coworkers`: the index, or other origins), asked when a player wants a stream
    /// this origin does not have; the player is then redirected. Empty: the `index`, if any.
    pub coworkers: Vec<String>,
    /// Edge timing.
    pub edge: EdgeConfig,
    /// SRS-style forward (origins only): push every published stream to other servers.
    pub forward: ForwardConfig,
    /// SRS-style http_hooks.
    pub hooks: crate::hooks::HooksConfig,
    /// HLS segmenting.
    pub hls: HlsConfig,
    /// Media tuning.
    pub media: MediaConfig,
    /// Index server to register with (SRS `heartbeat`): its base URL, e.g. `http://10.0.0.9:8000`;
    /// the node POSTs to `{index}/api/v1/srs/register` (a URL whose path ends in `/register` is
    /// used as is). None: no heartbeat.
    pub index: Option<String>,
    /// Heartbeat period, in ms.
    pub index_interval_ms: u64,
    /// The `ip` the heartbeat reports. None: the local address that routes to the index server.
    pub advertise_ip: Option<IpAddr>,
    /// WebRTC (WHEP) playback: the UDP address every session shares. None: no WebRTC.
    pub webrtc_udp: Option<SocketAddr>,
    /// WebRTC engines: tasks sharing `webrtc_udp`'s one port, so WebRTC uses more than one core.
    /// 0: one per core.
    pub webrtc_engines: usize,
    /// The address WebRTC viewers are told to reach (a node behind NAT or in a cloud: its public
    /// IP). None: the UDP socket's own address.
    pub webrtc_candidate: Option<IpAddr>,
    /// Proxies (CIDR blocks) whose `X-Forwarded-For` / `X-Real-IP` headers name the client; from
    /// anyone else those headers are ignored. See `crate::client_addr`.
    pub trusted_proxies: Vec<crate::client_addr::Cidr>,
    /// The API's bearer token. Kicking (`DELETE`) always needs it — without one configured the API
    /// kicks nobody — and reads need it when it is set. See `crate::api::authorize`.
    pub api_token: Option<String>,
    /// A file holding the API token (its first line), so the secret stays out of argv and the
    /// config file; read at start, it wins over `api_token`.
    pub api_token_file: Option<std::path::PathBuf>,
}

/// SRS's `forward { destination …; backend …; }`: where an origin pushes every stream published
/// to it. See `crate::origin_forward`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardConfig {
    /// RTMP `host:port`s; each published stream goes to `rtmp://DEST/{app}/{stream}?{param}`.
    pub destinations: Vec<String>,
    /// SRS `backend`: an http:// URL that gets an `on_forward` POST on each publish; the
    /// `data.urls` of its answer (full rtmp:// URLs) are pushed to as well.
    pub backend: Option<String>,
}

impl ForwardConfig {
    pub fn is_empty(&self) -> bool {
        self.destinations.is_empty() && self.backend.is_none()
    }
}

/// How streams are cut for HLS.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HlsConfig {
    /// Target segment duration in ms; segments are cut at the first keyframe past it.
    pub fragment_ms: u32,
    /// LL-HLS part target in ms (`EXT-X-PART-INF:PART-TARGET`): parts end before they exceed it.
    pub part_ms: u32,
    /// Segments in the live playlist (and kept in memory).
    pub window: usize,
    /// Stop segmenting a stream that has had no publisher this long, in ms.
    pub idle_ms: u64,
    /// An HLS viewer that fetched nothing for this long has left, in ms.
    pub viewer_timeout_ms: u64,
    /// A segment is closed at this size (or at 10 target durations) even without a keyframe;
    /// frames until the next keyframe are dropped. Bounds memory per stream to about
    /// 2 x window x this (the TS and the LL-HLS windows).
    pub max_segment_bytes: usize,
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            fragment_ms: 2_000,
            part_ms: 300,
            window: 6,
            idle_ms: 30_000,
            viewer_timeout_ms: 20_000,
            max_segment_bytes: 32 << 20,
        }
    }
}

/// How an edge pulls.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// Keep pulling this long after the last player left, in ms.
    pub grace_ms: u64,
    /// An upstream that delivers no media for this long is abandoned for the next origin, in ms.
    pub upstream_timeout_ms: u64,
    /// Connecting to an origin (TCP + handshake + play) may take this long, in ms.
    pub connect_timeout_ms: u64,
    /// A failed origin is tried again first after this long, in ms.
    pub origin_retry_ms: u64,
}

impl EdgeConfig {
    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.grace_ms)
    }
    /// No media from the upstream for this long means it is gone.
    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_timeout_ms)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn origin_retry(&self) -> Duration {
        Duration::from_millis(self.origin_retry_ms)
    }
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig { grace_ms: 3_000, upstream_timeout_ms: 3_000, connect_timeout_ms: 2_000, origin_retry_ms: 10_000 }
    }
}

/// Media-path tuning knobs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Outgoing RTMP chunk size (SRS uses 60000).
    pub chunk_size: u32,
    /// A fixed merge window for player writes, in milliseconds: frames ready within it go out in
    /// one vectored write; 0 writes every frame at once (lowest latency, most CPU). Unset (the
    /// default): adaptive, see [`crate::hub::WriteLoad`] — per frame while the node has few
    /// players, a window growing with their number up to `max_merge_window_ms`.
    pub merge_window_ms: Option<u64>,
    /// The largest window the adaptive policy uses, in ms (SRS's fixed default).
    pub max_merge_window_ms: u64,
    /// How long a player may wait for a publisher that has not started (or has left), in ms.
    pub play_wait_ms: u64,
    /// A player that stays behind the live edge this long is disconnected, in ms.
    pub slow_player_drop_ms: u64,
    /// Frames buffered per stream for players before a slow one skips ahead.
    pub fanout_queue: usize,
    /// GOP cache bound: frames.
    pub gop_max_frames: usize,
    /// GOP cache bound: bytes.
    pub gop_max_bytes: usize,
    /// Largest RTMP message accepted from a peer, in bytes.
    pub max_message_size: usize,
    /// A publisher that sends nothing for this long is disconnected, in ms.
    pub publish_idle_timeout_ms: u64,
    /// Most connections open at once on each listener (RTMP, HTTP, API, WebRTC sessions); 0: no
    /// cap.
    pub max_connections: usize,
    /// Most connections open at once from one client address on each listener; 0: no cap.
    pub max_connections_per_ip: usize,
    /// An RTMP connection must complete its handshake, connect and publish/play within this
    /// long, in ms, however slowly its bytes arrive.
    pub setup_timeout_ms: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: None,
            role: Role::Origin,
            rtmp: SocketAddr::from(([0, 0, 0, 0], 1935)),
            http: SocketAddr::from(([0, 0, 0, 0], 8080)),
            api: SocketAddr::from(([0, 0, 0, 0], 1985)),
            region: None,
            log_format: LogFormat::Text,
            origins: Vec::new(),
            coworkers: Vec::new(),
            edge: EdgeConfig::default(),
            forward: ForwardConfig::default(),
            hooks: crate::hooks::HooksConfig::default(),
            hls: HlsConfig::default(),
            media: MediaConfig::default(),
            index: None,
            index_interval_ms: 2_000,
            advertise_ip: None,
            webrtc_udp: None,
            webrtc_engines: 0,
            webrtc_candidate: None,
            trusted_proxies: Vec::new(),
            api_token: None,
            api_token_file: None,
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            chunk_size: 60_000,
            merge_window_ms: None,
            max_merge_window_ms: 350,
            play_wait_ms: 30_000,
            slow_player_drop_ms: 10_000,
            fanout_queue: 1024,
            gop_max_frames: 3000,
            gop_max_bytes: 32 << 20,
            max_message_size: 16 << 20,
            publish_idle_timeout_ms: 20_000,
            max_connections: 20_000,
            max_connections_per_ip: 1024,
            setup_timeout_ms: 10_000,
        }
    }
}

impl NodeConfig {
    /// Checks what serde cannot: an edge needs an origin, origins are `host:port`, URLs parse.
    pub fn validate(&self) -> Result<(), String> {
        if self.webrtc_engines > MAX_WEBRTC_ENGINES {
            return Err(format!(
                "webrtc_engines {} is too many: at most {MAX_WEBRTC_ENGINES} (0 gives one per core)",
                self.webrtc_engines
            ));
        }
        if self.role == Role::Edge && self.origins.is_empty() && self.index.is_none() {
            return Err("an edge needs an origin to pull from: pass --origin HOST:PORT, or --index URL to ask the \
                        index where each stream is"
                .into());
        }
        if self.role == Role::Edge && !self.coworkers.is_empty() {
            return Err("coworkers are for origins (an edge asks its --index): remove --coworker".into());
        }
        for c in &self.coworkers {
            crate::hooks::check_http_url(c).map_err(|e| format!("coworker: {e}"))?;
        }
        for o in &self.origins {
            check_host_port("origin", o)?;
        }
        if self.role == Role::Edge && !self.forward.is_empty() {
            return Err("forward is for origins: an edge already pushes its publishers to its origins; \
                        remove --forward/--forward-backend or use --role origin"
                .into());
        }
        for d in &self.forward.destinations {
            check_host_port("forward destination", d)?;
        }
        if let Some(backend) = &self.forward.backend {
            crate::hooks::check_http_url(backend).map_err(|e| format!("forward backend: {e}"))?;
        }
        self.hooks.validate()?;
        if let Some(index) = &self.index {
            crate::heartbeat::register_url(index)?;
        }
        if self.index_interval_ms == 0 {
            return Err("index_interval_ms must be at least 1 (the default is 2000)".into());
        }
        let hls = &self.hls;
        if !(50..=hls.fragment_ms.max(50)).contains(&hls.part_ms) {
            return Err(format!(
                "hls_part_ms {} is out of range: use 50 to hls_fragment_ms ({}); 200 to 500 suits most players",
                hls.part_ms, hls.fragment_ms
            ));
        }
        if !(128..=0x7fff_ffff).contains(&self.media.chunk_size) {
            return Err(format!("chunk_size {} is out of range: use 128 to 2147483647", self.media.chunk_size));
        }
        Ok(())
    }
}

/// An RTMP peer given as `host:port`, checked the way it is used: as the host of an RTMP URL.
fn check_host_port(what: &str, peer: &str) -> Result<(), String> {
    let url = format!("rtmp://{peer}/app/stream");
    let explicit_port = peer.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok_and(|p| p > 0));
    if !explicit_port || ferrocast_rtmp::ClientConfig::from_url(&url, ferrocast_rtmp::ClientMode::Play).is_err() {
        return Err(format!("{what} {peer:?} is not HOST:PORT (e.g. 10.0.0.5:1935)"));
    }
    Ok(())
}

impl NodeConfig {
    /// Reads the secrets kept in files (`api_token_file`) into the config.
    pub fn load_secrets(&mut self) -> Result<(), String> {
        if let Some(path) = &self.api_token_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the API token file {}: {e}", path.display()))?;
            let token = text.lines().next().unwrap_or_default().trim().to_string();
            if token.is_empty() {
                return Err(format!("the API token file {} is empty", path.display()));
            }
            self.api_token = Some(token);
        }
        if self.api_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            self.api_token = None;
        }
        Ok(())
    }

    /// The heartbeat period.
    pub fn index_interval(&self) -> Duration {
        Duration::from_millis(self.index_interval_ms)
    }
}

impl MediaConfig {
    /// The fixed window, or the adaptive policy's largest.
    pub fn merge_window(&self) -> Duration {
        Duration::from_millis(self.merge_window_ms.unwrap_or(self.max_merge_window_ms))
    }
    /// Whether the window adapts to the node's load (no fixed `merge_window_ms`).
    pub fn adaptive_window(&self) -> bool {
        self.merge_window_ms.is_none()
    }
    pub fn play_wait(&self) -> Duration {
        Duration::from_millis(self.play_wait_ms)
    }
    pub fn slow_player_drop(&self) -> Duration {
        Duration::from_millis(self.slow_player_drop_ms)
    }
    pub fn publish_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_idle_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_is_the_default_and_unknown_keys_are_refused() {
        let c: NodeConfig = toml_like("").unwrap();
        assert_eq!(c.rtmp.port(), 1935);
        assert_eq!(c.media.chunk_size, 60_000);
        assert!(toml_like("{\"bogus\": 1}").is_err());
    }

    #[test]
    fn forward_is_checked_and_only_for_origins() {
        let mut c = NodeConfig::default();
        c.forward.destinations = vec!["10.0.0.2:1935".into()];
        c.forward.backend = Some("http://127.0.0.1:8085/api/v1/forward".into());
        assert!(c.validate().is_ok());
        c.forward.destinations = vec!["10.0.0.2".into()];
        assert!(c.validate().unwrap_err().contains("forward destination"));
        c.forward.destinations.clear();
        c.forward.backend = Some("ftp://x/forward".into());
        assert!(c.validate().unwrap_err().contains("forward backend"));
        c.forward.backend = Some("http://127.0.0.1:8085/forward".into());
        c.role = Role::Edge;
        c.origins = vec!["10.0.0.5:1935".into()];
        assert!(c.validate().unwrap_err().contains("forward is for origins"));
    }

    fn toml_like(json: &str) -> Result<NodeConfig, serde_json::Error> {
        serde_json::from_str(if json.is_empty() { "{}" } else { json })
    }
}

//! `ferrocast node`: flags, the optional TOML file, and the run loop with signal handling.
//!
//! Every key of the config file has a flag of the same name; a flag given on the command line
//! wins over the file, and the file wins over the defaults.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ferrocast_node::{LogFormat, NodeConfig, Role, RunningNode};

#[derive(Args, Debug, Default)]
pub struct NodeArgs {
    /// TOML config file; its keys are the long flag names (media keys under [media], edge keys
    /// under [edge] without the edge_ prefix, HLS keys under [hls] without the hls_ prefix, origins as
    /// `origins = [..]`, trusted proxies as `trusted_proxies = [..]`, hooks under [hooks]
    /// as on_publish = [..], timeout_ms, allow_on_error; forward under [forward] as
    /// destinations = [..], backend).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Node name; also its SRS `server` id in the API [default: a random vid-xxxxxxx].
    #[arg(long)]
    pub name: Option<String>,
    /// origin (accepts publishers) or edge (pulls from an origin) [default: origin].
    #[arg(long, value_name = "ROLE")]
    pub role: Option<Role>,
    /// RTMP listen address; port 0 picks a free port [default: 0.0.0.0:1935].
    #[arg(long, value_name = "ADDR")]
    pub rtmp: Option<SocketAddr>,
    /// HTTP listen address for HTTP-FLV (/{app}/{stream}.flv) and HLS (/{app}/{stream}.m3u8)
    /// [default: 0.0.0.0:8080].
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// SRS HTTP API v1 listen address; keep it off the internet or set --api-token
    /// [default: 0.0.0.0:1985].
    #[arg(long, value_name = "ADDR")]
    pub api: Option<SocketAddr>,
    /// Region label, e.g. eu; shown in /api/v1/summaries (self.region) and sent in the heartbeat.
    #[arg(long)]
    pub region: Option<String>,
    /// Index server to register with, SRS heartbeat style: its base URL (http only, e.g.
    /// http://10.0.0.9:8000); the node POSTs to URL/api/v1/srs/register, or to URL itself when
    /// its path ends in /register [default: none, no heartbeat].
    #[arg(long, value_name = "URL")]
    pub index: Option<String>,
    /// Heartbeat period, in ms; the first heartbeat goes out at start [default: 2000].
    #[arg(long, value_name = "MS")]
    pub index_interval_ms: Option<u64>,
    /// The IP the heartbeat reports to the index server [default: the local address that routes
    /// to the index server, else 127.0.0.1].
    #[arg(long, value_name = "IP")]
    pub advertise_ip: Option<IpAddr>,
    /// WebRTC (WHEP) playback on this UDP address, shared by every session, e.g. 0.0.0.0:8000,
    /// and ICE-TCP on the same port number for viewers whose network blocks UDP (open both in the
    /// firewall). Players POST an SDP offer to http://HOST:HTTP/app/stream/whep; AAC is sent as
    /// Opus [default: no WebRTC].
    #[arg(long, value_name = "ADDR")]
    pub webrtc_udp: Option<SocketAddr>,
    /// WebRTC engines: tasks that share --webrtc-udp's one port, so WebRTC uses more than one
    /// core; a new viewer goes to the engine with the fewest [default: one per core; TOML
    /// webrtc_engines].
    #[arg(long, value_name = "N")]
    pub webrtc_engines: Option<usize>,
    /// The IP WebRTC viewers are told to reach: the node's public address behind NAT or in a cloud
    /// [default: the --webrtc-udp address].
    #[arg(long, value_name = "IP")]
    pub webrtc_candidate: Option<IpAddr>,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Origin to pull from (edge) — repeatable, tried in order; HOST:PORT of its RTMP port. An
    /// edge with --index asks the index where each stream is first (and needs no --origin); it
    /// also follows origins' RTMP 302 redirects (SRS origin cluster), up to 3 hops.
    #[arg(long = "origin", value_name = "HOST:PORT")]
    pub origins: Vec<String>,
    /// Origin cluster (origin): the HTTP API of a server that knows where streams live — the
    /// index (http://INDEX:8000, add ?secret=HOOK_SECRET when it has one) or another origin (SRS
    /// coworkers) — repeatable. A player asking for a stream this origin does not have is
    /// redirected to the origin holding it: RTMP with SRS's 302, HTTP-FLV/HLS with a 302, a WHEP offer with a 307
    /// [default: the --index server].
    #[arg(long = "coworker", value_name = "URL")]
    pub coworkers: Vec<String>,
    /// Edge: keep pulling this long after the last player left, in ms [default: 3000].
    #[arg(long, value_name = "MS")]
    pub edge_grace_ms: Option<u64>,
    /// Edge: switch origin when the upstream sends no media this long, in ms [default: 3000].
    #[arg(long, value_name = "MS")]
    pub upstream_timeout_ms: Option<u64>,
    /// Edge: give up connecting to an origin after this long, in ms [default: 2000].
    #[arg(long, value_name = "MS")]
    pub connect_timeout_ms: Option<u64>,
    /// Edge: retry a failed origin first again after this long, in ms [default: 10000].
    #[arg(long, value_name = "MS")]
    pub origin_retry_ms: Option<u64>,
    /// Origin: push every stream published here to this RTMP server too (SRS forward
    /// destination), as rtmp://HOST:PORT/{app}/{stream} with the publisher's query plus
    /// ferrocast_forwarded=1 — repeatable, all are used. Retried with backoff while the publisher
    /// stays; a stream that arrived by forwarding (with that key) is not forwarded again.
    #[arg(long = "forward", value_name = "HOST:PORT")]
    pub forward: Vec<String>,
    /// Origin: on each publish, POST SRS's on_forward body to this http:// URL and push the
    /// stream to each rtmp:// URL in the data.urls of an accepted answer, besides the --forward
    /// ones; times out after --hook-timeout-ms; a failure only means no extra destinations.
    #[arg(long, value_name = "URL", env = "FERROCAST_FORWARD_BACKEND", hide_env_values = true)]
    pub forward_backend: Option<String>,
    /// One hook URL for all six http_hooks events (SRS bodies and answer rules). A URL holding
    /// a secret is better given in FERROCAST_HOOKS or the config file than on the command line.
    #[arg(long, value_name = "URL", env = "FERROCAST_HOOKS", hide_env_values = true)]
    pub hooks: Option<String>,
    /// on_connect hook URL (repeatable; called in order, first refusal wins).
    #[arg(long = "on-connect", value_name = "URL")]
    pub on_connect: Vec<String>,
    /// on_close hook URL (repeatable; notification only).
    #[arg(long = "on-close", value_name = "URL")]
    pub on_close: Vec<String>,
    /// on_publish hook URL (repeatable; a refusal rejects the publish).
    #[arg(long = "on-publish", value_name = "URL")]
    pub on_publish: Vec<String>,
    /// on_unpublish hook URL (repeatable; notification only).
    #[arg(long = "on-unpublish", value_name = "URL")]
    pub on_unpublish: Vec<String>,
    /// on_play hook URL (repeatable; a refusal rejects the play: RTMP status error, HTTP 403).
    #[arg(long = "on-play", value_name = "URL")]
    pub on_play: Vec<String>,
    /// on_stop hook URL (repeatable; notification only).
    #[arg(long = "on-stop", value_name = "URL")]
    pub on_stop: Vec<String>,
    /// Timeout of one hook call, in ms [default: 3000].
    #[arg(long, value_name = "MS")]
    pub hook_timeout_ms: Option<u64>,
    /// Let clients in when the hook service is unreachable (default: refuse them).
    #[arg(long)]
    pub hook_allow_on_error: bool,
    /// HLS target segment duration in ms; cuts happen at keyframes [default: 2000].
    #[arg(long, value_name = "MS")]
    pub hls_fragment_ms: Option<u32>,
    /// LL-HLS part target in ms (`/{app}/{stream}/index.m3u8`): parts end before they exceed it,
    /// and players hold back three of them [default: 300].
    #[arg(long, value_name = "MS")]
    pub hls_part_ms: Option<u32>,
    /// HLS segments in the live playlist, kept in memory [default: 6].
    #[arg(long, value_name = "N")]
    pub hls_window: Option<usize>,
    /// Stop segmenting a stream without publisher after this long, in ms [default: 30000].
    #[arg(long, value_name = "MS")]
    pub hls_idle_ms: Option<u64>,
    /// An HLS viewer that fetched nothing this long has left (on_stop), in ms [default: 20000].
    #[arg(long, value_name = "MS")]
    pub hls_viewer_timeout_ms: Option<u64>,
    /// Close an HLS segment at this size, or at 10 x --hls-fragment-ms, even without a keyframe
    /// (frames until the next keyframe are dropped) [default: 33554432].
    #[arg(long, value_name = "BYTES")]
    pub hls_max_segment_bytes: Option<usize>,
    /// Outgoing RTMP chunk size [default: 60000].
    #[arg(long, value_name = "BYTES")]
    pub chunk_size: Option<u32>,
    /// Pins a fixed merge window for player writes, in ms: frames arriving within it leave in one
    /// write; 0 sends each frame at once (more CPU). Unset, the window adapts to the load: each
    /// frame at once while the node has few players, growing with their number (1 ms per 8
    /// players: 125 ms at 1,000) up to --max-merge-window-ms, so thousands of players still cost
    /// few writes [default: adaptive].
    #[arg(long, value_name = "MS")]
    pub merge_window_ms: Option<u64>,
    /// The largest window the adaptive write policy uses, in ms [default: 350].
    #[arg(long, value_name = "MS")]
    pub max_merge_window_ms: Option<u64>,
    /// How long a player waits for a publisher, in ms [default: 30000].
    #[arg(long, value_name = "MS")]
    pub play_wait_ms: Option<u64>,
    /// Disconnect a player that stays behind this long, in ms; also how long any RTMP write may
    /// wait for the peer to take bytes [default: 10000].
    #[arg(long, value_name = "MS")]
    pub slow_player_drop_ms: Option<u64>,
    /// Frames queued per stream before a slow player skips to the next keyframe [default: 1024].
    #[arg(long, value_name = "FRAMES")]
    pub fanout_queue: Option<usize>,
    /// GOP cache bound in frames [default: 3000].
    #[arg(long, value_name = "FRAMES")]
    pub gop_max_frames: Option<usize>,
    /// GOP cache bound in bytes [default: 33554432].
    #[arg(long, value_name = "BYTES")]
    pub gop_max_bytes: Option<usize>,
    /// Largest RTMP message accepted, in bytes [default: 16777216].
    #[arg(long, value_name = "BYTES")]
    pub max_message_size: Option<usize>,
    /// Disconnect a publisher silent for this long, in ms [default: 20000].
    #[arg(long, value_name = "MS")]
    pub publish_idle_timeout_ms: Option<u64>,
    /// Most connections open at once on each listener (RTMP, HTTP, API, and WebRTC sessions);
    /// over it new connections are closed at once (a WebRTC offer gets a 503), with a log
    /// line; 0: no cap [default: 20000].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Most connections open at once from one client address on each listener, WebRTC
    /// sessions included (an edge pulls one connection per stream from its origin); 0: no cap
    /// [default: 1024].
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// An RTMP connection must finish its handshake, connect and publish/play within this long
    /// in all, however slowly its bytes come, in ms [default: 10000].
    #[arg(long, value_name = "MS")]
    pub setup_timeout_ms: Option<u64>,
    /// A proxy (CIDR block or address) whose X-Forwarded-For / X-Real-IP name the HTTP client;
    /// the client is the rightmost hop that is not a trusted proxy. Repeatable. From anyone else
    /// those headers are ignored [default: none, the TCP peer is the client].
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<ferrocast_node::client_addr::Cidr>,
    /// API token: kicking clients (DELETE) always needs it, reads need it when it is set; sent as
    /// `Authorization: Bearer TOKEN` or `?api_token=TOKEN` [default: none: reads are open, kicks
    /// refused].
    #[arg(long, value_name = "TOKEN", env = "FERROCAST_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Read the API token from the first line of this file (wins over --api-token).
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
}

impl NodeArgs {
    /// The config file (if any) with the flags applied on top.
    pub fn into_config(self) -> anyhow::Result<NodeConfig> {
        let mut c = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<NodeConfig>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => NodeConfig::default(),
        };
        macro_rules! set {
            ($($flag:ident => $($field:ident).+),* $(,)?) => {
                $(if let Some(v) = self.$flag { c.$($field).+ = v; })*
            };
        }
        if self.name.is_some() {
            c.name = self.name;
        }
        if self.region.is_some() {
            c.region = self.region;
        }
        if self.index.is_some() {
            c.index = self.index;
        }
        if self.advertise_ip.is_some() {
            c.advertise_ip = self.advertise_ip;
        }
        if self.webrtc_udp.is_some() {
            c.webrtc_udp = self.webrtc_udp;
        }
        if let Some(n) = self.webrtc_engines {
            c.webrtc_engines = n;
        }
        if self.webrtc_candidate.is_some() {
            c.webrtc_candidate = self.webrtc_candidate;
        }
        if !self.trusted_proxies.is_empty() {
            c.trusted_proxies = self.trusted_proxies;
        }
        if self.api_token.is_some() {
            c.api_token = self.api_token;
        }
        if self.api_token_file.is_some() {
            c.api_token_file = self.api_token_file;
        }
        if self.merge_window_ms.is_some() {
            c.media.merge_window_ms = self.merge_window_ms;
        }
        set!(
            role => role, rtmp => rtmp, http => http, api => api, log_format => log_format,
            index_interval_ms => index_interval_ms,
            chunk_size => media.chunk_size, max_merge_window_ms => media.max_merge_window_ms,
            play_wait_ms => media.play_wait_ms, slow_player_drop_ms => media.slow_player_drop_ms,
            fanout_queue => media.fanout_queue, gop_max_frames => media.gop_max_frames,
            gop_max_bytes => media.gop_max_bytes, max_message_size => media.max_message_size,
            publish_idle_timeout_ms => media.publish_idle_timeout_ms,
            max_connections => media.max_connections, max_connections_per_ip => media.max_connections_per_ip,
            setup_timeout_ms => media.setup_timeout_ms,
            edge_grace_ms => edge.grace_ms, upstream_timeout_ms => edge.upstream_timeout_ms,
            connect_timeout_ms => edge.connect_timeout_ms, origin_retry_ms => edge.origin_retry_ms,
            hls_fragment_ms => hls.fragment_ms, hls_part_ms => hls.part_ms, hls_window => hls.window, hls_idle_ms => hls.idle_ms,
            hls_viewer_timeout_ms => hls.viewer_timeout_ms, hls_max_segment_bytes => hls.max_segment_bytes,
        );
        if !self.coworkers.is_empty() {
            c.coworkers = self.coworkers;
        }
        if !self.origins.is_empty() {
            c.origins = self.origins;
        }
        if !self.forward.is_empty() {
            c.forward.destinations = self.forward;
        }
        if self.forward_backend.is_some() {
            c.forward.backend = self.forward_backend;
        }
        if let Some(url) = &self.hooks {
            let timeout_ms = c.hooks.timeout_ms;
            c.hooks = ferrocast_node::hooks::HooksConfig { timeout_ms, ..ferrocast_node::hooks::HooksConfig::all(url) };
        }
        for (flag, field) in [
            (self.on_connect, &mut c.hooks.on_connect),
            (self.on_close, &mut c.hooks.on_close),
            (self.on_publish, &mut c.hooks.on_publish),
            (self.on_unpublish, &mut c.hooks.on_unpublish),
            (self.on_play, &mut c.hooks.on_play),
            (self.on_stop, &mut c.hooks.on_stop),
        ] {
            if !flag.is_empty() {
                *field = flag;
            }
        }
        if let Some(ms) = self.hook_timeout_ms {
            c.hooks.timeout_ms = ms;
        }
        if self.hook_allow_on_error {
            c.hooks.allow_on_error = true;
        }
        Ok(c)
    }
}

pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    crate::logging::init(config.log_format);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let node = RunningNode::start(config).await?;
        wait_for_signal().await?;
        node.shutdown().await;
        Ok(())
    })
}

/// Returns on SIGINT (Ctrl-C) or SIGTERM.
pub async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "name = \"o1\"\nrtmp = \"127.0.0.1:1940\"\nindex = \"http://10.0.0.9:8000\"\nindex_interval_ms = 500\n\
             [media]\nmerge_window_ms = 100\nplay_wait_ms = 5\n",
        )
        .unwrap();
        let args = NodeArgs {
            config: Some(path),
            rtmp: Some("127.0.0.1:0".parse().unwrap()),
            play_wait_ms: Some(7),
            index: Some("http://10.0.0.8:8000".into()),
            advertise_ip: Some("192.0.2.7".parse().unwrap()),
            ..Default::default()
        };
        let c = args.into_config().unwrap();
        assert_eq!(c.name.as_deref(), Some("o1"));
        assert_eq!(c.rtmp.port(), 0);
        assert_eq!(c.media.merge_window_ms, Some(100));
        assert_eq!(c.media.play_wait_ms, 7);
        assert_eq!(c.index.as_deref(), Some("http://10.0.0.8:8000"));
        assert_eq!(c.index_interval_ms, 500, "the file's interval stays");
        assert_eq!(c.advertise_ip, Some("192.0.2.7".parse().unwrap()));
        assert!(c.validate().is_ok());
        let defaults = NodeArgs::default().into_config().unwrap();
        assert_eq!((defaults.index, defaults.index_interval_ms, defaults.advertise_ip), (None, 2000, None));
        let bad = NodeArgs { index: Some("10.0.0.9:8000".into()), ..Default::default() }.into_config().unwrap();
        assert!(bad.validate().unwrap_err().contains("index"));
    }

    #[test]
    fn edge_and_hook_keys_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(
            &path,
            "role = \"edge\"\norigins = [\"10.0.0.5:1935\", \"10.0.1.5:1935\"]\n[edge]\ngrace_ms = 500\n\
             [hooks]\non_play = [\"http://127.0.0.1:9/hook\"]\ntimeout_ms = 700\n",
        )
        .unwrap();
        let args =
            NodeArgs { config: Some(path), on_publish: vec!["http://127.0.0.1:9/pub".into()], ..Default::default() };
        let c = args.into_config().unwrap();
        assert_eq!(c.role, Role::Edge);
        assert_eq!(c.origins, ["10.0.0.5:1935", "10.0.1.5:1935"]);
        assert_eq!(c.edge.grace_ms, 500);
        assert_eq!(c.hooks.on_play, ["http://127.0.0.1:9/hook"]);
        assert_eq!(c.hooks.on_publish, ["http://127.0.0.1:9/pub"], "a flag adds what the file lacks");
        assert_eq!(c.hooks.timeout_ms, 700);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn forward_keys_come_from_the_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("origin.toml");
        std::fs::write(
            &path,
            "[forward]\ndestinations = [\"10.0.0.2:1935\"]\nbackend = \"http://10.0.0.9:8085/api/v1/forward\"\n",
        )
        .unwrap();
        let c = NodeArgs { config: Some(path.clone()), ..Default::default() }.into_config().unwrap();
        assert_eq!(c.forward.destinations, ["10.0.0.2:1935"]);
        assert_eq!(c.forward.backend.as_deref(), Some("http://10.0.0.9:8085/api/v1/forward"));
        assert!(c.validate().is_ok());
        let args = NodeArgs {
            config: Some(path),
            forward: vec!["10.0.0.3:1935".into(), "10.0.0.4:1935".into()],
            forward_backend: Some("http://127.0.0.1:9/f".into()),
            ..Default::default()
        };
        let c = args.into_config().unwrap();
        assert_eq!(c.forward.destinations, ["10.0.0.3:1935", "10.0.0.4:1935"], "the flags win");
        assert_eq!(c.forward.backend.as_deref(), Some("http://127.0.0.1:9/f"));
    }

    #[test]
    fn proxy_and_api_token_keys_come_from_the_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        std::fs::write(&path, "trusted_proxies = [\"10.0.0.0/8\"]\napi_token = \"from-file\"\n").unwrap();
        let c = NodeArgs { config: Some(path.clone()), ..Default::default() }.into_config().unwrap();
        assert_eq!(c.trusted_proxies, ["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(c.api_token.as_deref(), Some("from-file"));
        let args = NodeArgs {
            config: Some(path),
            trusted_proxies: vec!["192.0.2.7".parse().unwrap()],
            api_token_file: Some(token),
            ..Default::default()
        };
        let mut c = args.into_config().unwrap();
        c.load_secrets().unwrap();
        assert_eq!(c.trusted_proxies, ["192.0.2.7/32".parse().unwrap()], "the flag wins");
        assert_eq!(c.api_token.as_deref(), Some("s3cret"), "the token file wins");
    }

    #[test]
    fn a_bad_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "rtmpp = 1").unwrap();
        let err = NodeArgs { config: Some(path), ..Default::default() }.into_config().unwrap_err();
        assert!(format!("{err:#}").contains("bad.toml"), "{err:#}");
    }
}

#[cfg(test)]
mod deploy_examples {
    use super::*;

    #[test]
    fn the_deploy_node_configs_are_valid() {
        for file in ["node-origin.toml", "node-edge.toml"] {
            let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy")).join(file);
            let c = NodeArgs { config: Some(path), ..Default::default() }.into_config().unwrap();
            assert!(c.validate().is_ok(), "{file}: {:?}", c.validate());
            assert!(c.index.is_some(), "{file} registers with the index");
        }
    }
}

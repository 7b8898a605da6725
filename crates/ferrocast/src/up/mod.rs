//! `ferrocast up`: a whole cluster on this machine, in one process — an origin, two edges in two
//! regions (eu, us) pulling from it, the index server with access control on, and a looping demo
//! stream — so a new user plays something seconds after the first command.
//!
//! This file holds the flags, the port layout, the configs of the four servers and the run loop:
//! start the nodes, then the index (whose `[[nodes]]` are built from the layout), then the demo
//! publisher; wait until the index sees every node up and the demo is live; print the table; on
//! Ctrl-C or SIGTERM stop the demo, the edges, the origin and the index, in that order. The demo
//! publisher is in `demo.rs`, the table in `table.rs`.

mod demo;
mod table;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use ferrocast_index::auth::{Access, Action, AppRule, AuthConfig, KeyConfig};
use ferrocast_index::{IndexConfig, IndexState, NodeSpec, RunningIndex};
use ferrocast_node::hooks::HooksConfig;
use ferrocast_node::{LogFormat, NodeConfig, Role, RunningNode};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::node_cmd::wait_for_signal;
use crate::token_cmd::parse_ttl;
use demo::{Clip, Demo, DemoState};

const PORTS_HELP: &str = "\
Ports (N = --base-port):
  N          index server: API, /play redirects, hook receiver
  N+1 N+2 N+3 N+4      origin   (region eu): RTMP, HTTP (FLV, HLS, WHEP), SRS API, WebRTC (UDP)
  N+11 N+12 N+13 N+14  edge-eu  (region eu): RTMP, HTTP (FLV, HLS, WHEP), SRS API, WebRTC (UDP)
  N+21 N+22 N+23 N+24  edge-us  (region us): RTMP, HTTP (FLV, HLS, WHEP), SRS API, WebRTC (UDP)

Access control is on for app live: playing and publishing need a token. The printed URLs carry
tokens signed with a fresh random key (or --auth-key). Logs go to stderr, the table to stdout.";

#[derive(Args, Debug)]
#[command(after_help = PORTS_HELP)]
pub struct UpArgs {
    /// First port of the cluster; the others are fixed offsets from it (listed below).
    #[arg(long, value_name = "N", default_value_t = 17000,
          value_parser = clap::value_parser!(u16).range(1..=i64::from(u16::MAX - LAST_OFFSET)))]
    pub base_port: u16,
    /// Address every server binds; the printed URLs use 127.0.0.1 (::1) when it is 0.0.0.0 (::).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Sign tokens with this key (at least 16 bytes of secret) instead of a fresh random one, so
    /// that tokens stay valid across runs.
    #[arg(long, value_name = "ID=SECRET", env = "FERROCAST_UP_KEY", hide_env_values = true)]
    pub auth_key: Option<KeyConfig>,
    /// How long the printed tokens stay valid: 30s, 15m, 1h, 2d.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_ttl)]
    pub token_ttl: Duration,
    /// SQLite file for the index's history [default: in a temporary directory removed at exit].
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Log format: text or json (the level comes from RUST_LOG; warn when it is unset).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

/// One media node of the cluster and its port offsets from the base port.
struct Plan {
    name: &'static str,
    role: Role,
    region: &'static str,
    rtmp: u16,
    http: u16,
    api: u16,
    /// WebRTC's UDP port.
    webrtc: u16,
}

const INDEX: u16 = 0;
const ORIGIN: Plan = Plan { name: "origin", role: Role::Origin, region: "eu", rtmp: 1, http: 2, api: 3, webrtc: 4 };
const EDGES: [Plan; 2] = [
    Plan { name: "edge-eu", role: Role::Edge, region: "eu", rtmp: 11, http: 12, api: 13, webrtc: 14 },
    Plan { name: "edge-us", role: Role::Edge, region: "us", rtmp: 21, http: 22, api: 23, webrtc: 24 },
];
const LAST_OFFSET: u16 = 24;
const DEMO_STREAM: &str = "live/demo";
/// How long the cluster may take to come up before `up` gives up and says why.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where everything listens.
struct Layout {
    bind: IpAddr,
    /// The address in URLs: `bind`, or loopback when `bind` is the unspecified address.
    public: IpAddr,
    base: u16,
}

impl Layout {
    fn new(bind: IpAddr, base: u16) -> Layout {
        let public = match bind {
            IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            other => other,
        };
        Layout { bind, public, base }
    }
    fn port(&self, offset: u16) -> u16 {
        self.base + offset
    }
    fn bind(&self, offset: u16) -> SocketAddr {
        SocketAddr::new(self.bind, self.port(offset))
    }
    /// `host:port` for URLs (IPv6 in brackets).
    fn public(&self, offset: u16) -> String {
        SocketAddr::new(self.public, self.port(offset)).to_string()
    }
    /// Every port with what listens there.
    fn ports(&self) -> Vec<(u16, String)> {
        let mut ports = vec![(self.port(INDEX), "the index server".to_string())];
        for p in std::iter::once(&ORIGIN).chain(&EDGES) {
            for (offset, what) in [(p.rtmp, "RTMP"), (p.http, "HTTP"), (p.api, "API")] {
                ports.push((self.port(offset), format!("{} {what}", p.name)));
            }
        }
        ports
    }
}

/// The error for a port someone else holds.
fn port_taken(layout: &Layout, port: u16, what: &str, cause: &std::io::Error) -> anyhow::Error {
    anyhow!(
        "port {port} ({what}) on {} is not available: {cause}. Another program (or another `ferrocast up`) \
         is using it: stop it, or move the whole cluster with --base-port N (it uses N to N+{LAST_OFFSET}; \
         this run used N={})",
        layout.bind,
        layout.base
    )
}

/// Fails, naming the port, when any port of the layout is taken.
fn check_ports(layout: &Layout) -> anyhow::Result<()> {
    for (port, what) in layout.ports() {
        if let Err(e) = std::net::TcpListener::bind(SocketAddr::new(layout.bind, port)) {
            return Err(port_taken(layout, port, &what, &e));
        }
    }
    Ok(())
}

/// 32 random hex digits.
fn random_secret() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn node_config(layout: &Layout, plan: &Plan, hooks: &str) -> NodeConfig {
    NodeConfig {
        name: Some(plan.name.to_string()),
        role: plan.role,
        rtmp: layout.bind(plan.rtmp),
        http: layout.bind(plan.http),
        api: layout.bind(plan.api),
        region: Some(plan.region.to_string()),
        origins: if plan.role == Role::Edge { vec![layout.public(ORIGIN.rtmp)] } else { Vec::new() },
        hooks: HooksConfig::all(hooks),
        webrtc_udp: Some(layout.bind(plan.webrtc)),
        // One engine each: the three nodes share the machine's cores.
        webrtc_engines: 1,
        ..NodeConfig::default()
    }
}

fn node_spec(layout: &Layout, plan: &Plan) -> NodeSpec {
    NodeSpec {
        name: plan.name.to_string(),
        role: plan.role,
        api: format!("http://{}", layout.public(plan.api)),
        rtmp: Some(format!("rtmp://{}", layout.public(plan.rtmp))),
        http: Some(format!("http://{}", layout.public(plan.http))),
        region: Some(plan.region.to_string()),
        weight: 1.0,
        max_viewers: None,
        max_mbps: None,
        api_token: None,
        dns_address: None,
        max_streams: None,
        max_mbps_in: None,
    }
}

fn index_config(layout: &Layout, key: KeyConfig, hook_secret: String, db: PathBuf) -> IndexConfig {
    let mut c = IndexConfig { listen: layout.bind(INDEX), db, ..IndexConfig::default() };
    c.poll.interval_ms = 1000;
    c.regions.default = "eu".into();
    c.regions.nearest = BTreeMap::from([("eu".into(), vec!["us".into()]), ("us".into(), vec!["eu".into()])]);
    c.auth = AuthConfig {
        enabled: true,
        keys: vec![key],
        apps: vec![AppRule { app: "live".into(), play: Access::Token, publish: Access::Token }],
        hook_secret: Some(hook_secret),
        ..AuthConfig::default()
    };
    c.nodes = std::iter::once(&ORIGIN).chain(&EDGES).map(|p| node_spec(layout, p)).collect();
    c
}

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    crate::logging::init_with_default(args.log_format, "warn");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(up(args))
}

/// The running servers, stopped in order by `stop`.
struct Cluster {
    demo: (CancellationToken, tokio::task::JoinHandle<()>),
    edges: Vec<RunningNode>,
    origin: RunningNode,
    index: RunningIndex,
}

impl Cluster {
    async fn stop(self) {
        let (stop, task) = self.demo;
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
        join_all(self.edges.into_iter().map(RunningNode::shutdown)).await;
        self.origin.shutdown().await;
        self.index.shutdown().await;
    }
}

/// Runs the futures concurrently and waits for all of them.
async fn join_all<F: std::future::Future<Output = ()> + Send + 'static>(futures: impl Iterator<Item = F>) {
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    for t in tasks {
        let _ = t.await;
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let layout = Layout::new(args.host, args.base_port);
    check_ports(&layout)?;
    let clip = Clip::demo().map_err(|e| anyhow!("{e}"))?;
    let key = args.auth_key.clone().unwrap_or_else(|| KeyConfig { id: "up".into(), secret: random_secret() });
    let hook_secret = random_secret();
    let (_tmp, db) = match &args.db {
        Some(db) => (None, db.clone()),
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("ferrocast-up-")
                .tempdir()
                .context("cannot create a temporary directory for the index's database: pass --db FILE")?;
            let db = tmp.path().join("index.db");
            (Some(tmp), db)
        }
    };
    let hooks = format!("http://{}/api/v1/hooks?secret={hook_secret}", layout.public(INDEX));

    // Nodes first: they call the index only when clients arrive, and the index's first polls find
    // them up.
    let start = |plan: &'static Plan| {
        let config = node_config(&layout, plan, &hooks);
        let layout = &layout;
        async move {
            RunningNode::start(config).await.map_err(|e| match e {
                ferrocast_node::StartError::Bind { what, addr, cause } => {
                    port_taken(layout, addr.port(), &format!("{} {what}", plan.name), &cause)
                }
                other => anyhow!("cannot start the {}: {other}", plan.name),
            })
        }
    };
    let origin = start(&ORIGIN).await?;
    let mut edges = Vec::new();
    for plan in &EDGES {
        edges.push(start(plan).await?);
    }
    let index =
        RunningIndex::start(index_config(&layout, key, hook_secret, db.clone()), None).await.map_err(|e| match e {
            ferrocast_index::StartError::Bind { cause, .. } => {
                port_taken(&layout, layout.port(INDEX), "the index server", &cause)
            }
            other => anyhow!(
                "cannot start the index server (database {}): {other}",
                ferrocast_index::store::postgres::shown(&db.display().to_string())
            ),
        })?;

    let state = index.state.clone();
    let token_state = state.clone();
    let (demo_tx, demo_rx) = watch::channel(DemoState::Connecting);
    let demo_stop = CancellationToken::new();
    let demo = Demo {
        url: format!("rtmp://{}/{DEMO_STREAM}", layout.public(ORIGIN.rtmp)),
        token: Box::new(move || {
            token_state
                .auth
                .load()
                .mint(Action::Publish, DEMO_STREAM, Duration::from_secs(3600), None)
                .map_err(|e| e.to_string())
        }),
        clip,
    };
    let demo_task = tokio::spawn(demo::run(demo, demo_stop.clone(), demo_tx));
    let cluster = Cluster { demo: (demo_stop, demo_task), edges, origin, index };

    let ready = tokio::select! {
        r = wait_ready(&state, demo_rx) => r,
        r = wait_for_signal() => {
            cluster.stop().await;
            return r;
        }
    };
    if let Err(e) = ready {
        cluster.stop().await;
        return Err(e);
    }
    let text = match table_text(&layout, &state, args.token_ttl, started.elapsed()) {
        Ok(t) => t,
        Err(e) => {
            cluster.stop().await;
            return Err(e);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    drop(stdout);
    tracing::info!("cluster ready; Ctrl-C stops it");

    let signal = wait_for_signal().await;
    eprintln!("ferrocast up: stopping the demo stream, the edges, the origin and the index");
    cluster.stop().await;
    eprintln!("ferrocast up: stopped");
    signal
}

/// Returns when the index lists every node as up and the demo stream is live; fails with what is
/// missing after `READY_TIMEOUT`.
async fn wait_ready(state: &Arc<IndexState>, demo: watch::Receiver<DemoState>) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let dir = state.directory.load();
        let nodes_up = dir.nodes.len() == 1 + EDGES.len() && dir.nodes.iter().all(|n| n.health.schedulable());
        let demo_state = demo.borrow().clone();
        if nodes_up && demo_state == DemoState::Live {
            return Ok(());
        }
        if Instant::now() > deadline {
            let mut why = Vec::new();
            for n in dir.nodes.iter().filter(|n| !n.health.schedulable()) {
                why.push(format!(
                    "the index sees {} as {} ({})",
                    n.spec.name,
                    n.health.as_str(),
                    n.last_error.as_deref().unwrap_or("not polled yet")
                ));
            }
            match demo_state {
                DemoState::Live => {}
                DemoState::Connecting => why.push("the demo stream is still connecting to the origin".into()),
                DemoState::Retrying(e) => why.push(format!("the demo stream cannot publish: {e}")),
            }
            bail!(
                "the cluster did not come up within {} s: {}. Run with RUST_LOG=info for details",
                READY_TIMEOUT.as_secs(),
                why.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn table_text(layout: &Layout, state: &IndexState, ttl: Duration, took: Duration) -> anyhow::Result<String> {
    let auth = state.auth.load();
    let mint = |scope, pattern| {
        auth.mint(scope, pattern, ttl, None).with_context(|| format!("cannot mint a {scope} token for {pattern}"))
    };
    let cluster = table::Cluster {
        index: layout.public(INDEX),
        edges: EDGES
            .iter()
            .map(|p| table::EdgeUrls { name: p.name, rtmp: layout.public(p.rtmp), http: layout.public(p.http) })
            .collect(),
        origin_rtmp: layout.public(ORIGIN.rtmp),
        play_token: mint(Action::Play, "live/*")?,
        publish_token: mint(Action::Publish, "live/mine")?,
        token_ttl: ttl,
    };
    Ok(table::render(&cluster, took))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_follows_the_base_port() {
        let l = Layout::new("0.0.0.0".parse().unwrap(), 20000);
        let ports: Vec<u16> = l.ports().iter().map(|(p, _)| *p).collect();
        assert_eq!(ports, [20000, 20001, 20002, 20003, 20011, 20012, 20013, 20021, 20022, 20023]);
        assert_eq!(l.public(ORIGIN.rtmp), "127.0.0.1:20001");
        assert_eq!(l.bind(INDEX).to_string(), "0.0.0.0:20000");
        let v6 = Layout::new("::".parse().unwrap(), 20000);
        assert_eq!(v6.public(INDEX), "[::1]:20000");
        let c = index_config(&l, "k1=0123456789abcdef".parse().unwrap(), random_secret(), "x.db".into());
        assert!(c.validate().is_ok(), "{:?}", c.validate());
        assert_eq!(c.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["origin", "edge-eu", "edge-us"]);
        let edge = node_config(&l, &EDGES[1], "http://127.0.0.1:20000/api/v1/hooks?secret=s");
        assert!(edge.validate().is_ok(), "{:?}", edge.validate());
        assert_eq!(edge.origins, ["127.0.0.1:20001"]);
    }
}

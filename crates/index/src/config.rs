//! The index server's configuration: one struct a TOML file deserializes into and CLI flags
//! override key by key. Every field has a default, so an empty file is a valid config.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::AuthConfig;
use crate::region::RegionsConfig;

pub use ferrocast_cluster::{Role, Secret};

/// The role of a node listed without one.
fn edge() -> Role {
    Role::Edge
}

/// One media node the index polls: a Ferrocast node or a real SRS node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique name; SRS nodes that register use their heartbeat `device_id`.
    pub name: String,
    /// A node listed without a role is an edge: most nodes of a cluster are.
    #[serde(default = "edge")]
    pub role: Role,
    /// Base URL of the SRS HTTP API v1, e.g. http://10.0.0.5:1985.
    pub api: String,
    /// RTMP base URL for viewers and publishers, e.g. rtmp://10.0.0.5:1935.
    #[serde(default)]
    pub rtmp: Option<String>,
    /// HTTP base URL for HTTP-FLV and HLS, e.g. http://10.0.0.5:8080.
    #[serde(default)]
    pub http: Option<String>,
    /// Region label; nodes without one are in the default region.
    #[serde(default)]
    pub region: Option<String>,
    /// Relative share of viewers against nodes of equal load [default: 1].
    #[serde(default = "one")]
    pub weight: f64,
    /// Viewers this node can carry [default: scheduler.default_max_viewers].
    #[serde(default)]
    pub max_viewers: Option<u64>,
    /// The node's API token (a Ferrocast node's `--api-token`), sent as `Authorization: Bearer`
    /// with every poll. Never shown in an answer or a log line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token: Option<Secret>,
    /// Outgoing bandwidth this node can carry, in Mbit/s [default: unlimited].
    #[serde(default)]
    pub max_mbps: Option<f64>,
    /// Origins: streams this origin can take; publishers go to the least loaded origin of their
    /// region [default: 1000].
    #[serde(default)]
    pub max_streams: Option<u64>,
    /// Origins: incoming bandwidth this origin can take, in Mbit/s [default: unlimited].
    #[serde(default)]
    pub max_mbps_in: Option<f64>,
    /// What DNS answers give for this node: an IP address (an A/AAAA record) or a host name (a
    /// CNAME) [default: the host of its rtmp URL, else of its http URL, else of its api URL].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_address: Option<String>,
}

fn one() -> f64 {
    1.0
}

impl std::str::FromStr for NodeSpec {
    type Err = String;
    /// `name=e1,role=edge,api=http://host:1985,rtmp=rtmp://host:1935,http=http://host:8080,region=eu`
    /// with optional `weight=`, `max_viewers=`, `max_mbps=`, `api_token=` (the node's `--api-token`),
    /// `dns_address=` (an IP or host name for DNS answers), `max_streams=`, `max_mbps_in=` (origins).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = NodeSpec {
            name: String::new(),
            role: Role::Edge,
            api: String::new(),
            rtmp: None,
            http: None,
            region: None,
            weight: 1.0,
            max_viewers: None,
            max_mbps: None,
            api_token: None,
            dns_address: None,
            max_streams: None,
            max_mbps_in: None,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("{part:?} is not key=value"))?;
            let bad = |what: &str| format!("{k}={v:?} is not {what}");
            match k {
                "name" => spec.name = v.to_string(),
                "role" => spec.role = v.parse()?,
                "api" => spec.api = v.to_string(),
                "rtmp" => spec.rtmp = Some(v.to_string()),
                "http" => spec.http = Some(v.to_string()),
                "region" => spec.region = Some(v.to_string()),
                "weight" => spec.weight = v.parse().map_err(|_| bad("a number"))?,
                "max_viewers" => spec.max_viewers = Some(v.parse().map_err(|_| bad("a whole number"))?),
                "max_mbps" => spec.max_mbps = Some(v.parse().map_err(|_| bad("a number"))?),
                "api_token" => spec.api_token = Some(Secret::new(v)),
                "dns_address" => spec.dns_address = Some(v.to_string()),
                "max_streams" => spec.max_streams = Some(v.parse().map_err(|_| bad("a whole number"))?),
                "max_mbps_in" => spec.max_mbps_in = Some(v.parse().map_err(|_| bad("a number"))?),
                other => {
                    return Err(format!(
                        "unknown node key {other:?}: expected name, role, api, rtmp, http, region, weight, max_viewers, \
                         max_mbps, max_streams, max_mbps_in, api_token, dns_address"
                    ));
                }
            }
        }
        spec.validate()?;
        Ok(spec)
    }
}

impl NodeSpec {
    /// Viewers this node can carry, `default_max_viewers` unless it says.
    pub fn viewer_capacity(&self, default_max_viewers: u64) -> f64 {
        self.max_viewers.unwrap_or(default_max_viewers).max(1) as f64
    }

    /// 1 / outgoing capacity in kbit/s; 0 when the bandwidth is not limited.
    pub fn per_kbps(&self) -> f64 {
        self.max_mbps.map_or(0.0, |mbps| 1.0 / (mbps * 1000.0))
    }

    /// Checks what a poller and the scheduler rely on.
    /// The host of the node's API URL (its address as the index knows it).
    pub fn api_host(&self) -> Option<String> {
        reqwest::Url::parse(&self.api).ok().and_then(|u| u.host_str().map(str::to_string))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("a node needs a name (name=...)".into());
        }
        let check = |what: &str, url: &str, schemes: &[&str]| -> Result<(), String> {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| format!("node {}: {what} URL {url:?} is not a URL: {e}", self.name))?;
            if !schemes.contains(&parsed.scheme()) || parsed.host_str().is_none() {
                return Err(format!("node {}: {what} URL {url:?} must be {}://host:port", self.name, schemes[0]));
            }
            Ok(())
        };
        check("api", &self.api, &["http", "https"])?;
        if let Some(u) = &self.rtmp {
            check("rtmp", u, &["rtmp"])?;
        }
        if let Some(u) = &self.http {
            check("http", u, &["http", "https"])?;
        }
        if self.weight.is_nan() || self.weight <= 0.0 || self.weight.is_infinite() {
            return Err(format!("node {}: weight must be above 0", self.name));
        }
        let bad_mbps = |m: Option<f64>| m.is_some_and(|m| m.is_nan() || m <= 0.0);
        if self.max_viewers == Some(0)
            || self.max_streams == Some(0)
            || bad_mbps(self.max_mbps)
            || bad_mbps(self.max_mbps_in)
        {
            return Err(format!("node {}: capacities must be above 0", self.name));
        }
        if let Some(a) = &self.dns_address {
            crate::dns::NodeAddress::parse(a).map_err(|e| format!("node {}: dns_address {e}", self.name))?;
        }
        Ok(())
    }
}

/// How nodes are polled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PollConfig {
    /// Time between two polls of a node, in ms.
    pub interval_ms: u64,
    /// A poll (all its requests) that takes longer fails, in ms.
    pub timeout_ms: u64,
    /// A poll slower than this marks the node degraded, in ms.
    pub slow_ms: u64,
    /// Consecutive failed polls after which a node is down.
    pub down_after: u32,
    /// Longest wait between polls of a failing node, in ms.
    pub backoff_max_ms: u64,
    /// Largest API answer accepted from a node, in bytes.
    pub max_body_bytes: usize,
    /// Streams asked for per page (`count`); SRS raises anything below 10 to 10.
    pub page_size: usize,
    /// A self-registered node silent (no heartbeat) this long is forgotten, in ms.
    pub forget_registered_ms: u64,
    /// Polls in flight at once; the rest wait their turn (their timeout starts when they run).
    /// Takes effect at restart.
    pub max_concurrent: usize,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            interval_ms: 2000,
            timeout_ms: 1500,
            slow_ms: 500,
            down_after: 2,
            backoff_max_ms: 10_000,
            max_body_bytes: 32 << 20,
            page_size: 1000,
            forget_registered_ms: 60_000,
            max_concurrent: 64,
        }
    }
}

impl PollConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// How viewers are spread over edges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// An edge carrying a stream keeps getting its viewers until its load passes this (0..1).
    pub load_threshold: f64,
    /// Viewer capacity of a node without `max_viewers`.
    pub default_max_viewers: u64,
    /// Alternatives listed in a play answer.
    pub alternatives: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig { load_threshold: 0.8, default_max_viewers: 1000, alternatives: 3 }
    }
}

/// Where origins forward each published stream (their `on_forward` answers), so a backup origin
/// already has it when the primary dies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationConfig {
    /// Backup origins each stream is forwarded to (0 turns forwarding answers off).
    pub replicas: usize,
    /// Regions replicas may be in, tried in this order; empty means the nearest other regions of
    /// the publishing origin's region (`regions.nearest`), then any, then its own region.
    pub regions: Vec<String>,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig { replicas: 1, regions: Vec::new() }
    }
}

/// Shared mode: several index replicas behind a load balancer, sharing state through Redis
/// (`crate::index_replicas`). Used only when `IndexConfig::redis` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SharedConfig {
    /// Lifetime of the leader's lease in Redis, in ms. The leader renews it every third of that;
    /// when the leader dies another replica polls within 2 x this.
    pub lease_ms: u64,
    /// Prefix of every Redis key and channel, so several clusters can share one Redis.
    pub key_prefix: String,
}

impl Default for SharedConfig {
    fn default() -> Self {
        SharedConfig { lease_ms: 3000, key_prefix: "ferrocast".into() }
    }
}

impl SharedConfig {
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
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

/// The whole index server configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// HTTP listen address of the index API.
    pub listen: SocketAddr,
    /// The database with the history of streams and nodes, admin keys and token revocations: a
    /// SQLite file, or a `postgres://` URL shared by several index replicas.
    pub db: PathBuf,
    /// Days of history kept: ended stream sessions and node state changes older than this are
    /// forgotten (hourly). 0 keeps everything.
    pub history_days: u32,
    /// Redis URL (`redis://host:6379/0`) that turns shared mode on: several replicas, one leader
    /// polling, state shared through Redis. None: this index is the only one (SQLite only).
    pub redis: Option<String>,
    /// Shared mode settings.
    pub shared: SharedConfig,
    pub log_format: LogFormat,
    pub poll: PollConfig,
    pub scheduler: SchedulerConfig,
    pub regions: RegionsConfig,
    /// Access control: tokens, per-app rules, hook and admin callers.
    pub auth: AuthConfig,
    /// Backup origins for `on_forward`.
    pub replication: ReplicationConfig,
    /// Who may register nodes (`POST /api/v1/srs/register`).
    pub register: RegisterConfig,
    /// Bounds of the HTTP port.
    pub http: HttpConfig,
    /// The DNS server (scheduling by name), off unless `dns.listen` is set.
    pub dns: crate::dns::DnsConfig,
    pub nodes: Vec<NodeSpec>,
}

/// Bounds of the index's HTTP port, which faces the internet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// A connection that sends no complete request head within this long is closed (a new one,
    /// or a kept-alive one idle between requests), in ms.
    pub header_timeout_ms: u64,
    /// Connections open at once; the next one is answered 503 and closed.
    pub max_connections: usize,
    /// Event listeners (WebSocket and SSE) at once; the next one is answered 503.
    pub max_listeners: usize,
    /// Largest WebSocket message (and frame) a listener may send, in bytes.
    pub ws_max_message_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout_ms: 10_000,
            max_connections: 10_000,
            max_listeners: 10_000,
            ws_max_message_bytes: 4096,
        }
    }
}

/// Who may register nodes with a heartbeat, and how many. A heartbeat is taken when it carries
/// the secret (`?secret=` in the heartbeat URL, or `Authorization: Bearer`) or comes from an
/// `allow` network; with neither configured only this host (loopback) may register.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegisterConfig {
    /// Secret a heartbeat carries (SRS: `url http://INDEX/api/v1/srs/register?secret=...`).
    pub secret: Option<String>,
    /// Networks whose heartbeats need no secret, e.g. 10.0.0.0/8. Such a heartbeat cannot move a
    /// registered name to another address unless it comes from that address.
    pub allow: Vec<ipnet::IpNet>,
    /// Most self-registered nodes at once; heartbeats of new names beyond it are refused.
    pub max_nodes: usize,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig { secret: None, allow: Vec::new(), max_nodes: 1000 }
    }
}

impl std::fmt::Debug for RegisterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterConfig")
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("allow", &self.allow)
            .field("max_nodes", &self.max_nodes)
            .finish()
    }
}

impl RegisterConfig {
    /// The networks that may register without the secret: `allow`, or loopback when neither
    /// `secret` nor `allow` is set.
    pub fn allowed(&self) -> Vec<ipnet::IpNet> {
        if self.allow.is_empty() && self.secret.is_none() {
            vec!["127.0.0.0/8".parse().expect("a CIDR"), "::1/128".parse().expect("a CIDR")]
        } else {
            self.allow.clone()
        }
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(s) = &self.secret
            && (s.len() < 16 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)))
        {
            return Err("register.secret must be at least 16 URL-safe characters (A-Z a-z 0-9 - _ . ~): it goes \
                        in the heartbeat URL's query"
                .into());
        }
        if self.max_nodes == 0 {
            return Err("register.max_nodes must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            db: PathBuf::from("ferrocast-index.db"),
            history_days: 30,
            redis: None,
            shared: SharedConfig::default(),
            log_format: LogFormat::Text,
            poll: PollConfig::default(),
            scheduler: SchedulerConfig::default(),
            regions: RegionsConfig::default(),
            auth: AuthConfig::default(),
            replication: ReplicationConfig::default(),
            register: RegisterConfig::default(),
            http: HttpConfig::default(),
            dns: crate::dns::DnsConfig::default(),
            nodes: Vec::new(),
        }
    }
}

impl IndexConfig {
    /// Checks everything a running index relies on; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for n in &self.nodes {
            n.validate()?;
            if !names.insert(n.name.as_str()) {
                return Err(format!("node name {:?} is used twice", n.name));
            }
        }
        let p = &self.poll;
        if p.interval_ms == 0 || p.timeout_ms == 0 {
            return Err("poll.interval_ms and poll.timeout_ms must be above 0".into());
        }
        if p.max_concurrent == 0 {
            return Err("poll.max_concurrent must be at least 1".into());
        }
        if p.down_after == 0 {
            return Err("poll.down_after must be at least 1".into());
        }
        if p.page_size < 10 {
            return Err("poll.page_size must be at least 10 (SRS raises smaller counts to 10)".into());
        }
        let s = &self.scheduler;
        if s.load_threshold.is_nan() || s.load_threshold <= 0.0 || s.load_threshold > 1.0 {
            return Err("scheduler.load_threshold must be in (0, 1]".into());
        }
        if s.default_max_viewers == 0 {
            return Err("scheduler.default_max_viewers must be above 0".into());
        }
        if let Some(url) = &self.redis {
            redis::Client::open(url.as_str()).map_err(|e| {
                format!("redis: {:?} is not a Redis URL ({e}); expected redis://host:6379/0", redact_url(url))
            })?;
            if self.shared.lease_ms < 100 {
                return Err("shared.lease_ms must be at least 100".into());
            }
            if self.shared.key_prefix.is_empty() {
                return Err("shared.key_prefix must not be empty".into());
            }
        }
        self.register.validate()?;
        self.dns.validate()?;
        let h = &self.http;
        if h.header_timeout_ms == 0 || h.max_connections == 0 || h.max_listeners == 0 || h.ws_max_message_bytes < 128 {
            return Err("http.header_timeout_ms, http.max_connections and http.max_listeners must be above 0, \
                        http.ws_max_message_bytes at least 128"
                .into());
        }
        let a = &self.auth;
        if a.enabled && a.hook_secret.is_none() && a.hook_allow.is_empty() && !a.hooks_open {
            return Err("access control is on, but anyone could call the hook receiver (/api/v1/hooks) to announce \
                        streams or move origins: set auth.hook_secret (--hook-secret) and put it in the nodes' hook \
                        URLs, and/or auth.hook_allow (--hook-allow CIDR); or, to run so anyway, auth.hooks_open = \
                        true (--hooks-open)"
                .into());
        }
        self.auth.validate()
    }

    /// The region of a node: its own, else the default region.
    pub fn node_region<'a>(&'a self, spec: &'a NodeSpec) -> &'a str {
        spec.region.as_deref().unwrap_or(&self.regions.default)
    }
}

/// A database URL (Redis, PostgreSQL) for logs and messages, without its password: the user
/// stays, the password and the query (which may hold `password=`) go. Credentials end at the
/// first `@`, as the drivers read them.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "(a database URL)".to_string() };
    // An '@' after a '?' is in the query, not after credentials.
    let (user, rest) = match rest.split_once('@').filter(|(credentials, _)| !credentials.contains('?')) {
        Some((credentials, host)) => (credentials.split(':').next().map(|u| format!("{u}@")), host),
        None => (None, rest),
    };
    let rest = rest.split('?').next().unwrap_or("");
    let (host, db) = rest.split_once('/').map_or((rest, None), |(h, d)| (h, Some(d)));
    let password = if user.is_some() && url[scheme.len() + 3..].split('@').next().is_some_and(|c| c.contains(':')) {
        ":***"
    } else {
        ""
    };
    let user = user.map(|u| format!("{}{password}@", u.trim_end_matches('@'))).unwrap_or_default();
    match db {
        Some(db) => format!("{scheme}://{user}{host}/{db}"),
        None => format!("{scheme}://{user}{host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_flag_parses_every_key() {
        let n: NodeSpec = "name=e1,role=edge,api=http://h:1985,rtmp=rtmp://h:1935,http=http://h:8080,region=eu,\
                           weight=2,max_viewers=500,max_mbps=900"
            .parse()
            .unwrap();
        assert_eq!(n.name, "e1");
        assert_eq!(n.role, Role::Edge);
        assert_eq!(n.rtmp.as_deref(), Some("rtmp://h:1935"));
        assert_eq!((n.weight, n.max_viewers, n.max_mbps), (2.0, Some(500), Some(900.0)));
    }

    #[test]
    fn node_flag_errors_say_what_is_wrong() {
        let e = "name=e1,api=ftp://h".parse::<NodeSpec>().unwrap_err();
        assert!(e.contains("api URL"), "{e}");
        let e = "name=e1,api=http://h:1985,colour=red".parse::<NodeSpec>().unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = "api=http://h:1985".parse::<NodeSpec>().unwrap_err();
        assert!(e.contains("name"), "{e}");
    }

    #[test]
    fn toml_nodes_and_defaults() {
        let c: IndexConfig = toml::from_str(
            "listen = \"127.0.0.1:0\"\n[poll]\ninterval_ms = 500\n[[nodes]]\nname = \"o1\"\nrole = \"origin\"\n\
             api = \"http://127.0.0.1:1985\"\nmax_viewers = 20\n",
        )
        .unwrap();
        assert_eq!(c.poll.interval_ms, 500);
        assert_eq!(c.poll.timeout_ms, 1500);
        assert_eq!(c.nodes[0].role, Role::Origin);
        assert_eq!(c.nodes[0].weight, 1.0);
        assert!(c.validate().is_ok());
        let dup = IndexConfig { nodes: vec![c.nodes[0].clone(), c.nodes[0].clone()], ..c };
        assert!(dup.validate().unwrap_err().contains("twice"));
    }
}

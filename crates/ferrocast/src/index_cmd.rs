//! `ferrocast index`: flags, the optional TOML file, and the run loop with SIGHUP reload; and its
//! one subcommand, `ferrocast index keys` ([`keys`]), for the admin API keys.
//!
//! Every key of the config file has a flag; a flag given on the command line wins over the file,
//! and the file wins over the defaults. A reload re-reads the file and applies the same flags again.

mod keys;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use ferrocast_index::auth::{AppRule, KeyConfig};
use ferrocast_index::config::LogFormat;
use ferrocast_index::region::CidrRegion;
use ferrocast_index::{IndexConfig, NodeSpec, RunningIndex};

/// Runs the index server with the flags below, or, given a subcommand, manages its admin API keys.
#[derive(Args, Debug, Default, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct IndexArgs {
    #[command(subcommand)]
    pub command: Option<IndexCommand>,
    /// TOML config file: top-level listen, db, history_days, redis, log_format; [shared] with lease_ms and
    /// key_prefix; [poll], [scheduler] and [regions]
    /// tables with the keys of the flags below (without their prefix); nodes as [[nodes]] tables
    /// with name, role, api, rtmp, http, region, weight, max_viewers, max_mbps, max_streams, max_mbps_in,
    /// api_token, dns_address; [auth] with enabled,
    /// sign_with, url_ttl_s, admin_token, hook_secret, hook_allow, hooks_open, keys = [{ id, secret }, ...] and
    /// [[auth.apps]] tables with app, play ("open"|"token"), publish ("open"|"token"); [register]
    /// with secret, allow and max_nodes; [http] with header_timeout_ms, max_connections,
    /// max_listeners and ws_max_message_bytes; [dns] with listen, zone, ttl_s, names, nameservers,
    /// hostmaster, max_records, rate_limit_qps, max_tcp_connections and tcp_idle_timeout_ms.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HTTP listen address of the index API [default: 0.0.0.0:8000].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where the history of streams and nodes, the admin API keys and token revocations live: a
    /// SQLite file (one index) or a PostgreSQL URL `postgres://user:password@host/db`, shared by
    /// several index replicas [default: ferrocast-index.db].
    #[arg(long, value_name = "FILE|URL", env = "FERROCAST_DB", hide_env_values = true)]
    pub db: Option<PathBuf>,
    /// Days of history kept (ended stream sessions, node state changes); older rows are forgotten
    /// hourly; 0 keeps everything [default: 30].
    #[arg(long, value_name = "DAYS")]
    pub history_days: Option<u32>,
    /// Shared mode: several index replicas (behind a load balancer) share state through this Redis,
    /// e.g. redis://10.0.0.7:6379/0; one replica at a time polls the nodes. Without it this index
    /// is the only one.
    #[arg(long, value_name = "URL", env = "FERROCAST_REDIS", hide_env_values = true)]
    pub redis: Option<String>,
    /// Shared mode: lifetime of the leader's lease in Redis, in ms; polling resumes within twice
    /// this after the leader dies [default: 3000].
    #[arg(long, value_name = "MS")]
    pub lease_ms: Option<u64>,
    /// Shared mode: prefix of the Redis keys and channels, so clusters can share one Redis
    /// [default: ferrocast].
    #[arg(long, value_name = "PREFIX")]
    pub redis_prefix: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// A node to poll (repeatable), e.g.
    /// name=e1,role=edge,api=http://host:1985,rtmp=rtmp://host:1935,http=http://host:8080,region=eu
    /// (optional weight=, max_viewers=, max_mbps=, api_token= for a node started with --api-token,
    /// dns_address= the IP or host name DNS answers give for it [default: its rtmp URL's host];
    /// origins: max_streams= [default: 1000] and max_mbps_in=, the capacity publishers are placed by).
    /// Adds to the file's [[nodes]].
    #[arg(long = "node", value_name = "SPEC")]
    pub nodes: Vec<NodeSpec>,
    /// Time between two polls of a node, in ms [default: 2000].
    #[arg(long, value_name = "MS")]
    pub poll_interval_ms: Option<u64>,
    /// A poll that takes longer fails, in ms [default: 1500].
    #[arg(long, value_name = "MS")]
    pub poll_timeout_ms: Option<u64>,
    /// A poll slower than this marks the node degraded, in ms [default: 500].
    #[arg(long, value_name = "MS")]
    pub poll_slow_ms: Option<u64>,
    /// Failed polls in a row after which a node is down [default: 2].
    #[arg(long, value_name = "N")]
    pub down_after: Option<u32>,
    /// Longest wait between polls of a down node, in ms [default: 10000].
    #[arg(long, value_name = "MS")]
    pub backoff_max_ms: Option<u64>,
    /// Largest API answer accepted from a node, in bytes [default: 33554432].
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Streams asked for per page of /api/v1/streams/ [default: 1000].
    #[arg(long, value_name = "N")]
    pub page_size: Option<usize>,
    /// Polls in flight at once; the others wait their turn [default: 64].
    #[arg(long, value_name = "N")]
    pub max_concurrent_polls: Option<usize>,
    /// Forget a self-registered node after this long without a heartbeat, in ms [default: 60000].
    #[arg(long, value_name = "MS")]
    pub forget_registered_ms: Option<u64>,
    /// An edge keeps the viewers of a stream it carries until its load passes this (0..1) [default: 0.8].
    #[arg(long, value_name = "RATIO")]
    pub load_threshold: Option<f64>,
    /// Viewer capacity of a node without max_viewers [default: 1000].
    #[arg(long, value_name = "N")]
    pub default_max_viewers: Option<u64>,
    /// Alternatives listed in a play answer [default: 3].
    #[arg(long, value_name = "N")]
    pub alternatives: Option<usize>,
    /// Backup origins each published stream is forwarded to, named in the index's answer to an
    /// origin's on_forward hook (0: none) [default: 1].
    #[arg(long, value_name = "N")]
    pub replicas: Option<usize>,
    /// A region backup origins may be in (repeatable, in order of preference) [default: the
    /// nearest other regions of the publishing origin, then any].
    #[arg(long = "replica-region", value_name = "REGION")]
    pub replica_regions: Vec<String>,
    /// Region of viewers nothing else places [default: default].
    #[arg(long, value_name = "REGION")]
    pub default_region: Option<String>,
    /// Viewers from this network are in this region (repeatable; longest prefix wins), e.g. 10.1.0.0/16=eu.
    #[arg(long = "cidr", value_name = "CIDR=REGION")]
    pub cidrs: Vec<String>,
    /// A proxy whose X-Forwarded-For is believed (repeatable), e.g. 127.0.0.1/32: the client is then
    /// the rightmost hop no trusted proxy wrote.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// GeoIP database (.mmdb) to place viewers by country.
    #[arg(long, value_name = "FILE")]
    pub geoip: Option<PathBuf>,
    /// Viewers of this country (ISO code) are in this region (repeatable), e.g. DE=eu.
    #[arg(long = "country", value_name = "CC=REGION")]
    pub countries: Vec<String>,
    /// The regions to try after a region, nearest first (repeatable), e.g. eu=us,ap.
    #[arg(long = "nearest", value_name = "REGION=R1,R2")]
    pub nearest: Vec<String>,
    /// Access control: hooks refuse clients without a valid token where the app's rules want one,
    /// and scheduler URLs carry tokens (--auth=false turns off what the file turned on) [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub auth: Option<bool>,
    /// A token signing key, at least 16 bytes of secret (repeatable; list the new key beside the
    /// old one to rotate). Replaces a file key of the same id.
    #[arg(long = "auth-key", value_name = "ID=SECRET")]
    pub auth_keys: Vec<KeyConfig>,
    /// The key new tokens are signed with [default: the only key].
    #[arg(long, value_name = "ID")]
    pub sign_with: Option<String>,
    /// Access rule of an app (repeatable), e.g. live=play:token,publish:open; a part left out keeps
    /// its default. Apps without a rule: play open, publish needs a token.
    #[arg(long = "app-rule", value_name = "APP=play:open|token,publish:open|token")]
    pub app_rules: Vec<AppRule>,
    /// Lifetime of the tokens added to play and publish URLs, in seconds [default: 3600].
    #[arg(long, value_name = "SECS")]
    pub url_ttl_s: Option<u64>,
    /// A bearer accepted on the admin routes (POST /api/v1/tokens and /api/v1/reload, GET
    /// /api/v1/history, publish URLs with a fresh token) besides the API keys of
    /// `ferrocast index keys create`: a bootstrap credential for scripts and tests (at least 16
    /// characters). Without it, admin routes take API keys only.
    #[arg(long, value_name = "TOKEN", env = "FERROCAST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Hook calls must carry ?secret=SECRET in their URL (e.g. --hooks http://index/api/v1/hooks?secret=SECRET).
    #[arg(long, value_name = "SECRET", env = "FERROCAST_HOOK_SECRET", hide_env_values = true)]
    pub hook_secret: Option<String>,
    /// Hook calls must come from this network (repeatable), e.g. 10.0.0.0/8.
    #[arg(long = "hook-allow", value_name = "CIDR")]
    pub hook_allow: Vec<ipnet::IpNet>,
    /// With --auth, start even though anyone may call the hook receiver (no --hook-secret, no
    /// --hook-allow): without it the index refuses to start so [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub hooks_open: Option<bool>,
    /// Node heartbeats (POST /api/v1/srs/register) carrying ?secret=SECRET (or Authorization: Bearer
    /// SECRET) are taken from anywhere, e.g. SRS's heartbeat url
    /// http://index:8000/api/v1/srs/register?secret=SECRET (at least 16 URL-safe characters).
    /// Without it and without --register-allow, only this host (loopback) may register nodes.
    #[arg(long, value_name = "SECRET", env = "FERROCAST_REGISTER_SECRET", hide_env_values = true)]
    pub register_secret: Option<String>,
    /// Node heartbeats from this network need no secret (repeatable), e.g. 10.0.0.0/8; such a
    /// heartbeat moves a registered name to another address only from that address.
    #[arg(long = "register-allow", value_name = "CIDR")]
    pub register_allow: Vec<ipnet::IpNet>,
    /// Most self-registered nodes at once; heartbeats of new names beyond it are refused [default: 1000].
    #[arg(long, value_name = "N")]
    pub register_max_nodes: Option<usize>,
    /// A connection that sends no complete request head within this long is closed: a new one
    /// (slow-loris) or a kept-alive one idle between requests, in ms [default: 10000].
    #[arg(long, value_name = "MS")]
    pub header_timeout_ms: Option<u64>,
    /// HTTP connections open at once; the next one is answered 503 and closed (raise the
    /// process's open-file limit to match) [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Event listeners (WebSocket and SSE on /api/v1/events) at once; the next one is answered 503
    /// [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_listeners: Option<usize>,
    /// Largest WebSocket message or frame an event listener may send, in bytes; a larger one
    /// closes its connection [default: 4096].
    #[arg(long, value_name = "BYTES")]
    pub ws_max_message_bytes: Option<usize>,
    /// Answer DNS (UDP and TCP) on this address for --dns-zone, e.g. 0.0.0.0:53: players that only
    /// resolve a name get the best edges of their region [default: off].
    #[arg(long = "dns", value_name = "ADDR")]
    pub dns_listen: Option<SocketAddr>,
    /// The zone the index answers for, delegated to it by its parent (NS records), e.g.
    /// live.example.com: the apex and --dns-name names give edges, {stream}.{app}.ZONE the edges
    /// for that stream, origin.ZONE and {stream}.{app}.origin.ZONE the origin to publish to.
    #[arg(long, value_name = "ZONE")]
    pub dns_zone: Option<String>,
    /// TTL of DNS edge and origin answers, in seconds: a dead edge leaves answers within it [default: 10].
    #[arg(long, value_name = "SECS")]
    pub dns_ttl_s: Option<u32>,
    /// A name that answers like the zone's apex (repeatable), e.g. edge or edge.live.example.com.
    #[arg(long = "dns-name", value_name = "NAME")]
    pub dns_names: Vec<String>,
    /// A name server of the zone (repeatable), HOST or HOST=IP (the address is served for hosts
    /// inside the zone); list every index replica [default: ns.ZONE at the --dns address].
    #[arg(long = "dns-ns", value_name = "HOST[=IP]")]
    pub dns_nameservers: Vec<String>,
    /// The mailbox in the zone's SOA record, as a name [default: hostmaster.ZONE].
    #[arg(long, value_name = "NAME")]
    pub dns_hostmaster: Option<String>,
    /// Most addresses in one DNS answer: the best edge, then fallbacks [default: 4].
    #[arg(long, value_name = "N")]
    pub dns_max_records: Option<usize>,
    /// UDP queries per second from one client network (/24, /56) answered in full; beyond it
    /// truncated (TC: retry over TCP), beyond 4x dropped; 0 turns the limit off [default: 200].
    #[arg(long, value_name = "QPS")]
    pub dns_rate_limit_qps: Option<u32>,
    /// DNS TCP connections open at once; more are closed at once [default: 1000].
    #[arg(long, value_name = "N")]
    pub dns_max_tcp_connections: Option<usize>,
    /// A DNS TCP connection idle this long is closed, in ms [default: 10000].
    #[arg(long, value_name = "MS")]
    pub dns_tcp_idle_timeout_ms: Option<u64>,
}

/// The subcommands of `ferrocast index`.
#[derive(Subcommand, Debug, Clone)]
pub enum IndexCommand {
    /// Create, list or revoke the admin API keys (stored argon2-hashed in the index database);
    /// every admin route needs one.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

fn pair<'a>(flag: &str, s: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    s.split_once('=')
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .with_context(|| format!("--{flag} {s:?}: expected KEY=VALUE"))
}

impl IndexArgs {
    /// The config file (if any) with the flags applied on top.
    pub fn to_config(&self) -> anyhow::Result<IndexConfig> {
        let mut c = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<IndexConfig>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => IndexConfig::default(),
        };
        macro_rules! set {
            ($($flag:ident => $($field:ident).+),* $(,)?) => {
                $(if let Some(v) = self.$flag.clone() { c.$($field).+ = v; })*
            };
        }
        set!(
            listen => listen, db => db, log_format => log_format, history_days => history_days,
            poll_interval_ms => poll.interval_ms, poll_timeout_ms => poll.timeout_ms, poll_slow_ms => poll.slow_ms,
            down_after => poll.down_after, backoff_max_ms => poll.backoff_max_ms,
            max_body_bytes => poll.max_body_bytes, page_size => poll.page_size,
            forget_registered_ms => poll.forget_registered_ms, max_concurrent_polls => poll.max_concurrent,
            load_threshold => scheduler.load_threshold, default_max_viewers => scheduler.default_max_viewers,
            alternatives => scheduler.alternatives, default_region => regions.default,
            replicas => replication.replicas, lease_ms => shared.lease_ms, redis_prefix => shared.key_prefix,
            auth => auth.enabled, url_ttl_s => auth.url_ttl_s, register_max_nodes => register.max_nodes,
            hooks_open => auth.hooks_open, header_timeout_ms => http.header_timeout_ms,
            max_connections => http.max_connections, max_listeners => http.max_listeners,
            ws_max_message_bytes => http.ws_max_message_bytes, dns_ttl_s => dns.ttl_s,
            dns_max_records => dns.max_records, dns_rate_limit_qps => dns.rate_limit_qps,
            dns_max_tcp_connections => dns.max_tcp_connections, dns_tcp_idle_timeout_ms => dns.tcp_idle_timeout_ms,
        );
        if self.dns_listen.is_some() {
            c.dns.listen = self.dns_listen;
        }
        if self.dns_zone.is_some() {
            c.dns.zone = self.dns_zone.clone();
        }
        if self.dns_hostmaster.is_some() {
            c.dns.hostmaster = self.dns_hostmaster.clone();
        }
        c.dns.names.extend(self.dns_names.iter().cloned());
        if !self.dns_nameservers.is_empty() {
            c.dns.nameservers = self.dns_nameservers.clone();
        }
        if self.register_secret.is_some() {
            c.register.secret = self.register_secret.clone();
        }
        c.register.allow.extend(self.register_allow.iter().copied());
        if self.redis.is_some() {
            c.redis = self.redis.clone();
        }
        if self.sign_with.is_some() {
            c.auth.sign_with = self.sign_with.clone();
        }
        if self.admin_token.is_some() {
            c.auth.admin_token = self.admin_token.clone();
        }
        if self.hook_secret.is_some() {
            c.auth.hook_secret = self.hook_secret.clone();
        }
        for key in &self.auth_keys {
            c.auth.keys.retain(|k| k.id != key.id);
            c.auth.keys.push(key.clone());
        }
        for rule in &self.app_rules {
            c.auth.apps.retain(|r| r.app != rule.app);
            c.auth.apps.push(rule.clone());
        }
        c.auth.hook_allow.extend(self.hook_allow.iter().copied());
        if !self.replica_regions.is_empty() {
            c.replication.regions = self.replica_regions.clone();
        }
        if self.geoip.is_some() {
            c.regions.geoip = self.geoip.clone();
        }
        for s in &self.cidrs {
            let (cidr, region) = pair("cidr", s)?;
            let cidr = cidr.parse().with_context(|| format!("--cidr {s:?}: {cidr:?} is not a CIDR like 10.0.0.0/8"))?;
            c.regions.cidrs.push(CidrRegion { cidr, region: region.to_string() });
        }
        c.regions.trusted_proxies.extend(self.trusted_proxies.iter().copied());
        for s in &self.countries {
            let (cc, region) = pair("country", s)?;
            c.regions.countries.insert(cc.to_ascii_uppercase(), region.to_string());
        }
        for s in &self.nearest {
            let (region, list) = pair("nearest", s)?;
            c.regions.nearest.insert(region.to_string(), list.split(',').map(|r| r.trim().to_string()).collect());
        }
        c.nodes.extend(self.nodes.iter().cloned());
        c.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(c)
    }
}

pub fn run(mut args: IndexArgs) -> anyhow::Result<()> {
    if let Some(IndexCommand::Keys(cmd)) = args.command.take() {
        return keys::run(cmd);
    }
    let config = args.to_config()?;
    crate::logging::init(match config.log_format {
        LogFormat::Text => ferrocast_node::LogFormat::Text,
        LogFormat::Json => ferrocast_node::LogFormat::Json,
    });
    // Request threads (HTTP, DNS over TCP) run at once when woken: see `short_slice`.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .on_thread_start(ferrocast_index::short_slice::request_or_log)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let reload_args = args.clone();
        let loader: ferrocast_index::ConfigLoader =
            Box::new(move || reload_args.to_config().map_err(|e| format!("{e:#}")));
        let index = RunningIndex::start(config, Some(loader)).await?;
        let state = index.state.clone();
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot listen for SIGHUP")?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                if let Err(e) = ferrocast_index::reload(&state) {
                    tracing::warn!("reload on SIGHUP refused, the running config stays: {e}");
                }
            }
        });
        crate::node_cmd::wait_for_signal().await?;
        index.shutdown().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_add_to_and_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:8001\"\n[poll]\ninterval_ms = 700\ntimeout_ms = 300\n[regions]\ndefault = \"eu\"\n\
             [[nodes]]\nname = \"o1\"\nrole = \"origin\"\napi = \"http://127.0.0.1:1985\"\n",
        )
        .unwrap();
        let args = IndexArgs {
            config: Some(path),
            poll_interval_ms: Some(900),
            nodes: vec!["name=e1,api=http://127.0.0.1:1986,region=us".parse().unwrap()],
            cidrs: vec!["10.1.0.0/16=us".into()],
            nearest: vec!["eu=us, ap".into()],
            countries: vec!["de=eu".into()],
            ..Default::default()
        };
        let c = args.to_config().unwrap();
        assert_eq!(c.listen.port(), 8001);
        assert_eq!((c.poll.interval_ms, c.poll.timeout_ms), (900, 300));
        assert_eq!(c.regions.default, "eu");
        assert_eq!(c.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["o1", "e1"]);
        assert_eq!(c.regions.cidrs[0].region, "us");
        assert_eq!(c.regions.nearest["eu"], ["us", "ap"]);
        assert_eq!(c.regions.countries["DE"], "eu");
    }

    #[test]
    fn auth_flags_add_to_and_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.toml");
        std::fs::write(
            &path,
            "[auth]\nenabled = true\nsign_with = \"k1\"\nkeys = [{ id = \"k1\", secret = \"old-secret-0123456789\" }]\n\
             [[auth.apps]]\napp = \"live\"\nplay = \"token\"\n",
        )
        .unwrap();
        let args = IndexArgs {
            config: Some(path),
            auth_keys: vec!["k1=new-secret-0123456789".parse().unwrap(), "k2=other-secret-0123456".parse().unwrap()],
            sign_with: Some("k2".into()),
            app_rules: vec!["live=publish:open".parse().unwrap(), "tv=play:token".parse().unwrap()],
            hook_allow: vec!["10.0.0.0/8".parse().unwrap()],
            hook_secret: Some("hook-secret-0123456789".into()),
            url_ttl_s: Some(60),
            ..Default::default()
        };
        let c = args.to_config().unwrap();
        assert!(c.auth.enabled);
        assert_eq!(
            c.auth.keys.iter().map(|k| (k.id.as_str(), k.secret.as_str())).collect::<Vec<_>>(),
            [("k1", "new-secret-0123456789"), ("k2", "other-secret-0123456")]
        );
        assert_eq!(c.auth.sign_with.as_deref(), Some("k2"));
        let live = c.auth.apps.iter().find(|r| r.app == "live").unwrap();
        assert_eq!(live.play, ferrocast_index::auth::Access::Open, "the flag's rule replaces the file's");
        assert_eq!(c.auth.apps.len(), 2);
        assert_eq!((c.auth.url_ttl_s, c.auth.hook_allow.len()), (60, 1));
        let off = IndexArgs { auth: Some(false), ..args };
        assert!(!off.to_config().unwrap().auth.enabled);
        let bad = IndexArgs { sign_with: Some("k9".into()), ..Default::default() };
        assert!(format!("{:#}", bad.to_config().unwrap_err()).contains("sign_with"));
    }

    #[test]
    fn shared_mode_flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.toml");
        std::fs::write(&path, "redis = \"redis://10.0.0.7:6379/0\"\n[shared]\nlease_ms = 5000\nkey_prefix = \"a\"\n")
            .unwrap();
        let file = IndexArgs { config: Some(path.clone()), ..Default::default() }.to_config().unwrap();
        assert_eq!((file.redis.as_deref(), file.shared.lease_ms), (Some("redis://10.0.0.7:6379/0"), 5000));
        let args = IndexArgs {
            config: Some(path),
            redis: Some("redis://127.0.0.1:6380/1".into()),
            lease_ms: Some(1500),
            redis_prefix: Some("eu".into()),
            ..Default::default()
        };
        let c = args.to_config().unwrap();
        assert_eq!(
            (c.redis.as_deref(), c.shared.lease_ms, c.shared.key_prefix.as_str()),
            (Some("redis://127.0.0.1:6380/1"), 1500, "eu")
        );
        let bad = IndexArgs { redis: Some("http://nope".into()), ..Default::default() };
        assert!(format!("{:#}", bad.to_config().unwrap_err()).contains("redis"));
        assert_eq!(IndexArgs::default().to_config().unwrap().redis, None, "a single index by default");
    }

    #[test]
    fn dns_flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.toml");
        std::fs::write(
            &path,
            "[dns]\nlisten = \"127.0.0.1:5300\"\nzone = \"live.example.com\"\nttl_s = 30\nnames = [\"edge\"]\n\
             nameservers = [\"ns1.live.example.com=192.0.2.1\"]\n",
        )
        .unwrap();
        let file = IndexArgs { config: Some(path.clone()), ..Default::default() }.to_config().unwrap();
        assert_eq!((file.dns.ttl_s, file.dns.names.as_slice()), (30, &["edge".to_string()][..]));
        let c = IndexArgs {
            config: Some(path),
            dns_listen: Some("127.0.0.1:5301".parse().unwrap()),
            dns_ttl_s: Some(5),
            dns_names: vec!["tv".into()],
            dns_nameservers: vec!["ns2.example.net".into()],
            dns_rate_limit_qps: Some(0),
            ..Default::default()
        }
        .to_config()
        .unwrap();
        assert_eq!(c.dns.listen.unwrap().port(), 5301);
        assert_eq!((c.dns.ttl_s, c.dns.rate_limit_qps), (5, 0));
        assert_eq!(c.dns.names, ["edge", "tv"]);
        assert_eq!(c.dns.nameservers, ["ns2.example.net"]);
        let no_zone = IndexArgs { dns_listen: Some("127.0.0.1:0".parse().unwrap()), ..Default::default() };
        assert!(format!("{:#}", no_zone.to_config().unwrap_err()).contains("--dns-zone"));
    }

    #[test]
    fn bad_values_name_the_flag() {
        let args = IndexArgs { cidrs: vec!["10.0.0.0/8".into()], ..Default::default() };
        assert!(format!("{:#}", args.to_config().unwrap_err()).contains("--cidr"));
        let args = IndexArgs { load_threshold: Some(1.5), ..Default::default() };
        assert!(format!("{:#}", args.to_config().unwrap_err()).contains("load_threshold"));
    }
}

#[cfg(test)]
mod deploy_examples {
    use super::*;

    #[test]
    fn the_deploy_index_config_is_valid() {
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/index.toml"));
        let c = IndexArgs { config: Some(path), ..Default::default() }.to_config().unwrap();
        assert_eq!(c.nodes.len(), 3);
        assert_eq!(c.regions.nearest["eu"], ["us"]);
    }
}

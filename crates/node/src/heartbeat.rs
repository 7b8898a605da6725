//! Registration with the index server, the way SRS registers with its `heartbeat` section: a POST
//! every interval whose body is SRS's (`device_id`, `ip`, `server`, `service`, `pid`, `summaries`,
//! then the `rtmp`/`http`/`api` ports), plus Ferrocast's `role` and `region` at the end. An index
//! server (or SRS's proxy) that accepts heartbeats from real SRS nodes thus accepts ours too.
//!
//! The answer is ignored, as SRS does. Failures never stop the loop; they are logged at most once a
//! minute while they last, and the recovery once.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::context::NodeContext;
use crate::hooks::{describe, redact};

/// Where an index server takes heartbeats (the path of SRS's proxy, too).
pub const REGISTER_PATH: &str = "/api/v1/srs/register";
/// Upper bound of one heartbeat request; shorter when the interval is shorter.
const MAX_TIMEOUT: Duration = Duration::from_secs(2);
/// While the index server stays unreachable, warn this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The ports the node really listens on (port 0 in the config resolved by the OS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundPorts {
    pub rtmp: u16,
    pub http: u16,
    pub api: u16,
}

/// The heartbeat URL for the `index` setting: `{index}/api/v1/srs/register`, or `index` itself when
/// its path already ends in `/register`. Only plain http: this build has no TLS.
pub fn register_url(index: &str) -> Result<Url, String> {
    let mut url = Url::parse(index).map_err(|e| {
        format!("index: {index:?} is not a URL ({e}); give the index server's base URL, e.g. http://10.0.0.9:8000")
    })?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "index: {index:?}: https is not supported by this build; use http:// (for example through a local \
                 TLS-terminating proxy)"
            ));
        }
        other => return Err(format!("index: {index:?}: scheme {other:?} is not http; e.g. http://10.0.0.9:8000")),
    }
    let base = url.path().trim_end_matches('/').to_owned();
    if !base.ends_with("/register") {
        url.set_path(&format!("{base}{REGISTER_PATH}"));
    }
    Ok(url)
}

/// The heartbeat body, keys in SRS's order, then `role` and (when configured) `region`.
pub fn body(ctx: &NodeContext, ip: IpAddr, ports: BoundPorts) -> Value {
    let mut body = json!({
        "device_id": ctx.server_id,
        "ip": ip.to_string(),
        "server": ctx.server_id,
        "service": ctx.service_id,
        "pid": ctx.pid.to_string(),
        "summaries": crate::api::summaries::summaries(ctx),
        "rtmp": [ports.rtmp.to_string()],
        "http": [ports.http.to_string()],
        "api": [ports.api.to_string()],
        "role": ctx.config.role.to_string(),
    });
    if let (Some(region), Some(map)) = (&ctx.config.region, body.as_object_mut()) {
        map.insert("region".into(), json!(region));
    }
    body
}

/// The heartbeat task of a node with an `index` configured.
pub struct Heartbeat {
    ctx: Arc<NodeContext>,
    url: Url,
    ports: BoundPorts,
    timeout: Duration,
    client: reqwest::Client,
}

impl Heartbeat {
    /// None when no index server is configured (or its URL is unusable, which `validate` refuses).
    pub fn new(ctx: Arc<NodeContext>, ports: BoundPorts) -> Option<Heartbeat> {
        let url = match register_url(ctx.config.index.as_deref()?) {
            Ok(url) => url,
            Err(e) => {
                warn!("{e}; not registering with an index server");
                return None;
            }
        };
        let timeout = ctx.config.index_interval().min(MAX_TIMEOUT);
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .user_agent(concat!("Ferrocast/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_else(|e| {
                warn!("cannot build the heartbeat HTTP client as configured ({e}); using reqwest's defaults");
                reqwest::Client::new()
            });
        Some(Heartbeat { ctx, url, ports, timeout, client })
    }

    /// Beats at once, then every interval, until the node shuts down.
    pub async fn run(self) {
        let shutdown = self.ctx.shutdown.clone();
        let interval = self.ctx.config.index_interval();
        info!(url = %redact(self.url.as_str()), interval_ms = interval.as_millis() as u64, "registering with the index server");
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut health = Health::default();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout(self.timeout, self.beat()) => r.unwrap_or_else(|_| {
                    Err(format!("no answer within {} ms", self.timeout.as_millis()))
                }),
            };
            let now = Instant::now();
            match result {
                Ok(()) => {
                    if let Some((failures, since)) = health.succeeded(now) {
                        info!(url = %redact(self.url.as_str()), "index server reached again after {failures} failed heartbeats over {} s", since.as_secs());
                    }
                }
                Err(reason) => {
                    if health.failed(now) {
                        warn!(url = %redact(self.url.as_str()), "heartbeat to the index server failed: {reason} (retrying every {} ms)", interval.as_millis());
                    }
                }
            }
        }
    }

    async fn beat(&self) -> Result<(), String> {
        let ip = match self.ctx.config.advertise_ip {
            Some(ip) => ip,
            None => local_ip_toward(&self.url).await.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        };
        let body = body(&self.ctx, ip, self.ports);
        let answer =
            self.client.post(self.url.clone()).json(&body).send().await.map_err(|e| describe(&e.without_url()))?;
        let status = answer.status();
        // Read the (ignored) answer so the connection can be reused.
        let _ = answer.bytes().await;
        if status.is_success() { Ok(()) } else { Err(format!("the index server answered {status}")) }
    }
}

/// The local address the OS would send from toward the URL's host: a UDP socket connected to it
/// (connecting a UDP socket sends nothing).
async fn local_ip_toward(url: &Url) -> Option<IpAddr> {
    let port = url.port_or_known_default()?;
    // IPv6 hosts come bracketed; an IP literal resolves without DNS.
    let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']');
    let target = tokio::net::lookup_host((host, port)).await.ok()?.next()?;
    let any: SocketAddr =
        if target.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = tokio::net::UdpSocket::bind(any).await.ok()?;
    socket.connect(target).await.ok()?;
    Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified())
}

/// Whether to log: the first failure and then one a minute while failing; the recovery once.
#[derive(Debug, Default)]
struct Health {
    failing_since: Option<Instant>,
    last_warn: Option<Instant>,
    failures: u64,
}

impl Health {
    /// Records a failure; true when it should be logged.
    fn failed(&mut self, now: Instant) -> bool {
        self.failing_since.get_or_insert(now);
        self.failures += 1;
        let due = self.last_warn.is_none_or(|last| now.duration_since(last) >= WARN_EVERY);
        if due {
            self.last_warn = Some(now);
        }
        due
    }

    /// Records a success; after failures, their count and how long they lasted.
    fn succeeded(&mut self, now: Instant) -> Option<(u64, Duration)> {
        let since = self.failing_since.take()?;
        let failures = std::mem::take(&mut self.failures);
        self.last_warn = None;
        Some((failures, now.duration_since(since)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_register_path_is_appended_unless_given() {
        let url = |s| register_url(s).map(|u| u.to_string());
        assert_eq!(url("http://10.0.0.9:8000").unwrap(), "http://10.0.0.9:8000/api/v1/srs/register");
        assert_eq!(url("http://idx:8000/").unwrap(), "http://idx:8000/api/v1/srs/register");
        assert_eq!(url("http://idx/prefix/").unwrap(), "http://idx/prefix/api/v1/srs/register");
        assert_eq!(url("http://idx:12025/api/v1/srs/register").unwrap(), "http://idx:12025/api/v1/srs/register");
        assert_eq!(url("http://idx/custom/register?k=1").unwrap(), "http://idx/custom/register?k=1");
        assert!(url("10.0.0.9:8000").unwrap_err().contains("index"));
        assert!(url("https://idx").unwrap_err().contains("https"));
        assert!(url("not a url").unwrap_err().contains("not a URL"));
    }

    #[test]
    fn failures_are_logged_once_a_minute_and_the_recovery_once() {
        let t0 = Instant::now();
        let mut h = Health::default();
        assert_eq!(h.succeeded(t0), None, "nothing to report while healthy");
        assert!(h.failed(t0));
        assert!(!h.failed(t0 + Duration::from_secs(2)));
        assert!(!h.failed(t0 + Duration::from_secs(59)));
        assert!(h.failed(t0 + Duration::from_secs(60)));
        assert_eq!(h.succeeded(t0 + Duration::from_secs(62)), Some((4, Duration::from_secs(62))));
        assert_eq!(h.succeeded(t0 + Duration::from_secs(64)), None);
        assert!(h.failed(t0 + Duration::from_secs(65)), "a new outage warns at once");
    }

    #[test]
    fn the_body_has_srs_keys_in_order_then_role_and_region() {
        let config =
            crate::NodeConfig { name: Some("edge-eu-1".into()), region: Some("eu".into()), ..Default::default() };
        let ctx = NodeContext::new(config);
        let b = body(&ctx, "192.0.2.2".parse().unwrap(), BoundPorts { rtmp: 1935, http: 8080, api: 1985 });
        let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["device_id", "ip", "server", "service", "pid", "summaries", "rtmp", "http", "api", "role", "region"]
        );
        assert_eq!(b["device_id"], "edge-eu-1");
        assert_eq!(b["server"], "edge-eu-1");
        assert_eq!(b["ip"], "192.0.2.2");
        assert_eq!(b["rtmp"], json!(["1935"]));
        assert_eq!(b["role"], "origin");
        assert!(b["pid"].is_string() && b["summaries"]["data"]["self"]["pid"].is_u64());
        let plain = NodeContext::new(crate::NodeConfig::default());
        let b = body(&plain, IpAddr::V4(Ipv4Addr::LOCALHOST), BoundPorts { rtmp: 1, http: 2, api: 3 });
        assert!(b.get("region").is_none(), "region only when configured");
    }
}

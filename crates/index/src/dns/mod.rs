//! Scheduling by DNS: the index answers as the authoritative server of a delegated zone
//! (`live.example.com`), so a player that only ever resolves a name — a TV app with a fixed
//! `rtmp://live.example.com/live/cam1`, a CDN origin-pull, a hardware decoder — is sent to the
//! best edge of its region by the same scheduler as `/api/v1/play`.
//!
//! - [`zone`]: the zone as configured (apex, SOA, NS, names the operator maps) and what each
//!   name in it means ([`zone::Target`]).
//! - [`answer`]: one query in, one answer out, from the directory in memory (no request waits on
//!   a node). Wire format by hickory-proto; hostile packets get FORMERR/REFUSED or silence.
//! - [`serve`]: the UDP and TCP listeners, with a per-address rate limit ([`rate_limit`]) that
//!   answers UDP beyond it with truncation (TC), against reflection, and a short-lived cache of
//!   UDP answers per asker and question ([`cache`]).
//!
//! The client's region comes from the EDNS Client Subnet option when the resolver sends one, else
//! from the resolver's address, through the same CIDR table / GeoIP / default as HTTP.

pub mod answer;
pub mod cache;
pub mod rate_limit;
pub mod serve;
pub mod zone;

use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::Name;
use serde::{Deserialize, Serialize};

use crate::config::NodeSpec;

pub use serve::{DnsListeners, bind, start};
pub use zone::Zone;

/// The `[dns]` part of the index config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// UDP and TCP address of the DNS server, e.g. 0.0.0.0:53; None: no DNS.
    pub listen: Option<SocketAddr>,
    /// The zone this index is authoritative for, e.g. live.example.com (its parent delegates it).
    pub zone: Option<String>,
    /// TTL of edge and origin answers, in seconds: a dead edge leaves resolvers' caches within it.
    pub ttl_s: u32,
    /// Names that answer like the zone's apex (the best edges of the client's region), relative to
    /// the zone (`edge`) or in full (`edge.live.example.com`).
    pub names: Vec<String>,
    /// The zone's name servers, `HOST` or `HOST=IP` (the address is served for a host inside the
    /// zone), e.g. ns1.live.example.com=203.0.113.10. Several index replicas: list them all.
    /// Empty: `ns.ZONE`, at the listen address when it is a specific one.
    pub nameservers: Vec<String>,
    /// The mailbox of the SOA record, as a name [default: hostmaster.ZONE].
    pub hostmaster: Option<String>,
    /// Most addresses in one answer: the best edge first, then fallbacks.
    pub max_records: usize,
    /// UDP queries per second from one client network (/24, /56) answered in full; beyond it the
    /// answer is truncated (TC, the client retries over TCP), beyond 4x it is dropped. 0: no limit.
    pub rate_limit_qps: u32,
    /// TCP connections open at once; more are closed at once.
    pub max_tcp_connections: usize,
    /// A TCP connection idle this long is closed, in ms.
    pub tcp_idle_timeout_ms: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: None,
            zone: None,
            ttl_s: 10,
            names: Vec::new(),
            nameservers: Vec::new(),
            hostmaster: None,
            max_records: 4,
            rate_limit_qps: 200,
            max_tcp_connections: 1000,
            tcp_idle_timeout_ms: 10_000,
        }
    }
}

impl DnsConfig {
    /// Checks the section; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.listen.is_some() && self.zone.is_none() {
            return Err("dns.listen is set but dns.zone is not: give the zone to answer for (--dns-zone \
                        live.example.com)"
                .into());
        }
        if self.zone.is_some() {
            Zone::new(self).map(|_| ())?;
        }
        if self.ttl_s == 0 || self.ttl_s > 86_400 {
            return Err("dns.ttl_s must be between 1 and 86400".into());
        }
        if !(1..=16).contains(&self.max_records) {
            return Err("dns.max_records must be between 1 and 16".into());
        }
        if self.max_tcp_connections == 0 || self.tcp_idle_timeout_ms == 0 {
            return Err("dns.max_tcp_connections and dns.tcp_idle_timeout_ms must be above 0".into());
        }
        Ok(())
    }
}

/// Where a node's name in an answer points: an address record, or a CNAME to its host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeAddress {
    Ip(IpAddr),
    Name(Name),
}

impl NodeAddress {
    /// `dns_address` when the node has one, else the host of its RTMP URL, else of its HTTP URL,
    /// else of its API URL. None when none gives a usable host.
    pub fn of(spec: &NodeSpec) -> Option<NodeAddress> {
        if let Some(a) = &spec.dns_address {
            return NodeAddress::parse(a).ok();
        }
        [spec.rtmp.as_deref(), spec.http.as_deref(), Some(spec.api.as_str())].into_iter().flatten().find_map(|u| {
            let url = reqwest::Url::parse(u).ok()?;
            // An IPv6 host comes bracketed.
            NodeAddress::parse(url.host_str()?.trim_start_matches('[').trim_end_matches(']')).ok()
        })
    }

    /// An IP address or a host name.
    pub fn parse(s: &str) -> Result<NodeAddress, String> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(NodeAddress::Ip(ip.to_canonical()));
        }
        let mut name =
            Name::from_ascii(s).map_err(|e| format!("{s:?} is neither an IP address nor a host name: {e}"))?;
        if name.num_labels() == 0 {
            return Err(format!("{s:?} is neither an IP address nor a host name"));
        }
        name.set_fqdn(true);
        Ok(NodeAddress::Name(name.to_lowercase()))
    }
}

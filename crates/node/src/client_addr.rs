//! Which address an HTTP request comes from.
//!
//! It exists because that address is a credential: it becomes the hooks' `ip` (an IP-bound
//! token is checked against it) and it binds an HLS session. So `X-Forwarded-For` and
//! `X-Real-IP` are believed only when the TCP peer is a proxy the operator trusts
//! (`--trusted-proxy CIDR`), and then only as far as the chain is trusted: the client is the
//! rightmost hop of `X-Forwarded-For` that is not itself a trusted proxy (every proxy appends the
//! address it received from, so hops to the left of an untrusted one are whatever the client
//! wrote). With no trusted proxy configured, the headers are ignored and the TCP peer is the
//! client.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

/// An address block, `10.0.0.0/8`, `2001:db8::/32`, or one address (`192.0.2.7`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = || format!("{s:?} is not an address or a CIDR block (e.g. 10.0.0.0/8, 2001:db8::/32)");
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Cidr, String> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The client's address: the TCP `peer`, unless the peer is in `trusted`; then the rightmost
/// untrusted hop of `X-Forwarded-For`, or `X-Real-IP` when that header is absent. An unparsable
/// hop ends the walk at the last trusted one (the closest address that a trusted proxy vouched for).
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let canonical = peer.to_canonical();
    if !is_trusted(canonical) {
        return canonical;
    }
    let header = |name: &str| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    let forwarded = header("x-forwarded-for");
    if forwarded.is_empty() {
        let real = header("x-real-ip");
        return real.first().and_then(|v| v.trim().parse::<IpAddr>().ok()).map_or(canonical, |ip| ip.to_canonical());
    }
    // Several X-Forwarded-For lines form one list, in order.
    let hops: Vec<&str> = forwarded.iter().flat_map(|v| v.split(',')).collect();
    ferrocast_cluster::rightmost_untrusted_hop(peer, hops.into_iter(), is_trusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_match() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.200.1.1")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped peers match IPv4 blocks");
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")) && !v6.contains(ip("2001:db9::1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let spoof = headers(&[("x-forwarded-for", "10.1.2.3"), ("x-real-ip", "10.1.2.3")]);
        assert_eq!(client_ip(&spoof, ip("198.51.100.9"), &[]), ip("198.51.100.9"), "no proxy trusted");
        let proxy: Vec<Cidr> = vec!["127.0.0.0/8".parse().unwrap()];
        assert_eq!(client_ip(&spoof, ip("198.51.100.9"), &proxy), ip("198.51.100.9"), "peer is not a proxy");
        assert_eq!(client_ip(&spoof, ip("127.0.0.1"), &proxy), ip("10.1.2.3"));
        // The client wrote the left part; the proxy appended what it saw: the rightmost untrusted.
        let chain = headers(&[("x-forwarded-for", "10.1.2.3, 203.0.113.5, 127.0.0.2")]);
        assert_eq!(client_ip(&chain, ip("127.0.0.1"), &proxy), ip("203.0.113.5"));
        let lines = headers(&[("x-forwarded-for", "10.1.2.3"), ("x-forwarded-for", "203.0.113.5")]);
        assert_eq!(client_ip(&lines, ip("127.0.0.1"), &proxy), ip("203.0.113.5"));
        let junk = headers(&[("x-forwarded-for", "evil, 127.0.0.2")]);
        assert_eq!(client_ip(&junk, ip("127.0.0.1"), &proxy), ip("127.0.0.2"), "stops at the last trusted hop");
        let real = headers(&[("x-real-ip", "203.0.113.5")]);
        assert_eq!(client_ip(&real, ip("127.0.0.1"), &proxy), ip("203.0.113.5"));
    }
}

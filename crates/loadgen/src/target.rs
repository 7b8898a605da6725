//! The `--url` target: which protocol to play, where to connect, and the loopback guard.
//!
//! A load generator pointed at the wrong host is a denial-of-service tool, so every address a
//! target resolves to must be a loopback address (127.0.0.0/8, ::1) unless the user passes
//! `--allow-remote`. The check runs on the resolved addresses, so `localhost` passes and a
//! name that resolves elsewhere does not.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};

/// The protocol the players speak, chosen by the URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `http://host:port/app/stream.flv`
    HttpFlv,
    /// `rtmp://host:port/app/stream`
    Rtmp,
    /// `http://host:port/app/stream/index.m3u8` (Low-Latency HLS)
    LlHls,
    /// `http://host:port/app/stream/whep` (WebRTC)
    Whep,
}

impl Protocol {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::HttpFlv => "http-flv",
            Self::Rtmp => "rtmp",
            Self::LlHls => "ll-hls",
            Self::Whep => "whep",
        }
    }
}

/// A parsed `--url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub protocol: Protocol,
    /// The URL as given.
    pub url: String,
    /// Host as written (brackets stripped from an IPv6 literal).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Target {
    /// Parses `http://host[:port]/path` or `rtmp://host[:port]/app/stream`.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let (scheme, rest) = url.split_once("://").context("the URL has no scheme: expected http:// or rtmp://")?;
        let (protocol, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "http" => (Protocol::HttpFlv, 80),
            "rtmp" => (Protocol::Rtmp, 1935),
            other => bail!(
                "unsupported scheme {other:?}: use http://host:port/app/stream.flv or rtmp://host:port/app/stream"
            ),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            bail!("user info in the URL is not supported");
        }
        let (host, port) = split_host_port(authority)?;
        let port = port.unwrap_or(default_port);
        if host.is_empty() {
            bail!("the URL has no host");
        }
        if protocol == Protocol::Rtmp && path.trim_matches('/').split('/').filter(|s| !s.is_empty()).count() < 2 {
            bail!("an RTMP URL needs an app and a stream: rtmp://host:port/app/stream");
        }
        let protocol = match protocol {
            Protocol::HttpFlv if path.split('?').next().is_some_and(|p| p.ends_with("/index.m3u8")) => Protocol::LlHls,
            Protocol::HttpFlv if path.split('?').next().is_some_and(|p| p.ends_with("/whep")) => Protocol::Whep,
            other => other,
        };
        Ok(Self { protocol, url: url.to_string(), host: host.to_string(), port, path: path.to_string() })
    }

    /// The `Host` header value for HTTP.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{host}:{}", self.port)
    }

    /// Resolves the host and applies the loopback guard. Returns the address players connect to.
    pub async fn resolve(&self, allow_remote: bool) -> anyhow::Result<SocketAddr> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("cannot resolve {}", self.host))?
            .collect();
        check_targets(&self.host, &addrs, allow_remote)?;
        addrs.first().copied().with_context(|| format!("{} resolved to no address", self.host))
    }
}

/// Splits `host[:port]`, accepting `[v6]:port`.
fn split_host_port(authority: &str) -> anyhow::Result<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').context("unterminated [ in the URL host")?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').context("garbage after ] in the URL host")?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = port.map(|p| p.parse::<u16>().with_context(|| format!("bad port {p:?} in the URL"))).transpose()?;
    Ok((host, port))
}

/// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
    }
}

/// Refuses any non-loopback address unless `allow_remote`.
pub fn check_targets(host: &str, addrs: &[SocketAddr], allow_remote: bool) -> anyhow::Result<()> {
    if allow_remote {
        return Ok(());
    }
    if let Some(bad) = addrs.iter().find(|a| !is_loopback(a.ip())) {
        bail!(
            "refusing to load-test {host} ({}): only loopback targets (127.0.0.0/8, ::1) are allowed. \
             Pass --allow-remote if you run that server and may load-test it",
            bad.ip()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_addresses() {
        for ip in ["127.0.0.1", "127.1.2.3", "127.255.255.254", "::1", "::ffff:127.0.0.9"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "128.0.0.1", "0.0.0.0", "192.168.1.1", "::", "::ffff:10.0.0.1", "2001:db8::1"] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn remote_targets_are_refused_without_the_flag() {
        assert!(check_targets("x", &[addr("127.0.0.1:80"), addr("[::1]:80")], false).is_ok());
        let err = check_targets("x", &[addr("127.0.0.1:80"), addr("10.1.1.1:80")], false).unwrap_err();
        assert!(err.to_string().contains("--allow-remote"), "{err}");
        assert!(check_targets("x", &[addr("10.1.1.1:80")], true).is_ok());
    }

    #[tokio::test]
    async fn resolve_applies_the_guard() {
        let t = Target::parse("http://127.0.0.2:8080/live/a.flv").unwrap();
        assert_eq!(t.resolve(false).await.unwrap(), addr("127.0.0.2:8080"));
        let t = Target::parse("http://192.0.2.1:8080/live/a.flv").unwrap();
        assert!(t.resolve(false).await.is_err());
        assert_eq!(t.resolve(true).await.unwrap(), addr("192.0.2.1:8080"));
    }

    #[test]
    fn parses_urls() {
        let ll = Target::parse("http://127.0.0.1:8080/live/demo/index.m3u8?token=1").unwrap();
        assert_eq!((ll.protocol, ll.path.as_str()), (Protocol::LlHls, "/live/demo/index.m3u8?token=1"));
        let t = Target::parse("http://127.0.0.1:8080/live/demo.flv?token=1").unwrap();
        assert_eq!(t.protocol, Protocol::HttpFlv);
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("127.0.0.1", 8080, "/live/demo.flv?token=1"));
        assert_eq!(t.host_header(), "127.0.0.1:8080");

        let t = Target::parse("rtmp://[::1]/live/demo").unwrap();
        assert_eq!((t.protocol, t.host.as_str(), t.port), (Protocol::Rtmp, "::1", 1935));
        assert_eq!(t.host_header(), "[::1]:1935");

        assert!(Target::parse("https://127.0.0.1/a.flv").is_err());
        assert!(Target::parse("127.0.0.1/a.flv").is_err());
        assert!(Target::parse("rtmp://127.0.0.1/live").is_err());
        assert!(Target::parse("http://127.0.0.1:99999/a.flv").is_err());
        assert!(Target::parse("http://:80/a.flv").is_err());
    }
}

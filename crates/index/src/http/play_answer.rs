//! The play answer's JSON, written straight into one buffer from parts the directory rendered
//! ahead ([`NodeTargets`]): the scheduler's hot path, where building a tree of values or
//! formatting every URL again per request cost as much as the scheduling decision itself.
//!
//! ```json
//! {"code":0,"url":"http://e1:8080/live/cam1.flv","node":"e1","region":"eu","proto":"flv",
//!  "alternatives":[{"url":"...","node":"e2","region":"eu"}]}
//! ```
//!
//! With `?explain=1` the answer also says how it was reached: the stream (its key, whether it is
//! live) and the viewer (address, region, and where the region came from). Players fetch the
//! answer for every play, so by default it carries only what they use.

use std::io::Write as _;
use std::net::IpAddr;

use crate::directory::Directory;
use crate::region::RegionSource;
use crate::targets::{Proto, push_json_content, push_json_str};

/// What follows a node's base URL for one viewer: `/{app}/{stream}{ext}{query}`.
pub struct PlayPath<'a> {
    pub proto: Proto,
    pub app: &'a str,
    pub stream: &'a str,
    /// `?...` or empty.
    pub query: &'a str,
}

impl PlayPath<'_> {
    fn parts(&self) -> [&str; 6] {
        ["/", self.app, "/", self.stream, self.proto.extension(), self.query]
    }

    /// The full URL on node `i`, if it serves this protocol.
    pub fn url(&self, dir: &Directory, i: usize) -> Option<String> {
        let base = &dir.nodes[i].targets.base(self.proto)?.raw;
        let parts = self.parts();
        let mut url = String::with_capacity(base.len() + parts.iter().map(|p| p.len()).sum::<usize>());
        url.push_str(base);
        parts.iter().for_each(|p| url.push_str(p));
        Some(url)
    }
}

/// How the answer was reached (`?explain=1`).
pub struct Explain<'a> {
    pub key: &'a str,
    /// Whether the stream is live; None when the caller may not know (see `http::play`).
    pub live: Option<bool>,
    pub ip: IpAddr,
    pub region: &'a str,
    pub source: RegionSource,
}

/// The answer for node `chosen` with `alternatives` (every one serves `path.proto`).
pub fn write(
    dir: &Directory,
    chosen: usize,
    alternatives: &[usize],
    path: &PlayPath<'_>,
    explain: Option<&Explain<'_>>,
) -> Vec<u8> {
    let path_len: usize = path.parts().iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(240 + (1 + alternatives.len()) * (path_len + 90) + path_len);
    // The escaped path is written once; later URLs copy it from there.
    let mut escaped: Option<std::ops::Range<usize>> = None;
    let mut choice = |out: &mut Vec<u8>, i: usize| {
        let t = &dir.nodes[i].targets;
        out.extend_from_slice(b"\"url\":\"");
        out.extend_from_slice(t.base(path.proto).map_or("", |b| &*b.json).as_bytes());
        match &escaped {
            Some(r) => out.extend_from_within(r.clone()),
            None => {
                let start = out.len();
                path.parts().iter().for_each(|p| push_json_content(out, p));
                escaped = Some(start..out.len());
            }
        }
        out.extend_from_slice(b"\",");
        out.extend_from_slice(t.fields.as_bytes());
    };
    out.extend_from_slice(b"{\"code\":0,");
    choice(&mut out, chosen);
    out.extend_from_slice(b",\"proto\":\"");
    out.extend_from_slice(path.proto.as_str().as_bytes());
    out.push(b'"');
    if let Some(x) = explain {
        out.extend_from_slice(b",\"stream\":{\"key\":");
        push_json_str(&mut out, x.key);
        out.extend_from_slice(match x.live {
            Some(true) => b",\"live\":true}",
            Some(false) => b",\"live\":false}",
            None => b",\"live\":null}",
        });
        out.extend_from_slice(b",\"viewer\":{\"ip\":\"");
        push_ip(&mut out, x.ip);
        out.extend_from_slice(b"\",\"region\":");
        push_json_str(&mut out, x.region);
        out.extend_from_slice(b",\"region_source\":\"");
        out.extend_from_slice(x.source.as_str().as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b",\"alternatives\":[");
    for (n, &i) in alternatives.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'{');
        choice(&mut out, i);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// Appends `ip` in its usual text form (IPv4 without going through the formatter).
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (n, octet) in v4.octets().into_iter().enumerate() {
                if n > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(_) => {
            let _ = write!(out, "{ip}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_they_print() {
        for ip in ["0.0.0.0", "127.0.0.1", "10.20.100.255", "203.0.113.9", "::1", "2001:db8::5"] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            push_ip(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }
    }
}

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

/// Writes `"url":"...","node":"...","region":"..."` for one node, the escaped path written once
/// and copied for the next nodes.
struct Choices<'a> {
    dir: &'a Directory,
    path: &'a PlayPath<'a>,
    escaped: Option<std::ops::Range<usize>>,
}

impl<'a> Choices<'a> {
    fn new(dir: &'a Directory, path: &'a PlayPath<'a>) -> Self {
        Choices { dir, path, escaped: None }
    }

    fn push(&mut self, out: &mut Vec<u8>, i: usize) {
        let t = &self.dir.nodes[i].targets;
        out.extend_from_slice(b"\"url\":\"");
        out.extend_from_slice(t.base(self.path.proto).map_or("", |b| &*b.json).as_bytes());
        match &self.escaped {
            Some(r) => out.extend_from_within(r.clone()),
            None => {
                let start = out.len();
                self.path.parts().iter().for_each(|p| push_json_content(out, p));
                self.escaped = Some(start..out.len());
            }
        }
        out.extend_from_slice(b"\",");
        out.extend_from_slice(t.fields.as_bytes());
    }

    /// `"name":[{choice},...]`
    fn push_list(&mut self, out: &mut Vec<u8>, name: &str, nodes: &[usize]) {
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":[");
        for (n, &i) in nodes.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.push(b'{');
            self.push(out, i);
            out.push(b'}');
        }
        out.push(b']');
    }
}

fn capacity(path: &PlayPath<'_>, nodes: usize) -> usize {
    let path_len: usize = path.parts().iter().map(|p| p.len()).sum();
    240 + nodes * (path_len + 90) + path_len
}

fn push_stream(out: &mut Vec<u8>, key: &str, live: Option<bool>) {
    out.extend_from_slice(b"\"stream\":{\"key\":");
    push_json_str(out, key);
    out.extend_from_slice(match live {
        Some(true) => b",\"live\":true}",
        Some(false) => b",\"live\":false}",
        None => b",\"live\":null}",
    });
}

/// The answer for node `chosen` with `alternatives` (every one serves `path.proto`).
pub fn write(
    dir: &Directory,
    chosen: usize,
    alternatives: &[usize],
    path: &PlayPath<'_>,
    explain: Option<&Explain<'_>>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity(path, 1 + alternatives.len()));
    let mut choices = Choices::new(dir, path);
    out.extend_from_slice(b"{\"code\":0,");
    choices.push(&mut out, chosen);
    out.extend_from_slice(b",\"proto\":\"");
    out.extend_from_slice(path.proto.as_str().as_bytes());
    out.push(b'"');
    if let Some(x) = explain {
        out.push(b',');
        push_stream(&mut out, x.key, x.live);
        out.extend_from_slice(b",\"viewer\":{\"ip\":\"");
        push_ip(&mut out, x.ip);
        out.extend_from_slice(b"\",\"region\":");
        push_json_str(&mut out, x.region);
        out.extend_from_slice(b",\"region_source\":\"");
        out.extend_from_slice(x.source.as_str().as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.push(b',');
    choices.push_list(&mut out, "alternatives", alternatives);
    out.push(b'}');
    out
}

/// The publish answer: origin `chosen` for a publisher of stream `key`, then the `backups` to move
/// to when it fails (every one serves `path.proto`); `live` as for [`Explain`].
///
/// ```json
/// {"code":0,"url":"rtmp://o1:1935/live/cam1","node":"o1","region":"eu",
///  "stream":{"key":"__defaultVhost__/live/cam1","live":false},"backups":[{"url":...,"node":...,"region":...}]}
/// ```
pub fn write_publish(
    dir: &Directory,
    chosen: usize,
    backups: &[usize],
    path: &PlayPath<'_>,
    key: &str,
    live: Option<bool>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity(path, 1 + backups.len()) + key.len());
    let mut choices = Choices::new(dir, path);
    out.extend_from_slice(b"{\"code\":0,");
    choices.push(&mut out, chosen);
    out.push(b',');
    push_stream(&mut out, key, live);
    out.push(b',');
    choices.push_list(&mut out, "backups", backups);
    out.push(b'}');
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

    #[test]
    fn the_publish_answer_is_json_with_every_name_escaped() {
        let mut table = crate::nodes::NodeTable::new();
        for (i, name) in ["o\"1", "o2"].into_iter().enumerate() {
            let spec: crate::config::NodeSpec =
                format!("name={name},role=origin,region=eu,api=http://127.0.0.1:1,rtmp=rtmp://10.0.0.{i}:1935")
                    .parse()
                    .unwrap();
            let mut e = crate::nodes::NodeEntry::new(spec, i, None);
            e.health = crate::nodes::Health::Up;
            table.insert(name.into(), e);
        }
        let dir = Directory::build(&table, &crate::config::IndexConfig::default(), 0);
        let path = PlayPath { proto: Proto::Rtmp, app: "live", stream: "a\"b\\c", query: "?token=x" };
        let body = write_publish(&dir, 1, &[0], &path, "__defaultVhost__/live/a\"b\\c", Some(false));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "code": 0, "url": "rtmp://10.0.0.1:1935/live/a\"b\\c?token=x", "node": "o2", "region": "eu",
                "stream": {"key": "__defaultVhost__/live/a\"b\\c", "live": false},
                "backups": [{"url": "rtmp://10.0.0.0:1935/live/a\"b\\c?token=x", "node": "o\"1", "region": "eu"}],
            })
        );
        let body = write_publish(&dir, 0, &[], &path, "k", None);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((v["stream"]["live"].is_null(), v["backups"].as_array().map(Vec::len)), (true, Some(0)));
    }
}

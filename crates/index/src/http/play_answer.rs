//! The play answer's JSON, written straight into one buffer from parts the directory rendered
//! ahead ([`NodeTargets`]): the scheduler's hot path, where building a tree of values or
//! formatting every URL again per request cost as much as the scheduling decision itself.
//!
//! ```json
//! {"code":0,"url":"http://e1:8080/live/cam1.flv","node":"e1","region":"eu","proto":"flv",
//!  "stream":{"key":"__defaultVhost__/live/cam1","live":true},
//!  "viewer":{"ip":"203.0.113.9","region":"eu","region_source":"cidr"},
//!  "alternatives":[{"url":"...","node":"e2","region":"eu"}]}
//! ```

use std::io::Write as _;
use std::net::IpAddr;

use crate::directory::Directory;
use crate::region::RegionSource;
use crate::targets::{Proto, push_json_content, push_json_str};

/// What follows a node's base URL for one viewer: `/{app}/{stream}{ext}{query}`, as is (for a
/// redirect) and escaped for JSON (for the answer).
pub struct PlayPath {
    pub raw: String,
    json: Vec<u8>,
}

impl PlayPath {
    pub fn new(proto: Proto, app: &str, stream: &str, query: &str) -> PlayPath {
        let ext = proto.extension();
        let mut raw = String::with_capacity(app.len() + stream.len() + ext.len() + query.len() + 2);
        for part in ["/", app, "/", stream, ext, query] {
            raw.push_str(part);
        }
        let mut json = Vec::with_capacity(raw.len());
        push_json_content(&mut json, &raw);
        PlayPath { raw, json }
    }

    /// The full URL on node `i` (which must serve `proto`).
    pub fn url(&self, dir: &Directory, i: usize, proto: Proto) -> String {
        let base = dir.nodes[i].targets.base(proto).map_or("", |b| &*b.raw);
        let mut url = String::with_capacity(base.len() + self.raw.len());
        url.push_str(base);
        url.push_str(&self.raw);
        url
    }
}

/// Who asked, as the answer reports it.
pub struct ViewerInfo<'a> {
    pub ip: IpAddr,
    pub region: &'a str,
    pub source: RegionSource,
}

/// The answer for node `chosen` with `alternatives` (every one serves `proto`).
pub fn write(
    dir: &Directory,
    chosen: usize,
    alternatives: &[usize],
    proto: Proto,
    path: &PlayPath,
    key: &str,
    live: bool,
    viewer: &ViewerInfo<'_>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + (1 + alternatives.len()) * (path.json.len() + 80) + key.len());
    let choice = |out: &mut Vec<u8>, i: usize| {
        let t = &dir.nodes[i].targets;
        out.extend_from_slice(b"\"url\":\"");
        out.extend_from_slice(t.base(proto).map_or("", |b| &*b.json).as_bytes());
        out.extend_from_slice(&path.json);
        out.extend_from_slice(b"\",");
        out.extend_from_slice(t.fields.as_bytes());
    };
    out.extend_from_slice(b"{\"code\":0,");
    choice(&mut out, chosen);
    out.extend_from_slice(b",\"proto\":\"");
    out.extend_from_slice(proto.as_str().as_bytes());
    out.extend_from_slice(b"\",\"stream\":{\"key\":");
    push_json_str(&mut out, key);
    out.extend_from_slice(if live { b",\"live\":true}" } else { b",\"live\":false}" });
    let _ = write!(out, ",\"viewer\":{{\"ip\":\"{}\",\"region\":", viewer.ip);
    push_json_str(&mut out, viewer.region);
    out.extend_from_slice(b",\"region_source\":\"");
    out.extend_from_slice(viewer.source.as_str().as_bytes());
    out.extend_from_slice(b"\"},\"alternatives\":[");
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

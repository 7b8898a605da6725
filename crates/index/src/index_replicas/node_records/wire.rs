//! The wire format of node records: a node's small record (`Record`) and its stream list, encoded
//! as JSON with streams as arrays and codecs listed once per node.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::NodeSpec;
use crate::nodes::{Health, NodeReport, NodeStream};
use crate::srs::{Audio, Kbps, Video};

/// A node's record as stored in `<prefix>:nodes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub spec: NodeSpec,
    pub order: usize,
    pub registered: bool,
    pub health: String,
    pub fails: u32,
    pub error: Option<String>,
    pub ok_ms: Option<u64>,
    pub poll_us: Option<u64>,
    /// Hash of the stream list in `<prefix>:bodies` (hex); None when the node has no report.
    pub body: Option<String>,
}

pub(crate) fn health_from(s: &str) -> Health {
    match s {
        "up" => Health::Up,
        "degraded" => Health::Degraded,
        "down" => Health::Down,
        _ => Health::Unknown,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct WireVideo {
    c: String,
    p: Option<String>,
    l: Option<String>,
    w: u32,
    h: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct WireAudio {
    c: String,
    r: u32,
    n: u8,
    p: Option<String>,
}

/// One stream: key, active (0/1), clients, kbps in, kbps out, video index, audio index (-1: none).
type WireStream = (String, u8, u64, u64, u64, i32, i32);

/// A node's stream list as stored in `<prefix>:bodies`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Body {
    server: Option<String>,
    service: Option<String>,
    version: Option<String>,
    cpu: Option<f64>,
    mem: Option<u64>,
    up: Option<u64>,
    /// The protocols beyond SRS's the node serves (`llhls`, `whep`); absent from older records.
    #[serde(default)]
    x: Vec<String>,
    v: Vec<WireVideo>,
    a: Vec<WireAudio>,
    s: Vec<WireStream>,
}

/// The stream list of `snap` as stored.
pub fn encode_body(snap: &NodeReport) -> String {
    let mut videos: Vec<&Arc<Video>> = Vec::new();
    let mut audios: Vec<&Arc<Audio>> = Vec::new();
    let mut streams = Vec::with_capacity(snap.streams.len());
    for s in &snap.streams {
        let v = slot(&mut videos, &s.video);
        let a = slot(&mut audios, &s.audio);
        streams.push((&*s.key, u8::from(s.active), s.clients, s.kbps.recv_30s, s.kbps.send_30s, v, a));
    }
    #[derive(Serialize)]
    struct Out<'a> {
        server: &'a Option<String>,
        service: &'a Option<String>,
        version: &'a Option<String>,
        cpu: Option<f64>,
        mem: Option<u64>,
        up: Option<u64>,
        x: Vec<&'static str>,
        v: Vec<WireVideo>,
        a: Vec<WireAudio>,
        s: Vec<(&'a str, u8, u64, u64, u64, i32, i32)>,
    }
    let out = Out {
        server: &snap.server,
        service: &snap.service,
        version: &snap.version,
        cpu: snap.cpu_percent,
        mem: snap.mem_kbyte,
        up: snap.uptime_s,
        x: snap.extras.names(),
        v: videos
            .iter()
            .map(|v| WireVideo {
                c: v.codec.clone(),
                p: v.profile.clone(),
                l: v.level.clone(),
                w: v.width,
                h: v.height,
            })
            .collect(),
        a: audios
            .iter()
            .map(|a| WireAudio { c: a.codec.clone(), r: a.sample_rate, n: a.channels, p: a.profile.clone() })
            .collect(),
        s: streams,
    };
    serde_json::to_string(&out).unwrap_or_default()
}

/// The index of `v` in `list` (added when new), or -1 for none: codecs are listed once per node.
fn slot<'a, T: PartialEq>(list: &mut Vec<&'a Arc<T>>, v: &'a Option<Arc<T>>) -> i32 {
    let Some(v) = v else { return -1 };
    match list.iter().position(|known| Arc::ptr_eq(known, v) || ***known == **v) {
        Some(i) => i as i32,
        None => {
            list.push(v);
            list.len() as i32 - 1
        }
    }
}

/// A stored stream list back into a report.
pub fn decode_body(text: &str) -> Result<NodeReport, String> {
    let b: Body = serde_json::from_str(text).map_err(|e| format!("unreadable stream list: {e}"))?;
    let videos: Vec<Arc<Video>> =
        b.v.into_iter()
            .map(|v| Arc::new(Video { codec: v.c, profile: v.p, level: v.l, width: v.w, height: v.h }))
            .collect();
    let audios: Vec<Arc<Audio>> =
        b.a.into_iter()
            .map(|a| Arc::new(Audio { codec: a.c, sample_rate: a.r, channels: a.n, profile: a.p }))
            .collect();
    let streams =
        b.s.into_iter()
            .map(|(key, active, clients, recv, send, v, a)| NodeStream {
                key: key.into(),
                active: active != 0,
                clients,
                kbps: Kbps { recv_30s: recv, send_30s: send },
                video: usize::try_from(v).ok().and_then(|i| videos.get(i).cloned()),
                audio: usize::try_from(a).ok().and_then(|i| audios.get(i).cloned()),
            })
            .collect();
    Ok(NodeReport {
        server: b.server,
        service: b.service,
        version: b.version,
        cpu_percent: b.cpu,
        mem_kbyte: b.mem,
        uptime_s: b.up,
        extras: crate::nodes::Extras::from_names(b.x.iter().map(String::as_str)),
        streams,
    })
}

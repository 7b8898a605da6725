//! What the index reads from a node's SRS HTTP API v1 (SRS 5/6/7 and Ferrocast nodes alike).
//!
//! Every field is optional or defaulted, because SRS versions differ (`total` appears in newer
//! builds, `video`/`audio` are `null` before the first packet), but a field of the wrong type fails
//! the whole answer: a node that sends that is broken, and its poll fails with the reason.

use serde::Deserialize;

/// Fields every answer starts with.
#[derive(Debug, Default, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
}

/// `GET /api/v1/vhosts/`.
#[derive(Debug, Deserialize)]
pub struct VhostsAnswer {
    #[serde(flatten)]
    pub envelope: Envelope,
    #[serde(default)]
    pub vhosts: Vec<Vhost>,
}

#[derive(Debug, Deserialize)]
pub struct Vhost {
    pub id: String,
    pub name: String,
}

/// One page of `GET /api/v1/streams/?start=&count=`.
#[derive(Debug, Deserialize)]
pub struct StreamsAnswer {
    #[serde(flatten)]
    pub envelope: Envelope,
    #[serde(default)]
    pub streams: Vec<Stream>,
    /// Only in newer SRS builds; never relied on.
    #[serde(default)]
    pub total: Option<u64>,
}

/// A stream record. On SRS `vhost` is an id and `name` may carry `.flv`; `url` is the stable key.
#[derive(Debug, Default, Deserialize)]
pub struct Stream {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub vhost: String,
    #[serde(default)]
    pub app: String,
    #[serde(default)]
    pub url: Option<String>,
    /// All clients including the publisher.
    #[serde(default)]
    pub clients: u64,
    #[serde(default)]
    pub kbps: Kbps,
    #[serde(default)]
    pub publish: Publish,
    #[serde(default)]
    pub video: Option<Video>,
    #[serde(default)]
    pub audio: Option<Audio>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct Kbps {
    #[serde(default)]
    pub recv_30s: u64,
    #[serde(default)]
    pub send_30s: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct Publish {
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub cid: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, serde::Serialize)]
pub struct Video {
    #[serde(default)]
    pub codec: String,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, serde::Serialize)]
pub struct Audio {
    #[serde(default)]
    pub codec: String,
    #[serde(default)]
    pub sample_rate: u32,
    /// SRS calls it `channel`.
    #[serde(default, rename(deserialize = "channel"))]
    pub channels: u8,
    #[serde(default)]
    pub profile: Option<String>,
}

/// `GET /api/v1/summaries` — only what the directory shows.
#[derive(Debug, Default, Deserialize)]
pub struct SummariesAnswer {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub data: Option<SummariesData>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SummariesData {
    #[serde(default, rename = "self")]
    pub this: Option<SelfStats>,
    #[serde(default)]
    pub system: Option<SystemStats>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SelfStats {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub pid: Option<u64>,
    #[serde(default)]
    pub mem_kbyte: Option<u64>,
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    #[serde(default)]
    pub srs_uptime: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SystemStats {
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    #[serde(default)]
    pub load_1m: Option<f64>,
}

/// The `(app, stream)` of a record, from its `url` (`/app/stream`, or `vhost/app/stream` outside the
/// default vhost) and else from `app` + `name` without a player's extension. Also the vhost name
/// when the url carries one.
pub fn stream_path(s: &Stream) -> (Option<&str>, &str, &str) {
    if let Some(url) = s.url.as_deref() {
        let parts: Vec<&str> = url.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            [app, stream] if !app.is_empty() && !stream.is_empty() => return (None, app, strip_ext(stream)),
            [vhost, app, stream] if !stream.is_empty() => return (Some(vhost), app, strip_ext(stream)),
            _ => {}
        }
    }
    (None, &s.app, strip_ext(&s.name))
}

/// `cam1.flv` → `cam1`: the extensions players add that are not part of the stream's name.
pub fn strip_ext(name: &str) -> &str {
    for ext in [".flv", ".m3u8", ".ts", ".mp4", ".aac", ".mp3"] {
        if let Some(base) = name.strip_suffix(ext) {
            return base;
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        let path = format!("{}/../../../shared/srs-samples/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn real_srs_streams_parse_and_key_by_url() {
        let edge: StreamsAnswer = serde_json::from_slice(&sample("edge1-streams.json")).unwrap();
        let s = &edge.streams[0];
        assert_eq!(s.name, "cam1.flv");
        assert_eq!(stream_path(s), (None, "live", "cam1"));
        assert_eq!(s.vhost, "vid-s29f01a");
        assert!(s.publish.active);
        let origin: StreamsAnswer = serde_json::from_slice(&sample("origin-streams.json")).unwrap();
        let o = &origin.streams[0];
        assert_eq!((o.clients, o.video.as_ref().unwrap().width), (3, 640));
        assert_eq!(o.audio.as_ref().unwrap().channels, 2);
        assert_eq!(origin.envelope.service.as_deref(), Some("584128l7"));
        let vhosts: VhostsAnswer = serde_json::from_slice(&sample("origin-vhosts.json")).unwrap();
        assert_eq!(vhosts.vhosts[0].name, "__defaultVhost__");
        let sum: SummariesAnswer = serde_json::from_slice(&sample("origin-summaries.json")).unwrap();
        assert!(sum.data.unwrap().this.unwrap().pid.is_some());
    }

    #[test]
    fn leftover_records_without_media_parse() {
        let after: StreamsAnswer = serde_json::from_slice(&sample("origin-streams-after-unpublish.json")).unwrap();
        let s = &after.streams[0];
        assert!(!s.publish.active, "SRS keeps the record while players remain");
        assert!(s.video.is_none() && s.audio.is_none());
        assert_eq!(s.kbps.send_30s, 886);
    }

    #[test]
    fn a_non_vhost_url_and_odd_names() {
        let s = Stream { url: Some("news.example/live/cam2".into()), ..Default::default() };
        assert_eq!(stream_path(&s), (Some("news.example"), "live", "cam2"));
        let s = Stream { app: "live".into(), name: "cam3.m3u8".into(), ..Default::default() };
        assert_eq!(stream_path(&s), (None, "live", "cam3"));
    }

    #[test]
    fn wrong_types_fail() {
        assert!(serde_json::from_str::<StreamsAnswer>(r#"{"code":0,"streams":[{"clients":"many"}]}"#).is_err());
        assert!(serde_json::from_str::<StreamsAnswer>(r#"{"code":0,"streams":[{"name":"a""#).is_err());
    }
}

//! What the index reads from a node's SRS HTTP API v1 (SRS 5/6/7 and Ferrocast nodes alike).
//!
//! Every field is optional or defaulted, because SRS versions differ (`total` appears in newer
//! builds, `video`/`audio` are `null` before the first packet), but a field of the wrong type fails
//! the whole answer: a node that sends that is broken, and its poll fails with the reason.

use std::borrow::Cow;

use serde::Deserialize;

/// The redirects a poll follows: only SRS's own, from a list URL without its slash to the same URL
/// with it, on the same node. A node answering with any other redirect (to a metadata service,
/// to another host) fails its poll: the index is nobody's proxy.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(prev) = attempt.previous().last() else { return attempt.stop() };
        let next = attempt.url();
        let same_node = next.scheme() == prev.scheme()
            && next.host_str() == prev.host_str()
            && next.port_or_known_default() == prev.port_or_known_default();
        let slash = next.path().strip_suffix('/') == Some(prev.path());
        if attempt.previous().len() == 1 && same_node && slash {
            return attempt.follow();
        }
        let why = format!("the node redirected to {next}; only its own slash redirect is followed");
        attempt.error(why)
    })
}

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

/// One page of `GET /api/v1/streams/?start=&count=`. Strings borrow from the answer's bytes:
/// a poll of 100,000 records must not make a million small allocations.
#[derive(Debug, Default, Deserialize)]
pub struct StreamsAnswer<'a> {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default, borrow)]
    pub streams: Vec<Stream<'a>>,
    /// Only in newer SRS builds; never relied on.
    #[serde(default)]
    pub total: Option<u64>,
}

/// A stream record. On SRS `vhost` is an id and `name` may carry `.flv`; `url` is the stable key.
#[derive(Debug, Default, Deserialize)]
pub struct Stream<'a> {
    #[serde(default, borrow)]
    pub name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub vhost: Cow<'a, str>,
    #[serde(default, borrow)]
    pub app: Cow<'a, str>,
    /// Empty when absent. (Not an `Option`: serde borrows a `Cow` only when it is the field's type.)
    #[serde(default, borrow)]
    pub url: Cow<'a, str>,
    /// All clients including the publisher.
    #[serde(default)]
    pub clients: u64,
    #[serde(default)]
    pub kbps: Kbps,
    #[serde(default)]
    pub publish: Publish,
    #[serde(default, borrow)]
    pub video: Option<VideoRecord<'a>>,
    #[serde(default, borrow)]
    pub audio: Option<AudioRecord<'a>>,
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
}

/// `video` of a stream record, as read.
#[derive(Debug, Default, Deserialize)]
pub struct VideoRecord<'a> {
    #[serde(default, borrow)]
    pub codec: Cow<'a, str>,
    #[serde(default, borrow)]
    pub profile: Cow<'a, str>,
    #[serde(default, borrow)]
    pub level: Cow<'a, str>,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
}

/// `audio` of a stream record, as read.
#[derive(Debug, Default, Deserialize)]
pub struct AudioRecord<'a> {
    #[serde(default, borrow)]
    pub codec: Cow<'a, str>,
    #[serde(default)]
    pub sample_rate: u32,
    #[serde(default)]
    pub channel: u8,
    #[serde(default, borrow)]
    pub profile: Cow<'a, str>,
}

/// A stream's video as the directory keeps and shows it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Video {
    pub codec: String,
    pub profile: Option<String>,
    pub level: Option<String>,
    pub width: u32,
    pub height: u32,
}

/// A stream's audio as the directory keeps and shows it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Audio {
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u8,
    pub profile: Option<String>,
}

fn none_if_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

impl VideoRecord<'_> {
    pub fn matches(&self, v: &Video) -> bool {
        self.codec == v.codec
            && none_if_empty(&self.profile) == v.profile.as_deref()
            && none_if_empty(&self.level) == v.level.as_deref()
            && (self.width, self.height) == (v.width, v.height)
    }
    pub fn to_video(&self) -> Video {
        Video {
            codec: self.codec.to_string(),
            profile: none_if_empty(&self.profile).map(str::to_string),
            level: none_if_empty(&self.level).map(str::to_string),
            width: self.width,
            height: self.height,
        }
    }
}

impl AudioRecord<'_> {
    pub fn matches(&self, a: &Audio) -> bool {
        self.codec == a.codec
            && (self.sample_rate, self.channel) == (a.sample_rate, a.channels)
            && none_if_empty(&self.profile) == a.profile.as_deref()
    }
    pub fn to_audio(&self) -> Audio {
        Audio {
            codec: self.codec.to_string(),
            sample_rate: self.sample_rate,
            channels: self.channel,
            profile: none_if_empty(&self.profile).map(str::to_string),
        }
    }
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
    /// A Ferrocast node's extra: the play protocols it serves (`llhls`, `whep`...). SRS sends
    /// none; hostile lists are bounded by the answer size and only known names count.
    #[serde(default)]
    pub protocols: Option<Vec<String>>,
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
pub fn stream_path<'s>(s: &'s Stream<'_>) -> (Option<&'s str>, &'s str, &'s str) {
    if !s.url.is_empty() {
        let url = &*s.url;
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

    /// A capture's bytes, kept for the rest of the run (parsed answers borrow from them).
    fn sample(name: &str) -> &'static [u8] {
        let path = format!("{}/../../fixtures/srs/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")).leak()
    }

    #[test]
    fn real_srs_streams_parse_and_key_by_url() {
        let edge: StreamsAnswer = serde_json::from_slice(sample("edge1-streams.json")).unwrap();
        let s = &edge.streams[0];
        assert_eq!(s.name, "cam1.flv");
        assert_eq!(stream_path(s), (None, "live", "cam1"));
        assert_eq!(s.vhost, "vid-s29f01a");
        assert!(s.publish.active);
        let origin: StreamsAnswer = serde_json::from_slice(sample("origin-streams.json")).unwrap();
        let o = &origin.streams[0];
        assert_eq!((o.clients, o.video.as_ref().unwrap().width), (3, 640));
        assert_eq!(o.audio.as_ref().unwrap().channel, 2);
        assert_eq!(origin.service.as_deref(), Some("584128l7"));
        assert!(matches!(o.url, Cow::Borrowed(_)) && matches!(o.name, Cow::Borrowed(_)), "strings borrow");
        let vhosts: VhostsAnswer = serde_json::from_slice(sample("origin-vhosts.json")).unwrap();
        assert_eq!(vhosts.vhosts[0].name, "__defaultVhost__");
        let sum: SummariesAnswer = serde_json::from_slice(sample("origin-summaries.json")).unwrap();
        assert!(sum.data.unwrap().this.unwrap().pid.is_some());
    }

    #[test]
    fn leftover_records_without_media_parse() {
        let after: StreamsAnswer = serde_json::from_slice(sample("origin-streams-after-unpublish.json")).unwrap();
        let s = &after.streams[0];
        assert!(!s.publish.active, "SRS keeps the record while players remain");
        assert!(s.video.is_none() && s.audio.is_none());
        assert_eq!(s.kbps.send_30s, 886);
    }

    #[test]
    fn a_non_vhost_url_and_odd_names() {
        let s = Stream { url: "news.example/live/cam2".into(), ..Default::default() };
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

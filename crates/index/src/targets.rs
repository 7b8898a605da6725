//! What the index hands a viewer or publisher for each node: its base URL per protocol and its
//! `"node"`/`"region"` JSON fields, rendered and escaped once per directory build instead of
//! formatted again for every play request (the scheduler answers tens of thousands per second).

/// How the viewer plays (or the publisher pushes: always RTMP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Flv,
    Hls,
    /// Low-Latency HLS (fMP4 parts): `/{app}/{stream}/index.m3u8` on a Ferrocast node.
    LlHls,
    /// WebRTC (WHEP): the offer is POSTed to `/{app}/{stream}/whep` on a Ferrocast node.
    Whep,
    Rtmp,
}

impl Proto {
    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "flv" | "http-flv" => Some(Proto::Flv),
            "hls" | "m3u8" => Some(Proto::Hls),
            "llhls" | "ll-hls" => Some(Proto::LlHls),
            "whep" | "webrtc" => Some(Proto::Whep),
            "rtmp" => Some(Proto::Rtmp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Flv => "flv",
            Proto::Hls => "hls",
            Proto::LlHls => "llhls",
            Proto::Whep => "whep",
            Proto::Rtmp => "rtmp",
        }
    }

    /// What follows `/{app}/{stream}` in this protocol's URLs.
    pub fn extension(self) -> &'static str {
        match self {
            Proto::Flv => ".flv",
            Proto::Hls => ".m3u8",
            Proto::LlHls => "/index.m3u8",
            Proto::Whep => "/whep",
            Proto::Rtmp => "",
        }
    }
}

/// A base URL without its trailing slash, as is and as JSON string content.
#[derive(Debug)]
pub struct Base {
    pub raw: Box<str>,
    pub json: Box<str>,
}

impl Base {
    fn new(url: Option<&str>) -> Option<Base> {
        let raw = url?.trim_end_matches('/');
        let mut json = Vec::with_capacity(raw.len());
        push_json_content(&mut json, raw);
        Some(Base { raw: raw.into(), json: String::from_utf8(json).ok()?.into() })
    }
}

/// One node's pre-rendered parts of a play or publish answer.
#[derive(Debug)]
pub struct NodeTargets {
    http: Option<Base>,
    rtmp: Option<Base>,
    /// LL-HLS and WebRTC, which only nodes that say they serve them get.
    extras: crate::nodes::Extras,
    /// `"node":"e1","region":"eu"`.
    pub fields: Box<str>,
    /// What DNS answers give for the node.
    pub dns: Option<crate::dns::NodeAddress>,
    /// Its `origin` object in `/api/v1/clusters` answers, when it has an RTMP or API host.
    pub cluster: Option<ClusterOrigin>,
}

/// A node's `origin` object of SRS's `/api/v1/clusters` answer, rendered around the vhost (the one
/// part that comes from the request): `{"ip":..,"port":..,"vhost":` + vhost + `,"api":..,
/// "routers":[..],"http":..}`. Beyond SRS's fields, `http` is the node's HTTP base, for an
/// HTTP-FLV/HLS redirect (SRS reads only what it knows).
#[derive(Debug)]
pub struct ClusterOrigin {
    pub before_vhost: Box<str>,
    pub after_vhost: Box<str>,
}

impl ClusterOrigin {
    fn new(spec: &crate::config::NodeSpec) -> Option<ClusterOrigin> {
        let rtmp = spec.rtmp.as_deref().and_then(|u| reqwest::Url::parse(u).ok());
        let api = reqwest::Url::parse(&spec.api).ok();
        let host = rtmp.as_ref().or(api.as_ref())?.host_str()?.to_string();
        let port = rtmp.as_ref().and_then(|u| u.port()).unwrap_or(1935);
        let api = api.as_ref().and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
        let api = api.unwrap_or_default();
        let mut before = Vec::with_capacity(64);
        before.extend_from_slice(b"{\"ip\":");
        push_json_str(&mut before, &host);
        before.extend_from_slice(format!(",\"port\":{port},\"vhost\":").as_bytes());
        let mut after = Vec::with_capacity(96);
        after.extend_from_slice(b",\"api\":");
        push_json_str(&mut after, &api);
        after.extend_from_slice(b",\"routers\":[");
        push_json_str(&mut after, &api);
        after.push(b']');
        if let Some(http) = &spec.http {
            after.extend_from_slice(b",\"http\":");
            push_json_str(&mut after, http.trim_end_matches('/'));
        }
        after.push(b'}');
        Some(ClusterOrigin {
            before_vhost: String::from_utf8(before).ok()?.into(),
            after_vhost: String::from_utf8(after).ok()?.into(),
        })
    }
}

impl NodeTargets {
    /// `extras`: what the node's last report said it serves beyond SRS's protocols.
    pub fn new(spec: &crate::config::NodeSpec, region: &str, extras: crate::nodes::Extras) -> NodeTargets {
        let (name, http, rtmp) = (spec.name.as_str(), spec.http.as_deref(), spec.rtmp.as_deref());
        let mut fields = Vec::with_capacity(name.len() + region.len() + 22);
        fields.extend_from_slice(b"\"node\":");
        push_json_str(&mut fields, name);
        fields.extend_from_slice(b",\"region\":");
        push_json_str(&mut fields, region);
        NodeTargets {
            http: Base::new(http),
            rtmp: Base::new(rtmp),
            extras,
            fields: String::from_utf8(fields).unwrap_or_default().into(),
            dns: crate::dns::NodeAddress::of(spec),
            cluster: (spec.role == crate::config::Role::Origin).then(|| ClusterOrigin::new(spec)).flatten(),
        }
    }

    /// The base URL viewers of `proto` use on this node, if it serves that protocol.
    pub fn base(&self, proto: Proto) -> Option<&Base> {
        match proto {
            Proto::Flv | Proto::Hls => self.http.as_ref(),
            Proto::LlHls => self.http.as_ref().filter(|_| self.extras.llhls),
            Proto::Whep => self.http.as_ref().filter(|_| self.extras.whep),
            Proto::Rtmp => self.rtmp.as_ref(),
        }
    }
}

/// Appends `s` as a quoted JSON string.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    push_json_content(out, s);
    out.push(b'"');
}

/// Appends `s` escaped for the inside of a JSON string.
pub fn push_json_content(out: &mut Vec<u8>, s: &str) {
    let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    if !s.bytes().any(needs) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_round_trip_through_serde() {
        for s in ["plain", "a\"b\\c", "tab\tnew\nline\r", "\u{1}\u{1f}", "é/ü?x=1&y=2", ""] {
            let mut out = Vec::new();
            push_json_str(&mut out, s);
            assert_eq!(serde_json::from_slice::<String>(&out).unwrap(), s, "{}", String::from_utf8_lossy(&out));
        }
    }

    #[test]
    fn targets_keep_each_protocol_base_without_trailing_slash() {
        let spec: crate::config::NodeSpec = "name=e1,api=http://10.0.0.1:1985,http=http://h:8080/".parse().unwrap();
        let spec = crate::config::NodeSpec { name: "e\"1".into(), ..spec };
        let both = crate::nodes::Extras { llhls: true, whep: true };
        let t = NodeTargets::new(&spec, "eu", both);
        assert_eq!(&*t.base(Proto::Flv).unwrap().raw, "http://h:8080");
        assert_eq!(&*t.base(Proto::Hls).unwrap().raw, "http://h:8080");
        assert_eq!(&*t.base(Proto::LlHls).unwrap().raw, "http://h:8080");
        assert_eq!(&*t.base(Proto::Whep).unwrap().raw, "http://h:8080");
        // A node that does not say it serves LL-HLS or WebRTC (SRS) gets no such viewers.
        let srs = NodeTargets::new(&spec, "eu", crate::nodes::Extras::default());
        assert!(srs.base(Proto::LlHls).is_none() && srs.base(Proto::Whep).is_none());
        assert!(srs.base(Proto::Hls).is_some());
        let from = |names: &[&str]| crate::nodes::Extras::from_names(names.iter().copied());
        assert_eq!(from(&["rtmp", "whep", "bogus", ""]), crate::nodes::Extras { llhls: false, whep: true });
        assert_eq!((Proto::parse("llhls"), Proto::LlHls.extension()), (Some(Proto::LlHls), "/index.m3u8"));
        assert_eq!((Proto::parse("whep"), Proto::Whep.extension()), (Some(Proto::Whep), "/whep"));
        assert!(t.base(Proto::Rtmp).is_none());
        let fields: serde_json::Value = serde_json::from_str(&format!("{{{}}}", t.fields)).unwrap();
        assert_eq!(fields, serde_json::json!({"node": "e\"1", "region": "eu"}));
        assert_eq!(t.dns, crate::dns::NodeAddress::parse("h").ok(), "DNS answers name the HTTP host");
    }
}

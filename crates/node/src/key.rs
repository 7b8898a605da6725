//! The identity of a stream: vhost name + app + stream name, never SRS's generated ids.
//!
//! Stream names arrive with decorations that are not part of the name: a query string
//! (`cam1?token=x`) and, from HTTP players and some RTMP players, an extension (`cam1.flv`).
//! `StreamKey::new` strips both, so every protocol meets on one key.

use std::fmt;

/// The vhost every client lands in unless it names another.
pub const DEFAULT_VHOST: &str = "__defaultVhost__";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub vhost: String,
    pub app: String,
    pub stream: String,
}

impl StreamKey {
    pub fn new(vhost: &str, app: &str, stream: &str) -> StreamKey {
        let vhost = if vhost.is_empty() { DEFAULT_VHOST } else { vhost };
        StreamKey {
            vhost: vhost.to_string(),
            app: app.trim_matches('/').to_string(),
            stream: strip_stream_name(stream).to_string(),
        }
    }

    /// SRS's `url`: `/app/stream` in the default vhost, `vhost/app/stream` otherwise.
    pub fn url(&self) -> String {
        if self.vhost == DEFAULT_VHOST {
            format!("/{}/{}", self.app, self.stream)
        } else {
            format!("{}/{}/{}", self.vhost, self.app, self.stream)
        }
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.url())
    }
}

/// Removes a query string and a media extension from a stream name.
pub fn strip_stream_name(name: &str) -> &str {
    let name = name.split('?').next().unwrap_or("");
    for ext in [".flv", ".m3u8", ".ts", ".mp4"] {
        if let Some(base) = name.strip_suffix(ext) {
            return base;
        }
    }
    name
}

/// Splits `stream?query` into the name and the query (with its leading `?`, or "").
pub fn split_query(name: &str) -> (&str, &str) {
    match name.find('?') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    }
}

/// Reads `key` from a query string (`?a=1&vhost=x`, with or without the `?`).
pub fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .trim_start_matches('?')
        .split(['&', '?'])
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// The vhost a client names: `?vhost=` in its query or tcUrl, else the tcUrl host when it is not
/// an address or localhost... SRS resolves unknown hosts to the default vhost, and so do we, since
/// we configure no named vhosts: only an explicit `vhost=` parameter selects another.
pub fn vhost_from(param: &str, tc_url: &str) -> String {
    query_value(param, "vhost")
        .or_else(|| query_value(tc_url.split_once('?').map(|(_, q)| q).unwrap_or(""), "vhost"))
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_VHOST)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorations_are_stripped() {
        let k = StreamKey::new("", "live", "cam1.flv?token=abc");
        assert_eq!(k, StreamKey::new(DEFAULT_VHOST, "live", "cam1"));
        assert_eq!(k.url(), "/live/cam1");
        assert_eq!(StreamKey::new("v1", "live", "cam1").url(), "v1/live/cam1");
    }

    #[test]
    fn query_helpers() {
        assert_eq!(split_query("cam?token=1"), ("cam", "?token=1"));
        assert_eq!(split_query("cam"), ("cam", ""));
        assert_eq!(query_value("?a=1&token=xyz", "token"), Some("xyz"));
        assert_eq!(query_value("token=xyz", "token"), Some("xyz"));
        assert_eq!(vhost_from("?vhost=v2", "rtmp://h/live"), "v2");
        assert_eq!(vhost_from("", "rtmp://h/live?vhost=v3"), "v3");
        assert_eq!(vhost_from("", "rtmp://h/live"), DEFAULT_VHOST);
    }
}

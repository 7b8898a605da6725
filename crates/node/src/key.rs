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

/// Reads `key` from a query string (`?a=1&vhost=x`, with or without the `?`).
pub fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .trim_start_matches('?')
        .split(['&', '?'])
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// The vhost a client names with `vhost=` in its query. We configure no named vhosts, so an
/// unknown host in the tcUrl means the default vhost, as on SRS.
pub fn vhost_from(param: &str) -> String {
    query_value(param, "vhost").filter(|v| !v.is_empty()).unwrap_or(DEFAULT_VHOST).to_string()
}

/// One query from the stream name's and connect's (app or tcUrl) queries, as SRS normalizes an
/// RTMP client's `param`: `?token=x` whether the client put it on the stream or on the app.
/// The stream's keys come first, so they win in `query_value`.
pub fn merge_queries(stream: &str, connect: &str) -> String {
    let parts: Vec<&str> =
        [stream, connect].iter().map(|q| q.trim_start_matches('?')).filter(|q| !q.is_empty()).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
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
        assert_eq!(query_value("?a=1&token=xyz", "token"), Some("xyz"));
        assert_eq!(query_value("token=xyz", "token"), Some("xyz"));
        assert_eq!(vhost_from("?vhost=v2&token=1"), "v2");
        assert_eq!(vhost_from(""), DEFAULT_VHOST);
        assert_eq!(merge_queries("?token=a", "?vhost=v3"), "?token=a&vhost=v3");
        assert_eq!(merge_queries("", "?token=b"), "?token=b");
        assert_eq!(merge_queries("", ""), "");
        assert_eq!(vhost_from(&merge_queries("?vhost=s", "?vhost=c")), "s", "the stream's query wins");
    }
}

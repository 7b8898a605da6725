//! The identity of a stream: vhost name + app + stream name, never SRS's generated ids.
//!
//! Stream names arrive with decorations that are not part of the name: a query string
//! (`cam1?token=x`) and, from HTTP players and some RTMP players, an extension (`cam1.flv`).
//! `StreamKey::new` strips both, so every protocol meets on one key.
//!
//! Names come from peers, so every front end (RTMP, HTTP-FLV, HLS) builds its key with
//! [`StreamKey::parse`], which holds vhost, app and stream to one grammar ([`check_name`]): a name
//! that could mean one thing to the check and another to the pull (`live?vhost=x` as an app, a
//! newline in a playlist) is refused before anything uses it.

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

    /// The key of a peer's names, or why they are refused: the extension is stripped from the
    /// stream name (a query must already be split off), then vhost, app and stream must each pass
    /// [`check_name`].
    pub fn parse(vhost: &str, app: &str, stream: &str) -> Result<StreamKey, NameError> {
        let app = app.trim_matches('/');
        let stream = strip_extension(stream);
        check_name("app", app)?;
        check_name("stream", stream)?;
        if !vhost.is_empty() {
            check_name("vhost", vhost)?;
        }
        Ok(StreamKey::new(vhost, app, stream))
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

/// The extensions players add to a stream name that are not part of it: one list for every
/// protocol (the index strips the same).
pub const MEDIA_EXTENSIONS: [&str; 6] = [".flv", ".m3u8", ".ts", ".mp4", ".aac", ".mp3"];

/// The longest vhost, app or stream name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// A vhost, app or stream name that breaks the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} name {shown:?} is refused: {why} (names are 1 to 128 bytes without '/', '?', '#', '\\', whitespace or control characters)"
)]
pub struct NameError {
    pub what: &'static str,
    /// The name, cut to 64 characters for the log line.
    pub shown: String,
    pub why: &'static str,
}

/// The one grammar of vhost, app and stream names, on every protocol: 1 to [`MAX_NAME_LEN`]
/// bytes, no `/` (a path separator, which would shift app and stream), no `?` or `#` (a query
/// or fragment: checked as one name, used as another), no `\`, no whitespace or control
/// characters (log and playlist injection), and not `.` or `..`.
pub fn check_name(what: &'static str, name: &str) -> Result<(), NameError> {
    let refuse = |why| Err(NameError { what, shown: name.chars().take(64).collect(), why });
    if name.is_empty() {
        return refuse("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return refuse("too long");
    }
    if name == "." || name == ".." {
        return refuse("a path step");
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | '?' | '#' | '\\') || c.is_whitespace() || c.is_control()) {
        return refuse(if c.is_control() || c.is_whitespace() {
            "a control or space character"
        } else {
            "a reserved character"
        });
    }
    Ok(())
}

/// Removes a media extension ([`MEDIA_EXTENSIONS`]) from a stream name.
pub fn strip_extension(name: &str) -> &str {
    MEDIA_EXTENSIONS.iter().find_map(|ext| name.strip_suffix(ext)).unwrap_or(name)
}

/// Removes a query string and a media extension from a stream name.
pub fn strip_stream_name(name: &str) -> &str {
    strip_extension(name.split('?').next().unwrap_or(""))
}

/// `name` as one URI path segment: every byte outside RFC 3986's unreserved set percent-encoded,
/// so a name can never add a line to a playlist or a component to a URL.
pub fn escape_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

/// A query for a log line: its keys, with every value but the vhost's hidden (`?token=…&vhost=v2`),
/// since a value may be a secret (a publish or play token).
pub fn query_keys(query: &str) -> String {
    let keys: Vec<String> = query
        .trim_start_matches('?')
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some(("vhost", v)) => format!("vhost={v}"),
            Some((k, _)) => format!("{k}=…"),
            None => kv.to_string(),
        })
        .collect();
    if keys.is_empty() { String::new() } else { format!("?{}", keys.join("&")) }
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
    fn one_grammar_for_names() {
        assert_eq!(StreamKey::parse("", "live", "cam1.flv").unwrap(), StreamKey::new("", "live", "cam1"));
        assert_eq!(StreamKey::parse("v2", "/live/", "cam1.mp3").unwrap(), StreamKey::new("v2", "live", "cam1"));
        for (vhost, app, stream) in [
            ("", "live?vhost=__defaultVhost__", "cam"),
            ("", "live", "cam?x"),
            ("", "live", "a\nb"),
            ("", "live", "a b"),
            ("", "live#x", "cam"),
            ("", "li/ve", "cam"),
            ("", "live", ".."),
            ("", "live", ""),
            ("v\r", "live", "cam"),
        ] {
            assert!(StreamKey::parse(vhost, app, stream).is_err(), "{vhost:?} {app:?} {stream:?}");
        }
        assert!(StreamKey::parse("", "live", &"x".repeat(129)).is_err());
        assert!(StreamKey::parse("", "live", &"x".repeat(128)).is_ok());
        assert_eq!(strip_extension("a.aac"), "a");
        assert_eq!(escape_segment("a b\n-c.d"), "a%20b%0A-c.d");
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
        assert_eq!(query_keys("?token=s3cret&vhost=v2&flag"), "?token=…&vhost=v2&flag", "no secret in a log line");
    }
}

//! Client settings and `rtmp://` URL parsing.

use crate::error::RtmpError;

/// Whether the client plays (pulls) or publishes (pushes) its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMode {
    /// createStream, play.
    Play,
    /// releaseStream, FCPublish, createStream, publish.
    Publish,
}

/// Client session settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Application ("live"), possibly with a query of its own ("live?vhost=x").
    pub app: String,
    /// tcUrl sent in connect ("rtmp://host:1935/live").
    pub tc_url: String,
    /// stream name possibly with query, sent as-is in play/publish
    pub stream: String,
    /// Play or publish.
    pub mode: ClientMode,
    /// Chunk size we announce after connect and send media with (60000).
    pub out_chunk_size: u32,
    /// Largest message accepted from the server.
    pub max_message_size: usize,
    /// Most distinct chunk stream ids the server may use.
    pub max_chunk_streams: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            app: String::new(),
            tc_url: String::new(),
            stream: String::new(),
            mode: ClientMode::Play,
            out_chunk_size: crate::DEFAULT_OUT_CHUNK_SIZE,
            max_message_size: crate::DEFAULT_MAX_MESSAGE_SIZE,
            max_chunk_streams: crate::DEFAULT_MAX_CHUNK_STREAMS,
        }
    }
}

/// Default RTMP port.
pub const DEFAULT_PORT: u16 = 1935;

impl ClientConfig {
    /// parse "rtmp://host[:port]/app[/...]/stream[?query]" → (host:port for connecting,
    /// config). app is the path up to the last '/', query stays on the stream name
    /// (SRS/FFmpeg convention). A query inside the app ("rtmp://h/live?vhost=v/cam") stays
    /// on the app. The port defaults to 1935; IPv6 hosts are written in brackets.
    pub fn from_url(url: &str, mode: ClientMode) -> Result<(String, ClientConfig), RtmpError> {
        let bad = |reason| RtmpError::InvalidUrl { url: url.to_owned(), reason };
        let (scheme, rest) = url.split_once("://").ok_or(bad("missing rtmp:// scheme"))?;
        if !scheme.eq_ignore_ascii_case("rtmp") {
            return Err(bad("only rtmp:// is supported"));
        }
        let (authority, path) = rest.split_once('/').ok_or(bad("missing /app/stream path"))?;
        let addr = host_port(authority).ok_or(bad("invalid host or port"))?;

        // The stream is the last segment before the stream's own query; if the first '?'
        // comes before any '/', that query belongs to the app.
        let first_q = path.find('?').unwrap_or(path.len());
        let before_q = path.get(..first_q).unwrap_or_default();
        let split = match before_q.rfind('/') {
            Some(i) => i,
            None => path.rfind('/').ok_or(bad("missing stream name"))?,
        };
        let app = path.get(..split).unwrap_or_default();
        let stream = path.get(split.saturating_add(1)..).unwrap_or_default();
        if app.is_empty() {
            return Err(bad("empty app"));
        }
        if stream.is_empty() || stream.starts_with('?') {
            return Err(bad("empty stream name"));
        }
        let config = ClientConfig {
            app: app.to_owned(),
            tc_url: format!("{scheme}://{authority}/{app}"),
            stream: stream.to_owned(),
            mode,
            ..ClientConfig::default()
        };
        Ok((addr, config))
    }
}

/// "host", "host:port", "[v6]" or "[v6]:port" → "host:port".
fn host_port(authority: &str) -> Option<String> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inner, after) = v6.split_once(']')?;
        if inner.is_empty() {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{inner}]"), port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0)?,
        None => DEFAULT_PORT,
    };
    Some(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> (String, String, String, String) {
        let (addr, c) = ClientConfig::from_url(url, ClientMode::Play).unwrap();
        (addr, c.app, c.stream, c.tc_url)
    }

    #[test]
    fn typical_urls() {
        assert_eq!(
            parse("rtmp://127.0.0.1:19350/live/cam?token=abc"),
            ("127.0.0.1:19350".into(), "live".into(), "cam?token=abc".into(), "rtmp://127.0.0.1:19350/live".into())
        );
        assert_eq!(
            parse("rtmp://origin/live/sub/cam"),
            ("origin:1935".into(), "live/sub".into(), "cam".into(), "rtmp://origin/live/sub".into())
        );
        assert_eq!(parse("RTMP://[::1]:2000/a/s").0, "[::1]:2000");
        assert_eq!(parse("rtmp://[::1]/a/s").0, "[::1]:1935");
    }

    #[test]
    fn queries_with_slashes() {
        let (_, app, stream, _) = parse("rtmp://h/live/cam?token=a/b");
        assert_eq!((app.as_str(), stream.as_str()), ("live", "cam?token=a/b"));
        let (_, app, stream, tc) = parse("rtmp://h/live?vhost=v/cam");
        assert_eq!((app.as_str(), stream.as_str()), ("live?vhost=v", "cam"));
        assert_eq!(tc, "rtmp://h/live?vhost=v");
    }

    #[test]
    fn bad_urls() {
        for url in [
            "http://h/live/s",
            "rtmp:/h/live/s",
            "rtmp://h",
            "rtmp://h/live",
            "rtmp://h/live/",
            "rtmp://h//s",
            "rtmp://:1935/live/s",
            "rtmp://h:0/live/s",
            "rtmp://h:99999/live/s",
            "rtmp://h:x/live/s",
            "rtmp://[::1/live/s",
            "rtmp://u@h/live/s",
            "rtmp://h/live/?q",
        ] {
            assert!(ClientConfig::from_url(url, ClientMode::Publish).is_err(), "{url}");
        }
    }
}

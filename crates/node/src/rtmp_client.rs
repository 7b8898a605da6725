//! An outgoing RTMP connection: tokio glue around `ferrocast_rtmp::ClientSession`.
//!
//! It exists because three parts of the node speak RTMP as a *client*, and they share one
//! connection type: the edge pulls a stream from an origin (`edge::relay`) and pushes its own
//! publisher up to one (`edge::publish_up`), and an origin pushes a stream out to its forward
//! destinations (`crate::origin_forward`); `ferrocast up`'s demo publisher uses it too.

use std::time::Duration;

use bytes::BytesMut;
use ferrocast_rtmp::{ClientConfig, ClientEvent, ClientMode, ClientSession, MessageKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::hub::{FeedEnd, FrameFeed, rtmp_kind};
use crate::key::{DEFAULT_VHOST, StreamKey};

#[derive(Debug, thiserror::Error)]
/// Why an outgoing RTMP connection failed.
pub enum RtmpClientError {
    #[error("bad RTMP url {0}: {1}")]
    Url(String, ferrocast_rtmp::RtmpError),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("i/o with {0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0} closed the connection")]
    Closed(String),
    #[error("protocol error from {0}: {1}")]
    Protocol(String, ferrocast_rtmp::RtmpError),
    #[error("no answer from {0} within {1:?}")]
    Timeout(String, Duration),
    #[error("{0} did not take the stream fast enough; starting again from a keyframe")]
    TooSlow(String),
    #[error("{0} refused: {1}")]
    Refused(String, String),
    /// SRS's RTMP 302 (origin cluster): the stream is at this RTMP URL.
    #[error("{0} redirected to {1}")]
    Redirected(String, String),
}

/// One connected, started RTMP client session (playing or publishing).
pub struct RtmpClientConn {
    pub addr: String,
    socket: TcpStream,
    session: ClientSession,
    buf: BytesMut,
    /// Events that arrived in the same read as the play/publish start: media an origin sends
    /// right behind `NetStream.Play.Start` (metadata, sequence headers, GOP) must not be lost.
    pending: Vec<ClientEvent>,
}

impl RtmpClientConn {
    /// `open`, following RTMP 302 redirects (SRS's origin cluster) up to `MAX_REDIRECTS` hops.
    pub async fn open_following(
        url: &str,
        mode: ClientMode,
        timeout: Duration,
    ) -> Result<RtmpClientConn, RtmpClientError> {
        const MAX_REDIRECTS: usize = 3;
        let mut url = url.to_string();
        for _ in 0..MAX_REDIRECTS {
            match RtmpClientConn::open(&url, mode, timeout).await {
                Err(RtmpClientError::Redirected(from, to)) => {
                    tracing::info!(%from, %to, "following an RTMP 302");
                    url = to;
                }
                other => return other,
            }
        }
        RtmpClientConn::open(&url, mode, timeout).await
    }

    /// Connects to `url` (`rtmp://host:port/app/stream?param`) and completes the handshake and
    /// `play`/`publish`, within `timeout`.
    pub async fn open(url: &str, mode: ClientMode, timeout: Duration) -> Result<RtmpClientConn, RtmpClientError> {
        let (addr, config) = ClientConfig::from_url(url, mode).map_err(|e| RtmpClientError::Url(url.to_string(), e))?;
        let connect = TcpStream::connect(&addr);
        let socket = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(RtmpClientError::Connect(addr, e)),
            Err(_) => return Err(RtmpClientError::Timeout(addr, timeout)),
        };
        let _ = socket.set_nodelay(true);
        let mut up = RtmpClientConn {
            addr,
            socket,
            session: ClientSession::new(config),
            buf: BytesMut::with_capacity(64 * 1024),
            pending: Vec::new(),
        };
        let started = tokio::time::timeout(timeout, up.until_started(mode)).await;
        match started {
            Ok(r) => r.map(|()| up),
            Err(_) => Err(RtmpClientError::Timeout(up.addr.clone(), timeout)),
        }
    }

    async fn until_started(&mut self, mode: ClientMode) -> Result<(), RtmpClientError> {
        loop {
            let mut events = self.recv().await?.into_iter();
            while let Some(event) = events.next() {
                match event {
                    ClientEvent::PlayStarted if mode == ClientMode::Play => {
                        self.pending = events.collect();
                        return Ok(());
                    }
                    ClientEvent::PublishStarted if mode == ClientMode::Publish => {
                        self.pending = events.collect();
                        return Ok(());
                    }
                    ClientEvent::Redirect { url } => return Err(RtmpClientError::Redirected(self.addr.clone(), url)),
                    ClientEvent::Status { level, code, description } if level == "error" => {
                        return Err(RtmpClientError::Refused(self.addr.clone(), format!("{code} {description}")));
                    }
                    _ => {}
                }
            }
        }
    }

    /// Writes pending output, then waits for the next events from the peer.
    pub async fn recv(&mut self) -> Result<Vec<ClientEvent>, RtmpClientError> {
        self.flush().await?;
        self.read().await
    }

    /// Waits for the next events from the peer without writing anything, so it can be dropped
    /// at any await (in a `select!`) without cutting a message in half. Replies the session
    /// queued (acks, pongs) go out with the next `flush`.
    pub async fn read(&mut self) -> Result<Vec<ClientEvent>, RtmpClientError> {
        if !self.pending.is_empty() {
            self.buf.clear();
            return Ok(std::mem::take(&mut self.pending));
        }
        self.buf.clear();
        let n = self.socket.read_buf(&mut self.buf).await.map_err(|e| RtmpClientError::Io(self.addr.clone(), e))?;
        if n == 0 {
            return Err(RtmpClientError::Closed(self.addr.clone()));
        }
        self.session.feed(&self.buf[..n]).map_err(|e| RtmpClientError::Protocol(self.addr.clone(), e))
    }

    /// Bytes received by the last `recv`.
    pub fn last_read(&self) -> usize {
        self.buf.len()
    }

    pub fn send_media(&mut self, kind: MessageKind, timestamp: u32, payload: &[u8]) {
        self.session.send_media(kind, timestamp, payload);
    }

    /// Ends a publish politely (FCUnpublish, deleteStream), best effort.
    pub async fn close(&mut self) {
        self.session.close();
        let _ = self.flush().await;
    }

    /// Publishes every packet of `feed` (a source's snapshot, then its live frames) until `stop`
    /// (Ok), the feed ends (Ok) or the peer fails (Err). Reads from the peer too, so its acks and
    /// pings are answered. A peer that falls behind the source's fan-out queue, or takes no bytes
    /// for `stall`, is an error (`TooSlow`): the caller starts again from a fresh snapshot, and
    /// the publisher never waits for it. `io(sent, received)` counts the bytes.
    pub async fn push_feed(
        &mut self,
        mut feed: FrameFeed,
        stop: &CancellationToken,
        stall: Duration,
        mut io: impl FnMut(u64, u64),
    ) -> Result<(), RtmpClientError> {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                events = self.read() => {
                    events?;
                    io(0, self.last_read() as u64);
                }
                batch = feed.next_batch() => match batch {
                    Ok(packets) => {
                        for p in &packets {
                            self.send_media(rtmp_kind(p.frame.kind), p.frame.timestamp, &p.frame.payload);
                        }
                    }
                    Err(FeedEnd::TooSlow) => return Err(RtmpClientError::TooSlow(self.addr.clone())),
                    Err(_) => return Ok(()),
                },
            }
            let flushed = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = tokio::time::timeout(stall, self.flush()) => r,
            };
            match flushed {
                Ok(sent) => io(sent? as u64, 0),
                Err(_) => return Err(RtmpClientError::TooSlow(self.addr.clone())),
            }
        }
    }

    pub async fn flush(&mut self) -> Result<usize, RtmpClientError> {
        let out = self.session.take_output();
        if !out.is_empty() {
            self.socket.write_all(&out).await.map_err(|e| RtmpClientError::Io(self.addr.clone(), e))?;
        }
        Ok(out.len())
    }
}

/// `rtmp://origin/app/stream?param`, carrying the player's query (its token) like SRS's edge.
pub fn rtmp_url(origin: &str, key: &StreamKey, param: &str) -> String {
    let mut param = param.to_string();
    if key.vhost != DEFAULT_VHOST && !param.contains("vhost=") {
        param = if param.is_empty() { format!("?vhost={}", key.vhost) } else { format!("{param}&vhost={}", key.vhost) };
    }
    format!("rtmp://{origin}/{}/{}{param}", key.app, key.stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_url_carries_the_token() {
        let k = StreamKey::new("", "live", "cam1");
        assert_eq!(rtmp_url("o1:1935", &k, "?token=a"), "rtmp://o1:1935/live/cam1?token=a");
        let k = StreamKey::new("v2", "live", "cam1");
        assert_eq!(rtmp_url("o1:1935", &k, ""), "rtmp://o1:1935/live/cam1?vhost=v2");
    }
}

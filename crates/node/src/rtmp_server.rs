//! The RTMP front end: tokio glue around `ferrocast_rtmp::ServerSession`.
//!
//! It exists because RTMP is the node's one way in for publishers and one of its ways in for
//! viewers. One task per connection owns the socket and the session. A publisher's media goes
//! into its source; a player, admitted through `crate::admission`, has a task that alternates
//! between reading the socket (acks, pings, closeStream) and writing batches from its `Viewer`'s
//! feed, using the chunk bytes each frame carries pre-encoded.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ferrocast_media::Frame;
use ferrocast_rtmp::{ServerConfig, ServerEvent, ServerSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::admission::{self, Delivery, Viewer, ViewerRequest};
use crate::context::NodeContext;
use crate::hooks::HookAction;
use crate::hub::{FeedEnd, Publisher, frame_kind};
use crate::key::{NameError, StreamKey, merge_queries, query_keys, vhost_from};
use crate::net::write_all_vectored;
use crate::stats::delivery::WriteProto;
use crate::stats::{ClientGuard, ClientInfo, ClientKind};

/// Why a connection ended, for its log line.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("protocol error: {0}")]
    Protocol(#[from] ferrocast_rtmp::RtmpError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("idle for {0:?}")]
    Idle(std::time::Duration),
    #[error("did not publish or play within {0:?}")]
    SetupTooSlow(std::time::Duration),
    #[error("peer took no bytes for {0:?}")]
    WriteStalled(std::time::Duration),
    #[error("{0}")]
    Refused(String),
}

/// Accepts RTMP connections until shutdown.
pub async fn serve(listener: TcpListener, ctx: Arc<NodeContext>, tracker: TaskTracker) {
    let limiter = ctx.conn_limiter("rtmp");
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((socket, peer)) => {
                let Some(permit) = limiter.try_acquire(peer.ip()) else { continue };
                let ctx = ctx.clone();
                tracker.spawn(async move {
                    let _permit = permit;
                    let _ = socket.set_nodelay(true);
                    match Connection::new(socket, peer, ctx).run().await {
                        Ok(()) => debug!(%peer, "rtmp connection closed"),
                        Err(e) => info!(%peer, "rtmp connection ended: {e}"),
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!("rtmp accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// What the client said in `connect`.
#[derive(Default)]
struct Connect {
    app: String,
    tc_url: String,
    page_url: String,
    swf_url: String,
    param: String,
}

struct Connection {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    peer: SocketAddr,
    ctx: Arc<NodeContext>,
    session: ServerSession,
    buf: BytesMut,
    connect: Connect,
    /// Set when a command was refused: the reply is flushed, then the connection closes.
    refused: Option<String>,
}

/// Why a publish or play was turned down, which decides the RTMP status it gets.
#[derive(Clone, Copy)]
enum Refusal {
    /// The stream already has a publisher.
    Publish,
    PublishHook,
    PlayHook,
}

impl Refusal {
    fn name(self) -> &'static str {
        match self {
            Refusal::Publish => "publish",
            Refusal::PublishHook => "publish (hook)",
            Refusal::PlayHook => "play (hook)",
        }
    }
}

/// What the connection turned into after `publish` or `play`.
enum Mode {
    Publish { publisher: Publisher, guard: ClientGuard, param: String },
    Play { viewer: Box<Viewer>, stream_id: u32 },
}

impl Connection {
    fn new(socket: TcpStream, peer: SocketAddr, ctx: Arc<NodeContext>) -> Connection {
        let config = ServerConfig {
            out_chunk_size: ctx.config.media.chunk_size,
            max_message_size: ctx.config.media.max_message_size,
            ..ServerConfig::default()
        };
        let (reader, writer) = socket.into_split();
        Connection {
            reader,
            writer,
            peer,
            ctx,
            session: ServerSession::new(config),
            buf: BytesMut::with_capacity(16 * 1024),
            connect: Connect::default(),
            refused: None,
        }
    }

    async fn run(mut self) -> Result<(), ConnError> {
        // Phase 1: handshake and commands until publish or play, within one deadline for the
        // whole setup (a peer that trickles a byte at a time does not get to keep the task).
        let timeout = self.ctx.handshake_timeout();
        let deadline = tokio::time::Instant::now() + timeout;
        // Events that came in the same read as publish/play belong to the phase that follows.
        let mut leftover = Vec::new();
        let mode = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let events = match self.read_events(left).await {
                Err(ConnError::Idle(_)) => return Err(ConnError::SetupTooSlow(timeout)),
                other => other?,
            };
            self.flush_output().await?;
            let mut mode = None;
            for event in events {
                if mode.is_some() {
                    leftover.push(event);
                } else {
                    mode = self.on_setup_event(event).await?;
                }
            }
            self.flush_output().await?;
            if let Some(reason) = self.refused.take() {
                return Err(ConnError::Refused(reason));
            }
            if let Some(mode) = mode {
                break mode;
            }
        };
        let ctx = self.ctx.clone();
        match mode {
            Mode::Publish { publisher, guard, param } => {
                // The stream also goes to an origin (on an edge) or to the forward destinations
                // (on an origin), for as long as it is published.
                let forward = if ctx.edge.is_some() {
                    let forward = CancellationToken::new();
                    let source = publisher.source().clone();
                    tokio::spawn(crate::edge::publish_up(ctx.clone(), source, param.clone(), forward.clone()));
                    forward
                } else {
                    crate::origin_forward::start(&ctx, publisher.source(), &guard, &param)
                };
                let r = self.run_publish(publisher, &guard, leftover).await;
                forward.cancel();
                let hc = admission::hook_context(&guard, &param);
                ctx.hooks.notify(HookAction::Unpublish, hc.clone());
                ctx.hooks.notify(HookAction::Close, hc);
                r
            }
            Mode::Play { mut viewer, stream_id } => {
                let closed = leftover.iter().any(|e| matches!(e, ServerEvent::CloseStream { .. }));
                let r = if closed { Ok(()) } else { self.run_play(&mut viewer, stream_id).await };
                let hc = viewer.hook_context();
                drop(viewer); // ends the play: on_stop
                ctx.hooks.notify(HookAction::Close, hc);
                r
            }
        }
    }

    async fn read_events(&mut self, timeout: std::time::Duration) -> Result<Vec<ServerEvent>, ConnError> {
        self.buf.clear();
        let n = match tokio::time::timeout(timeout, self.reader.read_buf(&mut self.buf)).await {
            Ok(r) => r?,
            Err(_) => return Err(ConnError::Idle(timeout)),
        };
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        Ok(self.session.feed(&self.buf[..n])?)
    }

    /// Writes what the session queued, within the write deadline (`slow_player_drop_ms`): a
    /// peer that makes the node answer (pings, commands) but never reads does not pin the task.
    async fn flush_output(&mut self) -> Result<u64, ConnError> {
        let out = self.session.take_output();
        if out.is_empty() {
            return Ok(0);
        }
        let limit = self.ctx.config.media.slow_player_drop();
        match tokio::time::timeout(limit, self.writer.write_all(&out)).await {
            Ok(r) => r?,
            Err(_) => return Err(ConnError::WriteStalled(limit)),
        }
        Ok(out.len() as u64)
    }

    async fn on_setup_event(&mut self, event: ServerEvent) -> Result<Option<Mode>, ConnError> {
        match event {
            ServerEvent::Connect { app, tc_url, page_url, swf_url, param, .. } => {
                debug!(peer = %self.peer, %app, %tc_url, "rtmp connect");
                self.connect = Connect { app, tc_url, page_url, swf_url, param };
                Ok(None)
            }
            ServerEvent::Publish { stream_id, stream_name, param, .. } => {
                self.start_publish(stream_id, stream_name, param).await
            }
            ServerEvent::Play { stream_id, stream_name, param } => self.start_play(stream_id, stream_name, param).await,
            ServerEvent::Media { .. } => Err(ConnError::Refused("media before publish".into())),
            _ => Ok(None),
        }
    }

    /// `param` is the merged query (see `merge_queries`).
    /// Refuses names outside the grammar (`crate::key::check_name`).
    fn client_info(&self, stream_name: &str, param: &str, kind: ClientKind) -> Result<ClientInfo, NameError> {
        Ok(ClientInfo {
            key: StreamKey::parse(&vhost_from(param), &self.connect.app, stream_name)?,
            name: stream_name.to_string(),
            kind,
            ip: self.peer.ip().to_string(),
            tc_url: self.connect.tc_url.clone(),
            page_url: self.connect.page_url.clone(),
            swf_url: self.connect.swf_url.clone(),
        })
    }

    async fn start_publish(&mut self, stream_id: u32, name: String, param: String) -> Result<Option<Mode>, ConnError> {
        let param = merge_queries(&param, &self.connect.param);
        let info = match self.client_info(&name, &param, ClientKind::FmlePublish) {
            Ok(info) => info,
            Err(e) => return Ok(self.refuse(Refusal::Publish, stream_id, &format!("{name:?}"), e.to_string())),
        };
        let key = info.key.clone();
        let source = self.ctx.hub.source(&key);
        if source.is_publishing() {
            return Ok(self.refuse(
                Refusal::Publish,
                stream_id,
                &key,
                format!("stream {key} is already being published"),
            ));
        }
        let actions = [HookAction::Connect, HookAction::Publish];
        let guard = match admission::admit_client(&self.ctx, info, &param, CancellationToken::new(), &actions).await {
            Ok(guard) => guard,
            Err(refused) => return Ok(self.refuse(Refusal::PublishHook, stream_id, &key, refused.reason)),
        };
        match source.try_publish() {
            Ok(publisher) => {
                self.session.accept_publish(stream_id);
                self.ctx.hls.ensure(&self.ctx, publisher.source());
                info!(peer = %self.peer, stream = %key, client = guard.id(), param = %query_keys(&param), "publish started");
                Ok(Some(Mode::Publish { publisher, guard, param }))
            }
            Err(e) => Ok(self.refuse(Refusal::Publish, stream_id, &key, e.to_string())),
        }
    }

    /// Answers a refused publish or play with its RTMP status, logs it, and marks the connection
    /// to close once the answer is written. Returns no mode, for the caller to pass on.
    fn refuse(&mut self, what: Refusal, stream_id: u32, key: &dyn std::fmt::Display, reason: String) -> Option<Mode> {
        warn!(peer = %self.peer, stream = %key, "{} refused: {reason}", what.name());
        match what {
            Refusal::Publish => self.session.reject_publish(stream_id, "NetStream.Publish.BadName", &reason),
            Refusal::PublishHook => self.session.reject_publish(stream_id, "NetStream.Publish.Rejected", &reason),
            Refusal::PlayHook => self.session.reject_play(stream_id, "NetStream.Play.Rejected", &reason),
        }
        self.refused = Some(reason);
        None
    }

    async fn start_play(&mut self, stream_id: u32, name: String, param: String) -> Result<Option<Mode>, ConnError> {
        let param = merge_queries(&param, &self.connect.param);
        let info = match self.client_info(&name, &param, ClientKind::RtmpPlay) {
            Ok(info) => info,
            Err(e) => return Ok(self.refuse(Refusal::PlayHook, stream_id, &format!("{name:?}"), e.to_string())),
        };
        let key = info.key.clone();
        if let Some(there) = self.ctx.elsewhere(&key, &param).await {
            // Origin cluster: SRS's RTMP 302 to the origin that has the stream.
            let url = crate::rtmp_client::rtmp_url(&there.rtmp, &key, &param);
            info!(peer = %self.peer, stream = %key, to = %there.rtmp, "play redirected to the origin holding the stream");
            self.session.redirect(&url);
            self.refused = Some(format!("redirected to {}", there.rtmp));
            return Ok(None);
        }
        let request = ViewerRequest { info, param, kick: CancellationToken::new(), delivery: Delivery::Frames };
        let mut viewer = match admission::admit(&self.ctx, request).await {
            Ok(viewer) => viewer,
            Err(refused) => return Ok(self.refuse(Refusal::PlayHook, stream_id, &key, refused.reason)),
        };
        self.session.accept_play(stream_id);
        viewer.begin();
        let param = query_keys(viewer.param());
        info!(peer = %self.peer, stream = %key, client = viewer.id(), %param, "play started");
        Ok(Some(Mode::Play { viewer: Box::new(viewer), stream_id }))
    }

    fn on_publish_event(
        &mut self,
        event: ServerEvent,
        publisher: &Publisher,
        guard: &ClientGuard,
    ) -> Result<(), ConnError> {
        match event {
            ServerEvent::Media { kind, timestamp, payload, .. } => {
                let frame = Frame::new(frame_kind(kind), timestamp, payload);
                guard.stream().note_frame(&frame);
                publisher.push(frame);
                Ok(())
            }
            ServerEvent::CloseStream { .. } => Err(ConnError::Refused("publisher closed the stream".into())),
            ServerEvent::Publish { stream_id, .. } => {
                self.session.reject_publish(
                    stream_id,
                    "NetStream.Publish.BadName",
                    "already publishing on this connection",
                );
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn run_publish(
        &mut self,
        publisher: Publisher,
        guard: &ClientGuard,
        leftover: Vec<ServerEvent>,
    ) -> Result<(), ConnError> {
        for event in leftover {
            if let Err(e) = self.on_publish_event(event, &publisher, guard) {
                info!(stream = %publisher.source().key(), "publish ended: {e}");
                return Ok(());
            }
        }
        let idle = self.ctx.config.media.publish_idle_timeout();
        let kick = guard.kick_token().clone();
        let shutdown = self.ctx.shutdown.clone();
        let result = loop {
            let events = tokio::select! {
                _ = kick.cancelled() => break Err(ConnError::Refused("kicked".into())),
                _ = shutdown.cancelled() => break Ok(()),
                r = self.read_events(idle) => r,
            };
            let events = match events {
                Ok(events) => events,
                Err(ConnError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break Ok(()),
                Err(e) => break Err(e),
            };
            guard.traffic().add_recv(self.buf.len() as u64);
            for event in events {
                if let Err(e) = self.on_publish_event(event, &publisher, guard) {
                    info!(stream = %publisher.source().key(), "publish ended: {e}");
                    return Ok(());
                }
            }
            // A kick ends the connection even while its answers wait for the peer to read.
            let flushed = tokio::select! {
                _ = kick.cancelled() => break Err(ConnError::Refused("kicked".into())),
                r = self.flush_output() => r,
            };
            match flushed {
                Ok(n) => guard.traffic().add_send(n),
                Err(e) => break Err(e),
            }
        };
        info!(stream = %publisher.source().key(), client = guard.id(), "publish stopped");
        result
    }

    async fn run_play(&mut self, viewer: &mut Viewer, stream_id: u32) -> Result<(), ConnError> {
        let chunk_size = self.session.out_chunk_size();
        let kick = viewer.guard().kick_token().clone();
        let slow = self.ctx.config.media.slow_player_drop();
        let traffic = viewer.guard().traffic().clone();
        let joined = std::time::Instant::now();
        let end = loop {
            tokio::select! {
                _ = kick.cancelled() => break None,
                r = self.read_events(std::time::Duration::from_secs(3600)) => {
                    let events = r?;
                    traffic.add_recv(self.buf.len() as u64);
                    if events.iter().any(|e| matches!(e, ServerEvent::CloseStream { .. })) {
                        return Ok(());
                    }
                    let flushed = tokio::select! {
                        _ = kick.cancelled() => break None,
                        r = self.flush_output() => r,
                    };
                    traffic.add_send(flushed?);
                }
                batch = viewer.next_batch() => match batch {
                    Ok(packets) => {
                        let mut bufs: Vec<Bytes> = Vec::with_capacity(packets.len() + 1);
                        let control = self.session.take_output();
                        if !control.is_empty() {
                            bufs.push(control);
                        }
                        bufs.extend(packets.iter().map(|p| p.rtmp(chunk_size)));
                        match tokio::time::timeout(slow, write_all_vectored(&mut self.writer, &bufs)).await {
                            Ok(r) => {
                                traffic.add_send(r?);
                                // The start (metadata, sequence headers, the GOP cache) was
                                // received before this player came: its age is no wait.
                                if let Some(oldest) = packets.first().filter(|p| p.received >= joined) {
                                    self.ctx.delivery.wrote(WriteProto::Rtmp, oldest.received);
                                }
                            }
                            Err(_) => break Some(FeedEnd::TooSlow),
                        }
                    }
                    Err(end) => break Some(end),
                },
            }
        };
        match end {
            Some(FeedEnd::TooSlow) => {
                warn!(client = viewer.id(), skipped = viewer.skipped(), "slow rtmp player dropped")
            }
            Some(end) => {
                info!(client = viewer.id(), ?end, "rtmp play ended");
                self.session.end_of_stream(stream_id);
                let _ = self.flush_output().await;
            }
            None => info!(client = viewer.id(), "rtmp player kicked"),
        }
        let _ = self.writer.shutdown().await;
        Ok(())
    }
}

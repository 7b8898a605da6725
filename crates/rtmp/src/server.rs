//! The server side of an RTMP connection: publishers and players connecting to a node.
//!
//! [`ServerSession`] runs the handshake, answers the NetConnection plumbing on its own
//! (connect, createStream, releaseStream, FCPublish, getStreamLength, pings, acks), and
//! surfaces the decisions the node must make (connect, publish, play) as [`ServerEvent`]s.
//! Replies mirror SRS, so players and encoders see what they already know.

mod commands;
mod replies;

use bytes::Bytes;

use crate::amf0::Amf0Value;
use crate::connection::{Connection, Incoming};
use crate::error::RtmpError;
use crate::handshake::ServerHandshake;
use crate::message::{MessageKind, UserControl};

/// Server session settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Chunk size we announce and send with after connect (SRS: 60000).
    pub out_chunk_size: u32,
    /// Window Acknowledgement Size we ask the peer to use.
    pub window_ack_size: u32,
    /// Set Peer Bandwidth we send (limit type 2, dynamic).
    pub peer_bandwidth: u32,
    /// Largest message we accept from the peer.
    pub max_message_size: usize,
    /// Most distinct chunk stream ids the peer may use.
    pub max_chunk_streams: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            out_chunk_size: crate::DEFAULT_OUT_CHUNK_SIZE,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
            max_message_size: crate::DEFAULT_MAX_MESSAGE_SIZE,
            max_chunk_streams: crate::DEFAULT_MAX_CHUNK_STREAMS,
        }
    }
}

/// What the peer did that the node must know about.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// connect command.
    ///
    /// **Acceptance is implicit.** The session queues the success reply (Window Ack Size,
    /// Set Peer Bandwidth, Set Chunk Size `out_chunk_size`, `_result`
    /// NetConnection.Connect.Success with the client's objectEncoding, onBWDone) lazily: at
    /// the next [`ServerSession::take_output`] or [`ServerSession::feed`], or before the
    /// next command of the peer is handled, unless [`ServerSession::reject_connect`] was
    /// called first. So to refuse, call `reject_connect` before the next `take_output`/`feed`
    /// (hooks may be awaited in between), then write the output and close. Calling
    /// [`ServerSession::accept_connect`] sends the success at once; it is optional.
    Connect {
        /// Application name, without any query ("live").
        app: String,
        /// tcUrl as sent ("rtmp://host/live").
        tc_url: String,
        /// pageUrl, "" if absent.
        page_url: String,
        /// swfUrl, "" if absent.
        swf_url: String,
        /// query string given in app or tcUrl ("?vhost=x&token=y"), "" if none
        param: String,
        /// Every property of the connect command object, in order.
        properties: Vec<(String, Amf0Value)>,
    },
    /// publish command (after releaseStream/FCPublish/createStream, which the session
    /// answers itself). The caller must call `accept_publish` or `reject_publish`.
    Publish {
        /// Message stream id the publish came on (1).
        stream_id: u32,
        /// Stream name without the query.
        stream_name: String,
        /// The query including the leading '?' ("" if none).
        param: String,
        /// Publishing type, e.g. "live" ("live" when absent).
        publish_type: String,
    },
    /// play (or play2) command. The caller must call `accept_play` or `reject_play`.
    Play {
        /// Message stream id the play came on (1).
        stream_id: u32,
        /// Stream name without the query (extensions such as ".flv" are kept).
        stream_name: String,
        /// The query including the leading '?' ("" if none).
        param: String,
    },
    /// Audio/video/data message from the publisher. For Data, an `@setDataFrame` wrapper is
    /// removed so payload starts with the AMF0 string "onMetaData"; payload is the raw
    /// message body (FLV tag body format). Emitted only on a stream that sent publish.
    Media {
        /// Message stream id.
        stream_id: u32,
        /// Audio, video or data.
        kind: MessageKind,
        /// Absolute timestamp in milliseconds.
        timestamp: u32,
        /// Message body.
        payload: Bytes,
    },
    /// FCUnpublish / closeStream / deleteStream of a publishing or playing stream (once).
    CloseStream {
        /// Message stream id.
        stream_id: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ConnectState {
    /// No connect yet: any other command is a protocol error.
    Waiting,
    /// Connect event emitted, reply not sent yet.
    Pending {
        txid: f64,
        object_encoding: f64,
    },
    Accepted,
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoleKind {
    Publish,
    Play,
}

#[derive(Debug, Clone)]
struct Role {
    kind: RoleKind,
    name: String,
}

/// Most message streams with a publish/play role on one connection.
const MAX_ROLES: usize = 8;

/// Server-side RTMP session. See the crate docs for the sans-IO contract.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    handshake: ServerHandshake,
    conn: Connection,
    connect: ConnectState,
    /// The peer sent FCPublish (FMLE-style), so it expects onFCPublish.
    fc_publish: bool,
    roles: Vec<(u32, Role)>,
    failed: bool,
}

impl ServerSession {
    /// A session waiting for C0C1.
    pub fn new(config: ServerConfig) -> Self {
        let conn = Connection::new(config.max_message_size, config.max_chunk_streams);
        Self {
            config,
            handshake: ServerHandshake::new(),
            conn,
            connect: ConnectState::Waiting,
            fc_publish: false,
            roles: Vec::new(),
            failed: false,
        }
    }

    /// Feed bytes read from the socket (any split, including one byte at a time). Returns
    /// the events in order. Replies (handshake S0S1S2, acks, command results) are queued as
    /// output. After an error the session is dead: close the connection.
    pub fn feed(&mut self, input: &[u8]) -> Result<Vec<ServerEvent>, RtmpError> {
        if self.failed {
            return Err(RtmpError::SessionFailed);
        }
        let result = self.feed_inner(input);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn feed_inner(&mut self, input: &[u8]) -> Result<Vec<ServerEvent>, RtmpError> {
        self.resolve_pending_connect();
        self.conn.count_received(input.len());
        let progress = self.handshake.feed(input, self.conn.out_mut())?;
        let mut events = Vec::new();
        if !progress.done {
            return Ok(events);
        }
        self.conn.decoder.feed(input.get(progress.consumed..).unwrap_or_default());
        let mut incoming = Vec::new();
        while let Some(msg) = self.conn.next_message()? {
            self.conn.classify(msg, &mut incoming)?;
            for item in incoming.drain(..) {
                self.handle(item, &mut events)?;
            }
        }
        self.conn.maybe_ack();
        Ok(events)
    }

    fn handle(&mut self, item: Incoming, events: &mut Vec<ServerEvent>) -> Result<(), RtmpError> {
        match item {
            Incoming::Command { stream_id, command } => self.on_command(stream_id, command, events),
            Incoming::Media { stream_id, kind, timestamp, payload } => {
                if self.role(stream_id).is_some_and(|r| r.kind == RoleKind::Publish) {
                    events.push(ServerEvent::Media { stream_id, kind, timestamp, payload });
                }
                Ok(())
            }
            // Pings are answered by the connection; buffer lengths and the rest need nothing.
            Incoming::UserControl(_) => Ok(()),
        }
    }

    /// Bytes to write to the socket now (empty when none). Always whole messages, so the
    /// caller may write pre-encoded media (`encode_media_message`) between two calls.
    pub fn take_output(&mut self) -> Bytes {
        self.resolve_pending_connect();
        self.conn.take_output()
    }

    /// The chunk size our output uses (the size to pass to `encode_media_message`). It is
    /// 128 until the connect reply is queued, `out_chunk_size` after.
    pub fn out_chunk_size(&self) -> u32 {
        self.conn.out_chunk_size()
    }

    /// Sends the connect success reply now (optional: it is sent lazily otherwise).
    pub fn accept_connect(&mut self) {
        self.resolve_pending_connect();
    }

    /// `_error` NetConnection.Connect.Rejected with `description`. Close the connection after
    /// writing the output; later events of this session should be ignored.
    pub fn reject_connect(&mut self, description: &str) {
        let txid = match self.connect {
            ConnectState::Pending { txid, .. } => txid,
            _ => 1.0,
        };
        self.connect = ConnectState::Rejected;
        replies::connect_rejected(&mut self.conn, txid, description);
    }

    /// SRS's RTMP 302 for a player or publisher: play/publish `url` (`rtmp://host:port/app/stream?
    /// query`) instead. An SRS edge, Ferrocast's edge and clients that know the convention
    /// reconnect there. Close the connection after writing the output.
    pub fn redirect(&mut self, url: &str) {
        replies::redirect(&mut self.conn, url);
    }

    /// onStatus NetStream.Publish.Start (level status), preceded by onFCPublish for FMLE
    /// clients that sent FCPublish — as SRS.
    pub fn accept_publish(&mut self, stream_id: u32) {
        if self.fc_publish {
            replies::on_fc_publish(&mut self.conn, stream_id);
        }
        replies::publish_start(&mut self.conn, stream_id);
    }

    /// onStatus level "error" with `code` (e.g. NetStream.Publish.BadName) and `description`.
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) {
        self.remove_role(stream_id);
        replies::on_status(&mut self.conn, stream_id, "error", code, description);
    }

    /// StreamBegin, onStatus NetStream.Play.Reset, onStatus NetStream.Play.Start,
    /// |RtmpSampleAccess, onStatus data NetStream.Data.Start — as SRS.
    pub fn accept_play(&mut self, stream_id: u32) {
        let name = self.role(stream_id).map(|r| r.name.clone()).unwrap_or_default();
        replies::play_start(&mut self.conn, stream_id, &name);
    }

    /// onStatus level "error" with `code` (e.g. NetStream.Play.StreamNotFound).
    pub fn reject_play(&mut self, stream_id: u32, code: &str, description: &str) {
        self.remove_role(stream_id);
        replies::on_status(&mut self.conn, stream_id, "error", code, description);
    }

    /// onStatus NetStream.Play.UnpublishNotify then StreamEOF: a clean end for players.
    pub fn end_of_stream(&mut self, stream_id: u32) {
        replies::on_status(
            &mut self.conn,
            stream_id,
            "status",
            "NetStream.Play.UnpublishNotify",
            "The stream is now unpublished.",
        );
        self.conn.send_user_control(UserControl::StreamEof(stream_id));
    }

    /// Ping Request user control with `timestamp`; the peer answers with a Ping Response.
    pub fn ping(&mut self, timestamp: u32) {
        self.conn.send_user_control(UserControl::PingRequest(timestamp));
    }

    /// Sends the connect success if a connect is pending.
    fn resolve_pending_connect(&mut self) {
        if let ConnectState::Pending { txid, object_encoding } = self.connect {
            self.connect = ConnectState::Accepted;
            replies::connect_success(&mut self.conn, &self.config, txid, object_encoding);
        }
    }

    fn role(&self, stream_id: u32) -> Option<&Role> {
        self.roles.iter().find(|(id, _)| *id == stream_id).map(|(_, r)| r)
    }

    /// Removes a stream's role; true if it had one.
    fn remove_role(&mut self, stream_id: u32) -> bool {
        let before = self.roles.len();
        self.roles.retain(|(id, _)| *id != stream_id);
        self.roles.len() != before
    }
}

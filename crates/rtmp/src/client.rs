//! The client side of an RTMP connection: edge pulls and load-generator players (play) and
//! publishers (publish).
//!
//! [`ClientSession`] sends C0C1 as soon as it is created, then walks the usual FFmpeg flow:
//! connect; then releaseStream, FCPublish, createStream, publish (publish mode) or
//! createStream, play, SetBufferLength (play mode). Server replies become [`ClientEvent`]s.

mod commands;
mod config;

use bytes::Bytes;

pub use config::{ClientConfig, ClientMode, DEFAULT_PORT};

use crate::connection::{Connection, Incoming};
use crate::error::RtmpError;
use crate::handshake::ClientHandshake;
use crate::message::media::wrap_set_data_frame;
use crate::message::{MessageKind, UserControl, csid_for};
use crate::{CSID_COMMAND, amf0::Amf0Value};

/// What the server did.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// connect `_result` with NetConnection.Connect.Success.
    Connected,
    /// onStatus NetStream.Play.Start (after its `Status` event).
    PlayStarted,
    /// onStatus NetStream.Publish.Start (after its `Status` event).
    PublishStarted,
    /// onStatus / _error from the server, e.g. NetStream.Publish.BadName,
    /// NetStream.Play.StreamNotFound, NetStream.Play.UnpublishNotify. Every onStatus is
    /// reported, including the Start codes.
    Status {
        /// "status", "warning" or "error".
        level: String,
        /// e.g. "NetStream.Publish.BadName".
        code: String,
        /// Human-readable description.
        description: String,
    },
    /// Audio, video or data from the server (data with `@setDataFrame` removed;
    /// `|RtmpSampleAccess` and data onStatus are not reported).
    Media {
        /// Audio, video or data.
        kind: MessageKind,
        /// Absolute timestamp in milliseconds.
        timestamp: u32,
        /// Message body (FLV tag body format).
        payload: Bytes,
    },
    /// StreamEOF user control: the server ended the stream.
    StreamEof,
    /// An RTMP 302 (SRS's origin cluster): an error onStatus / `_error` whose info object has an
    /// `ex` with `redirect2` (the full RTMP URL, with the query) or `redirect` (a tcUrl). Comes
    /// right before that message's `Status` event: a client that does not follow redirects sees
    /// the error as before.
    Redirect {
        /// The RTMP URL to play or publish from instead.
        url: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Handshake,
    /// connect sent (transaction 1).
    Connecting,
    /// createStream sent with this transaction id.
    CreatingStream {
        txid: f64,
    },
    /// publish or play sent on `stream_id`.
    Starting,
    /// PublishStarted / PlayStarted seen.
    Started,
    /// close() called.
    Closed,
}

/// Client-side RTMP session.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    handshake: ClientHandshake,
    conn: Connection,
    state: State,
    next_txid: f64,
    stream_id: u32,
    failed: bool,
}

impl ClientSession {
    /// Queues C0+C1.
    pub fn new(config: ClientConfig) -> Self {
        let mut conn = Connection::new(config.max_message_size, config.max_chunk_streams);
        let handshake = ClientHandshake::new(conn.out_mut());
        Self {
            config,
            handshake,
            conn,
            state: State::Handshake,
            next_txid: 1.0,
            stream_id: crate::PLAY_STREAM_ID,
            failed: false,
        }
    }

    /// Feed bytes read from the socket (any split). Returns the events in order; replies are
    /// queued as output. After an error the session is dead: close the connection.
    pub fn feed(&mut self, input: &[u8]) -> Result<Vec<ClientEvent>, RtmpError> {
        if self.failed {
            return Err(RtmpError::SessionFailed);
        }
        let result = self.feed_inner(input);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn feed_inner(&mut self, input: &[u8]) -> Result<Vec<ClientEvent>, RtmpError> {
        self.conn.count_received(input.len());
        let progress = self.handshake.feed(input, self.conn.out_mut())?;
        let mut events = Vec::new();
        if !progress.done {
            return Ok(events);
        }
        if self.state == State::Handshake {
            self.send_connect();
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

    fn handle(&mut self, item: Incoming, events: &mut Vec<ClientEvent>) -> Result<(), RtmpError> {
        match item {
            Incoming::Command { command, .. } => self.on_command(command, events)?,
            Incoming::Media { kind, timestamp, payload, .. } => {
                if kind != MessageKind::Data || is_stream_data(&payload) {
                    events.push(ClientEvent::Media { kind, timestamp, payload });
                }
            }
            Incoming::UserControl(UserControl::StreamEof(_)) => events.push(ClientEvent::StreamEof),
            Incoming::UserControl(_) => {}
        }
        Ok(())
    }

    /// Bytes to write to the socket now (empty when none). Always whole messages.
    pub fn take_output(&mut self) -> Bytes {
        self.conn.take_output()
    }

    /// Sends one media message on our stream. Only after `ClientEvent::PublishStarted`;
    /// ignored otherwise. For Data, this wraps in @setDataFrame as FFmpeg does.
    pub fn send_media(&mut self, kind: MessageKind, timestamp: u32, payload: &[u8]) {
        if self.state != State::Started || self.config.mode != ClientMode::Publish {
            return;
        }
        let csid = csid_for(kind);
        if kind == MessageKind::Data {
            let wrapped = wrap_set_data_frame(payload);
            self.conn.send(csid, timestamp, kind.type_id(), self.stream_id, &wrapped);
        } else {
            self.conn.send(csid, timestamp, kind.type_id(), self.stream_id, payload);
        }
    }

    /// Ends the stream: FCUnpublish and deleteStream when publishing, deleteStream when
    /// playing. Write the output, then close the socket.
    pub fn close(&mut self) {
        if matches!(self.state, State::Starting | State::Started) {
            let null = Amf0Value::Null;
            if self.config.mode == ClientMode::Publish {
                let txid = self.txid();
                let stream = Amf0Value::string(self.config.stream.clone());
                self.conn.send_command(CSID_COMMAND, 0, "FCUnpublish", txid, &null, &[stream]);
            }
            let txid = self.txid();
            let id = Amf0Value::Number(f64::from(self.stream_id));
            self.conn.send_command(CSID_COMMAND, 0, "deleteStream", txid, &null, &[id]);
        }
        self.state = State::Closed;
    }

    /// The chunk size our output uses (128 until connect succeeds, then `out_chunk_size`).
    pub fn out_chunk_size(&self) -> u32 {
        self.conn.out_chunk_size()
    }

    /// The message stream id the server gave us (valid after createStream's result).
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    fn txid(&mut self) -> f64 {
        let t = self.next_txid;
        self.next_txid += 1.0;
        t
    }
}

/// Data messages worth reporting: not the |RtmpSampleAccess and onStatus servers send
/// when play starts.
fn is_stream_data(payload: &[u8]) -> bool {
    const SKIP: [&[u8]; 2] = [b"\x02\x00\x11|RtmpSampleAccess", b"\x02\x00\x08onStatus"];
    !SKIP.iter().any(|p| payload.starts_with(p))
}

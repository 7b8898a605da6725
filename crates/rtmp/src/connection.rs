//! What server and client sessions share once the handshake is over: the chunk codec, the
//! output buffer, acknowledgements, and protocol control handling.
//!
//! Protocol control and pings are answered here so that each session only deals with
//! commands, media and the user control events it cares about.

use bytes::{Bytes, BytesMut};

use crate::CSID_PROTOCOL_CONTROL;
use crate::amf0::{self, Amf0Value};
use crate::chunk::{ChunkDecoder, ChunkEncoder, RawMessage};
use crate::error::RtmpError;
use crate::message::aggregate::split_aggregate;
use crate::message::command::{Command, encode_command, parse_command};
use crate::message::control::{self, UserControl};
use crate::message::media::media_payload;
use crate::message::{MessageKind, type_id};

/// A message the session has to act on.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// An AMF0 (or AMF3-enveloped) command.
    Command { stream_id: u32, command: Command },
    /// Audio, video or data (data with `@setDataFrame` removed); aggregates are split.
    Media { stream_id: u32, kind: MessageKind, timestamp: u32, payload: Bytes },
    /// A user control event (pings are already answered).
    UserControl(UserControl),
}

/// Chunk codec, output queue and acknowledgement bookkeeping of one connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    out: BytesMut,
    /// Bytes received on the connection, handshake included.
    received: u64,
    /// `received` when we last sent an Acknowledgement.
    acked: u64,
    /// Acknowledgement window the peer asked for (0: none).
    peer_window: u32,
}

impl Connection {
    pub(crate) fn new(max_message_size: usize, max_chunk_streams: usize) -> Self {
        Self {
            decoder: ChunkDecoder::new(max_message_size, max_chunk_streams),
            encoder: ChunkEncoder::new(),
            out: BytesMut::new(),
            received: 0,
            acked: 0,
            peer_window: 0,
        }
    }

    /// The output buffer, for the handshake.
    pub(crate) fn out_mut(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    pub(crate) fn take_output(&mut self) -> Bytes {
        self.out.split().freeze()
    }

    pub(crate) fn out_chunk_size(&self) -> u32 {
        self.encoder.chunk_size()
    }

    pub(crate) fn count_received(&mut self, n: usize) {
        self.received = self.received.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Sends an Acknowledgement once the bytes received since the last one reach the
    /// window the peer set.
    pub(crate) fn maybe_ack(&mut self) {
        if self.peer_window == 0 {
            return;
        }
        if self.received.saturating_sub(self.acked) >= u64::from(self.peer_window) {
            self.acked = self.received;
            // The sequence number is the byte count modulo 2^32.
            let seq = (self.received & u64::from(u32::MAX)) as u32;
            self.send(CSID_PROTOCOL_CONTROL, 0, type_id::ACK, 0, &seq.to_be_bytes());
        }
    }

    /// Queues one message. Our own messages are far below the 16 MiB wire limit; one that
    /// is not is dropped rather than sent corrupt.
    pub(crate) fn send(&mut self, csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) {
        let _ = self.encoder.encode(csid, timestamp, type_id, stream_id, payload, &mut self.out);
    }

    pub(crate) fn send_command(
        &mut self,
        csid: u32,
        stream_id: u32,
        name: &str,
        transaction_id: f64,
        object: &Amf0Value,
        args: &[Amf0Value],
    ) {
        let body = encode_command(name, transaction_id, object, args);
        self.send(csid, 0, type_id::COMMAND_AMF0, stream_id, &body);
    }

    pub(crate) fn send_data(&mut self, csid: u32, stream_id: u32, values: &[Amf0Value]) {
        let body = amf0::encode_all(values);
        self.send(csid, 0, type_id::DATA_AMF0, stream_id, &body);
    }

    pub(crate) fn send_user_control(&mut self, event: UserControl) {
        self.send(CSID_PROTOCOL_CONTROL, 0, type_id::USER_CONTROL, 0, &event.encode());
    }

    pub(crate) fn send_window_ack_size(&mut self, size: u32) {
        self.send(CSID_PROTOCOL_CONTROL, 0, type_id::WINDOW_ACK_SIZE, 0, &size.to_be_bytes());
    }

    pub(crate) fn send_set_peer_bandwidth(&mut self, size: u32, limit_type: u8) {
        let body = control::encode_set_peer_bandwidth(size, limit_type);
        self.send(CSID_PROTOCOL_CONTROL, 0, type_id::SET_PEER_BANDWIDTH, 0, &body);
    }

    /// Announces a new outgoing chunk size and switches to it (clamped to 1..=0x7FFFFFFF).
    pub(crate) fn send_set_chunk_size(&mut self, size: u32) {
        let size = size.clamp(1, crate::chunk::MAX_CHUNK_SIZE);
        self.send(CSID_PROTOCOL_CONTROL, 0, type_id::SET_CHUNK_SIZE, 0, &size.to_be_bytes());
        let _ = self.encoder.set_chunk_size(size);
    }

    /// The next complete message from the peer.
    pub(crate) fn next_message(&mut self) -> Result<Option<RawMessage>, RtmpError> {
        self.decoder.next_message()
    }

    /// Handles protocol control and pings; returns what the session must act on.
    pub(crate) fn classify(&mut self, msg: RawMessage, out: &mut Vec<Incoming>) -> Result<(), RtmpError> {
        match msg.type_id {
            // Applied by the decoder already.
            type_id::SET_CHUNK_SIZE | type_id::ABORT => {}
            type_id::ACK => {
                control::parse_u32(&msg.payload, "Acknowledgement")?;
            }
            type_id::WINDOW_ACK_SIZE => {
                self.peer_window = control::parse_u32(&msg.payload, "Window Acknowledgement Size")?;
            }
            type_id::SET_PEER_BANDWIDTH => {
                control::parse_set_peer_bandwidth(&msg.payload)?;
            }
            type_id::USER_CONTROL => {
                let event = UserControl::parse(&msg.payload)?;
                if let UserControl::PingRequest(ts) = event {
                    self.send_user_control(UserControl::PingResponse(ts));
                }
                out.push(Incoming::UserControl(event));
            }
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let command = parse_command(msg.type_id, &msg.payload)?;
                out.push(Incoming::Command { stream_id: msg.stream_id, command });
            }
            type_id::AGGREGATE => {
                for sub in split_aggregate(msg.timestamp, &msg.payload)? {
                    out.push(Incoming::Media {
                        stream_id: msg.stream_id,
                        kind: sub.kind,
                        timestamp: sub.timestamp,
                        payload: sub.payload,
                    });
                }
            }
            other => {
                if let Some((kind, payload)) = media_payload(other, msg.payload) {
                    out.push(Incoming::Media { stream_id: msg.stream_id, kind, timestamp: msg.timestamp, payload });
                }
                // Shared objects and unknown types are ignored.
            }
        }
        Ok(())
    }
}

/// Splits "name?query" into ("name", "?query"); ("name", "") without a query.
pub(crate) fn split_query(s: &str) -> (String, String) {
    match s.find('?') {
        Some(i) => {
            let (name, query) = s.split_at(i);
            (name.to_owned(), query.to_owned())
        }
        None => (s.to_owned(), String::new()),
    }
}

/// Builds an onStatus info object.
pub(crate) fn status_info(level: &str, code: &str, description: &str) -> Vec<(String, Amf0Value)> {
    vec![
        ("level".to_owned(), Amf0Value::string(level)),
        ("code".to_owned(), Amf0Value::string(code)),
        ("description".to_owned(), Amf0Value::string(description)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_query_keeps_the_question_mark() {
        assert_eq!(split_query("cam?token=abc"), ("cam".into(), "?token=abc".into()));
        assert_eq!(split_query("cam"), ("cam".into(), String::new()));
        assert_eq!(split_query("?x"), (String::new(), "?x".into()));
    }

    #[test]
    fn acks_follow_the_peer_window() {
        let mut c = Connection::new(1 << 20, 8);
        c.count_received(100);
        c.maybe_ack();
        assert!(c.take_output().is_empty());
        let mut raw = Vec::new();
        c.classify(
            RawMessage {
                csid: 2,
                timestamp: 0,
                type_id: type_id::WINDOW_ACK_SIZE,
                stream_id: 0,
                payload: Bytes::from_static(&[0, 0, 0, 150]),
            },
            &mut raw,
        )
        .unwrap();
        c.count_received(49);
        c.maybe_ack();
        assert!(c.take_output().is_empty());
        c.count_received(1);
        c.maybe_ack();
        let out = c.take_output();
        let msgs = ChunkDecoder::new(1 << 20, 8).decode(&out).unwrap();
        assert_eq!(msgs[0].type_id, type_id::ACK);
        assert_eq!(&msgs[0].payload[..], &150u32.to_be_bytes());
        c.count_received(149);
        c.maybe_ack();
        assert!(c.take_output().is_empty());
    }

    #[test]
    fn pings_are_answered() {
        let mut c = Connection::new(1 << 20, 8);
        let mut incoming = Vec::new();
        c.classify(
            RawMessage {
                csid: 2,
                timestamp: 0,
                type_id: type_id::USER_CONTROL,
                stream_id: 0,
                payload: UserControl::PingRequest(42).encode().into(),
            },
            &mut incoming,
        )
        .unwrap();
        let msgs = ChunkDecoder::new(1 << 20, 8).decode(&c.take_output()).unwrap();
        assert_eq!(UserControl::parse(&msgs[0].payload), Ok(UserControl::PingResponse(42)));
    }
}

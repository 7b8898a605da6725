//! Server side of the handshake: read C0C1, answer S0S1S2, read C2.

use bytes::BytesMut;

use super::digest::{FMS_KEY, FMS_KEY_PARTIAL_LEN, FP_KEY, FP_KEY_PARTIAL_LEN};
use super::{HANDSHAKE_SIZE, Progress, RTMP_VERSION, fill, random_bytes};
use super::{digest, find_digest, imprint_digest};
use crate::error::RtmpError;

/// Version bytes we put in a complex S1 (as SRS: 1.0.5.4).
const SERVER_VERSION: [u8; 4] = [0x01, 0x00, 0x05, 0x04];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    C0C1,
    C2,
    Done,
}

/// Server handshake state machine.
#[derive(Debug)]
pub struct ServerHandshake {
    state: State,
    buf: Vec<u8>,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHandshake {
    /// Waiting for C0C1.
    pub fn new() -> Self {
        Self { state: State::C0C1, buf: Vec::with_capacity(1 + HANDSHAKE_SIZE) }
    }

    /// True once C2 has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes handshake bytes from `input` and appends S0S1S2 to `out` once C0C1 is in.
    /// A C0 other than 3 fails at once; a short input just waits for more.
    pub fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Progress, RtmpError> {
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            match self.state {
                State::Done => return Ok(Progress { consumed, done: true }),
                State::C0C1 => {
                    consumed += fill(&mut self.buf, 1 + HANDSHAKE_SIZE, rest);
                    if let Some(&v) = self.buf.first()
                        && v != RTMP_VERSION
                    {
                        return Err(RtmpError::BadVersion(v));
                    }
                    let Some(c1) = self.buf.get(1..).and_then(|c1| <&[u8; HANDSHAKE_SIZE]>::try_from(c1).ok()) else {
                        return Ok(Progress { consumed, done: false });
                    };
                    out.extend_from_slice(&server_response(c1));
                    self.buf.clear();
                    self.state = State::C2;
                }
                State::C2 => {
                    // C2 is not checked: SRS and nginx-rtmp ignore it too.
                    consumed += fill(&mut self.buf, HANDSHAKE_SIZE, rest);
                    if self.buf.len() < HANDSHAKE_SIZE {
                        return Ok(Progress { consumed, done: false });
                    }
                    self.buf = Vec::new();
                    self.state = State::Done;
                }
            }
        }
    }
}

/// S0S1S2 (3073 bytes) for a given C1: the digest handshake when C1 carries a valid client
/// digest in either schema, the simple handshake otherwise.
pub fn server_response(c1: &[u8; HANDSHAKE_SIZE]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 2 * HANDSHAKE_SIZE);
    out.push(RTMP_VERSION);
    match find_digest(c1, &FP_KEY[..FP_KEY_PARTIAL_LEN]) {
        Some((schema, offset)) => {
            let c1_digest = c1.get(offset..offset.saturating_add(32)).unwrap_or_default();
            let mut s1 = [0u8; HANDSHAKE_SIZE];
            random_bytes(&mut s1[8..]);
            s1[4..8].copy_from_slice(&SERVER_VERSION);
            imprint_digest(&mut s1, schema, &FMS_KEY[..FMS_KEY_PARTIAL_LEN]);
            out.extend_from_slice(&s1);

            let mut s2 = [0u8; HANDSHAKE_SIZE];
            let (body, sig) = s2.split_at_mut(HANDSHAKE_SIZE - 32);
            random_bytes(body);
            let key = digest::hmac_sha256(&FMS_KEY, &[c1_digest]);
            sig.copy_from_slice(&digest::hmac_sha256(&key, &[body]));
            out.extend_from_slice(&s2);
        }
        None => {
            let mut s1 = [0u8; HANDSHAKE_SIZE];
            random_bytes(&mut s1[8..]);
            out.extend_from_slice(&s1);
            out.extend_from_slice(c1);
        }
    }
    out
}

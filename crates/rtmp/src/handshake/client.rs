//! Client side of the handshake: send C0C1 (simple), read S0S1S2, answer C2 (echo of S1).

use bytes::BytesMut;

use super::{HANDSHAKE_SIZE, Progress, RTMP_VERSION, fill, random_bytes};
use crate::error::RtmpError;

/// Client handshake state machine.
#[derive(Debug)]
pub struct ClientHandshake {
    buf: Vec<u8>,
    done: bool,
}

impl ClientHandshake {
    /// Appends C0C1 to `out` and waits for S0S1S2.
    pub fn new(out: &mut BytesMut) -> Self {
        let mut c1 = [0u8; HANDSHAKE_SIZE];
        // time = 0, version = 0 (simple handshake), then random bytes.
        random_bytes(&mut c1[8..]);
        out.extend_from_slice(&[RTMP_VERSION]);
        out.extend_from_slice(&c1);
        Self { buf: Vec::with_capacity(1 + 2 * HANDSHAKE_SIZE), done: false }
    }

    /// True once S0S1S2 has been read and C2 queued.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Consumes S0S1S2 bytes from `input`; appends C2 to `out` when complete.
    pub fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Progress, RtmpError> {
        if self.done {
            return Ok(Progress { consumed: 0, done: true });
        }
        let consumed = fill(&mut self.buf, 1 + 2 * HANDSHAKE_SIZE, input);
        if let Some(&v) = self.buf.first()
            && v != RTMP_VERSION
        {
            return Err(RtmpError::BadVersion(v));
        }
        if self.buf.len() < 1 + 2 * HANDSHAKE_SIZE {
            return Ok(Progress { consumed, done: false });
        }
        // C2 echoes S1 (simple handshake); S2 is not checked, as FFmpeg does for simple C1.
        out.extend_from_slice(self.buf.get(1..1 + HANDSHAKE_SIZE).unwrap_or_default());
        self.buf = Vec::new();
        self.done = true;
        Ok(Progress { consumed, done: true })
    }
}

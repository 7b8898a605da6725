//! The RTMP handshake: C0/C1/C2 from the client, S0/S1/S2 from the server.
//!
//! The server answers both the simple handshake (random C1, S2 echoes C1) and the complex
//! digest handshake Flash players and FFmpeg use, exactly like SRS: it looks for a valid
//! client digest in either layout and falls back to simple when there is none. The client
//! side sends a simple C0C1, which FFmpeg, SRS and nginx-rtmp all accept.

mod client;
mod digest;
mod server;

pub use client::ClientHandshake;
pub use digest::{
    FMS_KEY, FMS_KEY_PARTIAL_LEN, FP_KEY, FP_KEY_PARTIAL_LEN, Schema, digest_offset, find_digest, imprint_digest,
    packet_digest,
};
pub use server::{ServerHandshake, server_response};

/// The only RTMP version we speak (C0/S0 byte): plain, unencrypted RTMP.
pub const RTMP_VERSION: u8 = 3;
/// Size of C1, C2, S1 and S2.
pub const HANDSHAKE_SIZE: usize = 1536;

/// What one `feed` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input that belonged to the handshake.
    pub consumed: usize,
    /// True once the handshake is complete; the rest of the input is chunk stream.
    pub done: bool,
}

/// Moves up to `want - buf.len()` bytes from `input` into `buf`; returns how many.
fn fill(buf: &mut Vec<u8>, want: usize, input: &[u8]) -> usize {
    let n = want.saturating_sub(buf.len()).min(input.len());
    buf.extend_from_slice(input.get(..n).unwrap_or_default());
    n
}

/// Random bytes for S1/S2/C1 bodies.
fn random_bytes(buf: &mut [u8]) {
    use rand::RngCore;
    rand::rng().fill_bytes(buf);
}

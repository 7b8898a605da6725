//! The digest ("complex") handshake: where the 32-byte HMAC-SHA256 digest sits inside a
//! 1536-byte C1/S1, and how it is computed. The keys are the well-known protocol constants.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::HANDSHAKE_SIZE;

type HmacSha256 = Hmac<Sha256>;

/// Shared tail of both keys.
const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D,
    0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];

const fn concat<const A: usize, const N: usize>(head: &[u8; A]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < A {
        out[i] = head[i];
        i += 1;
    }
    while i < N {
        out[i] = KEY_TAIL[i - A];
        i += 1;
    }
    out
}

/// "Genuine Adobe Flash Player 001" + tail: the client key.
pub const FP_KEY: [u8; 62] = concat::<30, 62>(b"Genuine Adobe Flash Player 001");
/// The client digest in C1 is signed with the first 30 bytes of [`FP_KEY`].
pub const FP_KEY_PARTIAL_LEN: usize = 30;
/// "Genuine Adobe Flash Media Server 001" + tail: the server key.
pub const FMS_KEY: [u8; 68] = concat::<36, 68>(b"Genuine Adobe Flash Media Server 001");
/// The server digest in S1 is signed with the first 36 bytes of [`FMS_KEY`].
pub const FMS_KEY_PARTIAL_LEN: usize = 36;

/// Where the digest block sits in C1/S1 (after 4 time + 4 version bytes come two 764-byte
/// blocks, key and digest, in either order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Key block first, digest block second (digest block at 772).
    Schema0,
    /// Digest block first (at 8), key block second. FFmpeg's client uses this layout.
    Schema1,
}

/// Offset of the 32-byte digest: the four bytes at the start of the digest block, summed,
/// modulo 728, after those four bytes.
pub fn digest_offset(packet: &[u8; HANDSHAKE_SIZE], schema: Schema) -> usize {
    let base = match schema {
        Schema::Schema0 => 772,
        Schema::Schema1 => 8,
    };
    let sum: usize = packet.iter().skip(base).take(4).map(|&b| usize::from(b)).sum();
    base + 4 + sum % 728
}

/// HMAC-SHA256 of `packet` without the 32 digest bytes at `offset`.
pub fn packet_digest(packet: &[u8; HANDSHAKE_SIZE], offset: usize, key: &[u8]) -> [u8; 32] {
    let mut mac = mac(key);
    mac.update(packet.get(..offset).unwrap_or_default());
    mac.update(packet.get(offset.saturating_add(32)..).unwrap_or_default());
    mac.finalize().into_bytes().into()
}

/// Finds a valid digest signed with `key`, trying schema 0 then schema 1 (as SRS does).
/// Returns the schema and the digest offset.
pub fn find_digest(packet: &[u8; HANDSHAKE_SIZE], key: &[u8]) -> Option<(Schema, usize)> {
    [Schema::Schema0, Schema::Schema1].into_iter().find_map(|schema| {
        let offset = digest_offset(packet, schema);
        let found = packet.get(offset..offset.saturating_add(32))?;
        let mut m = mac(key);
        m.update(packet.get(..offset).unwrap_or_default());
        m.update(packet.get(offset.saturating_add(32)..).unwrap_or_default());
        m.verify_slice(found).ok().map(|()| (schema, offset))
    })
}

/// Writes a digest signed with `key` into `packet` in `schema`'s layout; returns its offset.
pub fn imprint_digest(packet: &mut [u8; HANDSHAKE_SIZE], schema: Schema, key: &[u8]) -> usize {
    let offset = digest_offset(packet, schema);
    let digest = packet_digest(packet, offset, key);
    if let Some(slot) = packet.get_mut(offset..offset.saturating_add(32)) {
        slot.copy_from_slice(&digest);
    }
    offset
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = mac(key);
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this never fails.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_protocol_constants() {
        assert_eq!(&FP_KEY[..30], b"Genuine Adobe Flash Player 001");
        assert_eq!(&FMS_KEY[..36], b"Genuine Adobe Flash Media Server 001");
        assert_eq!(FP_KEY[30], 0xF0);
        assert_eq!(FMS_KEY[67], 0xAE);
    }

    #[test]
    fn offsets_stay_inside_the_packet() {
        let p = [0xFFu8; HANDSHAKE_SIZE];
        for s in [Schema::Schema0, Schema::Schema1] {
            assert!(digest_offset(&p, s) + 32 <= HANDSHAKE_SIZE);
        }
        let z = [0u8; HANDSHAKE_SIZE];
        assert_eq!(digest_offset(&z, Schema::Schema0), 776);
        assert_eq!(digest_offset(&z, Schema::Schema1), 12);
    }

    #[test]
    fn imprint_then_find() {
        for schema in [Schema::Schema0, Schema::Schema1] {
            let mut p = [0u8; HANDSHAKE_SIZE];
            for (i, b) in p.iter_mut().enumerate() {
                *b = (i * 7 % 251) as u8;
            }
            let off = imprint_digest(&mut p, schema, &FP_KEY[..FP_KEY_PARTIAL_LEN]);
            assert_eq!(find_digest(&p, &FP_KEY[..FP_KEY_PARTIAL_LEN]), Some((schema, off)));
            assert_eq!(find_digest(&p, &FMS_KEY[..FMS_KEY_PARTIAL_LEN]), None);
        }
    }
}

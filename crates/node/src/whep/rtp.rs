//! H.264 in RTP payloads (RFC 6184, packetization mode 1), made once per stream.
//!
//! A frame's payloads are built the first time any WebRTC viewer's feed reaches it and kept on
//! the frame (`Packet::h264_rtp`), as shared `Arc<[u8]>`s: every viewer's session sends the same
//! allocations, and the retransmission cache each session keeps (str0m's, answering NACKs with
//! RTX) holds references to them, not copies. So the stream's RTP payloads are its one packet
//! cache: a viewer's NACK or PLI is answered from it, never passed to the publisher.
//!
//! A NAL unit that fits a packet goes whole (a single NAL unit packet); a bigger one is cut into
//! FU-A fragments. A keyframe's parameter sets go first in one STAP-A, so a decoder can start
//! at any keyframe.

use std::sync::Arc;

use ferrocast_media::avc::{AvcConfig, NAL_TYPE_SPS};

/// The largest RTP payload: with the RTP header, its extensions and SRTP's tag, a packet stays
/// under 1,200 bytes, which every path on the internet carries without fragmenting.
pub const MAX_PAYLOAD: usize = 1100;

/// One RTP packet's payload, shared by every session that sends it.
pub type Payload = Arc<[u8]>;

const FU_A: u8 = 28;
const STAP_A: u8 = 24;
/// The NRI bits (nal_ref_idc) and the forbidden bit of a NAL unit header.
const NRI: u8 = 0xe0;

/// A frame's RTP payloads, in sending order (the last one carries the marker bit).
#[derive(Debug, Default)]
pub struct FramePayloads {
    pub payloads: Vec<Payload>,
    /// Whether the frame carries its own SPS (then its keyframe needs no STAP-A in front).
    pub has_sps: bool,
}

/// The payloads of one coded frame (`body` is the FLV tag's AVCC data); empty when it holds no
/// NAL unit or does not parse.
pub fn frame_payloads(config: &AvcConfig, body: &[u8]) -> FramePayloads {
    let Ok(nals) = config.nal_units(body) else { return FramePayloads::default() };
    let mut payloads = Vec::with_capacity(nals.len() + body.len() / MAX_PAYLOAD);
    for nal in &nals {
        packetize(nal, &mut payloads);
    }
    let has_sps = nals.iter().any(|n| n[0] & 0x1f == NAL_TYPE_SPS);
    FramePayloads { payloads, has_sps }
}

/// The parameter sets a keyframe needs in front: one STAP-A when they fit in a packet (they
/// nearly always do), otherwise each on its own.
pub fn parameter_sets(config: &AvcConfig) -> Vec<Payload> {
    let sets: Vec<&[u8]> = config.sps.iter().chain(&config.pps).map(|s| &s[..]).filter(|s| !s.is_empty()).collect();
    let size = 1 + sets.iter().map(|s| 2 + s.len()).sum::<usize>();
    if sets.len() < 2 || size > MAX_PAYLOAD || sets.iter().any(|s| s.len() > usize::from(u16::MAX)) {
        let mut payloads = Vec::new();
        for set in sets {
            packetize(set, &mut payloads);
        }
        return payloads;
    }
    // The STAP-A's NRI is the highest of its units'.
    let nri = sets.iter().map(|s| s[0] & 0x60).max().unwrap_or(0);
    let mut stap = Vec::with_capacity(size);
    stap.push(nri | STAP_A);
    for set in sets {
        stap.extend_from_slice(&(set.len() as u16).to_be_bytes());
        stap.extend_from_slice(set);
    }
    vec![stap.into()]
}

/// Appends the packets of one NAL unit: itself, or its FU-A fragments.
fn packetize(nal: &[u8], out: &mut Vec<Payload>) {
    if nal.len() <= MAX_PAYLOAD {
        out.push(nal.into());
        return;
    }
    let (header, body) = (nal[0], &nal[1..]);
    let indicator = (header & NRI) | FU_A;
    let chunks = body.chunks(MAX_PAYLOAD - 2);
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.enumerate() {
        let start = if i == 0 { 0x80 } else { 0 };
        let end = if i == last { 0x40 } else { 0 };
        let mut packet = Vec::with_capacity(2 + chunk.len());
        packet.extend_from_slice(&[indicator, start | end | (header & 0x1f)]);
        packet.extend_from_slice(chunk);
        out.push(packet.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn config() -> AvcConfig {
        AvcConfig {
            profile_idc: 66,
            level_idc: 31,
            width: 640,
            height: 360,
            sps: vec![Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1f, 0xda])],
            pps: vec![Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80])],
            nal_length_size: 4,
        }
    }

    fn avcc(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter().flat_map(|n| (n.len() as u32).to_be_bytes().into_iter().chain(n.iter().copied())).collect()
    }

    #[test]
    fn small_nal_units_go_whole_and_a_big_one_in_fu_a_fragments_that_rebuild_it() {
        let slice: Vec<u8> = std::iter::once(0x65).chain((0..5000u32).map(|i| (i * 7) as u8)).collect();
        let sei = [0x06, 0x05, 0x01, 0x80];
        let aud = [0x09, 0xf0];
        let frame = frame_payloads(&config(), &avcc(&[&aud, &sei, &slice]));
        assert!(!frame.has_sps);
        // The delimiter is dropped, the SEI goes whole, the slice in fragments.
        assert_eq!(&frame.payloads[0][..], &sei);
        let fragments = &frame.payloads[1..];
        assert_eq!(fragments.len(), 5000usize.div_ceil(MAX_PAYLOAD - 2));
        assert!(frame.payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        // FU indicator: the slice's NRI (3) and type 28; FU header: start on the first, end on
        // the last, and the slice's type (5) on all.
        assert!(fragments.iter().all(|f| f[0] == 0x60 | 28 && f[1] & 0x1f == 5));
        assert_eq!(fragments.iter().filter(|f| f[1] & 0x80 != 0).count(), 1);
        assert_eq!(fragments[0][1] & 0x80, 0x80);
        assert_eq!(fragments.iter().filter(|f| f[1] & 0x40 != 0).count(), 1);
        assert_eq!(fragments.last().unwrap()[1] & 0x40, 0x40);
        let rebuilt: Vec<u8> =
            std::iter::once(0x65).chain(fragments.iter().flat_map(|f| f[2..].iter().copied())).collect();
        assert_eq!(rebuilt, slice);
    }

    #[test]
    fn parameter_sets_go_in_one_stap_a_and_a_frame_with_its_own_sps_says_so() {
        let sets = parameter_sets(&config());
        assert_eq!(sets.len(), 1);
        let stap = &sets[0];
        assert_eq!(stap[0], 0x60 | 24, "NRI of the SPS, type STAP-A");
        assert_eq!(&stap[1..3], &[0, 5]);
        assert_eq!(&stap[3..8], &[0x67, 0x42, 0xc0, 0x1f, 0xda]);
        assert_eq!(&stap[8..10], &[0, 4]);
        assert_eq!(&stap[10..], &[0x68, 0xce, 0x3c, 0x80]);
        let inband = frame_payloads(&config(), &avcc(&[&[0x67, 1, 2], &[0x68, 3], &[0x65, 4]]));
        assert!(inband.has_sps);
        assert_eq!(inband.payloads.len(), 3);
    }

    #[test]
    fn a_body_that_does_not_parse_has_no_payloads() {
        let mut bad = avcc(&[&[0x65; 100]]);
        bad.truncate(50);
        assert!(frame_payloads(&config(), &bad).payloads.is_empty());
        assert!(frame_payloads(&config(), &[]).payloads.is_empty());
    }
}

//! Telling a video keyframe from the first bytes of an FLV video tag body / RTMP video message.
//!
//! Shared by the HTTP-FLV and RTMP players so both count keyframes the same way. A sequence
//! header (AVC/HEVC decoder configuration) has the keyframe frame type but carries no picture,
//! so it does not count: first-keyframe latency means "a player could start decoding".

/// True when `body` (at least its first two bytes) starts a video keyframe that is not a
/// sequence header.
///
/// Legacy FLV: frame type (high nibble) 1 and, for AVC/HEVC, packet type (second byte) not 0.
/// Enhanced RTMP (high bit set): frame type in bits 4..=6 is 1 and the packet type (low nibble)
/// is coded frames (1 or 3), not a sequence start/end or metadata.
pub fn is_video_keyframe(body: &[u8]) -> bool {
    let Some(&b0) = body.first() else { return false };
    if b0 & 0x80 != 0 {
        let frame_type = (b0 >> 4) & 0x07;
        let packet_type = b0 & 0x0F;
        return frame_type == 1 && matches!(packet_type, 1 | 3);
    }
    b0 >> 4 == 1 && body.get(1) != Some(&0)
}

#[cfg(test)]
mod tests {
    use super::is_video_keyframe;

    #[test]
    fn legacy_avc() {
        assert!(is_video_keyframe(&[0x17, 0x01, 0, 0, 0]));
        assert!(!is_video_keyframe(&[0x17, 0x00, 0, 0, 0]), "sequence header");
        assert!(!is_video_keyframe(&[0x27, 0x01, 0, 0, 0]), "inter frame");
        assert!(!is_video_keyframe(&[]));
    }

    #[test]
    fn enhanced_rtmp() {
        assert!(is_video_keyframe(&[0x91, b'h', b'v', b'c', b'1']), "keyframe, coded frames");
        assert!(is_video_keyframe(&[0x93, b'a', b'v', b'0', b'1']), "keyframe, coded frames X");
        assert!(!is_video_keyframe(&[0x90, b'h', b'v', b'c', b'1']), "sequence start");
        assert!(!is_video_keyframe(&[0xA1, b'h', b'v', b'c', b'1']), "inter frame");
    }
}

//! Cutting bytes into 188-byte transport packets: the 4-byte header with its continuity counter,
//! the adaptation field (PCR, random access, stuffing) and the PES header with PTS/DTS.

use bytes::BytesMut;

/// Size of a transport packet.
pub const PACKET_SIZE: usize = 188;
/// First byte of every transport packet.
pub const SYNC_BYTE: u8 = 0x47;
const HEADER_SIZE: usize = 4;
const PAYLOAD_SIZE: usize = PACKET_SIZE - HEADER_SIZE;

/// Timestamps are 33-bit values of a 90 kHz clock.
pub const TIMESTAMP_MASK: u64 = (1 << 33) - 1;

/// What the first packet of a payload unit announces in its adaptation field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnitFlags {
    /// Program clock reference base (90 kHz, 33 bits); the 27 MHz extension is 0.
    pub pcr: Option<u64>,
    /// `random_access_indicator`: a decoder can start here (H.264 keyframe).
    pub random_access: bool,
}

/// Writes `unit` (a PES packet or a pointer field + PSI section) as transport packets on `pid`:
/// the first with `payload_unit_start_indicator` and `flags`, the last padded with adaptation
/// field stuffing. `cc` is the PID's continuity counter, advanced once per packet.
pub fn write_unit(out: &mut BytesMut, pid: u16, cc: &mut u8, flags: UnitFlags, unit: &[u8]) {
    let mut rest = unit;
    let mut first = true;
    loop {
        // Adaptation field body (after its length byte), before stuffing.
        let mut af = [0u8; 7];
        let mut af_len = 0;
        if first && (flags.pcr.is_some() || flags.random_access) {
            af[0] = if flags.random_access { 0x40 } else { 0 };
            af_len = 1;
            if let Some(pcr) = flags.pcr {
                af[0] |= 0x10;
                let base = pcr & TIMESTAMP_MASK;
                // 33-bit base, 6 reserved bits, 9-bit extension (0).
                let bits = (base << 15) | (0x3f << 9);
                af[1..7].copy_from_slice(&bits.to_be_bytes()[2..8]);
                af_len = 7;
            }
        }
        let has_af = af_len > 0;
        let room = PAYLOAD_SIZE - if has_af { 1 + af_len } else { 0 };
        let take = rest.len().min(room);
        // Stuffing needed to fill the packet with fewer bytes than room.
        let stuffing = room - take;
        let (chunk, tail) = rest.split_at(take);

        out.reserve(PACKET_SIZE);
        let pusi = if first { 0x40 } else { 0 };
        out.extend_from_slice(&[SYNC_BYTE, pusi | ((pid >> 8) as u8 & 0x1f), pid as u8]);
        let needs_af = has_af || stuffing > 0;
        out.extend_from_slice(&[if needs_af { 0x30 } else { 0x10 } | (*cc & 0x0f)]);
        *cc = (*cc + 1) & 0x0f;
        if has_af {
            out.extend_from_slice(&[(af_len + stuffing) as u8]);
            out.extend_from_slice(&af[..af_len]);
            out.resize(out.len() + stuffing, 0xff);
        } else if stuffing > 0 {
            // An adaptation field of `stuffing` bytes: its length byte, then (if room) a flags
            // byte and 0xFF stuffing.
            out.extend_from_slice(&[(stuffing - 1) as u8]);
            if stuffing > 1 {
                out.extend_from_slice(&[0x00]);
                out.resize(out.len() + stuffing - 2, 0xff);
            }
        }
        out.extend_from_slice(chunk);
        rest = tail;
        first = false;
        if rest.is_empty() {
            break;
        }
    }
}

/// Writes a PSI section as one payload unit (pointer field 0, then the section). A section
/// longer than one packet continues in the next ones; the rest of the last packet is 0xFF
/// (PSI stuffing, not adaptation field stuffing).
pub fn write_section(out: &mut BytesMut, pid: u16, cc: &mut u8, section: &[u8]) {
    let mut unit = Vec::with_capacity(PAYLOAD_SIZE);
    unit.push(0x00);
    unit.extend_from_slice(section);
    let padded = unit.len().div_ceil(PAYLOAD_SIZE).max(1) * PAYLOAD_SIZE;
    unit.resize(padded, 0xff);
    write_unit(out, pid, cc, UnitFlags::default(), &unit);
}

fn push_timestamp(out: &mut Vec<u8>, prefix: u8, ts: u64) {
    let ts = ts & TIMESTAMP_MASK;
    out.extend_from_slice(&[
        (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8 & 0x7f) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8 & 0x7f) << 1) | 1,
    ]);
}

/// A PES header for `stream_id` with `pts` (and `dts` when it differs), announcing
/// `es_len` bytes of elementary stream data. With `bounded` false (video), `PES_packet_length`
/// is 0 (unbounded); when bounded and the packet is too long for 16 bits, `None`.
pub fn pes_header(stream_id: u8, pts: u64, dts: Option<u64>, es_len: usize, bounded: bool) -> Option<Vec<u8>> {
    let dts = dts.filter(|&d| d & TIMESTAMP_MASK != pts & TIMESTAMP_MASK);
    let header_data_len: u8 = if dts.is_some() { 10 } else { 5 };
    let packet_len = if bounded { u16::try_from(es_len + 3 + usize::from(header_data_len)).ok()? } else { 0 };
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(&[0x00, 0x00, 0x01, stream_id]);
    h.extend_from_slice(&packet_len.to_be_bytes());
    // '10', not scrambled, no priority, data_alignment_indicator 1, no copyright, copy.
    h.push(0x84);
    h.push(if dts.is_some() { 0xc0 } else { 0x80 });
    h.push(header_data_len);
    match dts {
        Some(dts) => {
            push_timestamp(&mut h, 0x3, pts);
            push_timestamp(&mut h, 0x1, dts);
        }
        None => push_timestamp(&mut h, 0x2, pts),
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_ts(b: &[u8]) -> u64 {
        (u64::from(b[0] >> 1 & 0x07) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1)
    }

    #[test]
    fn every_size_fills_whole_packets() {
        for len in 0..600 {
            for flags in [
                UnitFlags::default(),
                UnitFlags { pcr: Some(12345), random_access: true },
                UnitFlags { pcr: None, random_access: true },
            ] {
                let unit: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut out = BytesMut::new();
                let mut cc = 15;
                write_unit(&mut out, 0x100, &mut cc, flags, &unit);
                assert_eq!(out.len() % PACKET_SIZE, 0, "len {len}");
                let packets = out.len() / PACKET_SIZE;
                assert_eq!(cc, (15 + packets as u8) & 0x0f);
                // Recover the payload: skip header and adaptation field of each packet.
                let mut payload = Vec::new();
                for (i, p) in out.chunks(PACKET_SIZE).enumerate() {
                    assert_eq!(p[0], SYNC_BYTE);
                    assert_eq!(p[1] & 0x40 != 0, i == 0);
                    let mut start = 4;
                    if p[3] & 0x20 != 0 {
                        start += 1 + usize::from(p[4]);
                    }
                    payload.extend_from_slice(&p[start..]);
                }
                assert_eq!(payload, unit, "len {len}");
            }
        }
    }

    #[test]
    fn pcr_and_random_access() {
        let mut out = BytesMut::new();
        let mut cc = 0;
        let pcr = (1u64 << 32) + 0x1234_5678;
        write_unit(&mut out, 0x100, &mut cc, UnitFlags { pcr: Some(pcr), random_access: true }, &[1, 2, 3]);
        assert_eq!(out[3] & 0x30, 0x30);
        assert_eq!(out[5], 0x50);
        let b = &out[6..12];
        let base = (u64::from(b[0]) << 25)
            | (u64::from(b[1]) << 17)
            | (u64::from(b[2]) << 9)
            | (u64::from(b[3]) << 1)
            | u64::from(b[4] >> 7);
        assert_eq!(base, pcr);
        assert_eq!(&out[185..188], &[1, 2, 3]);
    }

    #[test]
    fn pes_headers() {
        let h = pes_header(0xe0, 183_600, Some(180_000), 1000, false).unwrap();
        assert_eq!(&h[..9], &[0, 0, 1, 0xe0, 0, 0, 0x84, 0xc0, 10]);
        assert_eq!(h[9] >> 4, 3);
        assert_eq!(read_ts(&h[9..14]), 183_600);
        assert_eq!(h[14] >> 4, 1);
        assert_eq!(read_ts(&h[14..19]), 180_000);
        let h = pes_header(0xc0, TIMESTAMP_MASK, Some(TIMESTAMP_MASK), 100, true).unwrap();
        assert_eq!(&h[..9], &[0, 0, 1, 0xc0, 0, 108, 0x84, 0x80, 5]);
        assert_eq!(read_ts(&h[9..14]), TIMESTAMP_MASK);
        assert!(pes_header(0xc0, 0, None, 70_000, true).is_none());
    }
}

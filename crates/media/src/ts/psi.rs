//! Program-specific information: the PAT and PMT sections that tell a demuxer which PIDs carry
//! which codec, each protected by a CRC32/MPEG-2. An HLS segment repeats them so it can be
//! decoded on its own.

/// PID of the Program Association Table.
pub const PAT_PID: u16 = 0x0000;
/// PID of the Program Map Table of our single program.
pub const PMT_PID: u16 = 0x1000;
/// The one program number.
pub const PROGRAM_NUMBER: u16 = 1;
/// `transport_stream_id` written in the PAT.
const TRANSPORT_STREAM_ID: u16 = 1;

/// `stream_type` of H.264 video (ISO/IEC 13818-1 table 2-34).
pub const STREAM_TYPE_H264: u8 = 0x1b;
/// `stream_type` of AAC audio with ADTS framing.
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0f;

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC32/MPEG-2: polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection, no final XOR.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    data.iter().fold(0xffff_ffff, |crc, &b| {
        let index = usize::from(((crc >> 24) as u8) ^ b);
        (crc << 8) ^ CRC_TABLE.get(index).copied().unwrap_or(0)
    })
}

/// Appends the CRC of everything in `section` to it.
fn finish(mut section: Vec<u8>) -> Vec<u8> {
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    section
}

/// Writes the 3 bytes `table_id`, `section_syntax_indicator` + `section_length`, where
/// `body_len` counts the bytes after `section_length`, CRC included.
fn section_header(out: &mut Vec<u8>, table_id: u8, body_len: u16) {
    out.push(table_id);
    // section_syntax_indicator 1, '0', reserved '11', 12-bit length.
    out.extend_from_slice(&(0xb000 | (body_len & 0x0fff)).to_be_bytes());
}

/// The PAT section (no pointer field): program 1 on [`PMT_PID`].
pub fn pat() -> Vec<u8> {
    let mut s = Vec::with_capacity(16);
    section_header(&mut s, 0x00, 13);
    s.extend_from_slice(&TRANSPORT_STREAM_ID.to_be_bytes());
    s.extend_from_slice(&[0xc1, 0x00, 0x00]); // version 0, current; section 0 of 0
    s.extend_from_slice(&PROGRAM_NUMBER.to_be_bytes());
    s.extend_from_slice(&(0xe000 | PMT_PID).to_be_bytes());
    finish(s)
}

/// One elementary stream listed in the PMT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EsInfo {
    /// `stream_type`.
    pub stream_type: u8,
    /// The PID its PES packets use.
    pub pid: u16,
}

/// The PMT section (no pointer field) for `streams` (at most 2 in practice), PCR on `pcr_pid`,
/// with `version` (5 bits).
pub fn pmt(streams: &[EsInfo], pcr_pid: u16, version: u8) -> Vec<u8> {
    let count = u16::try_from(streams.len()).unwrap_or(0).min(16);
    let mut s = Vec::with_capacity(17 + 5 * usize::from(count));
    section_header(&mut s, 0x02, 13 + 5 * count);
    s.extend_from_slice(&PROGRAM_NUMBER.to_be_bytes());
    s.push(0xc1 | ((version & 0x1f) << 1)); // reserved '11', version, current_next 1
    s.extend_from_slice(&[0x00, 0x00]); // section 0 of 0
    s.extend_from_slice(&(0xe000 | (pcr_pid & 0x1fff)).to_be_bytes());
    s.extend_from_slice(&[0xf0, 0x00]); // no program descriptors
    for es in streams.iter().take(usize::from(count)) {
        s.push(es.stream_type);
        s.extend_from_slice(&(0xe000 | (es.pid & 0x1fff)).to_be_bytes());
        s.extend_from_slice(&[0xf0, 0x00]); // no ES descriptors
    }
    finish(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // The catalogued check value of CRC-32/MPEG-2.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
        assert_eq!(crc32_mpeg2(&[]), 0xffff_ffff);
    }

    #[test]
    fn standard_pat() {
        // The PAT every FFmpeg-made TS file carries: program 1 on PID 0x1000.
        let body = [0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00];
        assert_eq!(crc32_mpeg2(&body), 0x2ab1_04b2);
        assert_eq!(pat(), [&body[..], &[0x2a, 0xb1, 0x04, 0xb2]].concat());
        // A section followed by its CRC has a CRC of 0.
        assert_eq!(crc32_mpeg2(&pat()), 0);
    }

    #[test]
    fn pmt_layout() {
        let streams = [
            EsInfo { stream_type: STREAM_TYPE_H264, pid: 0x100 },
            EsInfo { stream_type: STREAM_TYPE_AAC_ADTS, pid: 0x101 },
        ];
        let s = pmt(&streams, 0x100, 3);
        let section_length = usize::from(u16::from_be_bytes([s[1], s[2]]) & 0x0fff);
        assert_eq!(s.len(), 3 + section_length);
        assert_eq!(s[0], 0x02);
        assert_eq!((s[5] >> 1) & 0x1f, 3);
        assert_eq!(&s[8..10], &[0xe1, 0x00]);
        assert_eq!(&s[12..17], &[0x1b, 0xe1, 0x00, 0xf0, 0x00]);
        assert_eq!(&s[17..22], &[0x0f, 0xe1, 0x01, 0xf0, 0x00]);
        assert_eq!(crc32_mpeg2(&s), 0);
    }
}

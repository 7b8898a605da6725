//! AAC: the AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) carried in an FLV AAC sequence header,
//! and the ADTS header that raw AAC frames need inside MPEG-TS/HLS.

use crate::bits::BitReader;
use crate::error::MediaError;

const WHAT: &str = "AudioSpecificConfig";

/// Sampling frequencies by `samplingFrequencyIndex`.
const SAMPLE_RATES: [u32; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

const AOT_SBR: u8 = 5;
const AOT_PS: u8 = 29;

/// What an AudioSpecificConfig says about the decoded output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AacConfig {
    /// Audio object type: 1 Main, 2 LC, 3 SSR, 5 HE (SBR), 29 HEv2 (SBR + PS)... When SBR is
    /// signalled implicitly (backward-compatible sync extension) this is 5 or 29 too.
    pub object_type: u8,
    /// Output sample rate in Hz (for HE-AAC, the SBR rate, usually twice the core rate).
    pub sample_rate: u32,
    /// Output channels (for HEv2, 2: parametric stereo on a mono core). 0 if the channel layout
    /// is given by a program config element.
    pub channels: u8,
}

fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, MediaError> {
    let aot = r.bits_u8(5)?;
    if aot == 31 { Ok(32 + r.bits_u8(6)?) } else { Ok(aot) }
}

fn read_sample_rate(r: &mut BitReader<'_>) -> Result<u32, MediaError> {
    let index = r.bits(4)?;
    if index == 15 {
        let rate = r.bits(24)?;
        if rate == 0 {
            return Err(MediaError::invalid(WHAT, "explicit sample rate of 0"));
        }
        return Ok(rate);
    }
    usize::try_from(index)
        .ok()
        .and_then(|i| SAMPLE_RATES.get(i).copied())
        .ok_or(MediaError::Unsupported { what: "AAC sampling frequency index", value: index })
}

fn channels_of(config: u8) -> u8 {
    match config {
        7 | 12 | 14 => 8,
        11 => 7,
        13 => 24,
        c if c <= 6 => c,
        _ => 0,
    }
}

impl AacConfig {
    /// Parses an AudioSpecificConfig (the body of an AAC sequence header after the 2-byte FLV
    /// audio header). Handles escaped object types, explicit 24-bit rates, explicit
    /// (hierarchical) and implicit (sync extension) SBR/PS signalling.
    pub fn parse(asc: &[u8]) -> Result<AacConfig, MediaError> {
        let mut r = BitReader::new(asc, WHAT);
        let mut object_type = read_object_type(&mut r)?;
        if object_type == 0 {
            return Err(MediaError::invalid(WHAT, "audio object type 0"));
        }
        let mut sample_rate = read_sample_rate(&mut r)?;
        let channel_config = r.bits_u8(4)?;
        let mut channels = channels_of(channel_config);

        if object_type == AOT_SBR || object_type == AOT_PS {
            // Explicit hierarchical signalling: output rate, then the core object type.
            sample_rate = read_sample_rate(&mut r)?;
            let _core = read_object_type(&mut r)?;
            if object_type == AOT_PS && channels == 1 {
                channels = 2;
            }
            return Ok(AacConfig { object_type, sample_rate, channels });
        }

        // Backward-compatible signalling: after GASpecificConfig, a sync extension may announce
        // SBR (and PS). Only simple GA layouts are inspected; anything unusual stays as read.
        if matches!(object_type, 1..=4) && channel_config != 0 {
            let _frame_length_flag = r.flag()?;
            if r.flag()? {
                r.skip(14)?; // coreCoderDelay
            }
            let extension_flag = r.flag()?;
            if !extension_flag && r.remaining() >= 16 && r.bits(11)? == 0x2b7 {
                let ext_type = read_object_type(&mut r)?;
                if ext_type == AOT_SBR && r.flag()? {
                    object_type = AOT_SBR;
                    sample_rate = read_sample_rate(&mut r)?;
                    if r.remaining() >= 12 && r.bits(11)? == 0x548 && r.flag()? {
                        object_type = AOT_PS;
                        if channels == 1 {
                            channels = 2;
                        }
                    }
                }
            }
        }
        Ok(AacConfig { object_type, sample_rate, channels })
    }

    /// SRS's name for the object type: "Main", "LC", "SSR", "HE", "HEv2", else "Other".
    pub fn profile_name(&self) -> &'static str {
        match self.object_type {
            1 => "Main",
            2 => "LC",
            3 => "SSR",
            AOT_SBR => "HE",
            AOT_PS => "HEv2",
            _ => "Other",
        }
    }

    /// The 7-byte ADTS header (MPEG-4, no CRC) for a raw AAC frame of `payload_len` bytes.
    ///
    /// ADTS describes the AAC core: for HE-AAC (object type 5/29) it says LC at half the output
    /// rate (SBR is then found implicitly by decoders), and for HEv2 one core channel. Object
    /// types ADTS cannot express are written as LC. A frame too long for the 13-bit length field
    /// (over 8184 bytes, impossible for real AAC frames) gets the largest length.
    pub fn adts_header(&self, payload_len: usize) -> [u8; 7] {
        let (profile, rate, channels) = match self.object_type {
            AOT_SBR | AOT_PS => {
                let core_channels = if self.object_type == AOT_PS && self.channels == 2 { 1 } else { self.channels };
                (1u8, self.sample_rate / 2, core_channels)
            }
            1..=4 => (self.object_type - 1, self.sample_rate, self.channels),
            _ => (1, self.sample_rate, self.channels),
        };
        let sfi = sample_rate_index(rate);
        let channel_config: u8 = match channels {
            1..=6 => channels,
            8 => 7,
            _ => 0,
        };
        let len = u16::try_from(payload_len.saturating_add(7)).unwrap_or(u16::MAX).min(0x1fff);
        let [len_hi, len_lo] = len.to_be_bytes();
        [
            0xff,
            0xf1,
            (profile << 6) | (sfi << 2) | (channel_config >> 2),
            ((channel_config & 0x03) << 6) | (len_hi >> 3),
            (len_hi << 5) | (len_lo >> 3),
            ((len_lo & 0x07) << 5) | 0x1f,
            0xfc,
        ]
    }
}

/// The `samplingFrequencyIndex` of the table rate nearest to `rate`.
fn sample_rate_index(rate: u32) -> u8 {
    let mut best = 0u8;
    let mut best_diff = u32::MAX;
    for (i, &r) in SAMPLE_RATES.iter().enumerate() {
        let diff = r.abs_diff(rate);
        if diff < best_diff {
            best_diff = diff;
            best = u8::try_from(i).unwrap_or(0);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_44100_stereo() {
        let c = AacConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(c, AacConfig { object_type: 2, sample_rate: 44100, channels: 2 });
        assert_eq!(c.profile_name(), "LC");
    }

    #[test]
    fn lc_48000_stereo_and_mono() {
        let c = AacConfig::parse(&[0x11, 0x90]).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48000, 2));
        let c = AacConfig::parse(&[0x11, 0x88]).unwrap();
        assert_eq!(c.channels, 1);
        // 5.1 and 7.1
        assert_eq!(AacConfig::parse(&[0x11, 0xb0]).unwrap().channels, 6);
        assert_eq!(AacConfig::parse(&[0x11, 0xb8]).unwrap().channels, 8);
    }

    #[test]
    fn he_aac_explicit() {
        // AOT 5, core 22050 (index 7), stereo, extension 44100 (index 4), core AOT 2.
        // 00101 0111 0010 0100 00010 000 -> 0x2b 0x92 0x08 0x00
        let c = AacConfig::parse(&[0x2b, 0x92, 0x08, 0x00]).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (5, 44100, 2));
        assert_eq!(c.profile_name(), "HE");
        // HEv2: AOT 29, 24000 core (index 6), mono, extension 48000 (index 3), core AOT 2.
        // 11101 0110 0001 0011 00010 0000 -> 0xeb 0x09 0x88 0x00
        let c = AacConfig::parse(&[0xeb, 0x09, 0x88, 0x00]).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (29, 48000, 2));
        assert_eq!(c.profile_name(), "HEv2");
    }

    #[test]
    fn he_aac_implicit_sync_extension() {
        // LC 24000 stereo, GASpecificConfig 000, then 0x2b7, AOT 5, sbr 1, index 3 (48000).
        // 00010 0110 0010 000 | 01010110111 00101 1 0011 -> padded
        let c = AacConfig::parse(&[0x13, 0x10, 0x56, 0xe5, 0x98]).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (5, 48000, 2));
    }

    #[test]
    fn escaped_object_type_and_explicit_rate() {
        // AOT 31 + 6 bits (escape to 32+10=42), index 15 + 24-bit 12345, channels 1.
        // 11111 001010 1111 000000000011000000111001 0001
        let bits = "11111001010111100000000001100000011100100010000";
        let mut bytes = Vec::new();
        for chunk in bits.as_bytes().chunks(8) {
            let mut b = 0u8;
            for (i, c) in chunk.iter().enumerate() {
                if *c == b'1' {
                    b |= 0x80 >> i;
                }
            }
            bytes.push(b);
        }
        let c = AacConfig::parse(&bytes).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (42, 12345, 1));
        assert_eq!(c.profile_name(), "Other");
    }

    #[test]
    fn bad_configs_are_errors() {
        assert!(AacConfig::parse(&[]).is_err());
        assert!(AacConfig::parse(&[0x12]).is_err());
        assert!(AacConfig::parse(&[0x00, 0x10]).is_err());
        // Sampling index 13 is reserved.
        assert!(AacConfig::parse(&[0x16, 0x90]).is_err());
    }

    #[test]
    fn adts_header_bits() {
        let c = AacConfig::parse(&[0x12, 0x10]).unwrap();
        let h = c.adts_header(100);
        // len = 107 = 0b000_0000_1101_011
        assert_eq!(h, [0xff, 0xf1, 0x50, 0x80, 0x0d, 0x7f, 0xfc]);
        let syncword = (u16::from(h[0]) << 4) | u16::from(h[1] >> 4);
        assert_eq!(syncword, 0xfff);
        assert_eq!(h[1] & 0x01, 1, "protection absent");
        assert_eq!(h[2] >> 6, 1, "profile LC");
        assert_eq!((h[2] >> 2) & 0x0f, 4, "44100");
        let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
        assert_eq!(channels, 2);
        let len = (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        assert_eq!(len, 107);

        let big = c.adts_header(8184);
        let len = (usize::from(big[3] & 0x03) << 11) | (usize::from(big[4]) << 3) | usize::from(big[5] >> 5);
        assert_eq!(len, 8191);
        let over = c.adts_header(100_000);
        assert_eq!(over, big);
    }

    #[test]
    fn adts_for_he_aac_describes_the_core() {
        let he = AacConfig { object_type: 29, sample_rate: 48000, channels: 2 };
        let h = he.adts_header(10);
        assert_eq!(h[2] >> 6, 1);
        assert_eq!((h[2] >> 2) & 0x0f, 6, "24000 core rate");
        assert_eq!(((h[2] & 1) << 2) | (h[3] >> 6), 1, "mono core");
        let main = AacConfig { object_type: 1, sample_rate: 48000, channels: 1 };
        assert_eq!(main.adts_header(0)[2] >> 6, 0);
    }
}

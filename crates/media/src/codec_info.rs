//! What the SRS API reports about a stream's codecs (`video` and `audio` objects of
//! `/api/v1/streams`), derived from the frames a publisher sends.

use crate::aac::AacConfig;
use crate::av1::Av1Config;
use crate::avc::AvcConfig;
use crate::hevc::HevcConfig;
use crate::tag::{
    self, AudioCodec, AudioPacket, VIDEO_FRAME_KEY, VideoCodec, VideoPacket, parse_audio_tag, parse_video_tag,
};

/// Video codec, profile, level and size, as SRS reports them.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoInfo {
    /// "H264", "HEVC", "AV1", "VP6" or "Other".
    pub codec: &'static str,
    /// Profile name ("Main", "High", ...; "Other" when unknown).
    pub profile: String,
    /// Level name ("3.1", ...; "Other" when unknown).
    pub level: String,
    /// Width in pixels (0 when unknown).
    pub width: u32,
    /// Height in pixels (0 when unknown).
    pub height: u32,
}

/// Audio codec, rate, channels and profile, as SRS reports them.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioInfo {
    /// "AAC", "MP3", "Opus" or "Other".
    pub codec: &'static str,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u8,
    /// Profile name (AAC: "LC", "HE", ...; others: "Other").
    pub profile: String,
}

impl VideoInfo {
    /// From a video sequence header frame body: legacy FLV AVC (codec id 7) or HEVC (codec id
    /// 12), or E-RTMP `avc1`, `hvc1`, `av01` sequence start. `None` if the body is not a
    /// sequence header or does not parse.
    ///
    /// VP6 has no sequence header: for legacy codec ids 4/5, a keyframe gives the size instead.
    pub fn from_sequence_header(payload: &[u8]) -> Option<VideoInfo> {
        let t = parse_video_tag(payload).ok()?;
        if matches!(t.codec, VideoCodec::Vp6 | VideoCodec::Vp6Alpha) {
            return vp6_info(&t);
        }
        if t.packet != VideoPacket::SequenceStart {
            return None;
        }
        match t.codec {
            VideoCodec::Avc => {
                let c = AvcConfig::parse(t.body).ok()?;
                Some(VideoInfo {
                    codec: "H264",
                    profile: c.profile_name().to_string(),
                    level: c.level_name(),
                    width: c.width,
                    height: c.height,
                })
            }
            VideoCodec::Hevc => {
                let c = HevcConfig::parse(t.body).ok()?;
                Some(VideoInfo {
                    codec: "HEVC",
                    profile: c.profile_name().to_string(),
                    level: c.level_name(),
                    width: c.width,
                    height: c.height,
                })
            }
            VideoCodec::Av1 => {
                let c = Av1Config::parse(t.body).ok()?;
                Some(VideoInfo {
                    codec: "AV1",
                    profile: c.profile_name().to_string(),
                    level: c.level_name(),
                    width: c.width,
                    height: c.height,
                })
            }
            _ => Some(VideoInfo {
                codec: "Other",
                profile: "Other".to_string(),
                level: "Other".to_string(),
                width: 0,
                height: 0,
            }),
        }
    }
}

/// Size from a VP6 intra frame header (FLV adds an adjustment byte, and for VP6 alpha a 24-bit
/// alpha offset, before the VP6 data).
fn vp6_info(t: &tag::VideoTag<'_>) -> Option<VideoInfo> {
    if t.frame_type != VIDEO_FRAME_KEY {
        return None;
    }
    let (&adjust, rest) = t.body.split_first()?;
    let data = if t.codec == VideoCodec::Vp6Alpha { rest.get(3..)? } else { rest };
    let b0 = *data.first()?;
    if b0 & 0x80 != 0 {
        return None; // not an intra frame
    }
    let b1 = *data.get(1)?;
    let separated_coeff = b0 & 0x01 != 0;
    let filter_header = (b1 >> 1) & 0x03;
    let dims_at = if separated_coeff || filter_header == 0 { 4 } else { 2 };
    let dims = data.get(dims_at..dims_at + 2)?;
    let rows = u32::from(*dims.first()?);
    let cols = u32::from(*dims.get(1)?);
    let width = (cols * 16).checked_sub(u32::from(adjust >> 4))?;
    let height = (rows * 16).checked_sub(u32::from(adjust & 0x0f))?;
    Some(VideoInfo { codec: "VP6", profile: "Other".to_string(), level: "Other".to_string(), width, height })
}

/// FLV `SoundRate` values (5.5, 11, 22, 44 kHz), as SRS lists them.
const FLV_RATES: [u32; 4] = [5512, 11025, 22050, 44100];

impl AudioInfo {
    /// From an audio tag body.
    ///
    /// AAC needs the sequence header: rate and channels come from the AudioSpecificConfig (the
    /// real rate, e.g. 48000, not the FLV header's 44 kHz). MP3 reads the MPEG audio frame header
    /// when the body has one, else the FLV rate/type bits. Opus (E-RTMP) reads the `OpusHead`
    /// channel count and reports 48000, Opus's decoding rate. Other legacy formats use the FLV
    /// bits (with the fixed rates of Nellymoser 8/16 kHz, G.711 and Speex). `None` for an AAC
    /// frame that is not a sequence header, or a body that does not parse.
    pub fn from_audio_tag(payload: &[u8]) -> Option<AudioInfo> {
        let t = parse_audio_tag(payload).ok()?;
        match t.codec {
            AudioCodec::Aac => {
                if t.packet != AudioPacket::SequenceStart {
                    return None;
                }
                let c = AacConfig::parse(t.body).ok()?;
                Some(AudioInfo {
                    codec: "AAC",
                    sample_rate: c.sample_rate,
                    channels: c.channels,
                    profile: c.profile_name().to_string(),
                })
            }
            AudioCodec::Opus => {
                if t.packet != AudioPacket::SequenceStart {
                    return None;
                }
                let head = t.body.strip_prefix(b"OpusHead")?;
                let channels = *head.get(1)?;
                Some(AudioInfo { codec: "Opus", sample_rate: 48000, channels, profile: "Other".to_string() })
            }
            AudioCodec::Mp3 => {
                let (rate, channels) = mpeg_audio_header(t.body)
                    .or_else(|| if t.enhanced { None } else { Some(flv_rate_channels(t.flags)) })?;
                Some(AudioInfo { codec: "MP3", sample_rate: rate, channels, profile: "Other".to_string() })
            }
            AudioCodec::Legacy(_) | AudioCodec::Other(_) => {
                let (rate, channels) = if t.enhanced { (0, 0) } else { flv_rate_channels(t.flags) };
                Some(AudioInfo { codec: "Other", sample_rate: rate, channels, profile: "Other".to_string() })
            }
        }
    }
}

/// Rate and channels from a legacy FLV audio header byte.
fn flv_rate_channels(flags: u8) -> (u32, u8) {
    let channels = if flags & 0x01 != 0 { 2 } else { 1 };
    let rate = match flags >> 4 {
        14 | 5 | 7 | 8 => 8000,
        4 | 11 => 16000,
        _ => FLV_RATES.get(usize::from((flags >> 2) & 0x03)).copied().unwrap_or(44100),
    };
    (rate, channels)
}

/// Rate and channels from an MPEG-1/2/2.5 audio frame header at the start of `data`.
fn mpeg_audio_header(data: &[u8]) -> Option<(u32, u8)> {
    let h = data.get(..4)?;
    let (b1, b2, b3) = (*h.get(1)?, *h.get(2)?, *h.get(3)?);
    if *h.first()? != 0xff || b1 & 0xe0 != 0xe0 {
        return None;
    }
    let base = match (b1 >> 3) & 0x03 {
        0 => [11025, 12000, 8000],  // MPEG 2.5
        2 => [22050, 24000, 16000], // MPEG 2
        3 => [44100, 48000, 32000], // MPEG 1
        _ => return None,
    };
    let rate = *base.get(usize::from((b2 >> 2) & 0x03))?;
    let channels = if b3 >> 6 == 3 { 1 } else { 2 };
    Some((rate, channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_needs_the_sequence_header() {
        let info = AudioInfo::from_audio_tag(&[0xaf, 0x00, 0x11, 0x90]).unwrap();
        assert_eq!(info, AudioInfo { codec: "AAC", sample_rate: 48000, channels: 2, profile: "LC".to_string() });
        assert_eq!(AudioInfo::from_audio_tag(&[0xaf, 0x01, 0x21, 0x00]), None);
        assert_eq!(AudioInfo::from_audio_tag(&[0xaf, 0x00]), None);
        assert_eq!(AudioInfo::from_audio_tag(&[]), None);
    }

    #[test]
    fn mp3_rate_from_the_frame_header() {
        // FFmpeg's FLV muxer writes 0x2f (44 kHz in the FLV bits) for 48 kHz MP3.
        let info = AudioInfo::from_audio_tag(&[0x2f, 0xff, 0xfb, 0x54, 0x64]).unwrap();
        assert_eq!((info.codec, info.sample_rate, info.channels), ("MP3", 48000, 2));
        // No frame header: FLV bits (22 kHz mono).
        let info = AudioInfo::from_audio_tag(&[0x28]).unwrap();
        assert_eq!((info.sample_rate, info.channels), (22050, 1));
        // MPEG-2 mono 24 kHz.
        let info = AudioInfo::from_audio_tag(&[0x2e, 0xff, 0xf3, 0x54, 0xc0]).unwrap();
        assert_eq!((info.sample_rate, info.channels), (24000, 1));
    }

    #[test]
    fn other_legacy_formats() {
        let info = AudioInfo::from_audio_tag(&[0x72, 0x00]).unwrap();
        assert_eq!((info.codec, info.sample_rate, info.channels), ("Other", 8000, 1));
        let info = AudioInfo::from_audio_tag(&[0xb2, 0x00]).unwrap();
        assert_eq!(info.sample_rate, 16000);
        let info = AudioInfo::from_audio_tag(&[0x3f, 0x00]).unwrap();
        assert_eq!((info.sample_rate, info.channels), (44100, 2));
    }

    #[test]
    fn opus_from_opus_head() {
        let mut p = vec![0x90];
        p.extend_from_slice(b"Opus");
        p.extend_from_slice(b"OpusHead");
        p.extend_from_slice(&[1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        let info = AudioInfo::from_audio_tag(&p).unwrap();
        assert_eq!((info.codec, info.sample_rate, info.channels), ("Opus", 48000, 2));
        p[0] = 0x91;
        assert_eq!(AudioInfo::from_audio_tag(&p), None);
    }

    #[test]
    fn enhanced_aac() {
        let mut p = vec![0x90];
        p.extend_from_slice(b"mp4a");
        p.extend_from_slice(&[0x12, 0x10]);
        let info = AudioInfo::from_audio_tag(&p).unwrap();
        assert_eq!((info.codec, info.sample_rate, info.channels), ("AAC", 44100, 2));
    }

    #[test]
    fn vp6_size_from_a_keyframe() {
        // Keyframe, adjustment 0 (w) / 8 (h); intra frame, version byte with filter header 0
        // (so 2 offset bytes), 23 MB rows x 40 MB cols.
        let p = [0x14, 0x08, 0x00, 0x40, 0x00, 0x00, 23, 40, 23, 40];
        let info = VideoInfo::from_sequence_header(&p).unwrap();
        assert_eq!((info.codec, info.width, info.height), ("VP6", 640, 360));
        // Inter frame: nothing.
        assert_eq!(VideoInfo::from_sequence_header(&[0x24, 0x08, 0x80]), None);
    }

    #[test]
    fn non_sequence_headers_give_none() {
        assert_eq!(VideoInfo::from_sequence_header(&[]), None);
        assert_eq!(VideoInfo::from_sequence_header(&[0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65]), None);
        assert_eq!(VideoInfo::from_sequence_header(&[0x17, 0x00, 0, 0, 0, 0x01, 0x64]), None);
    }
}

//! Fragmented MP4 (CMAF) for HLS: the init segment a player reads once (`EXT-X-MAP`) and the
//! fragments (`moof` + `mdat`) that carry the frames.
//!
//! The boxes themselves come from `mp4-atom`; this module maps what FLV carries onto them: the
//! decoder configuration records (avcC, hvcC, av1C: an FLV sequence header holds the same bytes
//! an MP4 sample entry does), AAC's AudioSpecificConfig, and coded frames, which are already MP4
//! samples (length-prefixed NAL units for H.264/H.265, low-overhead OBUs for AV1, raw AAC). The
//! timescale is FLV's: milliseconds.

use bytes::Bytes;
use mp4_atom::{
    Atom, Audio, Av01, Av1c, Avc1, Avcc, Dinf, Dref, Encode, Esds, FourCC, Ftyp, Hdlr, Hvc1, Hvcc, Mdhd, Mdia, Mfhd,
    Minf, Moof, Moov, Mp4a, Mvex, Mvhd, Smhd, Stbl, Stco, Stsc, Stsd, Stsz, Stts, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex,
    Trun, TrunEntry, Url, Visual, Vmhd, esds,
};

use crate::aac::AacConfig;
use crate::codec_info::VideoInfo;
use crate::error::MediaError;
use crate::frame::{Frame, FrameKind};
use crate::tag::{AudioCodec, AudioPacket, VideoCodec, VideoPacket, parse_audio_tag, parse_video_tag};

/// The video track's id, when there is one.
pub const VIDEO_TRACK: u32 = 1;
/// The audio track's id, when there is one.
pub const AUDIO_TRACK: u32 = 2;
const TIMESCALE: u32 = 1000;
/// `sample_depends_on` = 2: a sync sample.
const SYNC_SAMPLE: u32 = 0x0200_0000;
/// `sample_depends_on` = 1 and `sample_is_non_sync_sample`.
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

#[derive(Clone, Debug, PartialEq)]
enum VideoConfig {
    Avc(Avcc),
    Hevc(Hvcc),
    Av1(Av1c),
}

#[derive(Clone, Debug, PartialEq)]
struct VideoTrack {
    config: VideoConfig,
    width: u16,
    height: u16,
}

#[derive(Clone, Debug, PartialEq)]
struct AudioTrack {
    asc: Vec<u8>,
    config: AacConfig,
}

/// The stream's tracks as its sequence headers describe them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tracks {
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
}

/// One frame as an MP4 sample of a fragment.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub track: u32,
    /// Decode time, ms.
    pub dts: u64,
    /// Until the next sample of the track, ms.
    pub duration: u32,
    /// Composition offset (presentation - decode time), ms.
    pub cts: i32,
    pub keyframe: bool,
    pub data: Bytes,
}

fn atom_error(what: &'static str) -> impl Fn(mp4_atom::Error) -> MediaError {
    move |_| MediaError::invalid(what, "the MP4 box library refused it")
}

impl Tracks {
    /// Takes a sequence header (H.264, H.265 or AV1 video; AAC audio) and returns whether it
    /// changed the tracks (a new init segment is then due). Other frames, and codecs fMP4 HLS
    /// does not carry here, change nothing.
    pub fn configure(&mut self, frame: &Frame) -> Result<bool, MediaError> {
        if !frame.sequence_header {
            return Ok(false);
        }
        match frame.kind {
            FrameKind::Video => {
                let tag = parse_video_tag(&frame.payload)?;
                if tag.packet != VideoPacket::SequenceStart {
                    return Ok(false);
                }
                let mut record = tag.body;
                let config = match tag.codec {
                    VideoCodec::Avc => VideoConfig::Avc(Avcc::decode_body(&mut record).map_err(atom_error("avcC"))?),
                    VideoCodec::Hevc => VideoConfig::Hevc(Hvcc::decode_body(&mut record).map_err(atom_error("hvcC"))?),
                    VideoCodec::Av1 => VideoConfig::Av1(Av1c::decode_body(&mut record).map_err(atom_error("av1C"))?),
                    _ => return Ok(false),
                };
                let info = VideoInfo::from_sequence_header(&frame.payload);
                let (width, height) = info.map_or((0, 0), |i| (i.width, i.height));
                let track = VideoTrack {
                    config,
                    width: u16::try_from(width).unwrap_or(u16::MAX),
                    height: u16::try_from(height).unwrap_or(u16::MAX),
                };
                let changed = self.video.as_ref() != Some(&track);
                self.video = Some(track);
                Ok(changed)
            }
            FrameKind::Audio => {
                let tag = parse_audio_tag(&frame.payload)?;
                if tag.codec != AudioCodec::Aac || tag.packet != AudioPacket::SequenceStart {
                    return Ok(false);
                }
                let track = AudioTrack { asc: tag.body.to_vec(), config: AacConfig::parse(tag.body)? };
                let changed = self.audio.as_ref() != Some(&track);
                self.audio = Some(track);
                Ok(changed)
            }
            FrameKind::Script => Ok(false),
        }
    }

    pub fn has_video(&self) -> bool {
        self.video.is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.video.is_none() && self.audio.is_none()
    }

    /// The RFC 6381 `CODECS` of the tracks, for a playlist (e.g. `avc1.64001f,mp4a.40.2`).
    pub fn codecs(&self) -> String {
        let mut out = Vec::new();
        if let Some(v) = &self.video {
            out.push(match &v.config {
                VideoConfig::Avc(c) => {
                    format!(
                        "avc1.{:02x}{:02x}{:02x}",
                        c.avc_profile_indication, c.profile_compatibility, c.avc_level_indication
                    )
                }
                VideoConfig::Hevc(c) => format!(
                    "hvc1.{}.{:X}.{}{}.B0",
                    c.general_profile_idc,
                    u32::from_be_bytes(c.general_profile_compatibility_flags).reverse_bits(),
                    if c.general_tier_flag { 'H' } else { 'L' },
                    c.general_level_idc
                ),
                VideoConfig::Av1(c) => format!(
                    "av01.{}.{:02}{}.{:02}",
                    c.seq_profile,
                    c.seq_level_idx_0,
                    if c.seq_tier_0 { 'H' } else { 'M' },
                    if c.twelve_bit {
                        12
                    } else if c.high_bitdepth {
                        10
                    } else {
                        8
                    }
                ),
            });
        }
        if let Some(a) = &self.audio {
            out.push(format!("mp4a.40.{}", a.config.object_type));
        }
        out.join(",")
    }

    /// `ftyp` + `moov` for the tracks configured so far.
    pub fn init_segment(&self) -> Result<Bytes, MediaError> {
        let mut trak = Vec::new();
        let mut trex = Vec::new();
        if let Some(v) = &self.video {
            trak.push(video_trak(v));
            trex.push(Trex { track_id: VIDEO_TRACK, default_sample_description_index: 1, ..Default::default() });
        }
        if let Some(a) = &self.audio {
            trak.push(audio_trak(a));
            trex.push(Trex { track_id: AUDIO_TRACK, default_sample_description_index: 1, ..Default::default() });
        }
        if trak.is_empty() {
            return Err(MediaError::invalid("fMP4 init segment", "no H.264, H.265, AV1 or AAC track"));
        }
        let ftyp = Ftyp {
            major_brand: FourCC::new(b"iso6"),
            minor_version: 0,
            compatible_brands: vec![FourCC::new(b"iso6"), FourCC::new(b"cmfc"), FourCC::new(b"mp41")],
        };
        let moov = Moov {
            mvhd: Mvhd {
                timescale: TIMESCALE,
                rate: 1.into(),
                volume: 1.into(),
                next_track_id: 3,
                ..Default::default()
            },
            mvex: Some(Mvex { mehd: None, trex }),
            trak,
            ..Default::default()
        };
        let mut out = Vec::new();
        ftyp.encode(&mut out).map_err(atom_error("ftyp"))?;
        moov.encode(&mut out).map_err(atom_error("moov"))?;
        Ok(out.into())
    }
}

fn empty_stbl(codec: mp4_atom::Codec) -> Stbl {
    Stbl {
        stsd: Stsd { codecs: vec![codec] },
        stts: Stts::default(),
        stsc: Stsc::default(),
        stsz: Stsz::default(),
        stco: Some(Stco::default()),
        ..Default::default()
    }
}

fn dinf() -> Dinf {
    Dinf { dref: Dref { entries: vec![Url::default().into()] } }
}

fn video_trak(v: &VideoTrack) -> Trak {
    let visual = Visual {
        data_reference_index: 1,
        width: v.width,
        height: v.height,
        horizresolution: 72.into(),
        vertresolution: 72.into(),
        frame_count: 1,
        compressor: "".into(),
        depth: 24,
    };
    let codec: mp4_atom::Codec = match &v.config {
        VideoConfig::Avc(avcc) => Avc1 { visual, avcc: avcc.clone(), ..Default::default() }.into(),
        VideoConfig::Hevc(hvcc) => Hvc1 { visual, hvcc: hvcc.clone(), ..Default::default() }.into(),
        VideoConfig::Av1(av1c) => Av01 { visual, av1c: av1c.clone(), ..Default::default() }.into(),
    };
    Trak {
        tkhd: Tkhd {
            track_id: VIDEO_TRACK,
            enabled: true,
            in_movie: true,
            width: v.width.into(),
            height: v.height.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd { timescale: TIMESCALE, language: "und".into(), ..Default::default() },
            hdlr: Hdlr { handler: FourCC::new(b"vide"), name: "Ferrocast video".into() },
            minf: Minf { vmhd: Some(Vmhd::default()), dinf: dinf(), stbl: empty_stbl(codec), ..Default::default() },
        },
        ..Default::default()
    }
}

fn audio_trak(a: &AudioTrack) -> Trak {
    let c = &a.config;
    let mp4a = Mp4a {
        audio: Audio {
            data_reference_index: 1,
            channel_count: u16::from(c.channels.max(1)),
            sample_size: 16,
            sample_rate: u16::try_from(c.sample_rate).unwrap_or(0).into(),
        },
        esds: Esds {
            es_desc: esds::EsDescriptor {
                es_id: AUDIO_TRACK as u16,
                dec_config: esds::DecoderConfig {
                    object_type_indication: 0x40,
                    stream_type: 5,
                    up_stream: 0,
                    dec_specific: Some(esds::DecoderSpecific {
                        profile: c.object_type,
                        freq_index: 0,
                        chan_conf: c.channels,
                        raw: a.asc.clone(),
                    }),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        btrt: None,
        taic: None,
    };
    Trak {
        tkhd: Tkhd {
            track_id: AUDIO_TRACK,
            alternate_group: 1,
            enabled: true,
            in_movie: true,
            volume: 1.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd { timescale: TIMESCALE, language: "und".into(), ..Default::default() },
            hdlr: Hdlr { handler: FourCC::new(b"soun"), name: "Ferrocast audio".into() },
            minf: Minf {
                smhd: Some(Smhd::default()),
                dinf: dinf(),
                stbl: empty_stbl(mp4a.into()),
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

/// A coded frame's sample data and flags: `(track, composition offset, keyframe, data)`. `None`
/// for sequence headers, metadata, and codecs the init segment does not describe.
pub fn sample_of(frame: &Frame) -> Option<(u32, i32, bool, Bytes)> {
    match frame.kind {
        FrameKind::Video => {
            let tag = parse_video_tag(&frame.payload).ok()?;
            if tag.packet != VideoPacket::CodedFrames
                || !matches!(tag.codec, VideoCodec::Avc | VideoCodec::Hevc | VideoCodec::Av1)
            {
                return None;
            }
            let start = frame.payload.len() - tag.body.len();
            Some((VIDEO_TRACK, tag.composition_time, tag.frame_type == 1, frame.payload.slice(start..)))
        }
        FrameKind::Audio => {
            let tag = parse_audio_tag(&frame.payload).ok()?;
            if tag.codec != AudioCodec::Aac || tag.packet != AudioPacket::CodedFrames {
                return None;
            }
            let start = frame.payload.len() - tag.body.len();
            Some((AUDIO_TRACK, 0, true, frame.payload.slice(start..)))
        }
        FrameKind::Script => None,
    }
}

/// One fragment: `moof` (sequence number `sequence`, one `traf` per track with samples) and the
/// `mdat` with the samples, video first. Returns the bytes to append after the init segment.
pub fn fragment(sequence: u32, samples: &[Sample]) -> Result<Bytes, MediaError> {
    let tracks: Vec<u32> =
        [VIDEO_TRACK, AUDIO_TRACK].into_iter().filter(|t| samples.iter().any(|s| s.track == *t)).collect();
    if tracks.is_empty() {
        return Err(MediaError::invalid("fMP4 fragment", "no samples"));
    }
    let build = |offsets: &[i32]| -> Moof {
        let traf = tracks
            .iter()
            .zip(offsets)
            .map(|(&track, &offset)| {
                let mine: Vec<&Sample> = samples.iter().filter(|s| s.track == track).collect();
                let entries = mine
                    .iter()
                    .map(|s| TrunEntry {
                        duration: Some(s.duration),
                        size: Some(u32::try_from(s.data.len()).unwrap_or(u32::MAX)),
                        flags: Some(if s.keyframe { SYNC_SAMPLE } else { NON_SYNC_SAMPLE }),
                        cts: (track == VIDEO_TRACK).then_some(i64::from(s.cts)),
                    })
                    .collect::<Vec<_>>();
                Traf {
                    tfhd: Tfhd { track_id: track, default_base_is_moof: true, ..Default::default() },
                    tfdt: Some(Tfdt { base_media_decode_time: mine[0].dts }),
                    trun: vec![Trun { data_offset: Some(offset), samples: entries.into() }],
                    ..Default::default()
                }
            })
            .collect();
        Moof { mfhd: Mfhd { sequence_number: sequence }, traf }
    };
    // The data offsets do not change the moof's size: encode once to learn it, then for real.
    let mut probe = Vec::new();
    build(&vec![0; tracks.len()]).encode(&mut probe).map_err(atom_error("moof"))?;
    let mut offsets = Vec::with_capacity(tracks.len());
    let mut at = probe.len() + 8;
    for &track in &tracks {
        offsets.push(i32::try_from(at).map_err(|_| MediaError::invalid("fMP4 fragment", "larger than 2 GiB"))?);
        at += samples.iter().filter(|s| s.track == track).map(|s| s.data.len()).sum::<usize>();
    }
    let mdat_len =
        u32::try_from(at - probe.len()).map_err(|_| MediaError::invalid("fMP4 fragment", "larger than 4 GiB"))?;
    let mut out = Vec::with_capacity(at);
    build(&offsets).encode(&mut out).map_err(atom_error("moof"))?;
    out.extend_from_slice(&mdat_len.to_be_bytes());
    out.extend_from_slice(b"mdat");
    for &track in &tracks {
        samples.iter().filter(|s| s.track == track).for_each(|s| out.extend_from_slice(&s.data));
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::Decode;

    fn demo() -> Vec<Frame> {
        let fixture = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.flv")).unwrap();
        crate::flv::read_all(&fixture).unwrap()
    }

    #[test]
    fn the_demo_stream_maps_to_an_h264_and_aac_init_segment_and_fragments() {
        let frames = demo();
        let mut tracks = Tracks::default();
        let changed: Vec<bool> = frames.iter().map(|f| tracks.configure(f).unwrap()).filter(|c| *c).collect();
        assert_eq!(changed.len(), 2, "one video and one audio sequence header");
        assert!(tracks.codecs().starts_with("avc1.") && tracks.codecs().ends_with(",mp4a.40.2"), "{}", tracks.codecs());
        let init = tracks.init_segment().unwrap();
        let mut input = &init[..];
        let ftyp = Ftyp::decode(&mut input).unwrap();
        assert_eq!(ftyp.major_brand, FourCC::new(b"iso6"));
        let moov = Moov::decode(&mut input).unwrap();
        assert_eq!(moov.trak.len(), 2);
        assert!(input.is_empty());

        let samples: Vec<Sample> = frames
            .iter()
            .filter_map(|f| sample_of(f).map(|(track, cts, keyframe, data)| (f.timestamp, track, cts, keyframe, data)))
            .take(40)
            .map(|(ts, track, cts, keyframe, data)| Sample {
                track,
                dts: u64::from(ts),
                duration: 20,
                cts,
                keyframe,
                data,
            })
            .collect();
        assert!(samples[0].keyframe && samples[0].track == VIDEO_TRACK, "the stream starts with a keyframe");
        let frag = fragment(7, &samples).unwrap();
        let mut input = &frag[..];
        let moof = Moof::decode(&mut input).unwrap();
        assert_eq!(moof.mfhd.sequence_number, 7);
        assert_eq!(moof.traf.len(), 2);
        let mdat = mp4_atom::Mdat::decode(&mut input).unwrap();
        let total: usize = samples.iter().map(|s| s.data.len()).sum();
        assert_eq!(mdat.data.len(), total);
        // The video trun points at the first byte of the mdat's payload.
        let moof_len = frag.len() - 8 - total;
        assert_eq!(moof.traf[0].trun[0].data_offset, Some((moof_len + 8) as i32));
        assert_eq!(&mdat.data[..samples[0].data.len()], &samples[0].data[..]);
    }

    #[test]
    fn an_av1_sequence_start_makes_an_av01_track() {
        // E-RTMP: sequence start of `av01`, then an av1C record (main profile, level 4.0, 8 bit,
        // 4:2:0) with no config OBUs.
        let header = [&[0x90u8][..], b"av01", &[0x81, 0x08, 0x0c, 0x00]].concat();
        let mut tracks = Tracks::default();
        assert!(tracks.configure(&Frame::new(FrameKind::Video, 0, Bytes::from(header))).unwrap());
        assert_eq!(tracks.codecs(), "av01.0.08M.08");
        let init = tracks.init_segment().unwrap();
        let mut input = &init[..];
        Ftyp::decode(&mut input).unwrap();
        let moov = Moov::decode(&mut input).unwrap();
        assert!(matches!(moov.trak[0].mdia.minf.stbl.stsd.codecs[0], mp4_atom::Codec::Av01(_)));
    }

    #[test]
    fn hostile_sequence_headers_are_errors_not_panics() {
        let mut tracks = Tracks::default();
        let bad_avc = Frame::new(FrameKind::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64]));
        assert!(bad_avc.sequence_header);
        assert!(tracks.configure(&bad_avc).is_err());
        let bad_aac = Frame::new(FrameKind::Audio, 0, Bytes::from_static(&[0xaf, 0]));
        assert!(tracks.configure(&bad_aac).is_err());
        assert!(tracks.init_segment().is_err(), "nothing configured");
        assert!(fragment(1, &[]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_sequence_header_bytes_are_an_answer_not_a_panic(
            codec in proptest::sample::select(vec![0x17u8, 0x1c, 0x90]),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            // Legacy AVC and HEVC, or an E-RTMP sequence start of av01 (the FourCC follows).
            let mut payload = vec![codec, 0, 0, 0, 0];
            if codec == 0x90 {
                payload = [&[0x90][..], b"av01"].concat();
            }
            payload.extend_from_slice(&body);
            let frame = Frame::new(FrameKind::Video, 0, Bytes::from(payload));
            let mut tracks = Tracks::default();
            if tracks.configure(&frame).unwrap_or(false) {
                let _ = tracks.init_segment();
                let _ = tracks.codecs();
            }
        }
    }
}

//! MPEG-TS muxing for HLS segments.
//!
//! HLS players want MPEG-2 transport streams (ISO/IEC 13818-1), while everything inside the node
//! is an FLV-style [`Frame`]. This module bridges the two, sans-IO: frames in, 188-byte packets
//! out. H.264 goes from AVCC (length-prefixed NAL units, parameter sets in the sequence header)
//! to Annex B (start codes, AUD, SPS/PPS repeated on every keyframe); AAC goes from raw frames
//! (AudioSpecificConfig in the sequence header) to ADTS. PAT and PMT open every segment so each
//! one can be decoded on its own.
//!
//! Decisions: only H.264 and AAC are muxed (other codecs are skipped); one frame makes one PES
//! packet; continuity counters run on across segments; timestamps are the FLV milliseconds on
//! the 90 kHz clock, with PTS/DTS [`PCR_DELAY`] ahead of the PCR so decoders have time to buffer.

mod packet;
mod psi;

pub use packet::{PACKET_SIZE, SYNC_BYTE};
pub use psi::{PAT_PID, PMT_PID, crc32_mpeg2};

use bytes::{Bytes, BytesMut};

use crate::aac::AacConfig;
use crate::avc::AvcConfig;
use crate::error::MediaError;
use crate::frame::{Frame, FrameKind};
use crate::tag::{AudioCodec, AudioPacket, VideoCodec, VideoPacket, parse_audio_tag, parse_video_tag};
use packet::{TIMESTAMP_MASK, UnitFlags, pes_header, write_section, write_unit};
use psi::{EsInfo, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_H264};

/// PID of the H.264 elementary stream.
pub const VIDEO_PID: u16 = 0x100;
/// PID of the AAC elementary stream.
pub const AUDIO_PID: u16 = 0x101;
const VIDEO_STREAM_ID: u8 = 0xe0;
const AUDIO_STREAM_ID: u8 = 0xc0;

/// How far PTS/DTS run ahead of the PCR, on the 90 kHz clock (700 ms, as FFmpeg does).
pub const PCR_DELAY: u64 = 63_000;
/// A PES on the PCR PID carries a PCR when the last one is at least this old (90 kHz), so
/// PCRs stay within the 100 ms the standard asks for at any frame rate above 10 fps.
const PCR_INTERVAL: u64 = 4_500;

const NAL_TYPE_AUD: u8 = 9;
/// Access unit delimiter NAL unit: `primary_pic_type` 7 (any slice type).
const AUD: [u8; 6] = [0, 0, 0, 1, 0x09, 0xf0];
/// Largest raw AAC frame an ADTS header can describe (13-bit frame length, 7-byte header).
const MAX_AAC_FRAME: usize = 0x1fff - 7;

/// Turns FLV-style frames (H.264 AVCC video with its AVCDecoderConfigurationRecord sequence
/// header, AAC raw frames with their AudioSpecificConfig sequence header) into 188-byte TS
/// packets.
#[derive(Debug, Default)]
pub struct TsMuxer {
    avc: Option<AvcConfig>,
    aac: Option<AacConfig>,
    /// PAT + PMT must precede the next PES.
    psi_pending: bool,
    /// Which streams (video, audio) the last PMT listed.
    listed: Option<(bool, bool)>,
    pmt_version: u8,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
    /// PCR base (90 kHz, not wrapped) last written.
    last_pcr: Option<u64>,
    /// A video keyframe has been written: inter frames before it are useless to a decoder.
    video_started: bool,
}

/// One PES packet ready to be cut into transport packets.
struct Pes {
    pid: u16,
    /// PCR base for this frame's time (90 kHz, not wrapped).
    clock: u64,
    keyframe: bool,
    bytes: Vec<u8>,
}

impl TsMuxer {
    /// A muxer whose first output will start with PAT + PMT.
    pub fn new() -> TsMuxer {
        TsMuxer { psi_pending: true, ..TsMuxer::default() }
    }

    /// Feed every frame of the stream in order (sequence headers included: they are remembered,
    /// not output). Returns the TS bytes for this frame (possibly empty). PAT + PMT are written
    /// before the first PES of each segment (call [`TsMuxer::start_segment`] at each segment
    /// boundary), and a video keyframe gets an AUD and the SPS/PPS prepended, in Annex B.
    ///
    /// Video: AVCC length-prefixed NAL units become Annex B; PTS = DTS + composition time;
    /// PCR on the video PID at each keyframe and at least every 100 ms of stream time.
    /// Audio: ADTS header + raw AAC; in an audio-only stream the PCR is on the audio PID.
    /// Script frames, other codecs, frames before their sequence header and video frames
    /// before the first keyframe are skipped (empty output). A malformed frame or sequence
    /// header is an error and changes nothing: the muxer can take the next frame.
    pub fn write_frame(&mut self, frame: &Frame) -> Result<Bytes, MediaError> {
        let pes = match frame.kind {
            FrameKind::Script => None,
            FrameKind::Video => self.video_pes(frame)?,
            FrameKind::Audio => self.audio_pes(frame)?,
        };
        Ok(pes.map(|pes| self.packetize(&pes)).unwrap_or_default())
    }

    /// Makes the next `write_frame` output begin with PAT + PMT (each segment must be
    /// decodable on its own), and its first PES on the PCR PID carry a PCR.
    pub fn start_segment(&mut self) {
        self.psi_pending = true;
        self.last_pcr = None;
    }

    fn video_pes(&mut self, frame: &Frame) -> Result<Option<Pes>, MediaError> {
        let tag = parse_video_tag(&frame.payload)?;
        if tag.codec != VideoCodec::Avc {
            return Ok(None);
        }
        match tag.packet {
            VideoPacket::SequenceStart => {
                self.avc = Some(AvcConfig::parse(tag.body)?);
                return Ok(None);
            }
            VideoPacket::CodedFrames => {}
            VideoPacket::SequenceEnd | VideoPacket::Other(_) => return Ok(None),
        }
        let Some(config) = &self.avc else { return Ok(None) };
        let keyframe = frame.is_video_keyframe();
        if !keyframe && !self.video_started {
            return Ok(None);
        }
        // The access unit as Annex B (parameter sets first on a keyframe), after an AUD.
        let access_unit = config.annex_b(tag.body, keyframe)?;
        if access_unit.is_empty() {
            return Ok(None);
        }
        let es_len = AUD.len() + access_unit.len();
        let clock = u64::from(frame.timestamp) * 90;
        let dts = clock + PCR_DELAY;
        let pts = wrap(i64::try_from(dts).unwrap_or(0) + i64::from(tag.composition_time) * 90);
        let mut bytes = pes_header(VIDEO_STREAM_ID, pts, Some(dts), es_len, false).unwrap_or_default();
        bytes.reserve(es_len);
        bytes.extend_from_slice(&AUD);
        bytes.extend_from_slice(&access_unit);
        if keyframe {
            self.video_started = true;
        }
        Ok(Some(Pes { pid: VIDEO_PID, clock, keyframe, bytes }))
    }

    fn audio_pes(&mut self, frame: &Frame) -> Result<Option<Pes>, MediaError> {
        let tag = parse_audio_tag(&frame.payload)?;
        if tag.codec != AudioCodec::Aac {
            return Ok(None);
        }
        match tag.packet {
            AudioPacket::SequenceStart => {
                self.aac = Some(AacConfig::parse(tag.body)?);
                return Ok(None);
            }
            AudioPacket::CodedFrames => {}
            AudioPacket::Other(_) => return Ok(None),
        }
        let Some(config) = &self.aac else { return Ok(None) };
        if tag.body.is_empty() {
            return Ok(None);
        }
        if tag.body.len() > MAX_AAC_FRAME {
            return Err(MediaError::invalid("AAC frame", "longer than an ADTS frame can describe"));
        }
        let clock = u64::from(frame.timestamp) * 90;
        let pts = clock + PCR_DELAY;
        let es_len = 7 + tag.body.len();
        let mut bytes = pes_header(AUDIO_STREAM_ID, pts, None, es_len, true)
            .ok_or(MediaError::invalid("AAC frame", "too long for a PES packet"))?;
        bytes.extend_from_slice(&config.adts_header(tag.body.len()));
        bytes.extend_from_slice(tag.body);
        Ok(Some(Pes { pid: AUDIO_PID, clock, keyframe: false, bytes }))
    }

    fn pcr_pid(&self) -> u16 {
        if self.avc.is_some() { VIDEO_PID } else { AUDIO_PID }
    }

    /// Writes PAT + PMT when a segment starts or the set of streams changed.
    fn write_psi(&mut self, out: &mut BytesMut) {
        let streams = (self.avc.is_some(), self.aac.is_some());
        if self.listed != Some(streams) {
            if self.listed.is_some() {
                self.pmt_version = (self.pmt_version + 1) & 0x1f;
            }
            self.listed = Some(streams);
            self.psi_pending = true;
            // The PCR PID may have changed: start its clock afresh.
            self.last_pcr = None;
        }
        if !self.psi_pending {
            return;
        }
        self.psi_pending = false;
        let mut es = Vec::with_capacity(2);
        if streams.0 {
            es.push(EsInfo { stream_type: STREAM_TYPE_H264, pid: VIDEO_PID });
        }
        if streams.1 {
            es.push(EsInfo { stream_type: STREAM_TYPE_AAC_ADTS, pid: AUDIO_PID });
        }
        write_section(out, PAT_PID, &mut self.cc_pat, &psi::pat());
        let pmt = psi::pmt(&es, self.pcr_pid(), self.pmt_version);
        write_section(out, PMT_PID, &mut self.cc_pmt, &pmt);
    }

    fn packetize(&mut self, pes: &Pes) -> Bytes {
        let mut out = BytesMut::with_capacity((pes.bytes.len() / 184 + 4) * PACKET_SIZE);
        self.write_psi(&mut out);
        let mut flags = UnitFlags { pcr: None, random_access: pes.keyframe };
        if pes.pid == self.pcr_pid() {
            let due = pes.keyframe || self.last_pcr.is_none_or(|last| pes.clock.abs_diff(last) >= PCR_INTERVAL);
            if due {
                flags.pcr = Some(pes.clock);
                self.last_pcr = Some(pes.clock);
            }
        }
        let cc = if pes.pid == VIDEO_PID { &mut self.cc_video } else { &mut self.cc_audio };
        write_unit(&mut out, pes.pid, cc, flags, &pes.bytes);
        out.freeze()
    }
}

/// A signed 90 kHz time wrapped to 33 bits.
fn wrap(ts: i64) -> u64 {
    ts.rem_euclid(1 << 33) as u64 & TIMESTAMP_MASK
}

/// Splits AVCC data (each NAL unit after a big-endian length of `length_size` bytes) into NAL
/// units, dropping empty ones and access unit delimiters (the muxer writes its own).
pub(crate) fn split_avcc(mut data: &[u8], length_size: u8) -> Result<Vec<&[u8]>, MediaError> {
    let size = usize::from(length_size);
    if !(1..=4).contains(&size) {
        return Err(MediaError::invalid("AVC NAL unit length", "size is not 1 to 4 bytes"));
    }
    let mut nals = Vec::new();
    while !data.is_empty() {
        let (len_bytes, rest) = data.split_at_checked(size).ok_or(MediaError::truncated("AVC NAL unit length"))?;
        let len = len_bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let (nal, rest) = rest.split_at_checked(len).ok_or(MediaError::truncated("AVC NAL unit"))?;
        if nal.first().is_some_and(|b| b & 0x1f != NAL_TYPE_AUD) {
            nals.push(nal);
        }
        data = rest;
    }
    Ok(nals)
}

#[cfg(test)]
mod tests;

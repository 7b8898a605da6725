//! AAC to Opus, once per stream, for WebRTC viewers: publishers send AAC, browsers' WebRTC plays
//! Opus.
//!
//! The engines share one `Transcoder` per stream that has WebRTC viewers (`Transcoders`). A frame is transcoded the
//! first time any viewer's feed reaches it, and its Opus packets are kept on the frame itself
//! (`Packet::opus`), so every other viewer, and a later one starting from the GOP cache, sends
//! the same packets. AAC-LC is decoded with symphonia, resampled to 48 kHz with rubato when the
//! source runs at another rate, and encoded in 20 ms Opus frames with opus-rs (pure Rust: no C
//! library for operators to install). Opus from an enhanced-RTMP publisher is passed through.
//!
//! RTP time is 48 kHz from the frames' presentation time, on the video's time line (90 kHz from
//! the same milliseconds), so the browser keeps the two in sync; a gap or jump in the source
//! re-anchors it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use audioadapter_buffers::direct::InterleavedSlice;
use bytes::Bytes;
use ferrocast_media::FrameKind;
use ferrocast_media::aac::AacConfig;
use ferrocast_media::tag::{AudioCodec, AudioPacket, parse_audio_tag};
use opus_rs::{Application, OpusEncoder};
use rubato::{Fft, FixedSync, Resampler};
use symphonia_codec_aac::AacDecoder;
use symphonia_core::codecs::audio::well_known::CODEC_ID_AAC;
use symphonia_core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia_core::packet::PacketRef;
use symphonia_core::units::{Duration, Timestamp};
use tracing::{debug, warn};

use crate::hub::Packet;
use crate::key::StreamKey;

/// Opus frames are 20 ms: 960 samples at 48 kHz.
const FRAME: usize = 960;
const OPUS_RATE: usize = 48_000;
/// A source timestamp this far from where the audio so far ends starts a new time line.
const JUMP_MS: f64 = 250.0;
/// Opus bitrate per channel (64 kbit/s stereo is transparent for most live audio).
const BITRATE_PER_CHANNEL: i32 = 32_000;
/// The largest Opus packet (RFC 6716 allows 1275 bytes per frame).
const MAX_PACKET: usize = 1500;
/// The sampling rates of AAC's frequency table (ISO/IEC 14496-3).
const AAC_RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/// One Opus packet and its RTP time (48 kHz).
#[derive(Debug, Clone)]
pub struct OpusPacket {
    pub rtp_time: u64,
    /// Shared by every session that sends it (and by their retransmission caches).
    pub data: std::sync::Arc<[u8]>,
}

/// Every played stream's transcoder, shared by the engines (a stream's viewers may be on
/// several), and how many sessions play it: the last one to leave drops it.
#[derive(Default)]
pub struct Transcoders {
    streams: Mutex<HashMap<StreamKey, Shared>>,
}

/// A stream's transcoder and its session count.
type Shared = (Arc<Mutex<Transcoder>>, usize);

impl Transcoders {
    /// The transcoder of `stream`, for one more session.
    pub fn acquire(&self, stream: &StreamKey) -> Arc<Mutex<Transcoder>> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let entry = streams.entry(stream.clone()).or_default();
        entry.1 += 1;
        entry.0.clone()
    }

    /// One session of `stream` ended.
    pub fn release(&self, stream: &StreamKey) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = streams.get_mut(stream) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                streams.remove(stream);
            }
        }
    }
}

/// A stream's audio for WebRTC: the codec state, and which frame it reached.
#[derive(Default)]
pub struct Transcoder {
    codec: Option<Codec>,
    /// When the latest transcoded frame reached the node: an older frame (a later viewer's GOP
    /// cache start, from before this transcoder existed) is not transcoded out of order.
    last: Option<Instant>,
    /// Whether a refusal was logged at warn level already (later ones go to debug: a publisher
    /// alternating bad headers must not flood the log).
    warned: bool,
}

impl Transcoder {
    /// The Opus packets for `p`: made on first sight, shared after; none for anything else.
    pub fn opus_for<'p>(&mut self, p: &'p Packet) -> &'p [OpusPacket] {
        if p.frame.kind != FrameKind::Audio {
            return &[];
        }
        // The sequence header is one shared packet the hub hands every new viewer: each
        // transcoder reads it (a new one after the stream's viewers all left, too).
        // (Only a header's tag is parsed here: every viewer passes every frame through this.)
        if p.frame.sequence_header
            && let Ok(tag) = parse_audio_tag(&p.frame.payload)
            && tag.codec == AudioCodec::Aac
            && tag.packet == AudioPacket::SequenceStart
        {
            self.configure(tag.body);
            return &[];
        }
        if let Some(done) = p.opus.get() {
            return done;
        }
        if self.last.is_some_and(|last| p.received < last) {
            return &[];
        }
        self.last = Some(p.received);
        p.opus.get_or_init(|| {
            // The decoders are third-party code fed by a publisher: a panic in them ends this
            // stream's audio, not the engine (and every viewer of the node).
            let run = std::panic::AssertUnwindSafe(|| self.transcode(p.frame.timestamp, &p.frame.payload));
            std::panic::catch_unwind(run).unwrap_or_else(|_| {
                self.codec = None;
                self.refuse("the AAC decoder failed on this stream's audio; WebRTC viewers get none".into());
                Vec::new()
            })
        })
    }

    fn transcode(&mut self, timestamp: u32, payload: &Bytes) -> Vec<OpusPacket> {
        let Ok(tag) = parse_audio_tag(payload) else { return Vec::new() };
        match (tag.codec, tag.packet) {
            (AudioCodec::Aac, AudioPacket::CodedFrames) => {
                self.codec.as_mut().map(|c| c.frame(timestamp, tag.body)).unwrap_or_default()
            }
            (AudioCodec::Opus, AudioPacket::CodedFrames) if tag.body.len() <= MAX_PACKET => {
                vec![OpusPacket { rtp_time: u64::from(timestamp) * 48, data: tag.body.into() }]
            }
            (AudioCodec::Opus | AudioCodec::Aac, _) => Vec::new(),
            (codec, _) => {
                self.refuse(format!("{codec:?} audio is not sent to WebRTC viewers (AAC-LC and Opus are)"));
                Vec::new()
            }
        }
    }

    fn configure(&mut self, asc: &[u8]) {
        if self.codec.as_ref().is_some_and(|c| c.asc == asc) {
            return;
        }
        self.codec = match Codec::new(asc) {
            Ok(c) => Some(c),
            Err(e) => {
                self.refuse(format!("WebRTC viewers get no audio: {e}"));
                None
            }
        };
    }

    fn refuse(&mut self, why: String) {
        if self.warned {
            debug!("{why}");
        } else {
            warn!("{why}");
            self.warned = true;
        }
    }
}

/// AAC decoder, resampler and Opus encoder for one AudioSpecificConfig.
struct Codec {
    asc: Vec<u8>,
    decoder: AacDecoder,
    channels: usize,
    rate: usize,
    /// From the source rate to 48 kHz, 960 samples out per call; none for a 48 kHz source.
    resampler: Option<Fft<f32>>,
    encoder: OpusEncoder,
    /// Decoded source samples (interleaved) not yet encoded.
    pending: Vec<f32>,
    decoded: Vec<f32>,
    resampled: Vec<f32>,
    out: Vec<u8>,
    /// The time line: the source time (ms) it started at, source frames decoded since, Opus
    /// frames made since.
    start_ms: u32,
    fed: u64,
    made: u64,
    started: bool,
}

impl Codec {
    fn new(asc: &[u8]) -> Result<Codec, String> {
        let config = AacConfig::parse(asc).map_err(|e| format!("bad AAC configuration: {e}"))?;
        if config.object_type != 2 {
            return Err(format!("AAC object type {} is not transcoded (AAC-LC is)", config.object_type));
        }
        let channels = usize::from(config.channels);
        if !(1..=2).contains(&channels) {
            return Err(format!("{channels} AAC channels are not transcoded (mono and stereo are)"));
        }
        // Only the rates AAC defines: an explicit rate of 1 Hz or 16 MHz would make the resampler
        // produce thousands of frames per input frame, or plan a gigabyte FFT.
        if !AAC_RATES.contains(&config.sample_rate) {
            return Err(format!("an AAC sample rate of {} Hz is not transcoded", config.sample_rate));
        }
        let rate = usize::try_from(config.sample_rate).map_err(|_| "AAC sample rate out of range")?;
        let mut params = AudioCodecParameters::new();
        params.for_codec(CODEC_ID_AAC).with_extra_data(asc.into());
        let decoder =
            AacDecoder::try_new(&params, &AudioDecoderOptions::default()).map_err(|e| format!("AAC decoder: {e}"))?;
        let resampler = if rate == OPUS_RATE {
            None
        } else {
            Some(
                Fft::new(rate, OPUS_RATE, FRAME, channels, FixedSync::Output)
                    .map_err(|e| format!("resampling {rate} Hz to 48 kHz: {e}"))?,
            )
        };
        let mut encoder = OpusEncoder::new(48_000, channels, Application::Audio)?;
        encoder.bitrate_bps = BITRATE_PER_CHANNEL * i32::try_from(channels).unwrap_or(2);
        debug!(rate, channels, "webrtc: transcoding AAC to Opus");
        Ok(Codec {
            asc: asc.to_vec(),
            decoder,
            channels,
            rate,
            resampler,
            encoder,
            pending: Vec::new(),
            decoded: Vec::new(),
            resampled: vec![0.0; FRAME * channels],
            out: vec![0; MAX_PACKET],
            start_ms: 0,
            fed: 0,
            made: 0,
            started: false,
        })
    }

    /// One AAC frame in, the Opus packets it completes out.
    fn frame(&mut self, timestamp: u32, body: &[u8]) -> Vec<OpusPacket> {
        let packet = PacketRef::new(0, Timestamp::new(0), Duration::new(1024), body);
        match self.decoder.decode_ref(&packet) {
            Ok(buf) if buf.spec().channels().count() == self.channels => {
                buf.copy_to_vec_interleaved(&mut self.decoded);
            }
            Ok(_) => return Vec::new(),
            Err(e) => {
                debug!("webrtc: an AAC frame does not decode: {e}");
                return Vec::new();
            }
        }
        let expected = f64::from(self.start_ms) + self.fed as f64 * 1000.0 / self.rate as f64;
        if !self.started || (f64::from(timestamp) - expected).abs() > JUMP_MS {
            self.restart(timestamp);
        }
        self.fed += (self.decoded.len() / self.channels) as u64;
        self.pending.extend_from_slice(&self.decoded);
        let mut packets = Vec::new();
        while let Some(packet) = self.next_packet() {
            packets.push(packet);
        }
        packets
    }

    /// A new time line from `timestamp`: what was pending belonged to the old one.
    fn restart(&mut self, timestamp: u32) {
        self.start_ms = timestamp;
        self.fed = 0;
        self.made = 0;
        self.started = true;
        self.pending.clear();
        if let Some(r) = &mut self.resampler {
            r.reset();
        }
    }

    /// Encodes the next 20 ms if that much is pending.
    fn next_packet(&mut self) -> Option<OpusPacket> {
        let ch = self.channels;
        let need = self.resampler.as_ref().map_or(FRAME, |r| r.input_frames_next());
        if self.pending.len() < need * ch {
            return None;
        }
        let pcm: &[f32] = match &mut self.resampler {
            None => &self.pending[..FRAME * ch],
            Some(r) => {
                let input = InterleavedSlice::new(&self.pending[..need * ch], ch, need).ok()?;
                let mut output = InterleavedSlice::new_mut(&mut self.resampled[..], ch, FRAME).ok()?;
                if let Err(e) = r.process_into_buffer(&input, &mut output, None) {
                    debug!("webrtc: resampling failed: {e}");
                    self.pending.clear();
                    return None;
                }
                &self.resampled
            }
        };
        let encoded = self.encoder.encode(pcm, FRAME, &mut self.out);
        self.pending.drain(..need * ch);
        let n = match encoded {
            Ok(n) => n,
            Err(e) => {
                debug!("webrtc: Opus encoding failed: {e}");
                return None;
            }
        };
        let rtp_time = u64::from(self.start_ms) * 48 + self.made * FRAME as u64;
        self.made += 1;
        Some(OpusPacket { rtp_time, data: self.out[..n].into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocast_media::Frame;

    fn fixture() -> Vec<Packet> {
        let flv = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.flv")).unwrap();
        ferrocast_media::flv::read_all(&flv).unwrap().into_iter().map(|f| Packet::new(f, false)).collect()
    }

    #[test]
    fn the_fixtures_aac_becomes_20_ms_opus_packets_on_the_sources_time_line() {
        let packets = fixture();
        let mut t = Transcoder::default();
        let opus: Vec<OpusPacket> = packets.iter().flat_map(|p| t.opus_for(p).to_vec()).collect();
        let aac_ms = packets
            .iter()
            .filter(|p| p.frame.kind == FrameKind::Audio && !p.frame.sequence_header)
            .map(|p| p.frame.timestamp)
            .collect::<Vec<_>>();
        let span_ms = aac_ms.last().unwrap() - aac_ms.first().unwrap();
        // One Opus packet per 20 ms of source, give or take the resampler's last chunk.
        let expected = span_ms as usize / 20;
        assert!(opus.len() + 3 >= expected && opus.len() <= expected + 3, "{} packets for {span_ms} ms", opus.len());
        assert!(opus.windows(2).all(|w| w[1].rtp_time == w[0].rtp_time + 960), "contiguous 20 ms steps");
        assert_eq!(opus[0].rtp_time, u64::from(aac_ms[0]) * 48, "anchored at the first AAC frame");
        // Real audio, not silence: Opus spends bytes on it (silence codes in a few bytes).
        let mean = opus.iter().map(|o| o.data.len()).sum::<usize>() / opus.len();
        assert!(mean > 40, "mean Opus packet {mean} bytes");
        // Each decodes as an Opus packet of one 20 ms frame (TOC config with 20 ms, code 0).
        let mut decoder = opus_rs::OpusDecoder::new(48_000, 2).unwrap();
        let mut pcm = vec![0f32; FRAME * 2];
        for o in &opus {
            assert_eq!(decoder.decode(&o.data, FRAME, &mut pcm).unwrap(), FRAME);
        }
    }

    #[test]
    fn engines_share_a_streams_transcoder_until_its_last_session_ends() {
        let all = Transcoders::default();
        let key = StreamKey::new("", "live", "a");
        let (one, two) = (all.acquire(&key), all.acquire(&key));
        assert!(Arc::ptr_eq(&one, &two), "one transcoder per stream");
        all.release(&key);
        assert!(Arc::ptr_eq(&all.acquire(&key), &one), "kept while a session plays");
        all.release(&key);
        all.release(&key);
        assert!(!Arc::ptr_eq(&all.acquire(&key), &one), "dropped with the last session");
        all.release(&key);
        all.release(&key); // more releases than sessions: no underflow
    }

    #[test]
    fn a_new_transcoder_reads_the_shared_sequence_header_again() {
        let packets = fixture();
        let mut first = Transcoder::default();
        let a: usize = packets.iter().map(|p| first.opus_for(p).len()).sum();
        // The stream's viewers left, a new one comes: the hub hands it the same header packet.
        let header = packets.iter().find(|p| p.frame.kind == FrameKind::Audio && p.frame.sequence_header).unwrap();
        let mut second = Transcoder::default();
        let _ = second.opus_for(header);
        assert!(second.codec.is_some(), "configured from the shared header");
        let fresh: Vec<Packet> = packets.iter().map(|p| Packet::new(p.frame.clone(), false)).collect();
        let b: usize = fresh.iter().map(|p| second.opus_for(p).len()).sum();
        assert!(a > 100 && b == a, "{a} then {b} packets");
    }

    #[test]
    fn a_frame_is_transcoded_once_and_shared_and_older_frames_are_not_transcoded_late() {
        let packets = fixture();
        let mut first = Transcoder::default();
        let a: Vec<_> = packets.iter().map(|p| first.opus_for(p).len()).collect();
        // A second transcoder (another engine) gets the same packets from the frames themselves.
        let mut second = Transcoder::default();
        let b: Vec<_> = packets.iter().map(|p| second.opus_for(p).len()).collect();
        assert_eq!(a, b);
        // A frame that reached the node before the latest one transcoded, seen for the first
        // time, gets nothing rather than breaking the codec's order.
        let old = Packet::new(packets.iter().find(|p| p.frame.kind == FrameKind::Audio).unwrap().frame.clone(), false);
        let late = Packet::new(Frame { timestamp: 1, ..old.frame.clone() }, false);
        let mut t = Transcoder::default();
        let _ = t.opus_for(&late);
        assert!(t.opus_for(&old).is_empty());
    }

    #[test]
    fn garbage_and_unsupported_audio_give_no_packets_and_no_panic() {
        let mut t = Transcoder::default();
        let seq = Packet::new(audio(&[0xaf, 0x00, 0xff, 0xff]), false);
        assert!(t.opus_for(&seq).is_empty());
        for body in [&[0xaf, 0x01][..], &[0xaf, 0x01, 0xde, 0xad, 0xbe, 0xef], &[0x2f, 0x00, 1, 2, 3], &[]] {
            assert!(t.opus_for(&Packet::new(audio(body), false)).is_empty());
        }
        // An explicit rate AAC does not define (1 Hz, escaped in 24 bits) is refused, not resampled.
        assert!(Codec::new(&[0x17, 0x80, 0x00, 0x00, 0x90]).err().is_some_and(|e| e.contains("1 Hz")));
        // HE-AAC (object type 5) is refused with a reason, not decoded wrongly.
        assert!(Codec::new(&[0x2b, 0x92, 0x08, 0x00]).err().is_some_and(|e| e.contains("object type 5")));
        // An AAC-LC stereo 44.1 kHz config is taken, and garbage frames after it decode to nothing.
        let mut t = Transcoder::default();
        let _ = t.opus_for(&Packet::new(audio(&[0xaf, 0x00, 0x12, 0x10]), false));
        assert!(t.codec.is_some());
        for n in 0..50u8 {
            let junk: Vec<u8> = [0xaf, 0x01].into_iter().chain((0..200).map(|i| i ^ n)).collect();
            let _ = t.opus_for(&Packet::new(audio(&junk), false));
        }
    }

    fn audio(payload: &[u8]) -> Frame {
        Frame {
            kind: FrameKind::Audio,
            timestamp: 0,
            keyframe: false,
            sequence_header: payload.get(1) == Some(&0),
            payload: Bytes::copy_from_slice(payload),
        }
    }
}

//! Cuts a stream into MPEG-TS segments at keyframes and keeps a sliding window of them in
//! memory: the state an HLS playlist and its segment requests are served from. Sans-IO: frames
//! in, segments and playlists out.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ferrocast_media::ts::TsMuxer;
use ferrocast_media::{Frame, FrameKind};

use super::window::{Window, Windowed};

/// One finished segment.
#[derive(Debug)]
pub struct Segment {
    /// Media sequence number; keeps increasing across publisher restarts.
    pub seq: u64,
    pub duration_ms: u32,
    /// The stream restarted before this segment (`#EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
    pub data: Bytes,
}

impl Windowed for Segment {
    fn duration_ms(&self) -> u32 {
        self.duration_ms
    }
    fn discontinuity(&self) -> bool {
        self.discontinuity
    }
}

struct Building {
    start_ts: u32,
    last_ts: u32,
    data: BytesMut,
    discontinuity: bool,
}

/// A segment is closed early at this many target durations, whatever the stream does (a stream of
/// inter frames never reaches a cut point).
pub const MAX_SEGMENT_TARGETS: u32 = 10;

pub struct Segmenter {
    muxer: TsMuxer,
    target_ms: u32,
    /// A segment is closed early at this size, or at `MAX_SEGMENT_TARGETS` target durations;
    /// frames until the next cut point are dropped.
    max_bytes: usize,
    current: Option<Building>,
    segments: Window<Arc<Segment>>,
    next_seq: u64,
    pending_discontinuity: bool,
    has_video: bool,
}

impl Segmenter {
    pub fn new(target_ms: u32, window: usize, max_bytes: usize) -> Segmenter {
        Segmenter {
            muxer: TsMuxer::new(),
            target_ms: target_ms.max(1),
            max_bytes: max_bytes.max(1),
            current: None,
            segments: Window::new(window),
            next_seq: 0,
            pending_discontinuity: false,
            has_video: false,
        }
    }

    /// Adds a frame. A segment is cut before a video keyframe once the current one has reached
    /// the target duration (before any audio frame when the stream has no video).
    pub fn push(&mut self, frame: &Frame) {
        let trimmed;
        let frame = match one_parameter_set(frame) {
            Some(f) => {
                trimmed = f;
                &trimmed
            }
            None => frame,
        };
        if frame.kind == FrameKind::Video && frame.sequence_header {
            self.has_video = true;
        }
        let is_media = !frame.sequence_header && frame.kind != FrameKind::Script;
        let cut_point =
            if self.has_video { frame.is_video_keyframe() } else { is_media && frame.kind == FrameKind::Audio };
        if cut_point {
            let long_enough =
                self.current.as_ref().is_none_or(|b| frame.timestamp.saturating_sub(b.start_ts) >= self.target_ms);
            if long_enough {
                self.finish(Some(frame.timestamp));
                self.muxer.start_segment();
                let discontinuity = std::mem::take(&mut self.pending_discontinuity);
                self.current = Some(Building {
                    start_ts: frame.timestamp,
                    last_ts: frame.timestamp,
                    data: BytesMut::new(),
                    discontinuity,
                });
            }
        }
        // Nothing is kept before the first cut point: a segment must start with a keyframe.
        let Some(building) = self.current.as_mut() else {
            // Sequence headers still configure the muxer.
            if frame.sequence_header {
                let _ = self.muxer.write_frame(frame);
            }
            return;
        };
        if let Ok(bytes) = self.muxer.write_frame(frame) {
            building.data.extend_from_slice(&bytes);
        }
        if is_media {
            building.last_ts = building.last_ts.max(frame.timestamp);
        }
        let too_long =
            building.last_ts.saturating_sub(building.start_ts) >= self.target_ms.saturating_mul(MAX_SEGMENT_TARGETS);
        if building.data.len() >= self.max_bytes || too_long {
            // Close it as it is (it starts at a cut point, so it plays) and drop frames until the
            // next cut point: memory stays within window x max_bytes whatever the publisher sends.
            self.finish(None);
        }
    }

    /// The publisher left: the segment being built is closed, the next one is marked as a
    /// discontinuity and the muxer starts afresh (the next publisher may use other codecs).
    pub fn restart(&mut self) {
        self.finish(None);
        self.muxer = TsMuxer::new();
        self.has_video = false;
        self.pending_discontinuity = true;
    }

    /// Nobody segments the stream any more: forget the window (it would be stale), keep the
    /// numbering, and mark the next segment as a discontinuity.
    pub fn clear(&mut self) {
        self.restart();
        self.segments.clear();
    }

    fn finish(&mut self, next_start: Option<u32>) {
        let Some(b) = self.current.take() else { return };
        if b.data.is_empty() {
            return;
        }
        let end = next_start.unwrap_or(b.last_ts);
        let duration_ms = end.saturating_sub(b.start_ts).max(1);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.segments.push(Arc::new(Segment {
            seq,
            duration_ms,
            discontinuity: b.discontinuity,
            data: b.data.freeze(),
        }));
    }

    /// The most bytes a finished segment can hold (for tests and bounds).
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    pub fn segment(&self, seq: u64) -> Option<Arc<Segment>> {
        self.segments.iter().find(|s| s.seq == seq).cloned()
    }

    pub fn has_segments(&self) -> bool {
        !self.segments.is_empty()
    }

    /// The live playlist, or None before the first segment is complete. `uri` names segment
    /// `seq` (relative to the playlist, with whatever query the viewer needs).
    pub fn playlist(&self, uri: impl Fn(u64) -> String) -> Option<String> {
        let first = self.segments.front()?;
        let target = self.segments.longest_ms().div_ceil(1000).max(1);
        let mut out =
            format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{}\n", first.seq);
        out.push_str(&self.segments.discontinuity_sequence().unwrap_or_default());
        for s in self.segments.iter() {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            out.push_str(&format!("#EXTINF:{:.3},\n{}\n", f64::from(s.duration_ms) / 1000.0, uri(s.seq)));
        }
        Some(out)
    }
}

/// An AVC sequence header (legacy FLV: codec 7, packet type 0) whose record holds more than one
/// SPS or PPS, rebuilt with the first of each. The TS muxer writes the parameter sets before every
/// keyframe, so a record of 31 SPS and 255 PPS of 64 KiB each would turn each 10-byte keyframe
/// into ~16 MiB of TS. None when the frame needs no change (or is not such a header).
fn one_parameter_set(frame: &Frame) -> Option<Frame> {
    let p = &frame.payload;
    let avc_header = frame.kind == FrameKind::Video && p.len() > 5 && p[0] & 0x8f == 0x07 && p[1] == 0;
    if !avc_header {
        return None;
    }
    let record = &p[5..];
    let config = ferrocast_media::avc::AvcConfig::parse(record).ok()?;
    if config.sps.len() <= 1 && config.pps.len() <= 1 {
        return None;
    }
    let mut out = BytesMut::with_capacity(16 + config.sps[0].len() + config.pps.first().map_or(0, |p| p.len()));
    out.extend_from_slice(&p[..5]); // FLV video header
    out.extend_from_slice(&record[..5]); // version, profile, compatibility, level, length size
    out.extend_from_slice(&[0xe1]);
    for (i, set) in [config.sps.first(), config.pps.first()].into_iter().enumerate() {
        if i == 1 {
            out.extend_from_slice(&[u8::from(set.is_some())]);
        }
        if let Some(set) = set {
            out.extend_from_slice(&u16::try_from(set.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(set);
        }
    }
    Some(Frame::new(FrameKind::Video, frame.timestamp, out.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_keyframes_keeps_a_window_and_numbers_on_across_restarts() {
        let mut s = Segmenter::new(2000, 3, 32 << 20);
        let fixture = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.flv")).unwrap();
        let all = ferrocast_media::flv::read_all(&fixture).unwrap();
        for f in &all {
            s.push(f);
        }
        assert_eq!(s.segments.len(), 3, "window of 3");
        assert!(
            s.segments.iter().all(|seg| (1800..=2200).contains(&seg.duration_ms)),
            "{:?}",
            s.segments.iter().map(|x| x.duration_ms).collect::<Vec<_>>()
        );
        let last = s.segments.back().unwrap().seq;
        s.restart();
        for f in &all {
            s.push(f);
        }
        let seqs: Vec<u64> = s.segments.iter().map(|x| x.seq).collect();
        assert!(seqs.iter().all(|&q| q > last), "numbers keep increasing: {seqs:?}");
        let playlist = s.playlist(|q| format!("demo-{q}.ts")).unwrap();
        assert!(playlist.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{}", seqs[0])));
        assert!(s.segment(0).is_none(), "a segment that left the window is gone");
        assert!(s.segment(seqs[0]).is_some());
    }

    #[test]
    fn the_segment_after_a_restart_is_a_discontinuity() {
        let fixture = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.flv")).unwrap();
        let all = ferrocast_media::flv::read_all(&fixture).unwrap();
        let mut s = Segmenter::new(2000, 10, 32 << 20);
        all.iter().take(200).for_each(|f| s.push(f));
        s.restart();
        all.iter().take(200).for_each(|f| s.push(f));
        all.iter().skip(200).for_each(|f| s.push(f));
        let playlist = s.playlist(|q| format!("x-{q}.ts")).unwrap();
        assert_eq!(playlist.matches("#EXT-X-DISCONTINUITY").count(), 1, "{playlist}");
        assert!(playlist.starts_with("#EXTM3U\n"));
    }
}

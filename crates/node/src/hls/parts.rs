//! Low-Latency HLS on fMP4: cuts a stream into parts (`--hls-part-ms`) and segments of parts (cut
//! at keyframes, like the TS variant), keeps a window of them in memory and writes the LL-HLS
//! playlist. Sans-IO: frames in; parts, segments and playlists out.
//!
//! A part is one fMP4 fragment (`moof` + `mdat`); a segment is its parts back to back, so both
//! are served from the same bytes. A part ends when the next video frame would take it past the
//! part target, so parts never exceed `PART-TARGET` on a steady frame rate; a keyframe past the
//! segment target ends the segment too, and the part it starts is `INDEPENDENT`. The frames are
//! held until the next one of their track arrives, which gives each sample its duration.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use ferrocast_media::Frame;
use ferrocast_media::fmp4::{self, AUDIO_TRACK, Sample, Tracks, VIDEO_TRACK};

use super::segmenter::MAX_SEGMENT_TARGETS;
use super::window::{Window, Windowed};

/// One part: an fMP4 fragment.
#[derive(Debug)]
pub struct Part {
    pub duration_ms: u32,
    /// Starts with a keyframe.
    pub independent: bool,
    pub data: Bytes,
}

/// A segment: finished, or the one being built (`complete` false).
#[derive(Debug)]
pub struct LlSegment {
    /// Media sequence number.
    pub msn: u64,
    pub start_ts: u32,
    pub duration_ms: u32,
    pub discontinuity: bool,
    /// The init segment version its parts need (`init-{v}.mp4`).
    pub init: u32,
    pub parts: Vec<Arc<Part>>,
    bytes: usize,
}

impl Windowed for LlSegment {
    fn duration_ms(&self) -> u32 {
        self.duration_ms
    }
    fn discontinuity(&self) -> bool {
        self.discontinuity
    }
}

impl LlSegment {
    /// The segment's bytes: its parts in order.
    pub fn data(&self) -> Vec<Bytes> {
        self.parts.iter().map(|p| p.data.clone()).collect()
    }
}

/// Where the segmenter is: the sequence number of the segment being built and its parts so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub msn: u64,
    pub parts: u32,
}

/// How a blocking playlist request (`_HLS_msn`, `_HLS_part`) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// The segment (or part) asked for exists: answer now.
    Ready,
    /// It is coming: wait.
    Wait,
    /// More than two segments (or three target durations of parts) ahead of the playlist: 400,
    /// per RFC 8216bis.
    TooFar,
}

pub struct PartSegmenter {
    tracks: Tracks,
    /// Init segments by version: the current one and those the window's segments still need.
    inits: BTreeMap<u32, Bytes>,
    init_version: u32,
    /// The current tracks have an init segment (false after the publisher left).
    init_ready: bool,
    part_target_ms: u32,
    segment_target_ms: u32,
    max_bytes: usize,
    segments: Window<LlSegment>,
    /// The segment being built; its parts so far are in it.
    building: Option<LlSegment>,
    /// Samples of the part being built, each with its final duration.
    part: Vec<Sample>,
    part_start: u32,
    /// Bytes of the part being built, held samples included.
    part_bytes: usize,
    /// The newest media timestamp of the segment being built, any track.
    latest_ts: u32,
    /// The newest sample of each track, waiting for the next one to know its duration.
    held: [Option<Sample>; 2],
    last_video_interval: u32,
    /// The longest video interval of the segment: what the next one is expected to be at most.
    longest_video_interval: u32,
    last_audio_duration: u32,
    fragment_seq: u32,
    next_msn: u64,
    pending_discontinuity: bool,
}

fn slot(track: u32) -> usize {
    usize::from(track == AUDIO_TRACK)
}

impl PartSegmenter {
    pub fn new(part_target_ms: u32, segment_target_ms: u32, window: usize, max_bytes: usize) -> PartSegmenter {
        PartSegmenter {
            tracks: Tracks::default(),
            inits: BTreeMap::new(),
            init_version: 0,
            init_ready: false,
            part_target_ms: part_target_ms.max(1),
            segment_target_ms: segment_target_ms.max(1),
            max_bytes: max_bytes.max(1),
            segments: Window::new(window),
            building: None,
            part: Vec::new(),
            part_start: 0,
            part_bytes: 0,
            latest_ts: 0,
            held: [None, None],
            last_video_interval: 40,
            longest_video_interval: 40,
            last_audio_duration: 23,
            fragment_seq: 0,
            next_msn: 0,
            pending_discontinuity: false,
        }
    }

    pub fn part_target_ms(&self) -> u32 {
        self.part_target_ms
    }

    /// Adds a frame.
    pub fn push(&mut self, frame: &Frame) {
        if frame.sequence_header {
            if let Ok(true) = self.tracks.configure(frame) {
                // New codec parameters: what is built so far used the old init segment.
                if self.building.is_some() {
                    self.finish_segment(None);
                    self.pending_discontinuity = true;
                }
                self.init_version = self.init_version.wrapping_add(1);
                match self.tracks.init_segment() {
                    Ok(init) => {
                        self.inits.insert(self.init_version, init);
                        self.init_ready = true;
                    }
                    Err(_) => self.init_ready = false,
                }
                self.prune_inits();
            }
            return;
        }
        let Some((track, cts, keyframe, data)) = fmp4::sample_of(frame) else { return };
        if !self.init_ready || (track == VIDEO_TRACK && !self.tracks.has_video()) {
            return;
        }
        let ts = frame.timestamp;
        let drives = track == VIDEO_TRACK || !self.tracks.has_video();
        if drives {
            self.cut_before(ts, keyframe || track == AUDIO_TRACK, track == VIDEO_TRACK && keyframe);
        } else {
            self.bound(ts);
        }
        // Nothing is kept before the first cut point: a segment starts with a keyframe.
        if self.building.is_none() {
            return;
        }
        self.part_bytes = self.part_bytes.saturating_add(data.len());
        self.latest_ts = self.latest_ts.max(ts);
        let sample = Sample { track, dts: u64::from(ts), duration: 0, cts, keyframe, data };
        if let Some(mut prev) = self.held[slot(track)].replace(sample) {
            prev.duration = ts.saturating_sub(prev.dts as u32).max(1);
            if track == VIDEO_TRACK {
                self.last_video_interval = prev.duration;
                self.longest_video_interval = self.longest_video_interval.max(prev.duration);
            } else {
                self.last_audio_duration = prev.duration;
            }
            self.part.push(prev);
        }
    }

    /// Before a frame that drives the timeline (video, or audio without video) at `ts`: ends the
    /// segment at a cut point past the segment target, or the part at a video keyframe (so the
    /// next part is `INDEPENDENT`) or when this frame's successor would take it past the part
    /// target.
    fn cut_before(&mut self, ts: u32, cut_point: bool, video_keyframe: bool) {
        let Some(b) = &self.building else {
            if cut_point {
                self.start_segment(ts);
            }
            return;
        };
        let segment_long_enough = ts.saturating_sub(b.start_ts) >= self.segment_target_ms;
        if cut_point && segment_long_enough {
            self.finish_segment(Some(ts));
            self.start_segment(ts);
            return;
        }
        if self.bound(ts) {
            return;
        }
        let part_full = ts.saturating_sub(self.part_start).saturating_add(self.step()) > self.part_target_ms;
        if video_keyframe || part_full {
            self.finish_part(ts);
        }
    }

    /// Keeps the segment being built within `MAX_SEGMENT_TARGETS` target durations and
    /// `max_bytes`, whatever the publisher's timestamps do (constant, backwards, or only the
    /// track that does not drive the timeline): past either it is closed as it is, and frames
    /// until the next cut point are dropped. A part the driving track no longer ends is ended at
    /// twice the part target. True when the segment was closed.
    fn bound(&mut self, ts: u32) -> bool {
        let Some(b) = &self.building else { return false };
        let latest = self.latest_ts.max(ts);
        let too_long = latest.saturating_sub(b.start_ts) >= self.segment_target_ms.saturating_mul(MAX_SEGMENT_TARGETS);
        if too_long || b.bytes.saturating_add(self.part_bytes) >= self.max_bytes {
            self.finish_segment(Some(latest));
            return true;
        }
        if latest.saturating_sub(self.part_start) >= self.part_target_ms.saturating_mul(2) {
            self.finish_part(latest);
        }
        false
    }

    /// The expected duration of a track's next sample.
    fn step_of(&self, track: u32) -> u32 {
        if track == VIDEO_TRACK { self.last_video_interval } else { self.last_audio_duration }
    }

    /// The expected time to the next frame that drives the timeline.
    fn step(&self) -> u32 {
        if self.tracks.has_video() { self.longest_video_interval } else { self.last_audio_duration }
    }

    fn start_segment(&mut self, ts: u32) {
        let msn = self.next_msn;
        self.next_msn += 1;
        self.building = Some(LlSegment {
            msn,
            start_ts: ts,
            duration_ms: 0,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            init: self.init_version,
            parts: Vec::new(),
            bytes: 0,
        });
        self.part_start = ts;
        self.latest_ts = ts;
        self.longest_video_interval = self.last_video_interval;
    }

    /// Ends the part being built at `end` (the next frame's time), or with estimated durations for
    /// the held samples when the stream stops.
    fn finish_part(&mut self, end: u32) {
        for held in &mut self.held {
            if let Some(mut s) = held.take() {
                let estimate = if s.track == VIDEO_TRACK { self.last_video_interval } else { self.last_audio_duration };
                s.duration = if s.track == VIDEO_TRACK && end > s.dts as u32 { end - s.dts as u32 } else { estimate };
                self.part.push(s);
            }
        }
        let samples = std::mem::take(&mut self.part);
        let start = self.part_start;
        self.part_start = end;
        self.part_bytes = 0;
        let Some(b) = self.building.as_mut() else { return };
        if samples.is_empty() {
            return;
        }
        self.fragment_seq = self.fragment_seq.wrapping_add(1);
        let Ok(data) = fmp4::fragment(self.fragment_seq, &samples) else { return };
        let independent = samples.iter().find(|s| s.track == VIDEO_TRACK).is_none_or(|s| s.keyframe);
        let duration_ms = end.saturating_sub(start).max(1);
        b.bytes += data.len();
        b.duration_ms = end.saturating_sub(b.start_ts).max(1);
        b.parts.push(Arc::new(Part { duration_ms, independent, data }));
    }

    fn finish_segment(&mut self, end: Option<u32>) {
        let end = end.unwrap_or_else(|| {
            self.held
                .iter()
                .flatten()
                .map(|s| (s.dts as u32).saturating_add(self.step_of(s.track)))
                .max()
                .unwrap_or(self.latest_ts)
        });
        self.finish_part(end);
        let Some(b) = self.building.take() else { return };
        if b.parts.is_empty() {
            return;
        }
        self.segments.push(b);
        self.prune_inits();
    }

    /// Forgets the init segments no segment of the window (nor the current tracks) needs.
    fn prune_inits(&mut self) {
        let current = self.init_version;
        let needed: Vec<u32> = self.all().map(|s| s.init).collect();
        self.inits.retain(|v, _| *v == current || needed.contains(v));
    }

    /// The publisher left: the segment being built is closed and the next one is a discontinuity;
    /// the next publisher may use other codecs.
    pub fn restart(&mut self) {
        self.finish_segment(None);
        self.tracks = Tracks::default();
        self.init_ready = false;
        self.pending_discontinuity = true;
    }

    /// Nobody segments the stream any more: forget the window, keep the numbering.
    pub fn clear(&mut self) {
        self.restart();
        self.segments.clear();
    }

    pub fn progress(&self) -> Progress {
        match &self.building {
            Some(b) => Progress { msn: b.msn, parts: b.parts.len() as u32 },
            None => Progress { msn: self.next_msn, parts: 0 },
        }
    }

    /// Whether a playlist asked for with `_HLS_msn=msn` (and `_HLS_part=part`) can be answered.
    pub fn readiness(&self, msn: u64, part: Option<u32>) -> Readiness {
        let now = self.progress();
        // The last segment the playlist lists (with parts, or complete).
        let listed = self.all().rev().find(|s| !s.parts.is_empty()).map_or(now.msn, |s| s.msn);
        if msn > listed.saturating_add(2) {
            return Readiness::TooFar;
        }
        let ready = match part {
            None => msn < now.msn,
            Some(p) => {
                // A part past the end of a finished segment is the next segment's first
                // (RFC 8216bis 6.2.5.2).
                if self.segment(msn).is_some_and(|s| p as usize >= s.parts.len()) {
                    return self.readiness(msn.saturating_add(1), Some(0));
                }
                let most_ahead = 3 * self.target_ms() / self.part_target_ms + 1;
                if msn >= now.msn && p > now.parts.saturating_add(most_ahead) {
                    return Readiness::TooFar;
                }
                msn < now.msn || (msn == now.msn && p < now.parts)
            }
        };
        if ready { Readiness::Ready } else { Readiness::Wait }
    }

    /// The target duration in ms: the configured one, or the longest segment so far if longer.
    /// It never goes down (RFC 8216bis: it must not change).
    pub fn target_ms(&self) -> u32 {
        self.segments.longest_ms().max(self.segment_target_ms)
    }

    /// Whether a complete segment exists. The first playlist waits for one: a player that does
    /// not read parts (FFmpeg, older players) finds nothing to play in parts alone.
    pub fn has_segments(&self) -> bool {
        !self.segments.is_empty()
    }

    /// The init segment of version `v`, while the window still has segments that use it.
    pub fn init(&self, v: u32) -> Option<Bytes> {
        self.inits.get(&v).cloned()
    }

    fn all(&self) -> impl DoubleEndedIterator<Item = &LlSegment> {
        self.segments.iter().chain(self.building.iter())
    }

    /// A finished segment of the window.
    pub fn segment(&self, msn: u64) -> Option<&LlSegment> {
        self.segments.iter().find(|s| s.msn == msn)
    }

    /// A part of the window (of a finished segment or of the one being built).
    pub fn part(&self, msn: u64, index: usize) -> Option<Arc<Part>> {
        self.all().find(|s| s.msn == msn).and_then(|s| s.parts.get(index).cloned())
    }

    /// The LL-HLS playlist, or None before the first part. `uri` makes a resource's URI from its
    /// file name (adding the viewer's query).
    pub fn playlist(&self, uri: impl Fn(&str) -> String) -> Option<String> {
        let first = self.all().find(|s| !s.parts.is_empty())?;
        let target = self.target_ms().div_ceil(1000).max(1);
        let part_target = f64::from(self.part_target_ms) / 1000.0;
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:{target}\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}\n\
             #EXT-X-PART-INF:PART-TARGET={part_target:.3}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
            part_target * 3.0,
            first.msn
        );
        out.push_str(&self.segments.discontinuity_sequence().unwrap_or_default());
        // Parts are listed for the last segments only (RFC 8216bis: those within three target
        // durations of the end), and for the one being built.
        let listed_from = self.segments.len().saturating_sub(2);
        let mut init = None;
        for (i, s) in self.all().enumerate() {
            if s.parts.is_empty() {
                continue;
            }
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if init != Some(s.init) {
                init = Some(s.init);
                out.push_str(&format!("#EXT-X-MAP:URI=\"{}\"\n", uri(&format!("init-{}.mp4", s.init))));
            }
            let complete = i < self.segments.len();
            if i >= listed_from || !complete {
                for (n, p) in s.parts.iter().enumerate() {
                    out.push_str(&format!(
                        "#EXT-X-PART:DURATION={:.3},URI=\"{}\"{}\n",
                        f64::from(p.duration_ms) / 1000.0,
                        uri(&format!("{}.{n}.m4s", s.msn)),
                        if p.independent { ",INDEPENDENT=YES" } else { "" }
                    ));
                }
            }
            if complete {
                out.push_str(&format!(
                    "#EXTINF:{:.3},\n{}\n",
                    f64::from(s.duration_ms) / 1000.0,
                    uri(&format!("{}.m4s", s.msn))
                ));
            }
        }
        let next = self.progress();
        out.push_str(&format!(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"\n",
            uri(&format!("{}.{}.m4s", next.msn, next.parts))
        ));
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Vec<Frame> {
        let fixture = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.flv")).unwrap();
        ferrocast_media::flv::read_all(&fixture).unwrap()
    }

    #[test]
    fn parts_stay_within_the_target_and_segments_start_at_keyframes() {
        let mut s = PartSegmenter::new(300, 2000, 4, 32 << 20);
        for f in demo() {
            s.push(&f);
        }
        assert_eq!(s.segments.len(), 4, "a window of 4");
        for seg in s.segments.iter() {
            assert!((1800..=2200).contains(&seg.duration_ms), "segment of {} ms", seg.duration_ms);
            assert!(seg.parts[0].independent, "a segment starts with a keyframe");
            assert!(
                seg.parts.iter().all(|p| p.duration_ms <= 300),
                "{:?}",
                seg.parts.iter().map(|p| p.duration_ms).collect::<Vec<_>>()
            );
            let total: u32 = seg.parts.iter().map(|p| p.duration_ms).sum();
            assert_eq!(total, seg.duration_ms, "the parts add up to the segment");
        }
        let text = s.playlist(|f| format!("{f}?q")).unwrap();
        assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.300\n"), "{text}");
        assert!(text.contains("CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.900"), "{text}");
        assert!(text.contains("#EXT-X-MAP:URI=\"init-2.mp4?q\""), "video and audio headers: version 2\n{text}");
        let p = s.progress();
        assert!(
            text.ends_with(&format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}.{}.m4s?q\"\n", p.msn, p.parts)),
            "{text}"
        );
        let first = s.segments[0].msn;
        assert!(!text.contains(&format!("URI=\"{first}.0.m4s")), "old segments list no parts");
        assert!(text.contains(&format!("\n{}.m4s?q\n", s.segments[3].msn)));
    }

    #[test]
    fn a_blocking_request_is_ready_when_its_part_exists() {
        let mut s = PartSegmenter::new(300, 2000, 4, 32 << 20);
        let frames = demo();
        let mut iter = frames.iter();
        while s.progress().parts < 2 {
            s.push(iter.next().unwrap());
        }
        let now = s.progress();
        assert_eq!(s.readiness(now.msn, Some(1)), Readiness::Ready);
        assert_eq!(s.readiness(now.msn, Some(2)), Readiness::Wait, "the next part is not cut yet");
        assert_eq!(s.readiness(now.msn, None), Readiness::Wait, "the segment is not complete");
        assert_eq!(s.readiness(now.msn + 3, None), Readiness::TooFar);
        // The next part is cut when the frame after it arrives.
        while s.progress().parts < 3 {
            s.push(iter.next().unwrap());
        }
        assert_eq!(s.readiness(now.msn, Some(2)), Readiness::Ready);
        assert!(s.part(now.msn, 2).is_some());
    }

    #[test]
    fn a_restart_is_a_discontinuity_and_numbers_go_on() {
        let mut s = PartSegmenter::new(500, 2000, 10, 32 << 20);
        let frames = demo();
        frames.iter().take(150).for_each(|f| s.push(f));
        s.restart();
        frames.iter().for_each(|f| s.push(f));
        let text = s.playlist(|f| f.to_string()).unwrap();
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY").count(), 1, "{text}");
        let msns: Vec<u64> = s.segments.iter().map(|x| x.msn).collect();
        assert!(msns.windows(2).all(|w| w[1] == w[0] + 1), "{msns:?}");
        assert!(s.init(s.init_version).is_some());
        let oldest = s.segments.front().unwrap().init;
        assert!(s.init(oldest).is_some(), "the window's oldest segment still has its init segment");
    }

    fn headers_and_media() -> (Vec<Frame>, Vec<Frame>) {
        demo().into_iter().partition(|f| f.sequence_header || f.kind == ferrocast_media::FrameKind::Script)
    }

    #[test]
    fn hostile_timestamps_keep_memory_bounded_and_never_panic() {
        let (headers, media) = headers_and_media();
        let key = media.iter().find(|f| f.is_video_keyframe()).unwrap().clone();
        let audio = media.iter().find(|f| f.kind == ferrocast_media::FrameKind::Audio).unwrap().clone();
        // Constant timestamps: only the byte bound can close segments.
        let mut s = PartSegmenter::new(300, 2000, 3, 256 * 1024);
        headers.iter().for_each(|f| s.push(f));
        for _ in 0..2000 {
            s.push(&Frame::new(key.kind, 7, key.payload.clone()));
        }
        let held: usize = s.building.as_ref().map_or(0, |b| b.bytes) + s.part_bytes;
        assert!(held <= 256 * 1024 + key.payload.len(), "{held} bytes in the building segment");
        assert!(s.segments.iter().all(|seg| seg.bytes <= 256 * 1024 + 2 * key.payload.len()));
        // Video stops, audio goes on: parts and segments still end (the audio timeline).
        let mut s = PartSegmenter::new(300, 2000, 3, 32 << 20);
        headers.iter().for_each(|f| s.push(f));
        s.push(&Frame::new(key.kind, 0, key.payload.clone()));
        for i in 1..3000u32 {
            s.push(&Frame::new(audio.kind, i * 23, audio.payload.clone()));
        }
        assert!(!s.segments.is_empty(), "a segment closed at 10 target durations");
        assert!(s.part_bytes < 64 * 1024, "the part being built stays small: {}", s.part_bytes);
        // Timestamps at the end of the range, then the publisher leaves: no overflow.
        let mut s = PartSegmenter::new(300, 2000, 3, 32 << 20);
        headers.iter().for_each(|f| s.push(f));
        s.push(&Frame::new(key.kind, u32::MAX - 5, key.payload.clone()));
        s.push(&Frame::new(audio.kind, u32::MAX, audio.payload.clone()));
        s.restart();
        assert_eq!(s.segments.len(), 1);
    }

    #[test]
    fn blocking_requests_without_a_segment_being_built_wait_and_parts_past_a_segment_roll_over() {
        let mut s = PartSegmenter::new(300, 2000, 4, 32 << 20);
        demo().iter().take(200).for_each(|f| s.push(f));
        s.restart();
        let now = s.progress();
        assert_eq!(
            s.readiness(now.msn, None),
            Readiness::Wait,
            "nothing is being built: the next segment is not ready"
        );
        let last = s.segments.back().unwrap();
        let (msn, parts) = (last.msn, last.parts.len() as u32);
        assert_eq!(s.readiness(msn, Some(parts - 1)), Readiness::Ready);
        assert_eq!(
            s.readiness(msn, Some(parts)),
            Readiness::Wait,
            "part {parts} of a finished segment is the next one's first"
        );
        assert_eq!(s.readiness(msn, Some(10_000)), Readiness::Wait);
        assert_eq!(s.readiness(now.msn, Some(10_000)), Readiness::TooFar, "beyond three target durations of parts");
        assert_eq!(s.readiness(msn + 3, None), Readiness::TooFar, "more than two segments past the last listed");
    }

    #[test]
    fn a_discontinuity_that_left_the_window_is_counted() {
        let mut s = PartSegmenter::new(500, 2000, 2, 32 << 20);
        let frames = demo();
        frames.iter().take(150).for_each(|f| s.push(f));
        s.restart();
        frames.iter().for_each(|f| s.push(f));
        frames.iter().for_each(|f| s.push(&Frame::new(f.kind, f.timestamp + 10_080, f.payload.clone())));
        let text = s.playlist(|f| f.to_string()).unwrap();
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    }
}

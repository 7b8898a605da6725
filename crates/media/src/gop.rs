//! The GOP cache: every media frame since the last video keyframe, so a player that joins late
//! gets a decodable picture at once instead of waiting up to a GOP for the next keyframe.
//!
//! Invariants: the cache is empty or starts with a video keyframe (audio-only streams aside), and
//! it never exceeds its limits. Hitting a limit empties it until the next keyframe, since a GOP
//! with its start cut off is useless to a decoder.
//!
//! The cache holds `Frame`s by default, or any `T: AsFrame` (e.g. an `Arc` of a packet that also
//! carries the frame's cached wire encodings), so late players share those encodings too.

use std::sync::Arc;

use crate::frame::{Frame, FrameKind};

/// Something that holds a [`Frame`]: what a [`GopCache`] can store.
pub trait AsFrame {
    /// The frame inside.
    fn as_frame(&self) -> &Frame;
}

impl AsFrame for Frame {
    fn as_frame(&self) -> &Frame {
        self
    }
}

impl<T: AsFrame + ?Sized> AsFrame for Arc<T> {
    fn as_frame(&self) -> &Frame {
        (**self).as_frame()
    }
}

/// Bounds on what one GOP cache holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GopLimits {
    /// Most frames (audio + video) kept.
    pub max_frames: usize,
    /// Most payload bytes kept.
    pub max_bytes: usize,
}

impl Default for GopLimits {
    /// 3000 frames (two minutes of 25 fps video plus audio) and 32 MiB.
    fn default() -> Self {
        GopLimits { max_frames: 3000, max_bytes: 32 * 1024 * 1024 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No video seen since the last reset: keep a bounded window of audio.
    AudioOnly,
    /// Video seen; no usable GOP (waiting for a keyframe).
    WaitingForKeyframe,
    /// Holding a GOP that starts with a keyframe.
    InGop,
}

/// Frames since the last video keyframe, bounded by [`GopLimits`].
#[derive(Clone, Debug)]
pub struct GopCache<T = Frame> {
    limits: GopLimits,
    frames: Vec<T>,
    bytes: usize,
    state: State,
}

impl<T: AsFrame> Default for GopCache<T> {
    fn default() -> Self {
        Self::new(GopLimits::default())
    }
}

impl<T: AsFrame> GopCache<T> {
    /// An empty cache.
    pub fn new(limits: GopLimits) -> Self {
        GopCache { limits, frames: Vec::new(), bytes: 0, state: State::AudioOnly }
    }

    /// Adds a media frame.
    ///
    /// Sequence headers and metadata are not stored here (the source keeps them apart): script
    /// frames and sequence headers are ignored. A video keyframe clears the cache and starts a
    /// new GOP. Until the first video frame, audio is kept in a bounded window (cleared when a
    /// limit is hit). Once video has been seen, frames before the first keyframe are dropped, and
    /// a GOP that outgrows the limits is dropped whole until the next keyframe.
    pub fn push(&mut self, item: T) {
        let frame = item.as_frame();
        let kind = frame.kind;
        if kind == FrameKind::Script || frame.sequence_header {
            return;
        }
        if frame.is_video_keyframe() {
            self.drop_frames();
            self.state = State::WaitingForKeyframe;
            if self.fits(&item) {
                self.state = State::InGop;
                self.store(item);
            }
            return;
        }
        match (self.state, kind) {
            (State::AudioOnly, FrameKind::Video) => {
                // First video, and not a keyframe: the audio window gives way to video GOPs.
                self.drop_frames();
                self.state = State::WaitingForKeyframe;
            }
            (State::AudioOnly, _) => {
                if !self.fits(&item) {
                    self.drop_frames();
                }
                if self.fits(&item) {
                    self.store(item);
                }
            }
            (State::WaitingForKeyframe, _) => {}
            (State::InGop, _) => {
                if self.fits(&item) {
                    self.store(item);
                } else {
                    self.drop_frames();
                    self.state = State::WaitingForKeyframe;
                }
            }
        }
    }

    /// The cached frames, oldest first.
    pub fn frames(&self) -> impl Iterator<Item = &T> {
        self.frames.iter()
    }

    /// Number of cached frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Payload bytes cached.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The limits in force.
    pub fn limits(&self) -> GopLimits {
        self.limits
    }

    /// Forgets everything, as for a new stream (e.g. a new publisher).
    pub fn clear(&mut self) {
        self.drop_frames();
        self.state = State::AudioOnly;
    }

    fn fits(&self, item: &T) -> bool {
        let len = item.as_frame().payload.len();
        self.frames.len() < self.limits.max_frames
            && self.bytes.checked_add(len).is_some_and(|b| b <= self.limits.max_bytes)
    }

    fn store(&mut self, item: T) {
        self.bytes = self.bytes.saturating_add(item.as_frame().payload.len());
        self.frames.push(item);
    }

    fn drop_frames(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }
}

//! The sliding window of finished segments both HLS variants keep (TS and LL-HLS): at most so
//! many, the discontinuities that left it (`EXT-X-DISCONTINUITY-SEQUENCE`), and the longest
//! segment so far (`EXT-X-TARGETDURATION` must not go down, RFC 8216bis).

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::Arc;

/// What the window needs to know of a segment.
pub trait Windowed {
    fn duration_ms(&self) -> u32;
    /// The stream restarted before it (`#EXT-X-DISCONTINUITY`).
    fn discontinuity(&self) -> bool;
}

impl<S: Windowed> Windowed for Arc<S> {
    fn duration_ms(&self) -> u32 {
        (**self).duration_ms()
    }
    fn discontinuity(&self) -> bool {
        (**self).discontinuity()
    }
}

/// The finished segments, oldest first; it reads as a `VecDeque`.
pub struct Window<S> {
    segments: VecDeque<S>,
    size: usize,
    discontinuity_seq: u64,
    longest_ms: u32,
}

impl<S: Windowed> Window<S> {
    /// A window of at most `size` segments (at least one).
    pub fn new(size: usize) -> Window<S> {
        Window { segments: VecDeque::new(), size: size.max(1), discontinuity_seq: 0, longest_ms: 0 }
    }

    /// Adds a finished segment; the oldest leave beyond the window's size.
    pub fn push(&mut self, segment: S) {
        self.longest_ms = self.longest_ms.max(segment.duration_ms());
        self.segments.push_back(segment);
        while self.segments.len() > self.size {
            if self.segments.pop_front().is_some_and(|gone| gone.discontinuity()) {
                self.discontinuity_seq += 1;
            }
        }
    }

    /// Forgets every segment (nobody segments the stream any more); the counts go on, as the
    /// numbering does (RFC 8216: each discontinuity that leaves the playlist counts).
    pub fn clear(&mut self) {
        let discontinuities = self.segments.iter().filter(|s| s.discontinuity()).count();
        self.discontinuity_seq += discontinuities as u64;
        self.segments.clear();
    }

    /// The longest segment so far, ms.
    pub fn longest_ms(&self) -> u32 {
        self.longest_ms
    }

    /// The playlist's `EXT-X-DISCONTINUITY-SEQUENCE` line, once a discontinuity left the window.
    pub fn discontinuity_sequence(&self) -> Option<String> {
        (self.discontinuity_seq > 0).then(|| format!("#EXT-X-DISCONTINUITY-SEQUENCE:{}\n", self.discontinuity_seq))
    }
}

impl<S> Deref for Window<S> {
    type Target = VecDeque<S>;
    fn deref(&self) -> &VecDeque<S> {
        &self.segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Seg(u32, bool);
    impl Windowed for Seg {
        fn duration_ms(&self) -> u32 {
            self.0
        }
        fn discontinuity(&self) -> bool {
            self.1
        }
    }

    #[test]
    fn the_window_keeps_its_size_counts_discontinuities_that_left_and_the_longest_segment() {
        let mut w = Window::new(2);
        w.push(Seg(2000, false));
        w.push(Seg(3500, true));
        assert_eq!(w.discontinuity_sequence(), None);
        w.push(Seg(2000, false));
        assert_eq!(w.len(), 2);
        assert_eq!(w.discontinuity_sequence(), None, "the one that left was not a discontinuity");
        w.push(Seg(2000, false));
        assert_eq!(w.discontinuity_sequence().as_deref(), Some("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
        assert_eq!(w.longest_ms(), 3500, "it never goes down");
        w.push(Seg(2000, true));
        w.clear();
        assert!(w.is_empty());
        assert_eq!(w.longest_ms(), 3500);
        assert_eq!(
            w.discontinuity_sequence().as_deref(),
            Some("#EXT-X-DISCONTINUITY-SEQUENCE:2\n"),
            "the cleared one counts"
        );
    }
}

//! The body chunks of an HTTP-FLV player, made from shared packets without copying the frames.
//!
//! Every player of a stream sends the same FLV tags. A large tag (a video frame) goes out as the
//! packet's own `Bytes`, which hyper queues and sends with the rest of the batch in one vectored
//! write; runs of small tags (audio, metadata) are gathered into one chunk, since a copy of a few
//! hundred bytes is cheaper than a chunk of its own. So a thousand players that join at once, or
//! never read, hold references to the GOP cache rather than copies of it, and a live batch costs
//! a player a copy of its small tags only.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::hub::Packet;

/// Gathered chunks grow up to this size; the start shares only tags this large.
const GATHER_CHUNK: usize = 64 * 1024;
/// In a live batch, tags of at least this size (video frames) go out shared.
const SHARE_FROM: usize = 1024;
/// hyper sends at most 16 queued chunks per write: a batch with more large tags than this is
/// gathered (copied) into chunks of up to 64 KiB, so it still leaves in few writes.
const MOST_SHARED: usize = 7;

/// The packets still to send, and how to cut them into chunks.
pub struct TagChunks {
    queue: VecDeque<Arc<Packet>>,
    /// Tags of at least this size go out shared; smaller ones are gathered.
    share_from: usize,
}

impl TagChunks {
    /// The stream's start (metadata, sequence headers, GOP cache): large chunks, few writes.
    pub fn start(packets: Vec<Arc<Packet>>) -> TagChunks {
        TagChunks { queue: packets.into(), share_from: GATHER_CHUNK }
    }

    /// Queues a live batch, choosing how much of it to share (see [`MOST_SHARED`]).
    pub fn push_batch(&mut self, packets: Vec<Arc<Packet>>) {
        let large = packets.iter().filter(|p| p.flv().len() >= SHARE_FROM).count();
        self.share_from = if large <= MOST_SHARED { SHARE_FROM } else { GATHER_CHUNK };
        self.queue.extend(packets);
    }

    /// The next chunk, if any is left.
    pub fn next_chunk(&mut self) -> Option<Bytes> {
        let first = self.queue.pop_front()?;
        let first = first.flv();
        if first.len() >= self.share_from {
            return Some(first.clone());
        }
        let mut out = BytesMut::with_capacity(GATHER_CHUNK.min(self.small_bytes_ahead() + first.len()));
        out.extend_from_slice(first);
        while let Some(next) = self.queue.front() {
            let tag = next.flv();
            if tag.len() >= self.share_from || out.len() + tag.len() > GATHER_CHUNK {
                break;
            }
            out.extend_from_slice(tag);
            self.queue.pop_front();
        }
        Some(out.freeze())
    }

    /// The bytes of the small tags at the front of the queue (what the next gather copies).
    fn small_bytes_ahead(&self) -> usize {
        self.queue.iter().map(|p| p.flv().len()).take_while(|&n| n < self.share_from).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocast_media::{Frame, FrameKind};

    fn packet(kind: FrameKind, size: usize) -> Arc<Packet> {
        let mut body = vec![if kind == FrameKind::Video { 0x27 } else { 0xAF }, 1];
        body.resize(size, size as u8);
        Arc::new(Packet::new(Frame::new(kind, 0, Bytes::from(body)), false))
    }

    fn drain(chunks: &mut TagChunks) -> Vec<Bytes> {
        std::iter::from_fn(|| chunks.next_chunk()).collect()
    }

    fn concat(parts: &[Bytes]) -> Vec<u8> {
        parts.iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[test]
    fn video_frames_go_out_shared_and_audio_runs_are_gathered_in_order() {
        let (a1, a2, v1, a3, v2) = (
            packet(FrameKind::Audio, 200),
            packet(FrameKind::Audio, 180),
            packet(FrameKind::Video, 3000),
            packet(FrameKind::Audio, 190),
            packet(FrameKind::Video, 1500),
        );
        let batch = vec![a1.clone(), a2.clone(), v1.clone(), a3.clone(), v2.clone()];
        let mut chunks = TagChunks::start(Vec::new());
        chunks.push_batch(batch.clone());
        let out = drain(&mut chunks);
        assert_eq!(out.len(), 4, "[a1 a2] v1 [a3] v2");
        assert_eq!(out[1].as_ptr(), v1.flv().as_ptr(), "the video frame is the packet's own bytes");
        assert_eq!(out[3].as_ptr(), v2.flv().as_ptr());
        let expected: Vec<Bytes> = batch.iter().map(|p| p.flv().clone()).collect();
        assert_eq!(concat(&out), concat(&expected), "every tag, in order");
    }

    #[test]
    fn a_batch_of_many_frames_leaves_in_few_chunks() {
        let batch: Vec<_> =
            (0..30).map(|i| packet(if i % 2 == 0 { FrameKind::Video } else { FrameKind::Audio }, 1500)).collect();
        let mut chunks = TagChunks::start(Vec::new());
        chunks.push_batch(batch.clone());
        let out = drain(&mut chunks);
        assert_eq!(out.len(), 1, "30 tags of 1.5 kB are gathered: hyper would write 16 chunks at a time");
        let expected: Vec<Bytes> = batch.iter().map(|p| p.flv().clone()).collect();
        assert_eq!(concat(&out), concat(&expected));
    }

    #[test]
    fn the_start_shares_only_large_tags_and_gathers_up_to_64_kib() {
        let big = packet(FrameKind::Video, 100_000);
        let mut start: Vec<_> = (0..100).map(|_| packet(FrameKind::Video, 2000)).collect();
        start.insert(50, big.clone());
        let mut chunks = TagChunks::start(start.clone());
        let out = drain(&mut chunks);
        assert!(out.iter().any(|c| c.as_ptr() == big.flv().as_ptr()), "the 100 kB keyframe is not copied");
        assert!(out.iter().all(|c| c.len() <= GATHER_CHUNK || c.as_ptr() == big.flv().as_ptr()));
        assert!(out.len() <= 6, "2 kB tags gathered into 64 KiB chunks: {} chunks", out.len());
        let expected: Vec<Bytes> = start.iter().map(|p| p.flv().clone()).collect();
        assert_eq!(concat(&out), concat(&expected));
    }
}

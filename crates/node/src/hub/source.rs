//! A stream's source: its one publisher, the state a late player needs (metadata, sequence
//! headers, GOP cache) and the fan-out channel to every player.
//!
//! The lock is held only to update that state and send, and to take a snapshot plus a receiver
//! in one step, so a new player sees no gap and no duplicate between the snapshot and the live
//! frames. Players never hold it while writing to their sockets.

use std::sync::{Arc, Mutex};

use ferrocast_media::{Frame, FrameKind, GopCache, GopLimits};
use tokio::sync::broadcast;

use super::packet::Packet;
use crate::key::StreamKey;

/// What a player's receiver sees.
#[derive(Clone, Debug)]
pub enum SourceEvent {
    Packet(Arc<Packet>),
    /// The publisher left; players wait (bounded) for the next one.
    Unpublished,
    /// The node is shutting down: end the play cleanly.
    Closed,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("stream {0} is already being published")]
    AlreadyPublishing(StreamKey),
    #[error("the node is shutting down")]
    Closed,
}

struct State {
    publisher: Option<u64>,
    next_publisher: u64,
    metadata: Option<Arc<Packet>>,
    video_header: Option<Arc<Packet>>,
    audio_header: Option<Arc<Packet>>,
    gop: GopCache<Arc<Packet>>,
    closed: bool,
}

pub struct Source {
    key: StreamKey,
    tx: broadcast::Sender<SourceEvent>,
    state: Mutex<State>,
}

/// What a new player starts from.
pub struct Subscription {
    /// Metadata, sequence headers and the GOP cache, in that order.
    pub start: Vec<Arc<Packet>>,
    pub rx: broadcast::Receiver<SourceEvent>,
    pub publishing: bool,
    pub closed: bool,
    pub source: Arc<Source>,
}

impl Source {
    pub fn new(key: StreamKey, queue: usize, gop: GopLimits) -> Arc<Source> {
        let (tx, _) = broadcast::channel(queue.max(16));
        Arc::new(Source {
            key,
            tx,
            state: Mutex::new(State {
                publisher: None,
                next_publisher: 1,
                metadata: None,
                video_header: None,
                audio_header: None,
                gop: GopCache::new(gop),
                closed: false,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn key(&self) -> &StreamKey {
        &self.key
    }

    pub fn is_publishing(&self) -> bool {
        self.lock().publisher.is_some()
    }

    pub fn player_count(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Claims the stream for one publisher. A second one is refused while the first is live.
    pub fn try_publish(self: &Arc<Self>) -> Result<Publisher, PublishError> {
        let mut state = self.lock();
        if state.closed {
            return Err(PublishError::Closed);
        }
        if state.publisher.is_some() {
            return Err(PublishError::AlreadyPublishing(self.key.clone()));
        }
        let id = state.next_publisher;
        state.next_publisher += 1;
        state.publisher = Some(id);
        Ok(Publisher { source: self.clone(), id })
    }

    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        let state = self.lock();
        let start = state
            .metadata
            .iter()
            .chain(state.video_header.iter())
            .chain(state.audio_header.iter())
            .chain(state.gop.frames())
            .cloned()
            .collect();
        Subscription {
            start,
            rx: self.tx.subscribe(),
            publishing: state.publisher.is_some(),
            closed: state.closed,
            source: self.clone(),
        }
    }

    /// Ends every player cleanly; no publisher is accepted afterwards.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let _ = self.tx.send(SourceEvent::Closed);
    }

    fn push(&self, id: u64, frame: Frame) {
        let mut state = self.lock();
        if state.publisher != Some(id) {
            return;
        }
        let restart = frame.is_video_keyframe()
            || (frame.kind == FrameKind::Audio && !frame.sequence_header && state.video_header.is_none());
        let packet = Arc::new(Packet::new(frame, restart));
        let f = &packet.frame;
        if f.kind == FrameKind::Script {
            if f.is_metadata() {
                state.metadata = Some(packet.clone());
            }
        } else if f.sequence_header {
            match f.kind {
                FrameKind::Video => state.video_header = Some(packet.clone()),
                _ => state.audio_header = Some(packet.clone()),
            }
        } else {
            state.gop.push(packet.clone());
        }
        let _ = self.tx.send(SourceEvent::Packet(packet));
    }

    fn unpublish(&self, id: u64) {
        let mut state = self.lock();
        if state.publisher != Some(id) {
            return;
        }
        state.publisher = None;
        state.metadata = None;
        state.video_header = None;
        state.audio_header = None;
        state.gop.clear();
        let _ = self.tx.send(SourceEvent::Unpublished);
    }
}

/// The right to publish into a source. Dropping it unpublishes.
pub struct Publisher {
    source: Arc<Source>,
    id: u64,
}

impl Publisher {
    pub fn push(&self, frame: Frame) {
        self.source.push(self.id, frame);
    }

    pub fn source(&self) -> &Arc<Source> {
        &self.source
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.source.unpublish(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn key() -> StreamKey {
        StreamKey::new("", "live", "s")
    }

    fn video(ts: u32, key: bool) -> Frame {
        let first = if key { 0x17 } else { 0x27 };
        Frame::new(FrameKind::Video, ts, Bytes::from(vec![first, 1, 0, 0, 0, 9]))
    }

    #[test]
    fn second_publisher_is_refused_until_the_first_leaves() {
        let s = Source::new(key(), 64, GopLimits::default());
        let p = s.try_publish().unwrap();
        assert!(matches!(s.try_publish(), Err(PublishError::AlreadyPublishing(_))));
        drop(p);
        assert!(s.try_publish().is_ok());
    }

    #[test]
    fn late_player_starts_with_headers_and_gop() {
        let s = Source::new(key(), 64, GopLimits::default());
        let p = s.try_publish().unwrap();
        p.push(Frame::new(FrameKind::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64])));
        p.push(video(0, true));
        p.push(video(40, false));
        p.push(video(2000, true));
        p.push(video(2040, false));
        let sub = s.subscribe();
        let ts: Vec<u32> = sub.start.iter().map(|p| p.frame.timestamp).collect();
        assert_eq!(ts, vec![0, 2000, 2040], "sequence header, then the last GOP only");
        assert!(sub.start[0].frame.sequence_header);
        assert!(sub.publishing);
    }

    #[test]
    fn unpublish_tells_players_and_forgets_the_gop() {
        let s = Source::new(key(), 64, GopLimits::default());
        let p = s.try_publish().unwrap();
        let mut sub = s.subscribe();
        p.push(video(0, true));
        drop(p);
        assert!(matches!(sub.rx.try_recv(), Ok(SourceEvent::Packet(_))));
        assert!(matches!(sub.rx.try_recv(), Ok(SourceEvent::Unpublished)));
        assert!(s.subscribe().start.is_empty());
    }
}

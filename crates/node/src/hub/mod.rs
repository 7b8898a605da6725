//! The hub: every stream this node knows, as `Source`s keyed by `StreamKey`, and the fan-out from
//! each source to its players.
//!
//! The hub holds sources weakly: a source lives while a publisher or a player holds it, and the
//! next lookup after the last one leaves creates a fresh source.

mod feed;
mod packet;
mod source;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use ferrocast_media::GopLimits;

pub use feed::{FeedEnd, FeedPolicy, FrameFeed, WriteLoad};
pub use packet::{Packet, frame_kind, rtmp_kind};
pub use source::{PublishError, Publisher, Source, SourceEvent, Subscription};

use crate::key::StreamKey;

pub struct Hub {
    sources: Mutex<HashMap<StreamKey, Weak<Source>>>,
    queue: usize,
    gop: GopLimits,
    closed: std::sync::atomic::AtomicBool,
}

impl Hub {
    pub fn new(queue: usize, gop: GopLimits) -> Arc<Hub> {
        Arc::new(Hub { sources: Mutex::new(HashMap::new()), queue, gop, closed: Default::default() })
    }

    /// The source for `key`, created if nobody holds one.
    pub fn source(&self, key: &StreamKey) -> Arc<Source> {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = sources.get(key).and_then(Weak::upgrade) {
            return s;
        }
        if sources.len() > 64 {
            sources.retain(|_, w| w.strong_count() > 0);
        }
        let s = Source::new(key.clone(), self.queue, self.gop);
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            s.close();
        }
        sources.insert(key.clone(), Arc::downgrade(&s));
        s
    }

    /// The source for `key` if someone holds it.
    pub fn get(&self, key: &StreamKey) -> Option<Arc<Source>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner()).get(key).and_then(Weak::upgrade)
    }

    /// Ends every source: players get a clean end of stream, publishers are refused.
    pub fn close_all(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::Relaxed);
        let sources: Vec<_> =
            self.sources.lock().unwrap_or_else(|e| e.into_inner()).values().filter_map(Weak::upgrade).collect();
        sources.iter().for_each(|s| s.close());
    }
}

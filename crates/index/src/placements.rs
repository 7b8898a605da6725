//! Which origin each stream was last on, for a minute after it ended: a publisher that
//! reconnects (an encoder restart, a network blip) goes back to the same origin, where its edges
//! and viewers still look for it, instead of wherever the load would send a new stream.
//!
//! Filled from two sides: every publish answer (`/api/v1/publish`, DNS origin names) remembers the
//! origin it named, and every directory merge remembers the origin of each stream that left the
//! directory. Bounded: past `MAX_ENTRIES` stale entries go first and new ones are not kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::directory::{Directory, FastHash};

/// How long a stream that ended keeps its origin, in ms.
pub const STICKY_MS: u64 = 60_000;

/// Most streams remembered at once.
const MAX_ENTRIES: usize = 100_000;

/// Stream key → (origin name, when it was last seen there, ms).
type LastOrigins = HashMap<Arc<str>, (Arc<str>, u64), FastHash>;

#[derive(Default)]
pub struct Placements {
    map: Mutex<LastOrigins>,
}

impl Placements {
    fn lock(&self) -> MutexGuard<'_, LastOrigins> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `key` was sent to (or seen on) origin `node` at `now_ms`.
    pub fn remember(&self, key: &str, node: &Arc<str>, now_ms: u64) {
        let mut map = self.lock();
        if let Some(e) = map.get_mut(key) {
            *e = (node.clone(), now_ms);
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, at)| now_ms.saturating_sub(*at) < STICKY_MS);
            if map.len() >= MAX_ENTRIES {
                return;
            }
        }
        map.insert(key.into(), (node.clone(), now_ms));
    }

    /// The origin `key` was on within the last minute.
    pub fn recent(&self, key: &str, now_ms: u64) -> Option<Arc<str>> {
        self.lock().get(key).filter(|(_, at)| now_ms.saturating_sub(*at) < STICKY_MS).map(|(n, _)| n.clone())
    }

    /// After a merge: each stream `prev` listed with an origin and `dir` no longer lists is
    /// remembered on that origin.
    pub fn observe(&self, prev: &Directory, dir: &Directory, now_ms: u64) {
        if !dir.warm {
            return;
        }
        for (key, entry) in &prev.streams {
            if dir.streams.contains_key(key) {
                continue;
            }
            if let Some(h) = entry.origins.first() {
                self.remember(key, &prev.nodes[h.node].spec.name.as_str().into(), now_ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_keeps_its_origin_for_a_minute() {
        let p = Placements::default();
        p.remember("v/live/cam1", &Arc::from("o2"), 1_000);
        assert_eq!(p.recent("v/live/cam1", 1_000 + STICKY_MS - 1).as_deref(), Some("o2"));
        assert_eq!(p.recent("v/live/cam1", 1_000 + STICKY_MS), None);
        assert_eq!(p.recent("v/live/cam2", 1_000), None);
    }

    #[test]
    fn the_memory_is_bounded() {
        let p = Placements::default();
        let o: Arc<str> = Arc::from("o1");
        for i in 0..MAX_ENTRIES + 10 {
            p.remember(&format!("k{i}"), &o, 5);
        }
        assert_eq!(p.lock().len(), MAX_ENTRIES, "full of fresh entries: new ones are not kept");
        p.remember("late", &o, 5 + STICKY_MS);
        assert_eq!(p.recent("late", 5 + STICKY_MS).as_deref(), Some("o1"), "stale entries made room");
    }
}

//! Where publishers were sent, for the two things a placement must remember:
//!
//! - Which origin each stream was last on, for a minute after it ended: a publisher that
//!   reconnects (an encoder restart, a network blip) goes back to the same origin, where its edges
//!   and viewers still look for it, instead of wherever the load would send a new stream. Filled
//!   by every publish answer and by every directory merge (the origin of each stream that left).
//! - Placements not yet seen live (`pending`): a publisher connects some time after its answer,
//!   and its stream shows in the next poll after that, so until then the placement itself is the
//!   origin's load (a poll in between would otherwise forget it, and a burst of publishers would
//!   all land on the origin that looked idlest).
//!
//! Bounded: past `MAX_ENTRIES` stale entries go first and new ones are not kept; pending
//! placements expire after `PENDING_MS` and at most `MAX_PENDING` are kept.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::directory::{Directory, FastHash};

/// How long a stream that ended keeps its origin, in ms.
pub const STICKY_MS: u64 = 60_000;

/// Most streams remembered at once.
const MAX_ENTRIES: usize = 100_000;

/// How long a placement counts as load before its stream shows live, in ms.
pub const PENDING_MS: u64 = 10_000;

/// Most pending placements kept (the oldest go first).
const MAX_PENDING: usize = 10_000;

/// (stream key, origin name, when placed in ms), oldest first.
type Pending = VecDeque<(Arc<str>, Arc<str>, u64)>;

/// Stream key → (origin name, when it was last seen there, ms).
type LastOrigins = HashMap<Arc<str>, (Arc<str>, u64), FastHash>;

#[derive(Default)]
pub struct Placements {
    map: Mutex<LastOrigins>,
    pending: Mutex<Pending>,
}

impl Placements {
    fn lock(&self) -> MutexGuard<'_, LastOrigins> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A publisher of `key` was sent to origin `node` at `now_ms`: remembered, and counted as that
    /// origin's load until the stream shows live.
    pub fn placed(&self, key: &str, node: &Arc<str>, now_ms: u64) {
        self.remember(key, node, now_ms);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|(k, _, _)| &**k != key);
        if pending.len() >= MAX_PENDING {
            pending.pop_front();
        }
        pending.push_back((key.into(), node.clone(), now_ms));
    }

    /// Placements not yet live, per node of `dir` (by index).
    pub fn pending_by_node(&self, dir: &Directory, now_ms: u64) -> Vec<u64> {
        let mut counts = vec![0u64; dir.nodes.len()];
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (key, node, at) in pending.iter() {
            if now_ms.saturating_sub(*at) >= PENDING_MS || dir.streams.contains_key(key) {
                continue;
            }
            if let Ok(i) = dir.nodes.binary_search_by(|n| n.spec.name.as_str().cmp(node)) {
                counts[i] += 1;
            }
        }
        counts
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
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(key, _, at)| now_ms.saturating_sub(*at) < PENDING_MS && !dir.streams.contains_key(key));
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
    fn a_placement_is_load_until_its_stream_is_live_or_expired() {
        let p = Placements::default();
        let o2: Arc<str> = Arc::from("o2");
        p.placed("__defaultVhost__/live/a", &o2, 1_000);
        p.placed("__defaultVhost__/live/b", &o2, 1_000);
        p.placed("__defaultVhost__/live/b", &o2, 1_001);
        let mut table = crate::nodes::NodeTable::new();
        for (i, name) in ["o1", "o2"].into_iter().enumerate() {
            let spec: crate::config::NodeSpec =
                format!("name={name},role=origin,api=http://127.0.0.1:1").parse().unwrap();
            table.insert(name.into(), crate::nodes::NodeEntry::new(spec, i, None));
        }
        let dir = Directory::build(&table, &crate::config::IndexConfig::default(), 0);
        assert_eq!(p.pending_by_node(&dir, 2_000), [0, 2], "a repeated placement counts once");
        assert_eq!(p.pending_by_node(&dir, 1_000 + PENDING_MS), [0, 1], "the older one expired");
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

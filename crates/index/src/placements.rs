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
//! placements stop counting at the first merge after `PENDING_MS`, and past `MAX_PENDING` new
//! ones are not counted. A request reads one count per origin, not the placements.

use std::collections::HashMap;
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

/// Stream key → (origin name, when, ms). The keys are whatever names publishers ask for (the
/// publish route is open for open apps), so the map's hasher is keyed per process: with the
/// directory's fixed [`FastHash`], names crafted offline to collide would make every lookup a
/// scan of the map, under the lock every publish answer takes.
type ByKey = HashMap<Arc<str>, (Arc<str>, u64), std::hash::RandomState>;

/// Placements whose streams are not live yet, and their count per origin (what a request reads).
#[derive(Default)]
struct Pending {
    by_key: ByKey,
    per_node: HashMap<Arc<str>, u64, FastHash>,
    /// `per_node` by node index of the directory with this id: a request copies it instead of
    /// looking up every origin's name. Kept up to date by placements on that directory; rebuilt
    /// when a request reads another.
    by_index: Option<(u64, Vec<u64>)>,
}

impl Pending {
    /// Takes `key` out: the origin it was pending on.
    fn remove(&mut self, key: &str) -> Option<Arc<str>> {
        let (node, _) = self.by_key.remove(key)?;
        if let Some(n) = self.per_node.get_mut(&node) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_node.remove(&node);
            }
        }
        Some(node)
    }

    /// Counts one placement fewer on node `name` in `by_index`, if that is `dir`'s; otherwise
    /// drops it, to be rebuilt.
    fn uncount_index(&mut self, dir: &Directory, name: &str) {
        let Some((id, counts)) = &mut self.by_index else { return };
        match (*id == dir.id).then(|| dir.index_of(name)).flatten().and_then(|i| counts.get_mut(i)) {
            Some(c) => *c = c.saturating_sub(1),
            None => self.by_index = None,
        }
    }
}

/// The last origin of each stream, and when stale entries were last dropped.
#[derive(Default)]
struct LastOrigins {
    by_key: ByKey,
    pruned_ms: u64,
}

#[derive(Default)]
pub struct Placements {
    last: Mutex<LastOrigins>,
    pending: Mutex<Pending>,
    /// To the other index replicas (shared mode).
    pub outbox: crate::index_replicas::origins::Outbox,
}

impl Placements {
    fn last(&self) -> MutexGuard<'_, LastOrigins> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A publisher of `key` was sent to origin `i` of `dir` at `now_ms`: remembered, and counted
    /// as that origin's load until the stream shows live (or `PENDING_MS` passed).
    /// The other index replicas are told.
    pub fn placed(&self, dir: &Directory, i: usize, key: &str, now_ms: u64) {
        self.placed_quietly(dir, i, key, now_ms);
        self.outbox.send(crate::index_replicas::origins::Kind::Placed, key, &dir.nodes[i].spec.name);
    }

    /// [`Placements::placed`] as another replica told it.
    pub fn placed_quietly(&self, dir: &Directory, i: usize, key: &str, now_ms: u64) {
        let node: Arc<str> = dir.nodes[i].spec.name.as_str().into();
        self.remember(key, &node, now_ms);
        let mut pending = self.pending();
        if let Some(old) = pending.remove(key) {
            pending.uncount_index(dir, &old);
        }
        if pending.by_key.len() >= MAX_PENDING {
            return;
        }
        pending.by_key.insert(key.into(), (node.clone(), now_ms));
        *pending.per_node.entry(node).or_default() += 1;
        match &mut pending.by_index {
            Some((id, counts)) if *id == dir.id && i < counts.len() => counts[i] += 1,
            _ => pending.by_index = None,
        }
    }

    /// Placements not yet live, per node of `dir` (by index): a copy of counts kept by index,
    /// rebuilt (one hash lookup per origin) only when `dir` is not the directory they were for.
    pub fn pending_by_node(&self, dir: &Directory) -> Vec<u64> {
        let mut pending = self.pending();
        if let Some((id, counts)) = &pending.by_index
            && *id == dir.id
            && dir.id != 0
        {
            return counts.clone();
        }
        let mut counts = vec![0u64; dir.nodes.len()];
        if !pending.per_node.is_empty() {
            for &i in &dir.origins {
                if let Some(n) = pending.per_node.get(dir.nodes[i].spec.name.as_str()) {
                    counts[i] = *n;
                }
            }
        }
        pending.by_index = Some((dir.id, counts.clone()));
        counts
    }

    /// `key` was sent to (or seen on) origin `node` at `now_ms`.
    pub fn remember(&self, key: &str, node: &Arc<str>, now_ms: u64) {
        let mut last = self.last();
        if let Some(e) = last.by_key.get_mut(key) {
            *e = (node.clone(), now_ms);
            return;
        }
        if last.by_key.len() >= MAX_ENTRIES {
            // Full: drop stale entries, at most once a second (a flood of new names must not
            // turn every request into a scan).
            if now_ms.saturating_sub(last.pruned_ms) >= 1000 {
                last.by_key.retain(|_, (_, at)| now_ms.saturating_sub(*at) < STICKY_MS);
                last.pruned_ms = now_ms;
            }
            if last.by_key.len() >= MAX_ENTRIES {
                return;
            }
        }
        last.by_key.insert(key.into(), (node.clone(), now_ms));
    }

    /// The origin `key` was on within the last minute.
    pub fn recent(&self, key: &str, now_ms: u64) -> Option<Arc<str>> {
        self.last().by_key.get(key).filter(|(_, at)| now_ms.saturating_sub(*at) < STICKY_MS).map(|(n, _)| n.clone())
    }

    /// After a merge: placements whose streams are live (or too old) stop counting, and each
    /// stream `prev` listed with an origin and `dir` no longer lists is remembered on that origin.
    pub fn observe(&self, prev: &Directory, dir: &Directory, now_ms: u64) {
        {
            let mut pending = self.pending();
            let done: Vec<Arc<str>> = pending
                .by_key
                .iter()
                .filter(|(key, (_, at))| now_ms.saturating_sub(*at) >= PENDING_MS || dir.streams.contains_key(*key))
                .map(|(key, _)| key.clone())
                .collect();
            for key in done {
                pending.remove(&key);
            }
            pending.by_index = None;
        }
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
        let mut table = crate::nodes::NodeTable::new();
        for (i, name) in ["o1", "o2"].into_iter().enumerate() {
            let spec: crate::config::NodeSpec =
                format!("name={name},role=origin,api=http://127.0.0.1:1").parse().unwrap();
            let mut e = crate::nodes::NodeEntry::new(spec, i, None);
            e.health = crate::nodes::Health::Up;
            table.insert(name.into(), e);
        }
        let dir = Directory::build(&table, &crate::config::IndexConfig::default(), 0);
        assert_eq!(p.pending_by_node(&dir), [0, 0]);
        p.placed(&dir, 1, "__defaultVhost__/live/a", 1_000);
        p.placed(&dir, 1, "__defaultVhost__/live/b", 1_000);
        p.placed(&dir, 1, "__defaultVhost__/live/b", 1_001);
        assert_eq!(p.pending_by_node(&dir), [0, 2], "a repeated placement counts once");
        let next = Directory::build(&table, &crate::config::IndexConfig::default(), 0);
        assert_eq!(p.pending_by_node(&next), [0, 2], "the counts are the same in the next directory");
        p.observe(&dir, &next, 1_000 + PENDING_MS);
        assert_eq!(p.pending_by_node(&next), [0, 1], "the older one expired at the merge");
        p.placed(&next, 0, "__defaultVhost__/live/b", 1_000 + PENDING_MS);
        assert_eq!(p.pending_by_node(&next), [1, 0], "placed again elsewhere: it moves");
        p.placed(&dir, 1, "__defaultVhost__/live/c", 1_000 + PENDING_MS);
        assert_eq!(p.pending_by_node(&next), [1, 1], "a placement read from an older directory counts too");
    }

    #[test]
    fn names_crafted_to_collide_in_the_fast_hash_do_not_collide_here() {
        use std::hash::BuildHasher;
        // The attack: FastHash is fixed, so anyone can solve for names with one hash value. For a
        // key of five 8-byte words, the last word is chosen so the state after it is a target.
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let k_inv = (0..6).fold(1u64, |x, _| x.wrapping_mul(2u64.wrapping_sub(K.wrapping_mul(x))));
        assert_eq!(K.wrapping_mul(k_inv), 1);
        let step = |s: u64, w: u64| (s ^ w).wrapping_mul(K).rotate_left(29);
        let prefix = "__defaultVhost__/live/ab";
        let target = 0x1234_5678_9abc_def0u64;
        let mut names = Vec::new();
        let mut free = 0u64;
        while names.len() < 16 {
            free += 1;
            let mut word = *b"AAAAAAAA";
            for (i, b) in word.iter_mut().enumerate() {
                *b = b'A' + ((free >> (5 * i)) & 31) as u8;
            }
            let mut s = 0xcbf2_9ce4_8422_2325u64;
            for c in prefix.as_bytes().chunks(8).chain([&word[..]]) {
                s = step(s, u64::from_le_bytes(c.try_into().unwrap()));
            }
            let last = (s ^ target.rotate_right(29).wrapping_mul(k_inv)).to_le_bytes();
            if last.iter().all(|b| b.is_ascii_alphanumeric()) {
                let tail = std::str::from_utf8(&last).unwrap();
                names.push(format!("{prefix}{}{tail}", std::str::from_utf8(&word).unwrap()));
            }
        }
        let fast: std::collections::HashSet<u64> = names.iter().map(|n| FastHash.hash_one(n.as_str())).collect();
        assert_eq!(fast.len(), 1, "{} names, one FastHash value: the attack input is real", names.len());
        let p = Placements::default();
        let ours: std::collections::HashSet<u64> =
            names.iter().map(|n| p.last().by_key.hasher().hash_one(n.as_str())).collect();
        assert_eq!(ours.len(), names.len(), "the placements map's hasher spreads them");
    }

    #[test]
    fn the_memory_is_bounded() {
        let p = Placements::default();
        let o: Arc<str> = Arc::from("o1");
        for i in 0..MAX_ENTRIES + 10 {
            p.remember(&format!("k{i}"), &o, 5);
        }
        assert_eq!(p.last().by_key.len(), MAX_ENTRIES, "full of fresh entries: new ones are not kept");
        p.remember("late", &o, 5 + STICKY_MS);
        assert_eq!(p.recent("late", 5 + STICKY_MS).as_deref(), Some("o1"), "stale entries made room");
    }
}

//! Recent UDP answers, given again to the same resolver asking the same question.
//!
//! Answering a query from the directory (parse, rank, encode) costs several times what the
//! kernel spends receiving and sending it. On one core shared with the index's own polling, that
//! cost is what turned each burst of poll parsing into a queue of waiting queries (a p99 of
//! milliseconds in `bench/dns.sh`). Resolvers ask the same few names over and over, so an answer is
//! kept for [`MAX_AGE`] and given again for the same query bytes (everything after the ID: flags,
//! name in its exact case, type, EDNS and client subnet) from the same address, with the asker's
//! ID, counting in the metrics and assignments exactly what the first answer counted.
//!
//! Not cached: answers that placed a publisher, answers cut by the rate limit or for size. All
//! entries go when the directory or the zone changes. Bounded: queries over [`MAX_QUERY`] bytes
//! are not kept, and a full table is emptied (a flood of distinct queries only costs what it would
//! without the cache). The table's hasher is keyed per process, as the keys are whatever a
//! stranger sends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::answer::Note;

/// How long an answer is given again: short against a poll interval, so assignments counted
/// meanwhile move the next answer soon.
pub const MAX_AGE: Duration = Duration::from_millis(200);

/// Most answers kept.
pub const MAX_ENTRIES: usize = 4096;

/// Largest query kept (an ordinary query with EDNS and a client subnet is under 100 bytes).
pub const MAX_QUERY: usize = 512;

/// What the answers were computed from: the directory's and the zone's ids.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Generation {
    pub directory: u64,
    pub zone: u64,
}

struct Cached {
    bytes: Vec<u8>,
    note: Note,
    at: Instant,
}

#[derive(Default)]
struct Table {
    generation: Generation,
    /// Key: the asker's address (16 bytes), then the query after its ID.
    answers: HashMap<Box<[u8]>, Cached>,
}

#[derive(Default)]
pub struct AnswerCache {
    table: Mutex<Table>,
}

/// Writes the cache key of `packet` from `peer` into `key`; false when the query is not cached.
pub fn key_of(key: &mut Vec<u8>, peer: IpAddr, packet: &[u8]) -> bool {
    if packet.len() < 12 || packet.len() > MAX_QUERY {
        return false;
    }
    key.clear();
    let peer = match peer.to_canonical() {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    key.extend_from_slice(&peer);
    key.extend_from_slice(&packet[2..]);
    true
}

impl AnswerCache {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer kept for `key` (from [`key_of`]) under `generation`, with the ID of `packet`.
    pub fn get(&self, generation: Generation, key: &[u8], packet: &[u8], now: Instant) -> Option<(Vec<u8>, Note)> {
        let table = self.table();
        if table.generation != generation {
            return None;
        }
        let hit = table.answers.get(key).filter(|c| now.saturating_duration_since(c.at) < MAX_AGE)?;
        let mut bytes = hit.bytes.clone();
        bytes[..2].copy_from_slice(&packet[..2]);
        Some((bytes, hit.note.clone()))
    }

    /// Keeps `bytes` (with the note of what they counted) as the answer for `key` under
    /// `generation`.
    pub fn put(&self, generation: Generation, key: &[u8], bytes: &[u8], note: &Note, now: Instant) {
        if !note.cacheable || bytes.len() < 2 {
            return;
        }
        let mut table = self.table();
        if table.generation != generation {
            table.answers.clear();
            table.generation = generation;
        }
        if table.answers.len() >= MAX_ENTRIES && !table.answers.contains_key(key) {
            table.answers.clear();
        }
        table.answers.insert(key.into(), Cached { bytes: bytes.to_vec(), note: note.clone(), at: now });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table().answers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note() -> Note {
        Note { cacheable: true, ..Note::default() }
    }

    const G: Generation = Generation { directory: 7, zone: 1 };

    #[test]
    fn an_answer_is_given_again_with_the_askers_id_until_it_ages_or_the_directory_changes() {
        let cache = AnswerCache::default();
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let query = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'f', b'o', b'o', 0, 0, 1, 0, 1];
        let mut key = Vec::new();
        assert!(key_of(&mut key, peer, &query));
        let t0 = Instant::now();
        cache.put(G, &key, &[0x12, 0x34, 0x81, 0x80, 9], &note(), t0);
        let mut again = query;
        again[..2].copy_from_slice(&[0xab, 0xcd]);
        let (bytes, _) = cache.get(G, &key, &again, t0 + Duration::from_millis(10)).unwrap();
        assert_eq!(bytes, [0xab, 0xcd, 0x81, 0x80, 9], "the asker's ID, the rest as answered");
        assert!(cache.get(G, &key, &again, t0 + MAX_AGE).is_none(), "too old");
        assert!(cache.get(Generation { directory: 8, ..G }, &key, &again, t0).is_none(), "another directory");

        let mut other = Vec::new();
        assert!(key_of(&mut other, "192.0.2.2".parse().unwrap(), &query));
        assert!(cache.get(G, &other, &query, t0).is_none(), "another asker");
        let mut upper = query;
        upper[13] = b'F';
        assert!(key_of(&mut other, peer, &upper));
        assert!(cache.get(G, &other, &upper, t0).is_none(), "the name in another case");
    }

    #[test]
    fn placements_cuts_and_large_queries_are_not_kept_and_the_table_is_bounded() {
        let cache = AnswerCache::default();
        let t0 = Instant::now();
        cache.put(G, b"k", &[0, 0, 1], &Note::default(), t0);
        assert_eq!(cache.len(), 0, "not cacheable");
        assert!(!key_of(&mut Vec::new(), "192.0.2.1".parse().unwrap(), &[0; MAX_QUERY + 1]));
        assert!(!key_of(&mut Vec::new(), "192.0.2.1".parse().unwrap(), &[0; 11]));
        for i in 0..MAX_ENTRIES + 5 {
            cache.put(G, format!("k{i}").as_bytes(), &[0, 0, 1], &note(), t0);
            assert!(cache.len() <= MAX_ENTRIES);
        }
        assert!(cache.get(G, format!("k{}", MAX_ENTRIES + 4).as_bytes(), &[0, 0], t0).is_some());
    }
}

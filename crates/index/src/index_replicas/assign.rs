//! Scheduler assignments shared between replicas.
//!
//! The scheduler counts, per node, the viewers it sent there since the node's last poll
//! (`Directory::assigned`), as load the node's numbers do not show yet. With several replicas each
//! sees only its own share of a burst, so every replica sends the increments of its counters every
//! 50 ms on the pub/sub channel `<prefix>:ch:assign`, and adds the others' increments to its own
//! counters.
//!
//! Chosen so because it keeps Redis off the request path: a play request still only increments
//! an in-memory atomic, as in single mode; a Redis INCR per request would put a round trip (and a
//! Redis outage) on every request, for a number that is an estimate anyway. The cost is up to 50 ms
//! (plus delivery) before another replica counts an assignment.
//!
//! Counts belong to one poll of a node: a message carries the node's `last_ok_ms` (the leader's
//! poll, which every replica's record has), and a receiver adds it only while its view of the node
//! is from the same poll — a newer poll already includes those viewers. Pub/sub keeps nothing, so
//! a replica that was disconnected, or started meanwhile, misses earlier increments: it
//! undercounts until the next poll of the node, as a single index does after a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Replicas, lock};
use crate::state::IndexState;

/// How often local increments are sent.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// One node's counter as this replica accounts it, for one poll of the node.
#[derive(Default)]
struct Track {
    /// `last_ok_ms` of the poll the counts belong to.
    poll: u64,
    /// Added to the counter from other replicas' messages.
    remote: u64,
    /// Of this replica's own assignments, how many were sent.
    sent: u64,
}

/// Per node, what of its counter came from where.
#[derive(Default)]
pub struct Tracker {
    nodes: Mutex<HashMap<Arc<str>, Track>>,
}

#[derive(Serialize, Deserialize)]
struct Msg {
    r: String,
    /// (node, its poll's last_ok_ms, viewers sent there since the last message)
    d: Vec<(String, u64, u64)>,
}

impl Tracker {
    /// This replica's increments since the last call, per node with its poll; marks them sent.
    fn take_local(&self, dir: &crate::directory::Directory) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        let mut nodes = lock(&self.nodes);
        for (i, n) in dir.nodes.iter().enumerate() {
            let total = dir.assigned(i);
            let poll = n.last_ok_ms.unwrap_or(0);
            if total == 0 && !nodes.contains_key(n.spec.name.as_str()) {
                continue;
            }
            let t = nodes.entry(Arc::from(n.spec.name.as_str())).or_default();
            if t.poll != poll {
                *t = Track { poll, ..Track::default() };
            }
            let local = total.saturating_sub(t.remote);
            if local > t.sent {
                out.push((n.spec.name.clone(), poll, local - t.sent));
                t.sent = local;
            }
        }
        // Nodes gone from the directory.
        if nodes.len() > dir.nodes.len() {
            nodes.retain(|name, _| dir.node(name).is_some());
        }
        out
    }

    /// Adds another replica's increments to the counters they belong to.
    fn add_remote(&self, dir: &crate::directory::Directory, d: Vec<(String, u64, u64)>) {
        let mut nodes = lock(&self.nodes);
        for (name, poll, n) in d {
            let Ok(i) = dir.nodes.binary_search_by(|v| v.spec.name.as_str().cmp(&name)) else { continue };
            if dir.nodes[i].last_ok_ms.unwrap_or(0) != poll {
                continue;
            }
            let t = nodes.entry(Arc::from(name.as_str())).or_default();
            if t.poll != poll {
                *t = Track { poll, ..Track::default() };
            }
            t.remote = t.remote.saturating_add(n);
            dir.assigned[i].fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Sends this replica's increments every [`FLUSH_EVERY`].
pub(super) async fn flusher(state: Arc<IndexState>, sh: Arc<Replicas>) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let d = sh.assign.take_local(&state.directory.load());
        if d.is_empty() || !sh.is_up() {
            continue;
        }
        let msg = serde_json::to_string(&Msg { r: sh.id.clone(), d }).unwrap_or_default();
        let mut conn = sh.conn.clone();
        let sent: redis::RedisResult<i64> =
            redis::cmd("PUBLISH").arg(&sh.keys.ch_assign).arg(msg).query_async(&mut conn).await;
        if let Err(e) = sent {
            tracing::debug!("assignments not shared (redis: {e})");
        }
    }
}

/// A message on the assignments channel.
pub(super) fn received(state: &IndexState, sh: &Replicas, payload: &[u8]) {
    let Ok(m) = serde_json::from_slice::<Msg>(payload) else { return };
    if m.r == sh.id {
        return;
    }
    sh.assign.add_remote(&state.directory.load(), m.d);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IndexConfig;
    use crate::nodes::{Health, NodeEntry, NodeReport, NodeTable};

    fn dir(poll: u64) -> crate::directory::Directory {
        let mut table = NodeTable::new();
        for name in ["e1", "e2"] {
            let mut e = NodeEntry::new(format!("name={name},api=http://127.0.0.1:1").parse().unwrap(), 0, None);
            e.health = Health::Up;
            e.last_ok_ms = Some(poll);
            e.report = Some(Arc::new(NodeReport::default()));
            table.insert(name.into(), e);
        }
        crate::directory::Directory::build(&table, &IndexConfig::default(), 0)
    }

    #[test]
    fn own_increments_go_out_once_and_others_count_without_echo() {
        let t = Tracker::default();
        let d = dir(7);
        crate::scheduler::assign(&d, 0);
        crate::scheduler::assign(&d, 0);
        assert_eq!(t.take_local(&d), [("e1".to_string(), 7, 2)]);
        assert!(t.take_local(&d).is_empty(), "sent once");
        t.add_remote(&d, vec![("e1".into(), 7, 5), ("e2".into(), 7, 1), ("e2".into(), 6, 9)]);
        assert_eq!((d.assigned(0), d.assigned(1)), (7, 1), "an older poll's count is dropped");
        assert!(t.take_local(&d).is_empty(), "the others' counts are not sent back");
        crate::scheduler::assign(&d, 1);
        assert_eq!(t.take_local(&d), [("e2".to_string(), 7, 1)]);
        // A new poll of the nodes: counting starts again.
        let d2 = dir(8);
        crate::scheduler::assign(&d2, 0);
        assert_eq!(t.take_local(&d2), [("e1".to_string(), 8, 1)]);
    }

    #[test]
    fn counts_from_other_replicas_saturate() {
        let t = Tracker::default();
        let d = dir(7);
        // Another replica (or whoever writes to Redis) announces absurd counts: no overflow.
        t.add_remote(&d, vec![("e1".into(), 7, u64::MAX), ("e1".into(), 7, u64::MAX)]);
        crate::scheduler::assign(&d, 0);
        assert!(t.take_local(&d).is_empty(), "nothing of this replica's own to send");
    }
}

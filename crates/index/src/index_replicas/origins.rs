//! Which origin each stream belongs on, shared between replicas, so every replica answers
//! `/api/v1/publish` (and `origin.` DNS names) the same way:
//!
//! - the primary origins learnt from `on_forward` (and forgotten at `on_unpublish`): only the
//!   replica that received the hook knew them, so the others could order a replicated stream's
//!   origins differently and send its publisher elsewhere;
//! - publish placements (the origin a publisher was sent to): remembered for a reconnect, and
//!   counted as the origin's load until the stream shows, by every replica.
//!
//! A replica's notes go out in batches on the channel `<prefix>:ch:origins`; primaries are also
//! kept in the hash `<prefix>:primaries` (stream key → `node<TAB>ms`), which a replica reads after
//! every (re)connect, so one started later or cut off meanwhile knows them too. Placements live a
//! minute, so pub/sub alone carries them. A note names an origin of the directory or is ignored:
//! nothing is created for a node this replica does not know.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::Replicas;
use crate::config::Role;
use crate::state::IndexState;

/// Notes waiting to go out at most; beyond it they stay local.
pub const QUEUE: usize = 4096;
/// Notes in one message at most.
const BATCH: usize = 256;
/// Longest stream key taken from a message.
const MAX_KEY: usize = 1024;
/// A primary older than this in the hash is forgotten at the next read (its stream ended without
/// an `on_unpublish` reaching any replica).
const PRIMARY_TTL_MS: u64 = 24 * 3600 * 1000;

/// KEYS: the primaries hash. ARGV: stream key, origin. Removes the field if it names that origin.
const UNSET_PRIMARY: &str = r#"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '\t' then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"#;

/// What a replica learnt about a stream's origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// `on_forward`: the origin the publisher is on.
    #[serde(rename = "p")]
    Primary,
    /// `on_unpublish`: the publisher left that origin.
    #[serde(rename = "u")]
    Unpublished,
    /// A publisher was sent to that origin.
    #[serde(rename = "o")]
    Placed,
}

/// One note: kind, stream key, origin name.
pub type Note = (Kind, String, String);

/// Where notes go: set once shared mode starts; without it (one index) nothing is sent.
#[derive(Default)]
pub struct Outbox(std::sync::OnceLock<mpsc::Sender<Note>>);

impl Outbox {
    /// Queues a note for the other replicas; never waits (a full queue keeps it local).
    pub fn send(&self, kind: Kind, key: &str, node: &str) {
        if let Some(tx) = self.0.get() {
            let _ = tx.try_send((kind, key.to_string(), node.to_string()));
        }
    }

    pub(super) fn connect(&self, tx: mpsc::Sender<Note>) {
        let _ = self.0.set(tx);
    }
}

#[derive(Serialize, Deserialize)]
struct Msg {
    r: String,
    d: Vec<Note>,
}

/// Sends this replica's notes in batches: primaries into the hash, every note on the channel.
pub(super) async fn sender(state: Arc<IndexState>, sh: Arc<Replicas>, mut rx: mpsc::Receiver<Note>) {
    loop {
        let first = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            n = rx.recv() => match n { Some(n) => n, None => return },
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(n) => batch.push(n),
                Err(_) => break,
            }
        }
        let now = crate::clock::now_ms();
        let mut pipe = redis::pipe();
        for (kind, key, node) in &batch {
            match kind {
                Kind::Primary => {
                    pipe.hset(&sh.keys.primaries, key, format!("{node}\t{now}")).ignore();
                }
                // Only if that origin is still the primary: a late unpublish must not remove a
                // newer primary another replica set.
                Kind::Unpublished => {
                    pipe.cmd("EVAL").arg(UNSET_PRIMARY).arg(1).arg(&sh.keys.primaries).arg(key).arg(node).ignore();
                }
                Kind::Placed => {}
            }
        }
        let msg = serde_json::to_string(&Msg { r: sh.id.clone(), d: batch }).unwrap_or_default();
        pipe.publish(&sh.keys.ch_origins, msg).ignore();
        let mut conn = sh.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::debug!("origin notes not shared (redis: {e}); the other replicas learn from their next hooks");
        }
    }
}

/// Another replica's notes.
pub(super) fn received(state: &IndexState, sh: &Replicas, payload: &[u8]) {
    let msg: Msg = match serde_json::from_slice(payload) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("an origin note from another replica that does not parse: {e}");
            return;
        }
    };
    if msg.r == sh.id {
        return;
    }
    let dir = state.directory.load();
    let now = crate::clock::now_ms();
    for (kind, key, node) in msg.d.iter().take(BATCH) {
        let Some(i) = dir.index_of(node).filter(|&i| dir.nodes[i].spec.role == Role::Origin) else { continue };
        if key.len() > MAX_KEY {
            continue;
        }
        match kind {
            Kind::Primary => state.primaries.set_quietly(key, node, now),
            Kind::Unpublished => state.primaries.unpublished_quietly(key, node),
            Kind::Placed => state.placements.placed_quietly(&dir, i, key, now),
        }
    }
}

/// After a (re)connect: the primaries the hash holds (stale ones are removed).
pub(super) fn sync(state: &Arc<IndexState>, sh: &Arc<Replicas>) {
    let (state, sh) = (state.clone(), sh.clone());
    tokio::spawn(async move {
        let mut conn = sh.conn.clone();
        let all: Vec<(String, String)> =
            match redis::cmd("HGETALL").arg(&sh.keys.primaries).query_async(&mut conn).await {
                Ok(all) => all,
                Err(e) => return tracing::debug!("cannot read the shared primaries (redis: {e})"),
            };
        let now = crate::clock::now_ms();
        let mut stale = Vec::new();
        for (key, value) in all {
            let Some((node, since)) = value.split_once('\t') else { continue };
            let since: u64 = since.parse().unwrap_or(0);
            if now.saturating_sub(since) > PRIMARY_TTL_MS {
                stale.push(key);
            } else if key.len() <= MAX_KEY {
                state.primaries.set_quietly(&key, node, now);
            }
        }
        if !stale.is_empty() {
            let _: redis::RedisResult<()> =
                redis::cmd("HDEL").arg(&sh.keys.primaries).arg(&stale).query_async(&mut conn).await;
        }
    });
}

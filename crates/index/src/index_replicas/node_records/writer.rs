//! The leader's side of the node records: after each merge, compares the node table with what it
//! last wrote and writes what changed in one fenced script, announcing the changed names.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::wire::{Meta, encode_body};
use crate::directory::stable_hash;
use crate::index_replicas::lease::{self, WriteError};
use crate::index_replicas::{Replicas, Role};
use crate::nodes::{NodeEntry, NodeReport};
use crate::state::IndexState;

/// What the leader reads of a node table entry.
pub(crate) struct Row {
    name: String,
    meta: Meta,
    report: Option<Arc<NodeReport>>,
    /// The poll that read `report`.
    poll_seq: u64,
}

pub(crate) fn row(name: &str, e: &NodeEntry) -> Row {
    Row {
        name: name.to_string(),
        meta: Meta {
            spec: (*e.spec).clone(),
            order: e.order,
            registered: e.registered.is_some(),
            health: e.health.as_str().to_string(),
            fails: e.fails,
            error: e.last_error.as_deref().map(str::to_string),
            ok_ms: e.last_ok_ms,
            poll_us: e.last_poll.map(|d| d.as_micros() as u64),
            body: None,
        },
        report: e.report.clone(),
        poll_seq: e.poll_seq,
    }
}

/// What the leader last wrote for a node.
#[derive(Clone, Default)]
pub(crate) struct Sent {
    meta: String,
    /// The poll whose stream list was written, and the list's hash.
    body: Option<(u64, u64)>,
}

/// One write: records, stream lists and removals, and the cache entries to keep once it succeeded.
#[derive(Default)]
pub struct Batch {
    pub metas: Vec<(String, String)>,
    pub bodies: Vec<(String, String)>,
    pub removed: Vec<String>,
    pub(crate) sent: Vec<(String, Sent)>,
}

impl Batch {
    /// A batch of records and stream lists to write, and nodes to remove (for tests and tools).
    pub fn new(metas: Vec<(String, String)>, bodies: Vec<(String, String)>, removed: Vec<String>) -> Batch {
        Batch { metas, bodies, removed, sent: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.metas.is_empty() && self.bodies.is_empty() && self.removed.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.metas.iter().chain(&self.bodies).map(|(k, v)| k.len() + v.len()).sum::<usize>()
            + self.removed.iter().map(String::len).sum::<usize>()
    }
}

/// Compares the rows with what was written; encodes what changed.
pub(crate) fn diff(sent: &HashMap<String, Sent>, rows: Vec<Row>, stale: &[String]) -> Batch {
    let mut batch = Batch::default();
    let names: HashSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    for name in sent.keys().map(String::as_str).chain(stale.iter().map(String::as_str)) {
        if !names.contains(name) && !batch.removed.iter().any(|r| r == name) {
            batch.removed.push(name.to_string());
        }
    }
    for mut r in rows {
        let before = sent.get(&r.name);
        let mut body = None;
        if let Some(snap) = &r.report {
            let hash = match before.and_then(|b| b.body).filter(|(seq, _)| *seq == r.poll_seq) {
                Some((_, hash)) => hash,
                None => {
                    let text = encode_body(snap);
                    let hash = stable_hash(&text);
                    if before.and_then(|b| b.body).is_none_or(|(_, h)| h != hash) {
                        batch.bodies.push((r.name.clone(), text));
                    }
                    hash
                }
            };
            r.meta.body = Some(format!("{hash:016x}"));
            body = Some((r.poll_seq, hash));
        }
        let meta = serde_json::to_string(&r.meta).unwrap_or_default();
        if before.is_none_or(|b| b.meta != meta) {
            batch.metas.push((r.name.clone(), meta.clone()));
        }
        batch.sent.push((r.name, Sent { meta, body }));
    }
    batch
}

/// KEYS: fence, nodes, bodies. ARGV: token, #metas, #bodies, #removed, channel, message, then the
/// pairs and names.
const WRITE: &str = r#"
local nm, nb, nd = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local i = 7
for _ = 1, nm do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nb do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nd do redis.call('HDEL', KEYS[2], ARGV[i]); redis.call('HDEL', KEYS[3], ARGV[i]); i = i + 1 end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
"#;

/// The announcement of a write.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Announce {
    /// Replica id of the writer.
    pub(crate) r: String,
    /// Its fencing token.
    pub(crate) t: u64,
    /// Records written.
    pub(crate) c: Vec<String>,
    /// Records removed.
    pub(crate) d: Vec<String>,
}

/// Writes `batch` as the leader of term `token`: refused when a newer term exists.
pub async fn write(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &crate::index_replicas::Keys,
    replica: &str,
    token: u64,
    batch: &Batch,
) -> Result<(), WriteError> {
    let announce = Announce {
        r: replica.to_string(),
        t: token,
        c: batch.metas.iter().map(|(n, _)| n.clone()).collect(),
        d: batch.removed.clone(),
    };
    let message = serde_json::to_string(&announce).unwrap_or_default();
    let (t, nm, nb, nd) = (
        token.to_string(),
        batch.metas.len().to_string(),
        batch.bodies.len().to_string(),
        batch.removed.len().to_string(),
    );
    let mut args: Vec<&[u8]> =
        vec![t.as_bytes(), nm.as_bytes(), nb.as_bytes(), nd.as_bytes(), keys.ch_nodes.as_bytes(), message.as_bytes()];
    for (k, v) in batch.metas.iter().chain(&batch.bodies) {
        args.push(k.as_bytes());
        args.push(v.as_bytes());
    }
    args.extend(batch.removed.iter().map(|n| n.as_bytes()));
    let script = lease::fenced(WRITE);
    lease::eval::<i64>(conn, &script, &[&keys.fence, &keys.nodes, &keys.bodies], &args)
        .await
        .map(drop)
        .map_err(|e| lease::classify(token, e))
}

/// The leader's writer: after each merge, writes what changed.
pub(crate) async fn publisher(state: Arc<IndexState>, sh: Arc<Replicas>) {
    let mut sent: HashMap<String, Sent> = HashMap::new();
    let mut term = 0u64;
    let mut stale: Vec<String> = Vec::new();
    // Retries a failed write even when nothing else changes.
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = sh.publish.notified() => {}
            _ = retry.tick() => {}
        }
        if sh.role() != Role::Leader {
            continue;
        }
        let token = sh.token();
        let mut conn = sh.conn.clone();
        if token != term {
            // A new term: write everything, and drop records of nodes this table does not have.
            sent.clear();
            let keys: redis::RedisResult<Vec<String>> =
                redis::cmd("HKEYS").arg(&sh.keys.nodes).query_async(&mut conn).await;
            match keys {
                Ok(k) => stale = k,
                Err(e) => {
                    tracing::debug!("cannot read the node records (redis: {e})");
                    continue;
                }
            }
            term = token;
        }
        let started = Instant::now();
        let rows: Vec<Row> = state.table().iter().map(|(n, e)| row(n, e)).collect();
        let cache = std::mem::take(&mut sent);
        let stale_now = std::mem::take(&mut stale);
        let Ok((cache, stale_now, batch)) = tokio::task::spawn_blocking(move || {
            let batch = diff(&cache, rows, &stale_now);
            (cache, stale_now, batch)
        })
        .await
        else {
            continue;
        };
        sent = cache;
        if batch.is_empty() {
            continue;
        }
        match write(&mut conn, &sh.keys, &sh.id, token, &batch).await {
            Ok(()) => {
                let bytes = batch.bytes() as u64;
                for name in &batch.removed {
                    sent.remove(name);
                }
                sent.extend(batch.sent);
                let s = &sh.stats;
                s.publishes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                s.publish_bytes.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
                s.publish_us.fetch_add(started.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            Err(WriteError::Fenced { token, newest }) => {
                sh.stats.fenced.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                stale = stale_now;
                if sh.role() == Role::Leader && sh.token() == token {
                    sh.set_role(
                        Role::Follower,
                        0,
                        &format!("a write with token {token} was refused: token {newest} is newer"),
                    );
                }
            }
            Err(WriteError::Redis(e)) => {
                stale = stale_now;
                tracing::debug!("node records not written (redis: {e}); retrying");
            }
        }
    }
}

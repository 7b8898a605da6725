//! A follower's side of the node records: collects the leader's announcements, fetches the
//! records (and the stream lists whose hash changed) and puts them in its node table, so its merge
//! builds the leader's directory. Every 10 s, and after a reconnect, it reads them all.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::wire::{Meta, decode_body, health_from};
use super::writer::Announce;
use crate::directory::stable_hash;
use crate::index_replicas::{Replicas, Role, lock};
use crate::nodes::{HealthChange, NodeEntry, NodeReport};
use crate::state::IndexState;

/// Largest stream list a follower decodes: the leader writes what a poll read, and a poll reads at
/// most `poll.max_body_bytes` (32 MiB by default) per page; anything bigger is no list of ours.
const MAX_BODY: usize = 256 << 20;

/// How often a follower reads every record, whatever was announced.
const FULL_EVERY: Duration = Duration::from_secs(10);

/// What a follower still has to fetch.
#[derive(Default)]
pub struct Pending {
    names: HashSet<String>,
    removed: HashSet<String>,
}

/// An announcement on `<prefix>:ch:nodes`.
pub(crate) fn announced(sh: &Replicas, payload: &[u8]) {
    let Ok(a) = serde_json::from_slice::<Announce>(payload) else { return };
    if a.r == sh.id {
        return;
    }
    // No need to weigh tokens here: the write this announces passed the fence, so it was the
    // newest term's when it was made, and pub/sub delivers announcements in the order they were made.
    sh.seen_token.fetch_max(a.t, std::sync::atomic::Ordering::AcqRel);
    let mut p = lock(&sh.pending);
    for n in a.d {
        p.names.remove(&n);
        p.removed.insert(n);
    }
    for n in a.c {
        p.removed.remove(&n);
        p.names.insert(n);
    }
    drop(p);
    sh.fetch.notify_one();
}

/// What a follower holds of a node's stream list.
struct Held {
    hash: u64,
    ok_ms: Option<u64>,
    report: Arc<NodeReport>,
}

/// A follower's reader: fetches the announced records (or all of them) and applies them.
pub(crate) async fn fetcher(state: Arc<IndexState>, sh: Arc<Replicas>) {
    let mut held: HashMap<String, Held> = HashMap::new();
    let mut full_tick = tokio::time::interval(FULL_EVERY);
    full_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let full = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = sh.fetch.notified() => false,
            _ = sh.resync.notified() => true,
            _ = full_tick.tick() => true,
        };
        if sh.role() != Role::Follower {
            let mut p = lock(&sh.pending);
            p.names.clear();
            p.removed.clear();
            held.clear();
            continue;
        }
        let (names, removed) = {
            let mut p = lock(&sh.pending);
            (std::mem::take(&mut p.names), std::mem::take(&mut p.removed))
        };
        if !full && names.is_empty() && removed.is_empty() {
            continue;
        }
        match fetch(&sh, &mut held, full, names.clone()).await {
            Ok(records) => {
                let bytes: usize = records.iter().map(|r| r.4).sum();
                sh.stats.apply_bytes.fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
                sh.stats.applied.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                for n in &removed {
                    held.remove(n);
                }
                apply(&state, &sh, records.into_iter().map(|(n, m, s, new, _)| (n, m, s, new)).collect(), removed);
            }
            Err(e) => {
                tracing::debug!("node records not read (redis: {e}); retrying");
                {
                    let mut p = lock(&sh.pending);
                    p.names.extend(names);
                    p.removed.extend(removed);
                }
                tokio::select! {
                    _ = state.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                if full {
                    sh.resync.notify_one();
                } else {
                    sh.fetch.notify_one();
                }
            }
        }
    }
}

/// A record read: the node, its record, its stream list, whether that list is from a poll this
/// follower has not applied yet, and the bytes read.
type Record = (String, Meta, Option<Arc<NodeReport>>, bool, usize);

/// Reads records (`names`, or all when `full`) and the stream lists that changed.
async fn fetch(
    sh: &Replicas,
    held: &mut HashMap<String, Held>,
    full: bool,
    names: HashSet<String>,
) -> redis::RedisResult<Vec<Record>> {
    let mut conn = sh.conn.clone();
    let raw: Vec<(String, String)> = if full {
        redis::cmd("HGETALL").arg(&sh.keys.nodes).query_async(&mut conn).await?
    } else {
        let names: Vec<String> = names.into_iter().collect();
        let metas: Vec<Option<String>> =
            redis::cmd("HMGET").arg(&sh.keys.nodes).arg(&names).query_async(&mut conn).await?;
        names.into_iter().zip(metas).filter_map(|(n, m)| Some((n, m?))).collect()
    };
    let mut metas = Vec::with_capacity(raw.len());
    for (name, text) in raw {
        match serde_json::from_str::<Meta>(&text) {
            Ok(m) => metas.push((name, m, text.len())),
            Err(e) => tracing::warn!(node = %name, "unreadable node record in redis: {e}"),
        }
    }
    let want = |m: &Meta| m.body.as_deref().and_then(|h| u64::from_str_radix(h, 16).ok());
    let need: Vec<String> = metas
        .iter()
        .filter(|(n, m, _)| want(m).is_some_and(|h| held.get(n).is_none_or(|x| x.hash != h)))
        .map(|(n, _, _)| n.clone())
        .collect();
    let mut bodies: HashMap<String, (u64, Arc<NodeReport>, usize)> = HashMap::new();
    if !need.is_empty() {
        let texts: Vec<Option<String>> =
            redis::cmd("HMGET").arg(&sh.keys.bodies).arg(&need).query_async(&mut conn).await?;
        for (name, text) in need.into_iter().zip(texts) {
            let Some(text) = text else { continue };
            if text.len() > MAX_BODY {
                tracing::warn!(node = %name, bytes = text.len(), "a stream list in redis larger than {MAX_BODY} bytes: ignored");
                continue;
            }
            let len = text.len();
            let hash = stable_hash(&text);
            let decoded = tokio::task::spawn_blocking(move || decode_body(&text)).await;
            match decoded {
                Ok(Ok(snap)) => {
                    bodies.insert(name, (hash, Arc::new(snap), len));
                }
                Ok(Err(e)) => tracing::warn!(node = %name, "{e}"),
                Err(_) => {}
            }
        }
    }
    let mut out = Vec::with_capacity(metas.len());
    for (name, meta, len) in metas {
        let (report, new_poll) = match want(&meta) {
            None => {
                held.remove(&name);
                (None, false)
            }
            Some(_) => match bodies.remove(&name) {
                Some((hash, snap, body_len)) => {
                    held.insert(name.clone(), Held { hash, ok_ms: meta.ok_ms, report: snap.clone() });
                    out.push((name, meta, Some(snap), true, len + body_len));
                    continue;
                }
                None => match held.get_mut(&name) {
                    // Same list: a new poll when the leader polled the node again since.
                    Some(h) => {
                        let new_poll = h.ok_ms != meta.ok_ms;
                        h.ok_ms = meta.ok_ms;
                        (Some(h.report.clone()), new_poll)
                    }
                    None => (None, false),
                },
            },
        };
        out.push((name, meta, report, new_poll, len));
    }
    Ok(out)
}

/// Puts the leader's records into this follower's node table.
fn apply(
    state: &Arc<IndexState>,
    sh: &Replicas,
    records: Vec<(String, Meta, Option<Arc<NodeReport>>, bool)>,
    removed: HashSet<String>,
) {
    let mut spawn = Vec::new();
    let mut stop = Vec::new();
    let mut changes = Vec::new();
    let mut urgent = false;
    {
        let mut table = state.table();
        if sh.role() != Role::Follower {
            return;
        }
        for (name, meta, report, new_poll) in records {
            let registered = meta.registered.then(Instant::now);
            let entry = table.entry(name.clone()).or_insert_with(|| {
                let e = NodeEntry::new(meta.spec.clone(), meta.order, registered);
                spawn.push(e.poller_handle(&name));
                e
            });
            if entry.registered.is_some() {
                if *entry.spec != meta.spec {
                    entry.spec = Arc::new(meta.spec.clone());
                }
                entry.registered = registered.or(entry.registered);
            }
            let before = entry.health;
            entry.health = health_from(&meta.health);
            entry.fails = meta.fails;
            entry.last_error = meta.error.map(|e| Arc::from(e.as_str()));
            entry.last_ok_ms = meta.ok_ms;
            entry.last_poll = meta.poll_us.map(Duration::from_micros);
            entry.report = report;
            if new_poll {
                entry.poll_seq = crate::nodes::next_poll_seq();
            }
            if before != entry.health {
                urgent |= before.schedulable() && !entry.health.schedulable();
                changes.push(HealthChange {
                    node: name,
                    from: before,
                    to: entry.health,
                    reason: entry.last_error.as_deref().unwrap_or("as the leader saw it").to_string(),
                });
            }
        }
        for name in removed {
            if table.get(&name).is_some_and(|e| e.registered.is_some())
                && let Some(e) = table.remove(&name)
            {
                stop.push(e.poller_handle(&name));
                urgent = true;
            }
        }
    }
    crate::poller::stop(stop);
    crate::poller::start(state, spawn);
    let now = crate::clock::now_ms() as i64;
    // A replica with a history of its own records the leader's node changes in it; one sharing
    // the leader's database (PostgreSQL) leaves that to the leader. Events come from the leader.
    if !state.store.is_shared() {
        for c in changes {
            state.store.node_changed(&c.node, c.from.as_str(), c.to.as_str(), now, &c.reason);
        }
    }
    if urgent {
        state.mark_urgent();
    } else {
        state.mark_dirty();
    }
}

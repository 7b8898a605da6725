//! Node records between the leader and the followers.
//!
//! The leader, after each merge, writes one record per node whose state changed into the hash
//! `<prefix>:nodes` (spec, health, failures, last error, last poll, and the hash of its stream
//! list) and the stream list itself into `<prefix>:bodies` — only when its content changed, so a
//! node whose streams did not change costs its small record, not its list. Both go in one fenced
//! script that also publishes the changed names on `<prefix>:ch:nodes`. A follower fetches the
//! announced records (HMGET), and the stream lists whose hash differs from the one it holds, and
//! puts them in its node table; its merge then builds the same directory the leader has. After a
//! reconnect, on becoming a follower and every 10 s it reads all records (HGETALL of the small
//! ones only), which also repairs a missed announcement.
//!
//! Encoding is JSON with streams as arrays (`[key, active, clients, kbps_in, kbps_out, video,
//! audio]`, codecs by index into per-node lists): about 60 bytes per stream.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::lease::{self, WriteError};
use super::{Role, Shared, lock};
use crate::config::NodeSpec;
use crate::directory::stable_hash;
use crate::nodes::{Health, HealthChange, NodeEntry, NodeSnapshot, NodeStream};
use crate::srs::{Audio, Kbps, Video};
use crate::state::IndexState;

/// How often a follower reads every record, whatever was announced.
const FULL_EVERY: Duration = Duration::from_secs(10);

/// A node's record as stored in `<prefix>:nodes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub spec: NodeSpec,
    pub order: usize,
    pub registered: bool,
    pub health: String,
    pub fails: u32,
    pub error: Option<String>,
    pub ok_ms: Option<u64>,
    pub poll_us: Option<u64>,
    /// Hash of the stream list in `<prefix>:bodies` (hex); None when the node has no snapshot.
    pub body: Option<String>,
}

fn health_from(s: &str) -> Health {
    match s {
        "up" => Health::Up,
        "degraded" => Health::Degraded,
        "down" => Health::Down,
        _ => Health::Unknown,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct WireVideo {
    c: String,
    p: Option<String>,
    l: Option<String>,
    w: u32,
    h: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct WireAudio {
    c: String,
    r: u32,
    n: u8,
    p: Option<String>,
}

/// One stream: key, active (0/1), clients, kbps in, kbps out, video index, audio index (-1: none).
type WireStream = (String, u8, u64, u64, u64, i32, i32);

/// A node's stream list as stored in `<prefix>:bodies`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Body {
    server: Option<String>,
    service: Option<String>,
    version: Option<String>,
    cpu: Option<f64>,
    mem: Option<u64>,
    up: Option<u64>,
    v: Vec<WireVideo>,
    a: Vec<WireAudio>,
    s: Vec<WireStream>,
}

/// The stream list of `snap` as stored.
pub fn encode_body(snap: &NodeSnapshot) -> String {
    let mut videos: Vec<&Arc<Video>> = Vec::new();
    let mut audios: Vec<&Arc<Audio>> = Vec::new();
    let mut streams = Vec::with_capacity(snap.streams.len());
    for s in &snap.streams {
        let v = slot(&mut videos, &s.video);
        let a = slot(&mut audios, &s.audio);
        streams.push((&*s.key, u8::from(s.active), s.clients, s.kbps.recv_30s, s.kbps.send_30s, v, a));
    }
    #[derive(Serialize)]
    struct Out<'a> {
        server: &'a Option<String>,
        service: &'a Option<String>,
        version: &'a Option<String>,
        cpu: Option<f64>,
        mem: Option<u64>,
        up: Option<u64>,
        v: Vec<WireVideo>,
        a: Vec<WireAudio>,
        s: Vec<(&'a str, u8, u64, u64, u64, i32, i32)>,
    }
    let out = Out {
        server: &snap.server,
        service: &snap.service,
        version: &snap.version,
        cpu: snap.cpu_percent,
        mem: snap.mem_kbyte,
        up: snap.uptime_s,
        v: videos
            .iter()
            .map(|v| WireVideo {
                c: v.codec.clone(),
                p: v.profile.clone(),
                l: v.level.clone(),
                w: v.width,
                h: v.height,
            })
            .collect(),
        a: audios
            .iter()
            .map(|a| WireAudio { c: a.codec.clone(), r: a.sample_rate, n: a.channels, p: a.profile.clone() })
            .collect(),
        s: streams,
    };
    serde_json::to_string(&out).unwrap_or_default()
}

/// The index of `v` in `list` (added when new), or -1 for none: codecs are listed once per node.
fn slot<'a, T: PartialEq>(list: &mut Vec<&'a Arc<T>>, v: &'a Option<Arc<T>>) -> i32 {
    let Some(v) = v else { return -1 };
    match list.iter().position(|known| Arc::ptr_eq(known, v) || ***known == **v) {
        Some(i) => i as i32,
        None => {
            list.push(v);
            list.len() as i32 - 1
        }
    }
}

/// A stored stream list back into a snapshot.
pub fn decode_body(text: &str) -> Result<NodeSnapshot, String> {
    let b: Body = serde_json::from_str(text).map_err(|e| format!("unreadable stream list: {e}"))?;
    let videos: Vec<Arc<Video>> =
        b.v.into_iter()
            .map(|v| Arc::new(Video { codec: v.c, profile: v.p, level: v.l, width: v.w, height: v.h }))
            .collect();
    let audios: Vec<Arc<Audio>> =
        b.a.into_iter()
            .map(|a| Arc::new(Audio { codec: a.c, sample_rate: a.r, channels: a.n, profile: a.p }))
            .collect();
    let streams =
        b.s.into_iter()
            .map(|(key, active, clients, recv, send, v, a)| NodeStream {
                key: key.into(),
                active: active != 0,
                clients,
                kbps: Kbps { recv_30s: recv, send_30s: send },
                video: usize::try_from(v).ok().and_then(|i| videos.get(i).cloned()),
                audio: usize::try_from(a).ok().and_then(|i| audios.get(i).cloned()),
            })
            .collect();
    Ok(NodeSnapshot {
        server: b.server,
        service: b.service,
        version: b.version,
        cpu_percent: b.cpu,
        mem_kbyte: b.mem,
        uptime_s: b.up,
        streams,
    })
}

/// The same content in a new allocation: a new poll of the node (its assignments start again).
fn copy(s: &NodeSnapshot) -> NodeSnapshot {
    NodeSnapshot {
        server: s.server.clone(),
        service: s.service.clone(),
        version: s.version.clone(),
        cpu_percent: s.cpu_percent,
        mem_kbyte: s.mem_kbyte,
        uptime_s: s.uptime_s,
        streams: s
            .streams
            .iter()
            .map(|n| NodeStream {
                key: n.key.clone(),
                active: n.active,
                clients: n.clients,
                kbps: n.kbps,
                video: n.video.clone(),
                audio: n.audio.clone(),
            })
            .collect(),
    }
}

/// What the leader reads of a node table entry.
struct Row {
    name: String,
    meta: Meta,
    snapshot: Option<Arc<NodeSnapshot>>,
}

fn row(name: &str, e: &NodeEntry) -> Row {
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
        snapshot: e.snapshot.clone(),
    }
}

/// What the leader last wrote for a node.
#[derive(Clone, Default)]
struct Sent {
    meta: String,
    /// The snapshot whose list was written (by address) and the list's hash.
    body: Option<(usize, u64)>,
}

/// One write: records, stream lists and removals, and the cache entries to keep once it succeeded.
#[derive(Default)]
pub struct Batch {
    pub metas: Vec<(String, String)>,
    pub bodies: Vec<(String, String)>,
    pub removed: Vec<String>,
    sent: Vec<(String, Sent)>,
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
fn diff(sent: &HashMap<String, Sent>, rows: Vec<Row>, stale: &[String]) -> Batch {
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
        if let Some(snap) = &r.snapshot {
            let ptr = Arc::as_ptr(snap) as usize;
            let hash = match before.and_then(|b| b.body).filter(|(p, _)| *p == ptr) {
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
            body = Some((ptr, hash));
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
struct Announce {
    /// Replica id of the writer.
    r: String,
    /// Its fencing token.
    t: u64,
    /// Records written.
    c: Vec<String>,
    /// Records removed.
    d: Vec<String>,
}

/// Writes `batch` as the leader of term `token`: refused when a newer term exists.
pub async fn write(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &super::Keys,
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
pub(super) async fn publisher(state: Arc<IndexState>, sh: Arc<Shared>) {
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

/// What a follower still has to fetch.
#[derive(Default)]
pub struct Pending {
    names: HashSet<String>,
    removed: HashSet<String>,
}

/// An announcement on `<prefix>:ch:nodes`.
pub(super) fn announced(sh: &Shared, payload: &[u8]) {
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
    snapshot: Arc<NodeSnapshot>,
}

/// A follower's reader: fetches the announced records (or all of them) and applies them.
pub(super) async fn fetcher(state: Arc<IndexState>, sh: Arc<Shared>) {
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
                let bytes: usize = records.iter().map(|r| r.3).sum();
                sh.stats.apply_bytes.fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
                sh.stats.applied.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                for n in &removed {
                    held.remove(n);
                }
                apply(&state, &sh, records.into_iter().map(|(n, m, s, _)| (n, m, s)).collect(), removed);
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

type Record = (String, Meta, Option<Arc<NodeSnapshot>>, usize);

/// Reads records (`names`, or all when `full`) and the stream lists that changed.
async fn fetch(
    sh: &Shared,
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
    let mut bodies: HashMap<String, (u64, Arc<NodeSnapshot>, usize)> = HashMap::new();
    if !need.is_empty() {
        let texts: Vec<Option<String>> =
            redis::cmd("HMGET").arg(&sh.keys.bodies).arg(&need).query_async(&mut conn).await?;
        for (name, text) in need.into_iter().zip(texts) {
            let Some(text) = text else { continue };
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
        let snapshot = match want(&meta) {
            None => {
                held.remove(&name);
                None
            }
            Some(_) => match bodies.remove(&name) {
                Some((hash, snap, body_len)) => {
                    held.insert(name.clone(), Held { hash, ok_ms: meta.ok_ms, snapshot: snap.clone() });
                    out.push((name, meta, Some(snap), len + body_len));
                    continue;
                }
                None => match held.get_mut(&name) {
                    // Same list: the same snapshot while the poll is the same, a copy for a new poll.
                    Some(h) if h.ok_ms == meta.ok_ms => Some(h.snapshot.clone()),
                    Some(h) => {
                        h.snapshot = Arc::new(copy(&h.snapshot));
                        h.ok_ms = meta.ok_ms;
                        Some(h.snapshot.clone())
                    }
                    None => None,
                },
            },
        };
        out.push((name, meta, snapshot, len));
    }
    Ok(out)
}

/// Puts the leader's records into this follower's node table.
fn apply(
    state: &Arc<IndexState>,
    sh: &Shared,
    records: Vec<(String, Meta, Option<Arc<NodeSnapshot>>)>,
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
        for (name, meta, snapshot) in records {
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
            entry.snapshot = snapshot;
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
    for c in changes {
        // The history of every replica records node changes; their events come from the leader.
        state.store.node_changed(&c.node, c.from.as_str(), c.to.as_str(), now, &c.reason);
    }
    if urgent {
        state.mark_urgent();
    } else {
        state.mark_dirty();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> NodeSnapshot {
        let video = Arc::new(Video {
            codec: "H264".into(),
            profile: Some("High".into()),
            level: None,
            width: 1280,
            height: 720,
        });
        let audio =
            Arc::new(Audio { codec: "AAC".into(), sample_rate: 44100, channels: 2, profile: Some("LC".into()) });
        NodeSnapshot {
            server: Some("vid-1".into()),
            service: Some("svc".into()),
            version: Some("7.0.18".into()),
            cpu_percent: Some(1.5),
            mem_kbyte: Some(1000),
            uptime_s: Some(9),
            streams: (0..3)
                .map(|i| NodeStream {
                    key: format!("__defaultVhost__/live/s{i}").into(),
                    active: i != 2,
                    clients: i,
                    kbps: Kbps { recv_30s: 10 * i, send_30s: 20 * i },
                    video: (i != 1).then(|| video.clone()),
                    audio: Some(audio.clone()),
                })
                .collect(),
        }
    }

    #[test]
    fn stream_lists_round_trip_and_share_codecs() {
        let s = snap();
        let text = encode_body(&s);
        assert_eq!(text.matches("H264").count(), 1, "codecs are listed once: {text}");
        let back = decode_body(&text).unwrap();
        assert_eq!(encode_body(&back), text);
        assert_eq!(back.streams.len(), 3);
        assert!(back.streams[1].video.is_none());
        assert!(Arc::ptr_eq(back.streams[0].video.as_ref().unwrap(), back.streams[2].video.as_ref().unwrap()));
        assert_eq!((back.streams[2].active, back.streams[2].kbps.send_30s), (false, 40));
    }

    #[test]
    fn only_what_changed_is_written_again() {
        let spec: NodeSpec = "name=e1,api=http://127.0.0.1:1".parse().unwrap();
        let mut entry = NodeEntry::new(spec, 0, None);
        entry.health = Health::Up;
        entry.last_ok_ms = Some(1);
        entry.snapshot = Some(Arc::new(snap()));
        let first = diff(&HashMap::new(), vec![row("e1", &entry)], &["gone".to_string()]);
        assert_eq!((first.metas.len(), first.bodies.len()), (1, 1));
        assert_eq!(first.removed, ["gone"]);
        let sent: HashMap<String, Sent> = first.sent.into_iter().collect();
        assert!(diff(&sent, vec![row("e1", &entry)], &[]).is_empty(), "nothing changed");
        // A new poll with the same streams: the small record only.
        entry.last_ok_ms = Some(2);
        entry.snapshot = Some(Arc::new(snap()));
        let second = diff(&sent, vec![row("e1", &entry)], &[]);
        assert_eq!((second.metas.len(), second.bodies.len()), (1, 0));
        assert!(diff(&sent, vec![], &[]).removed == ["e1"], "a node that left is removed");
    }
}

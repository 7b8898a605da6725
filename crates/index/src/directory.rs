//! The directory: the whole cluster in one immutable value, rebuilt from the node table after
//! polls and swapped in whole, so request handlers read it without locks or network I/O.
//!
//! Streams are keyed by vhost name + app + stream (`__defaultVhost__/live/cam1`), never by SRS's
//! per-process ids, so the same stream on an origin and two edges is one entry.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::config::{IndexConfig, NodeSpec, Role};
use crate::nodes::{Health, NodeCounters, NodeEntry, NodeReport};
use crate::srs::{Audio, Video};
use crate::targets::NodeTargets;

/// A node as the directory shows it.
#[derive(Debug)]
pub struct NodeView {
    pub spec: Arc<NodeSpec>,
    pub region: Arc<str>,
    pub order: usize,
    pub registered: bool,
    pub health: Health,
    pub fails: u32,
    pub last_error: Option<Arc<str>>,
    pub last_ok_ms: Option<u64>,
    pub last_poll: Option<Duration>,
    pub report: Option<Arc<NodeReport>>,
    /// The poll that read `report`.
    pub poll_seq: u64,
    pub counters: Arc<NodeCounters>,
    /// Clients that are not publishers (on origins this includes edge pulls).
    pub viewers: u64,
    pub kbps_in: u64,
    pub kbps_out: u64,
    /// Streams published or pulled here.
    pub streams: usize,
    /// Rendezvous-hash seed of the node's name.
    pub seed: u64,
    /// Its base URLs and JSON fields, ready for play and publish answers.
    pub targets: NodeTargets,
}

/// An edge as the scheduler sees it: a compact copy of the numbers it reads for every request,
/// so ranking a region's edges walks one array instead of chasing pointers into each node.
#[derive(Clone, Debug)]
pub struct EdgeSlot {
    /// Index into `Directory::nodes`.
    pub node: usize,
    pub seed: u64,
    /// The node's weight (halved while it is degraded) times its viewer capacity: its score's
    /// scale when idle.
    pub scale: f64,
    /// 1 / viewer capacity.
    pub per_viewer: f64,
    /// 1 / outgoing capacity in kbit/s; 0 when the bandwidth is not limited.
    pub per_kbps: f64,
    pub viewers: u64,
    pub kbps_out: u64,
}

/// The schedulable edges of one region.
#[derive(Clone, Debug, Default)]
pub struct RegionEdges {
    /// A hash of the edges' rendezvous seeds and scales in order: equal layouts give a stream the
    /// same order, so the scheduler keeps its orders across directory rebuilds while it holds.
    pub layout: u64,
    pub slots: Vec<EdgeSlot>,
    /// The same edges as a bitmap over node indexes (to count a stream's carriers here).
    pub members: Box<[u64]>,
}

impl RegionEdges {
    pub fn new(slots: Vec<EdgeSlot>, node_count: usize) -> RegionEdges {
        let layout = slots.iter().fold(slots.len() as u64, |h, e| mix(mix(h ^ e.seed) ^ e.scale.to_bits()));
        let mut members = vec![0u64; node_count.div_ceil(64)];
        for e in &slots {
            members[e.node / 64] |= 1 << (e.node % 64);
        }
        RegionEdges { layout, slots, members: members.into_boxed_slice() }
    }

    /// How many of these edges carry `entry`.
    pub fn carriers(&self, entry: &StreamEntry) -> u32 {
        self.members.iter().zip(entry.carriers.iter()).map(|(m, c)| (m & c).count_ones()).sum()
    }
}

/// A node holding or carrying a stream.
#[derive(Clone, Debug)]
pub struct Holder {
    /// Index into `Directory::nodes`.
    pub node: usize,
    /// Clients of the stream on that node (SRS `clients`).
    pub clients: u64,
    pub kbps_in: u64,
    pub kbps_out: u64,
}

/// One live stream of the cluster.
#[derive(Debug)]
pub struct StreamEntry {
    pub key: Arc<str>,
    pub vhost: Box<str>,
    pub app: Box<str>,
    pub stream: Box<str>,
    /// Origins with the publisher (several when the stream is forwarded).
    pub origins: Vec<Holder>,
    /// Edges pulling it; their clients are viewers.
    pub edges: Vec<Holder>,
    /// The same edges as a bitmap over node indexes: the scheduler tests "does this edge carry
    /// it" for every candidate of every request.
    pub carriers: Box<[u64]>,
    /// Viewers cluster-wide: not publishers, not edge pulls.
    pub viewers: u64,
    /// Viewers playing from the origins directly.
    pub origin_viewers: u64,
    pub video: Option<Arc<Video>>,
    pub audio: Option<Arc<Audio>>,
    pub kbps_in: u64,
    pub kbps_out: u64,
    /// Wall-clock ms when the index first saw it live (kept across index restarts by the history).
    pub live_since_ms: u64,
    pub peak_viewers: u64,
}

/// The merged view.
#[derive(Debug, Default)]
pub struct Directory {
    /// Sorted by name.
    pub nodes: Vec<NodeView>,
    /// By key; `sorted` lists the keys in order.
    pub streams: HashMap<Arc<str>, StreamEntry, FastHash>,
    pub sorted: Vec<Arc<str>>,
    /// Schedulable edges per region, with what the scheduler reads of them in one place.
    pub edges_by_region: HashMap<Arc<str>, RegionEdges, FastHash>,
    /// Schedulable origins, primary first.
    pub origins: Vec<usize>,
    /// Viewers the scheduler sent to each node (by index) since the node's report in this
    /// directory was taken: they are not in its numbers yet. One contiguous array, read for every
    /// candidate of every play request.
    pub assigned: Box<[AtomicU64]>,
    /// Every node has been polled at least once.
    pub warm: bool,
    pub built_ms: u64,
    /// Distinct for every directory built in this process (0 for an empty default one): what a
    /// cache of per-node numbers checks before trusting node indices.
    pub id: u64,
}

/// SRS's name of the vhost streams are in unless a client names another.
pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// `(vhost, app, stream)` of a stream key: the inverse of `stream_key`.
pub fn split_key(key: &str) -> (&str, &str, &str) {
    let (vhost, rest) = key.split_once('/').unwrap_or((DEFAULT_VHOST, key));
    let (app, stream) = rest.rsplit_once('/').unwrap_or(("", rest));
    (vhost, app, stream)
}

/// The stream key of `vhost`, `app`, `stream`.
pub fn stream_key(vhost: &str, app: &str, stream: &str) -> String {
    [vhost, app, stream].join("/")
}

/// A fast hasher for stream keys in the directory: a merge hashes every record of every node
/// (100,000 and more), and SipHash's flood resistance buys nothing for keys that come from our own
/// nodes' answers, not from request paths.
#[derive(Clone, Copy, Debug, Default)]
pub struct FastHash;

impl std::hash::BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0xcbf2_9ce4_8422_2325)
    }
}

/// Eight bytes at a time, multiply-rotate, splitmix64 at the end.
#[derive(Clone, Copy, Debug)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0 ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.0 = (self.0 ^ u64::from_le_bytes(tail) ^ rest.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        mix(self.0)
    }
}

/// A stable 64-bit hash (not randomised per process: replicas and restarts agree).
pub fn stable_hash(s: &str) -> u64 {
    // FNV-1a, then a splitmix64 finaliser for good bit spread.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// splitmix64's finaliser.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Directory {
    /// Merges the node table into a directory. `now_ms` is wall-clock time.
    pub fn build(table: &crate::nodes::NodeTable, config: &IndexConfig, now_ms: u64) -> Directory {
        let mut nodes: Vec<NodeView> = table
            .values()
            .map(|e: &NodeEntry| {
                let region: Arc<str> = config.node_region(&e.spec).into();
                let extras = e.report.as_ref().map(|r| r.extras).unwrap_or_default();
                let targets = NodeTargets::new(&e.spec, &region, extras);
                NodeView {
                    region,
                    targets,
                    spec: e.spec.clone(),
                    order: e.order,
                    registered: e.registered.is_some(),
                    health: e.health,
                    fails: e.fails,
                    last_error: e.last_error.clone(),
                    last_ok_ms: e.last_ok_ms,
                    last_poll: e.last_poll,
                    report: e.report.clone(),
                    poll_seq: e.poll_seq,
                    counters: e.counters.clone(),
                    viewers: 0,
                    kbps_in: 0,
                    kbps_out: 0,
                    streams: 0,
                    seed: stable_hash(&e.spec.name),
                }
            })
            .collect();
        let warm = nodes.iter().all(|n| n.health != Health::Unknown);
        let mut streams: HashMap<Arc<str>, StreamEntry, FastHash> = HashMap::default();
        for (i, node) in nodes.iter_mut().enumerate() {
            let Some(snap) = node.report.clone() else { continue };
            let is_origin = node.spec.role == Role::Origin;
            for s in &snap.streams {
                // Every number here comes from a node: sums saturate, a hostile node cannot make them
                // overflow (the release profile checks overflows).
                node.viewers = node.viewers.saturating_add(s.clients.saturating_sub(u64::from(s.active && is_origin)));
                node.kbps_in = node.kbps_in.saturating_add(s.kbps.recv_30s);
                node.kbps_out = node.kbps_out.saturating_add(s.kbps.send_30s);
                if !s.active {
                    continue;
                }
                node.streams += 1;
                let holder =
                    Holder { node: i, clients: s.clients, kbps_in: s.kbps.recv_30s, kbps_out: s.kbps.send_30s };
                let entry = match streams.get_mut(&s.key) {
                    Some(e) => e,
                    None => {
                        let key = s.key.clone();
                        let (vhost, app, stream) = split_key(&key);
                        let entry = StreamEntry {
                            vhost: vhost.into(),
                            app: app.into(),
                            stream: stream.into(),
                            key: key.clone(),
                            origins: Vec::new(),
                            edges: Vec::new(),
                            carriers: Box::default(),
                            viewers: 0,
                            origin_viewers: 0,
                            video: None,
                            audio: None,
                            kbps_in: 0,
                            kbps_out: 0,
                            live_since_ms: now_ms,
                            peak_viewers: 0,
                        };
                        streams.entry(key).or_insert(entry)
                    }
                };
                if is_origin {
                    // The origin's publisher tells the codecs; an edge only repeats them.
                    if entry.origins.is_empty() || entry.video.is_none() {
                        entry.video = s.video.clone().or(entry.video.take());
                        entry.audio = s.audio.clone().or(entry.audio.take());
                    }
                    entry.kbps_in = entry.kbps_in.saturating_add(s.kbps.recv_30s);
                    entry.origins.push(holder);
                } else {
                    if entry.video.is_none() {
                        entry.video = s.video.clone();
                    }
                    if entry.audio.is_none() {
                        entry.audio = s.audio.clone();
                    }
                    entry.edges.push(holder);
                }
                entry.kbps_out = entry.kbps_out.saturating_add(s.kbps.send_30s);
            }
        }
        let words = nodes.len().div_ceil(64);
        for entry in streams.values_mut() {
            let mut carriers = vec![0u64; words];
            for h in &entry.edges {
                carriers[h.node / 64] |= 1 << (h.node % 64);
            }
            entry.carriers = carriers.into_boxed_slice();
            let edge_viewers = saturating_sum(entry.edges.iter().map(|h| h.clients));
            // On an origin, clients = publisher + one pull per edge + direct viewers.
            let origin_clients = saturating_sum(entry.origins.iter().map(|h| h.clients.saturating_sub(1)));
            entry.origin_viewers =
                if entry.origins.is_empty() { 0 } else { origin_clients.saturating_sub(entry.edges.len() as u64) };
            entry.viewers = edge_viewers.saturating_add(entry.origin_viewers);
            entry.peak_viewers = entry.viewers;
        }
        let mut edges_by_region: HashMap<Arc<str>, Vec<EdgeSlot>, FastHash> = HashMap::default();
        let mut origins = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            if !n.health.schedulable() {
                continue;
            }
            match n.spec.role {
                Role::Edge => {
                    let cap = n.spec.viewer_capacity(config.scheduler.default_max_viewers);
                    let weight = n.spec.weight * if n.health == Health::Degraded { 0.5 } else { 1.0 };
                    edges_by_region.entry(n.region.clone()).or_default().push(EdgeSlot {
                        node: i,
                        seed: n.seed,
                        scale: weight * cap,
                        per_viewer: 1.0 / cap,
                        per_kbps: n.spec.per_kbps(),
                        viewers: n.viewers,
                        kbps_out: n.kbps_out,
                    })
                }
                Role::Origin => origins.push(i),
            }
        }
        let edges_by_region =
            edges_by_region.into_iter().map(|(r, slots)| (r, RegionEdges::new(slots, nodes.len()))).collect();
        origins.sort_by_key(|&i| (nodes[i].order, i));
        let mut sorted: Vec<Arc<str>> = streams.keys().cloned().collect();
        sorted.sort_unstable();
        let assigned = nodes.iter().map(|_| AtomicU64::new(0)).collect();
        static BUILT: AtomicU64 = AtomicU64::new(1);
        let id = BUILT.fetch_add(1, Ordering::Relaxed);
        Directory { nodes, streams, sorted, edges_by_region, origins, assigned, warm, built_ms: now_ms, id }
    }

    /// Carries the assignment counts over from the directory this one replaces, for every node
    /// not polled again since (same poll sequence number): a poll resets a node's count, as its
    /// numbers now include those viewers.
    pub fn carry_assignments(&self, prev: &Directory) {
        for (i, n) in self.nodes.iter().enumerate() {
            let Ok(j) = prev.nodes.binary_search_by(|p| p.spec.name.cmp(&n.spec.name)) else { continue };
            let p = &prev.nodes[j];
            let same = n.report.is_some() && p.report.is_some() && n.poll_seq == p.poll_seq;
            if same {
                self.assigned[i].store(prev.assigned(j), Ordering::Relaxed);
            }
        }
    }

    /// Whether edge `node` carries `entry`.
    pub fn carries(entry: &StreamEntry, node: usize) -> bool {
        entry.carriers.get(node / 64).is_some_and(|w| w & (1 << (node % 64)) != 0)
    }

    /// Viewers sent to node `i` since its last poll.
    pub fn assigned(&self, i: usize) -> u64 {
        self.assigned.get(i).map_or(0, |a| a.load(Ordering::Relaxed))
    }

    pub fn node(&self, name: &str) -> Option<&NodeView> {
        self.index_of(name).map(|i| &self.nodes[i])
    }

    /// The index of node `name` (nodes are sorted by name).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.binary_search_by(|n| n.spec.name.as_str().cmp(name)).ok()
    }

    /// Live streams in key order.
    pub fn sorted_streams(&self) -> impl Iterator<Item = &StreamEntry> {
        self.sorted.iter().filter_map(|k| self.streams.get(k))
    }

    /// Total viewers of the cluster.
    pub fn viewers(&self) -> u64 {
        saturating_sum(self.streams.values().map(|s| s.viewers))
    }
}

/// The sum of numbers that came from nodes: `u64::MAX` rather than an overflow.
pub fn saturating_sum(values: impl IntoIterator<Item = u64>) -> u64 {
    values.into_iter().fold(0, u64::saturating_add)
}

pub mod json;

#[cfg(test)]
mod tests;

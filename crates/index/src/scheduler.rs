//! The scheduler: which edge a viewer should use and which origin a publisher should use,
//! decided from the current directory alone (no network I/O on the request path).
//!
//! Viewers: healthy edges of the viewer's region first, then of the nearest regions in the
//! configured order, then of any other region, then origins. Within a region, edges that already carry the stream keep its
//! viewers until they pass the load threshold; otherwise a weighted rendezvous hash on the stream
//! key picks the edge, the weight being the node's weight × capacity × headroom. The hash keeps one
//! stream's viewers on few edges (so the origin feeds few pulls); the headroom spreads load; and
//! the index counts its own assignments since each node's last poll, so a burst of requests
//! between two polls spreads out instead of landing on the edge that looked idlest.
//!
//! A request wants the choice and a few alternatives, not a full ranking: it walks the region's
//! edges in the stream's cached rendezvous order ([`order`]) and stops once no edge left can beat
//! the ones it kept, so a region of many edges costs a few loads per request.

use std::sync::atomic::Ordering;

use crate::config::{Role, SchedulerConfig};
use crate::directory::{Directory, EdgeSlot, StreamEntry, stable_hash};

mod order;
use order::{SCRATCH, Scratch};

/// Bitrate assumed for a stream whose rate is not known yet (SRS reports 0 for 30 s), kbit/s.
const UNKNOWN_STREAM_KBPS: f64 = 2500.0;

/// A ranked list of nodes (indexes into `Directory::nodes`), best first.
pub type Ranking = Vec<usize>;

/// Node `i`'s load between 0 and 1 (can pass 1 when over capacity), counting viewers assigned
/// since its last poll.
pub fn load(dir: &Directory, i: usize, cfg: &SchedulerConfig, stream_kbps: f64) -> f64 {
    let n = &dir.nodes[i];
    let per_viewer = 1.0 / n.spec.viewer_capacity(cfg.default_max_viewers);
    load_at(n.viewers, n.kbps_out, dir.assigned(i), per_viewer, n.spec.per_kbps(), stream_kbps)
}

/// An edge's load, from the inverses the directory precomputed (no division per request).
fn slot_load(dir: &Directory, e: &EdgeSlot, stream_kbps: f64) -> f64 {
    load_at(e.viewers, e.kbps_out, dir.assigned(e.node), e.per_viewer, e.per_kbps, stream_kbps)
}

/// The larger of the viewer and the bandwidth load, counting `assigned` viewers of a stream of
/// `stream_kbps` not yet in the node's numbers.
fn load_at(viewers: u64, kbps_out: u64, assigned: u64, per_viewer: f64, per_kbps: f64, stream_kbps: f64) -> f64 {
    let assigned = assigned as f64;
    let l = (viewers as f64 + assigned) * per_viewer;
    if per_kbps > 0.0 { l.max((kbps_out as f64 + assigned * stream_kbps) * per_kbps) } else { l }
}

/// Ranks every candidate for a viewer of `key` in `region` (then the `fallback` regions).
pub fn rank_edges(
    dir: &Directory,
    cfg: &SchedulerConfig,
    key: &str,
    entry: Option<&StreamEntry>,
    region: &str,
    fallback: &[impl AsRef<str>],
) -> Ranking {
    top_edges(dir, cfg, key, entry, region, fallback, usize::MAX)
}

/// The best `want` candidates of `rank_edges`, computing no more of the ranking than needed: the
/// request path asks for the choice plus a few alternatives.
pub fn top_edges(
    dir: &Directory,
    cfg: &SchedulerConfig,
    key: &str,
    entry: Option<&StreamEntry>,
    region: &str,
    fallback: &[impl AsRef<str>],
    want: usize,
) -> Ranking {
    let key_hash = stable_hash(key);
    let stream_kbps = entry
        .map(|e| if e.kbps_in > 0 { e.kbps_in as f64 } else { UNKNOWN_STREAM_KBPS })
        .unwrap_or(UNKNOWN_STREAM_KBPS);
    let carries = |i: usize| entry.is_some_and(|e| Directory::carries(e, i));
    let mut ranking = Ranking::with_capacity(want.min(16));
    let mut full: Vec<(f64, usize)> = Vec::new();
    SCRATCH.with_borrow_mut(|Scratch { orders, tier }| {
        let mut visit = |r: &str, ranking: &mut Ranking| {
            let Some(region) = dir.edges_by_region.get(r) else { return };
            let room = want - ranking.len();
            // Only the best `room` are kept, in order, when that is fewer than the region has.
            let bounded = room < region.slots.len();
            // Edges are visited best reachable score first: once the worst kept beats what any
            // edge left could reach (and no carrier of the stream is left to jump the queue as a
            // sticky edge), the rest cannot enter.
            let mut carriers_left = entry.map_or(0, |e| region.carriers(e));
            tier.clear();
            for &(reach, slot) in orders.of(key_hash, region) {
                let reach = f64::from(reach);
                if bounded
                    && tier.len() == room
                    && tier.last().is_some_and(|w| reach <= w.1 && (w.0 || carriers_left == 0))
                {
                    break;
                }
                let e = &region.slots[slot as usize];
                let carrying = carries(e.node);
                carriers_left -= u32::from(carrying);
                let l = slot_load(dir, e, stream_kbps);
                if l >= 1.0 {
                    full.push((l, e.node));
                    continue;
                }
                let c = (carrying && l < cfg.load_threshold, reach * (1.0 - l), e.node);
                if bounded {
                    insert_bounded(tier, room, c);
                } else {
                    tier.push(c);
                }
            }
            if !bounded {
                tier.sort_by(better);
            }
            ranking.extend(tier.iter().map(|t| t.2));
        };
        // The viewer's region, the configured nearest ones, then any other region with edges.
        visit(region, &mut ranking);
        for r in fallback {
            if ranking.len() >= want {
                return;
            }
            visit(r.as_ref(), &mut ranking);
        }
        if ranking.len() < want {
            let mut rest: Vec<&str> = dir
                .edges_by_region
                .keys()
                .map(|r| &**r)
                .filter(|r| *r != region && !fallback.iter().any(|f| f.as_ref() == *r))
                .collect();
            rest.sort_unstable();
            for r in rest {
                if ranking.len() >= want {
                    break;
                }
                visit(r, &mut ranking);
            }
        }
    });
    if ranking.len() < want {
        // Origins: those holding the stream first, in config order; only as many as are wanted
        // (a site of hundreds of origins must not rank them all for each viewer).
        let holds = |i: usize| entry.is_some_and(|e| e.origins.iter().any(|h| h.node == i));
        let holders = dir.origins.iter().copied().filter(|&i| holds(i));
        let others = dir.origins.iter().copied().filter(|&i| !holds(i));
        let room = want - ranking.len();
        ranking.extend(holders.chain(others).filter(|&i| load(dir, i, cfg, stream_kbps) < 1.0).take(room));
        // Full edges are a last resort, least loaded first.
        full.sort_by(|a, b| a.0.total_cmp(&b.0));
        ranking.extend(full.into_iter().map(|f| f.1));
    }
    ranking.truncate(want);
    ranking
}

/// A candidate: (sticky, score, node).
pub(crate) type Candidate = (bool, f64, usize);

/// Sticky candidates first, then by score, best first.
fn better(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then(b.1.total_cmp(&a.1))
}

/// Whether `a` ranks before `b` (scores are finite).
#[inline]
fn beats(a: &Candidate, b: &Candidate) -> bool {
    (a.0 && !b.0) || (a.0 == b.0 && a.1 > b.1)
}

/// Puts `c` into `tier` (sorted, best first) if it is among the best `room`: most candidates
/// cost one comparison with the worst kept.
#[inline]
fn insert_bounded(tier: &mut Vec<Candidate>, room: usize, c: Candidate) {
    if tier.len() == room {
        match tier.last() {
            Some(worst) if beats(&c, worst) => {
                tier.pop();
            }
            _ => return,
        }
    }
    let at = tier.iter().position(|t| beats(&c, t)).unwrap_or(tier.len());
    tier.insert(at, c);
}

/// Counts an assignment of a viewer to node `i`.
pub fn assign(dir: &Directory, i: usize) {
    if let Some(a) = dir.assigned.get(i) {
        a.fetch_add(1, Ordering::Relaxed);
    }
    dir.nodes[i].counters.scheduled_total.fetch_add(1, Ordering::Relaxed);
}

/// Streams an origin without `max_streams` is taken to carry at full load.
pub const DEFAULT_ORIGIN_STREAMS: u64 = 1000;

/// Origin `i`'s load as a publisher placement sees it, between 0 and 1 (can pass 1): the larger
/// of its streams against `max_streams` and its ingest against `max_mbps_in`, counting `pending`
/// publishers placed there whose streams are not live yet (`crate::placements`).
pub fn origin_load(dir: &Directory, i: usize, pending: u64) -> f64 {
    let n = &dir.nodes[i];
    let placed = pending as f64;
    let streams = (n.streams as f64 + placed) / n.spec.max_streams.unwrap_or(DEFAULT_ORIGIN_STREAMS).max(1) as f64;
    match n.spec.max_mbps_in {
        Some(mbps) if mbps > 0.0 => streams.max((n.kbps_in as f64 + placed * UNKNOWN_STREAM_KBPS) / (mbps * 1000.0)),
        _ => streams,
    }
}

/// Origins for a publisher, best first, all healthy:
/// 1. those that have the stream now, in the directory's order (its primary, then its replicas),
///    so a publisher that reconnects goes back to where its viewers are — or, once its origin
///    died, to the replica that kept them;
/// 2. `recent`: the origin the stream was on within the last minute (`crate::placements`);
///    `pending[i]`: placements on node `i` not live yet, counted as its load;
/// 3. the others below full load: of the publisher's `region`, then of the `fallback` regions in
///    order, then of any region; within a region least loaded first, then config order;
/// 4. full origins, in the same order.
///
/// Returns the best `want` of them.
pub fn place_publisher(
    dir: &Directory,
    entry: Option<&StreamEntry>,
    recent: Option<&str>,
    region: &str,
    fallback: &[impl AsRef<str>],
    pending: &[u64],
    want: usize,
) -> Ranking {
    let healthy = dir.origins.iter().copied().filter(|&i| dir.nodes[i].spec.role == Role::Origin);
    // The recent origin by index, found once.
    let recent = recent.and_then(|name| dir.index_of(name));
    let holds = |i: usize| entry.and_then(|e| e.origins.iter().position(|h| h.node == i));
    let tier = |i: usize| {
        let r = &*dir.nodes[i].region;
        if r == region { 0 } else { fallback.iter().position(|f| f.as_ref() == r).map_or(usize::MAX, |p| p + 1) }
    };
    // (sticky, full, tier, load, config order, index): smaller is better, the index breaks no tie.
    type Rank = (usize, bool, usize, f64, usize, usize);
    let order = |a: &Rank, b: &Rank| {
        a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)).then(a.3.total_cmp(&b.3)).then(a.4.cmp(&b.4))
    };
    // Only the best `want` are kept, in order: a site of hundreds of origins asks for a handful,
    // and this runs for every publisher.
    if want == 0 {
        return Ranking::new();
    }
    let mut best: Vec<Rank> = Vec::with_capacity(want.min(dir.origins.len()) + 1);
    for i in healthy {
        let sticky = match holds(i) {
            Some(p) => p,
            None if recent == Some(i) => usize::MAX - 1,
            None => usize::MAX,
        };
        let load = origin_load(dir, i, pending.get(i).copied().unwrap_or(0));
        let r: Rank = (sticky, load >= 1.0, tier(i), load, dir.nodes[i].order, i);
        if best.len() == want && order(&r, &best[want - 1]).is_ge() {
            continue;
        }
        let at = best.partition_point(|b| order(b, &r).is_le());
        best.insert(at, r);
        best.truncate(want);
    }
    best.into_iter().map(|r| r.5).collect()
}

#[cfg(test)]
mod tests;

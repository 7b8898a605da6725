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

use std::sync::atomic::Ordering;

use crate::config::{Role, SchedulerConfig};
use crate::directory::{Directory, EdgeSlot, StreamEntry, mix, stable_hash};

/// Bitrate assumed for a stream whose rate is not known yet (SRS reports 0 for 30 s), kbit/s.
const UNKNOWN_STREAM_KBPS: f64 = 2500.0;

/// A ranked list of nodes (indexes into `Directory::nodes`), best first.
pub type Ranking = Vec<usize>;

/// Node `i`'s load between 0 and 1 (can pass 1 when over capacity), counting viewers assigned
/// since its last poll.
pub fn load(dir: &Directory, i: usize, cfg: &SchedulerConfig, stream_kbps: f64) -> f64 {
    let n = &dir.nodes[i];
    load_from(n.viewers, n.kbps_out, dir.assigned(i), n.spec.max_viewers, n.spec.max_mbps, cfg, stream_kbps)
}

fn slot_load(dir: &Directory, e: &EdgeSlot, cfg: &SchedulerConfig, stream_kbps: f64) -> f64 {
    load_from(e.viewers, e.kbps_out, dir.assigned(e.node), e.max_viewers, e.max_mbps, cfg, stream_kbps)
}

fn load_from(
    viewers: u64,
    kbps_out: u64,
    assigned: u64,
    max_viewers: Option<u64>,
    max_mbps: Option<f64>,
    cfg: &SchedulerConfig,
    stream_kbps: f64,
) -> f64 {
    let cap = max_viewers.unwrap_or(cfg.default_max_viewers) as f64;
    let l = (viewers + assigned) as f64 / cap;
    match max_mbps {
        Some(mbps) => l.max((kbps_out as f64 + assigned as f64 * stream_kbps) / 1000.0 / mbps),
        None => l,
    }
}

/// Weighted rendezvous score of an edge for the stream hashed `key_hash`: higher wins. With
/// weights w_i, each node wins a share w_i / Σw of keys.
fn score(seed: u64, key_hash: u64, weight: f64) -> f64 {
    // A uniform value in (0, 1), never 0 or 1.
    let u = ((mix(key_hash ^ seed) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -weight / u.ln()
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
    let mut tier: Vec<(bool, f64, usize)> = Vec::new();
    let mut visit = |r: &str, ranking: &mut Ranking| {
        let Some(edges) = dir.edges_by_region.get(r) else { return };
        tier.clear();
        for e in edges {
            let l = slot_load(dir, e, cfg, stream_kbps);
            if l >= 1.0 {
                full.push((l, e.node));
                continue;
            }
            let cap = e.max_viewers.unwrap_or(cfg.default_max_viewers) as f64;
            let sticky = carries(e.node) && l < cfg.load_threshold;
            tier.push((sticky, score(e.seed, key_hash, e.weight * cap * (1.0 - l)), e.node));
        }
        // Sticky edges first, then by score; only the part that can still be used is sorted.
        let order = |a: &(bool, f64, usize), b: &(bool, f64, usize)| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1));
        let room = want - ranking.len();
        if tier.len() > room {
            tier.select_nth_unstable_by(room, order);
            tier.truncate(room);
        }
        tier.sort_by(order);
        ranking.extend(tier.iter().map(|t| t.2));
    };
    // The viewer's region, the configured nearest ones, then any other region with edges.
    visit(region, &mut ranking);
    for r in fallback {
        if ranking.len() >= want {
            return ranking;
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
    if ranking.len() < want {
        // Origins: those holding the stream first, in config order.
        let mut origins: Vec<usize> = dir.origins.clone();
        origins.sort_by_key(|&i| !entry.is_some_and(|e| e.origins.iter().any(|h| h.node == i)));
        ranking.extend(origins.into_iter().filter(|&i| load(dir, i, cfg, stream_kbps) < 1.0));
        // Full edges are a last resort, least loaded first.
        full.sort_by(|a, b| a.0.total_cmp(&b.0));
        ranking.extend(full.into_iter().map(|f| f.1));
    }
    ranking.truncate(want);
    ranking
}

/// Counts an assignment of a viewer to node `i`.
pub fn assign(dir: &Directory, i: usize) {
    if let Some(a) = dir.assigned.get(i) {
        a.fetch_add(1, Ordering::Relaxed);
    }
    dir.nodes[i].counters.scheduled_total.fetch_add(1, Ordering::Relaxed);
}

/// Origins for a publisher: healthy origins, primary (config order) first. Origins that already
/// have the stream come first, in the directory's order (the stream's primary, then its replicas),
/// so a publisher that reconnects goes back to where its viewers are — or, once its origin died,
/// to the replica that kept them.
pub fn rank_origins(dir: &Directory, entry: Option<&StreamEntry>) -> Ranking {
    let mut origins: Vec<usize> =
        dir.origins.iter().copied().filter(|&i| dir.nodes[i].spec.role == Role::Origin).collect();
    origins.sort_by_key(|&i| entry.and_then(|e| e.origins.iter().position(|h| h.node == i)).unwrap_or(usize::MAX));
    origins
}

#[cfg(test)]
mod tests;

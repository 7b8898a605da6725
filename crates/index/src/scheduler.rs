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
use crate::directory::{Directory, NodeView, StreamEntry, mix, stable_hash};
use crate::nodes::{Health, NodeCounters};

/// Bitrate assumed for a stream whose rate is not known yet (SRS reports 0 for 30 s), kbit/s.
const UNKNOWN_STREAM_KBPS: f64 = 2500.0;

/// A ranked list of nodes (indexes into `Directory::nodes`), best first.
pub type Ranking = Vec<usize>;

/// The node's load between 0 and 1 (can pass 1 when over capacity), counting viewers assigned
/// since its last poll.
pub fn load(n: &NodeView, cfg: &SchedulerConfig, stream_kbps: f64) -> f64 {
    let assigned = NodeCounters::get(&n.counters.assigned_since_poll);
    let viewers = (n.viewers + assigned) as f64;
    let cap = n.spec.max_viewers.unwrap_or(cfg.default_max_viewers) as f64;
    let mut l = viewers / cap;
    if let Some(mbps) = n.spec.max_mbps {
        let kbps = n.kbps_out as f64 + assigned as f64 * stream_kbps;
        l = l.max(kbps / 1000.0 / mbps);
    }
    l
}

/// Weighted rendezvous score of node `n` for the stream hashed `key_hash`: higher wins. With
/// weights w_i, each node wins a share w_i / Σw of keys.
fn score(n: &NodeView, key_hash: u64, weight: f64) -> f64 {
    // A uniform value in (0, 1), never 0 or 1.
    let u = ((mix(key_hash ^ n.seed) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -weight / u.ln()
}

/// Ranks the candidates for a viewer of `key` in `region` (then the `fallback` regions).
pub fn rank_edges(
    dir: &Directory,
    cfg: &SchedulerConfig,
    key: &str,
    entry: Option<&StreamEntry>,
    region: &str,
    fallback: &[String],
) -> Ranking {
    let key_hash = stable_hash(key);
    let stream_kbps = entry
        .map(|e| if e.kbps_in > 0 { e.kbps_in as f64 } else { UNKNOWN_STREAM_KBPS })
        .unwrap_or(UNKNOWN_STREAM_KBPS);
    let carries = |i: usize| entry.is_some_and(|e| e.edges.iter().any(|h| h.node == i));
    let mut ranking = Ranking::new();
    let mut full: Vec<(f64, usize)> = Vec::new();
    let mut tier: Vec<(bool, f64, usize)> = Vec::new();
    // The viewer's region, the configured nearest ones, then any other region with edges.
    let mut rest: Vec<&str> =
        dir.edges_by_region.keys().map(|r| &**r).filter(|r| *r != region && !fallback.iter().any(|f| f == r)).collect();
    rest.sort_unstable();
    for r in std::iter::once(region).chain(fallback.iter().map(String::as_str)).chain(rest) {
        let Some(edges) = dir.edges_by_region.get(r) else { continue };
        tier.clear();
        for &i in edges {
            let n = &dir.nodes[i];
            let l = load(n, cfg, stream_kbps);
            if l >= 1.0 {
                full.push((l, i));
                continue;
            }
            let health = if n.health == Health::Degraded { 0.5 } else { 1.0 };
            let cap = n.spec.max_viewers.unwrap_or(cfg.default_max_viewers) as f64;
            let weight = n.spec.weight * health * cap * (1.0 - l);
            let sticky = carries(i) && l < cfg.load_threshold;
            tier.push((sticky, score(n, key_hash, weight), i));
        }
        // Sticky edges first, then by score.
        tier.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
        ranking.extend(tier.iter().map(|t| t.2));
    }
    // Origins: those holding the stream first, in config order.
    let mut origins: Vec<usize> = dir.origins.clone();
    origins.sort_by_key(|&i| !entry.is_some_and(|e| e.origins.iter().any(|h| h.node == i)));
    ranking.extend(origins.into_iter().filter(|&i| load(&dir.nodes[i], cfg, stream_kbps) < 1.0));
    // Full edges are a last resort, least loaded first.
    full.sort_by(|a, b| a.0.total_cmp(&b.0));
    ranking.extend(full.into_iter().map(|f| f.1));
    ranking
}

/// Counts an assignment of a viewer to node `i`.
pub fn assign(dir: &Directory, i: usize) {
    let c = &dir.nodes[i].counters;
    c.assigned_since_poll.fetch_add(1, Ordering::Relaxed);
    c.scheduled_total.fetch_add(1, Ordering::Relaxed);
}

/// Origins for a publisher: healthy origins, primary (config order) first. An origin that already
/// has the stream comes first, so a publisher that reconnects goes back to where its viewers are.
pub fn rank_origins(dir: &Directory, entry: Option<&StreamEntry>) -> Ranking {
    let mut origins: Vec<usize> =
        dir.origins.iter().copied().filter(|&i| dir.nodes[i].spec.role == Role::Origin).collect();
    origins.sort_by_key(|&i| !entry.is_some_and(|e| e.origins.iter().any(|h| h.node == i)));
    origins
}

#[cfg(test)]
mod tests;

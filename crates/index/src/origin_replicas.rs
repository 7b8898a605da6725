//! Origin replicas (not to be confused with index replicas, `crate::index_replicas`): origin
//! replication, the multi-region disaster recovery of the cluster: an origin started with a
//! forward backend pointed at the index (`ferrocast node --forward-backend`, or SRS's
//! `forward { backend ...; }`) posts `on_forward` when a stream is published, and the index answers
//! with the backup origins to push it to — healthy origins of the nearest other regions first. The
//! index remembers which origin is each stream's primary, so the directory (and
//! `/api/v1/publish`) put the primary first while it lives and a replica once it is gone; the
//! change of origin is an `origin_failover` event like any other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{ReplicationConfig, Role};
use crate::directory::{DEFAULT_VHOST, Directory};
use crate::region::RegionResolver;

/// How long a primary is remembered for a stream the directory does not list (yet): the hook can
/// come before the first poll that sees the stream.
const UNLISTED_GRACE_MS: u64 = 60_000;

/// Stream key → (primary origin's name, when last seen in ms).
type PrimaryMap = HashMap<Arc<str>, (Arc<str>, u64)>;

/// Stream key → the origin its publisher is on, as told by that origin's `on_forward`.
#[derive(Default)]
pub struct Primaries {
    map: Mutex<PrimaryMap>,
    /// To the other index replicas (shared mode).
    pub outbox: crate::index_replicas::origins::Outbox,
}

impl Primaries {
    /// `node` is the stream's primary (its `on_forward`); the other index replicas are told.
    pub fn set(&self, key: &str, node: &str, now_ms: u64) {
        self.set_quietly(key, node, now_ms);
        self.outbox.send(crate::index_replicas::origins::Kind::Primary, key, node);
    }

    /// [`Primaries::set`] as another replica told it.
    pub fn set_quietly(&self, key: &str, node: &str, now_ms: u64) {
        self.lock().insert(key.into(), (node.into(), now_ms));
    }

    /// The publisher left `node`: it is no longer the stream's primary.
    pub fn unpublished(&self, key: &str, node: &str) {
        self.unpublished_quietly(key, node);
        self.outbox.send(crate::index_replicas::origins::Kind::Unpublished, key, node);
    }

    /// [`Primaries::unpublished`] as another replica told it.
    pub fn unpublished_quietly(&self, key: &str, node: &str) {
        let mut map = self.lock();
        if map.get(key).is_some_and(|(n, _)| &**n == node) {
            map.remove(key);
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<str>> {
        self.lock().get(key).map(|(n, _)| n.clone())
    }

    /// Puts each stream's primary first among its origins, and forgets primaries of streams
    /// the directory has not listed for a while.
    pub fn order(&self, dir: &mut Directory, now_ms: u64) {
        let mut map = self.lock();
        map.retain(|key, (_, since)| {
            dir.streams.contains_key(key) || now_ms.saturating_sub(*since) < UNLISTED_GRACE_MS
        });
        for (key, (node, since)) in map.iter_mut() {
            let Some(entry) = dir.streams.get_mut(key) else { continue };
            *since = now_ms;
            let nodes = &dir.nodes;
            if let Some(at) = entry.origins.iter().position(|h| nodes[h.node].spec.name == **node) {
                entry.origins[..=at].rotate_right(1);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PrimaryMap> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The node that made a hook call: the one whose API reports `server_id` (SRS's server id), else
/// the one whose RTMP address is the host:port of the hook's `tcUrl`.
pub fn calling_node(dir: &Directory, server_id: &str, tc_url: &str) -> Option<usize> {
    let by_id = (!server_id.is_empty())
        .then(|| dir.nodes.iter().position(|n| n.report.as_ref().and_then(|s| s.server.as_deref()) == Some(server_id)));
    by_id.flatten().or_else(|| {
        let host_port = authority(tc_url)?;
        dir.nodes.iter().position(|n| n.spec.rtmp.as_deref().and_then(authority).as_ref() == Some(&host_port))
    })
}

/// `host:port` of an `rtmp://host:port/...` URL (port 1935 when left out).
fn authority(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let a = &rest[..end];
    let has_port = a.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !a.ends_with(']');
    match a {
        "" => None,
        _ if has_port => Some(a.to_string()),
        _ => Some(format!("{a}:1935")),
    }
}

/// The origins a stream published on origin `from` should be forwarded to: healthy origins other
/// than `from`, by region — the configured replica regions, or else the nearest other regions of
/// `from`'s region, then any other region, then `from`'s own — config order within a region.
pub fn backups(dir: &Directory, cfg: &ReplicationConfig, resolver: &RegionResolver, from: Option<usize>) -> Vec<usize> {
    let home: Option<&str> = from.map(|i| &*dir.nodes[i].region);
    let candidates: Vec<usize> =
        dir.origins.iter().copied().filter(|&i| Some(i) != from && dir.nodes[i].spec.role == Role::Origin).collect();
    let mut regions: Vec<String> = if cfg.regions.is_empty() {
        let mut r: Vec<String> = match home {
            Some(h) => resolver.fallback_order(h).iter().map(|r| r.to_string()).collect(),
            None => Vec::new(),
        };
        let mut others: Vec<String> = candidates.iter().map(|&i| dir.nodes[i].region.to_string()).collect();
        others.sort();
        r.extend(others);
        r.extend(home.map(str::to_string));
        r
    } else {
        cfg.regions.clone()
    };
    let mut seen = std::collections::HashSet::new();
    regions.retain(|r| seen.insert(r.clone()));
    let mut chosen = Vec::new();
    for region in &regions {
        for &i in &candidates {
            if chosen.len() < cfg.replicas && *dir.nodes[i].region == **region && !chosen.contains(&i) {
                chosen.push(i);
            }
        }
    }
    chosen
}

/// The URL origin `node` takes a forwarded stream at: its RTMP address, the stream, and the
/// publisher's query (its token passes the backup's hooks too) with the vhost when not the default.
pub fn forward_url(dir: &Directory, node: usize, vhost: &str, app: &str, stream: &str, param: &str) -> Option<String> {
    let base = dir.nodes[node].spec.rtmp.as_deref()?.trim_end_matches('/');
    let mut query: Vec<&str> = param.trim_start_matches('?').split('&').filter(|p| !p.is_empty()).collect();
    let vhost_param = format!("vhost={vhost}");
    if vhost != DEFAULT_VHOST && !query.iter().any(|p| p.starts_with("vhost=")) {
        query.push(&vhost_param);
    }
    let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
    Some(format!("{base}/{app}/{stream}{query}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_of_rtmp_urls() {
        let a = |u: &str| authority(u);
        assert_eq!(a("rtmp://127.0.0.1:1935/live").as_deref(), Some("127.0.0.1:1935"));
        assert_eq!(a("rtmp://10.0.0.1:19350/live?vhost=x").as_deref(), Some("10.0.0.1:19350"));
        assert_eq!(a("rtmp://o1/live").as_deref(), Some("o1:1935"), "SRS leaves the default port out of tcUrl");
        assert_eq!(a("rtmp://[::1]:1936/live").as_deref(), Some("[::1]:1936"));
        assert_eq!(a(""), None);
    }
}

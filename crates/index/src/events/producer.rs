//! Poll-driven events: after each merge the new directory is compared with the one it replaces,
//! and what changed goes on the bus — streams that appeared or ended, viewer counts, an origin
//! that took over a live stream — plus node health changes as the pollers see them. Event data
//! has the shapes of the directory API (`GET /api/v1/streams` items, a small node record).

use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Bus, EventKind};
use crate::config::{IndexConfig, NodeSpec, PollConfig};
use crate::directory::json;
use crate::directory::{Directory, StreamEntry};
use crate::nodes::{Health, HealthChange};

/// How often noted viewer changes are checked for sending (their window is `VIEWERS_WINDOW`).
const FLUSH_TICK: Duration = Duration::from_millis(250);

/// Publishes what changed from `prev` to `dir` (the directory just swapped in).
pub fn publish_changes(bus: &Bus, poll: &PollConfig, prev: &Directory, dir: &Directory) {
    // A poll that began before a hook may land up to a timeout later, and rebuilds wait up to 1 s.
    let grace = poll.interval() + poll.timeout() + Duration::from_secs(1);
    diff(bus, prev, dir, Instant::now(), grace);
}

fn diff(bus: &Bus, prev: &Directory, dir: &Directory, now: Instant, grace: Duration) {
    let mut marks = bus.announced.lock();
    for key in &dir.sorted {
        let Some(entry) = dir.streams.get(key) else { continue };
        if marks.poll_listed(key, now, grace) {
            bus.publish(EventKind::StreamPublished, Some(key), json::stream(dir, entry));
            continue;
        }
        // Not live for listeners (a hook said it ended), or new here (a hook announced it).
        let Some(old) = prev.streams.get(key).filter(|_| marks.is_live(key)) else { continue };
        // A failover is the stream's origin losing it; learning which holder is the primary (its
        // `on_forward`) reorders the origins without one.
        if let (Some(from), Some(to)) = (first_origin(prev, old), first_origin(dir, entry))
            && from != to
            && !entry.origins.iter().any(|h| dir.nodes[h.node].spec.name == from)
        {
            let mut data = json::stream(dir, entry);
            data["previous_origin"] = json!(from);
            bus.publish(EventKind::OriginFailover, Some(key), data);
        }
        if old.viewers != entry.viewers {
            bus.viewers_changed(key, || json::stream(dir, entry));
        }
    }
    // Streams of nodes not polled yet are not gone, only unknown (as for the history).
    let listed = |key: &str| !dir.warm || dir.streams.contains_key(key);
    for key in marks.poll_unlisted(listed, now, grace) {
        bus.forget_viewers(&key);
        let data = prev.streams.get(&key).map_or_else(|| stub(&key), |s| json::stream(prev, s));
        bus.publish(EventKind::StreamUnpublished, Some(&key), data);
    }
}

fn first_origin<'a>(dir: &'a Directory, s: &StreamEntry) -> Option<&'a str> {
    s.origins.first().map(|h| dir.nodes[h.node].spec.name.as_str())
}

/// The record of stream `key` for an event: its directory entry, or an empty record of the same
/// shape when the directory does not list it (yet): what the hook receiver passes as `data`.
pub fn stream_data(dir: &Directory, key: &str) -> Value {
    dir.streams.get(key).map_or_else(|| stub(key), |s| json::stream(dir, s))
}

fn stub(key: &str) -> Value {
    let (vhost, app, stream) = crate::directory::split_key(key);
    json!({
        "key": key, "vhost": vhost, "app": app, "stream": stream,
        "origin": null, "origins": [], "edges": [],
        "viewers": 0, "origin_viewers": 0, "peak_viewers": 0,
        "video": null, "audio": null, "kbps": { "in": 0, "out": 0 },
        "live_since_ms": crate::clock::now_ms(),
    })
}

/// A node's health changed: `node_up` when it becomes schedulable, `node_down` when it goes down
/// (also from "not polled yet"). Up <-> degraded is no event.
pub fn health_changed(bus: &Bus, c: &HealthChange, spec: Option<&NodeSpec>, config: &IndexConfig) {
    let kind = if c.to == Health::Down && c.from != Health::Down {
        EventKind::NodeDown
    } else if c.to.schedulable() && !c.from.schedulable() {
        EventKind::NodeUp
    } else {
        return;
    };
    let data = json!({
        "name": c.node,
        "role": spec.map(|s| s.role),
        "region": spec.map(|s| config.node_region(s)),
        "health": c.to,
        "previous_health": c.from,
        "reason": c.reason,
    });
    bus.publish(kind, None, data);
}

/// Sends noted viewer changes once their window has passed, with the stream's current record.
pub async fn flush_loop(bus: &Bus, directory: &ArcSwap<Directory>, shutdown: &CancellationToken) {
    let mut tick = tokio::time::interval(FLUSH_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let dir = directory.load();
        bus.flush_viewers(|key| dir.streams.get(key).map(|s| json::stream(&dir, s)));
    }
}

#[cfg(test)]
mod tests;

//! Events between replicas, on the pub/sub channel `<prefix>:ch:events`.
//!
//! Each replica sends what its own bus published — hook-driven events on any replica, poll-driven
//! ones on the leader (followers do not diff directories: they would repeat the leader) — and feeds
//! what the others sent into its bus ([`crate::events::Bus::publish_relayed`]), skipping its own
//! messages (pub/sub delivers them back) and stream announcements it already made. A message is one
//! header line of JSON (sender, kind, stream, time) and the event's `data` JSON after a newline,
//! so `data` is neither parsed nor re-encoded on the way.
//!
//! Pub/sub keeps no history: a replica that was disconnected misses what was sent meanwhile (its
//! listeners get the cluster's state again from the directory in their next snapshot). Event ids
//! are each replica's own; see `crate::index_replicas`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::Replicas;
use crate::events::{EventKind, Relayed};
use crate::state::IndexState;

/// Events sent in one pipeline at most.
const BATCH: usize = 256;

#[derive(Serialize)]
struct Header<'a> {
    r: &'a str,
    k: &'a str,
    s: Option<&'a str>,
    t: u64,
}

/// [`Header`] as read (a stream key with escapes cannot be borrowed).
#[derive(Deserialize)]
struct HeaderIn {
    r: String,
    k: String,
    s: Option<String>,
    t: u64,
}

/// The message for `e`, sent by replica `sender`.
pub fn encode(sender: &str, e: &Relayed) -> String {
    let header = Header { r: sender, k: e.kind.as_str(), s: e.stream.as_deref(), t: e.time_ms };
    let mut m = serde_json::to_string(&header).unwrap_or_default();
    m.push('\n');
    m.push_str(&e.data_json);
    m
}

/// The sender and event of a message.
pub fn decode(payload: &[u8]) -> Option<(String, Relayed)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (head, data) = text.split_once('\n')?;
    let h: HeaderIn = serde_json::from_str(head).ok()?;
    let kind = EventKind::parse(&h.k)?;
    Some((h.r, Relayed { kind, stream: h.s.map(Arc::from), time_ms: h.t, data_json: data.to_string() }))
}

/// Sends this replica's events, in order, a pipeline of whatever is queued at a time.
pub(super) async fn sender(state: Arc<IndexState>, sh: Arc<Replicas>, mut rx: mpsc::Receiver<Relayed>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let n = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            n = rx.recv_many(&mut batch, BATCH) => n,
        };
        if n == 0 {
            return;
        }
        // What a replica saw while cut off from Redis stays its own, and so does anything that
        // waited longer than a lease to go out: the others had their own view meanwhile.
        let now = crate::clock::now_ms();
        let lease = sh.lease.as_millis() as u64;
        batch.retain(|e| sh.role() != super::Role::Standalone && now.saturating_sub(e.time_ms) <= lease);
        if batch.is_empty() {
            continue;
        }
        let n = batch.len();
        let mut pipe = redis::pipe();
        for e in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(&sh.keys.ch_events).arg(encode(&sh.id, &e)).ignore();
        }
        let mut conn = sh.conn.clone();
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => {
                sh.stats.events_out.fetch_add(n as u64, Ordering::Relaxed);
            }
            // Redis is down: these stay local (the others poll on their own meanwhile).
            Err(e) => tracing::debug!("{n} event(s) not sent to the other replicas (redis: {e})"),
        }
    }
}

/// A message on the events channel.
pub(super) fn received(state: &IndexState, sh: &Replicas, payload: &[u8]) {
    let Some((sender, event)) = decode(payload) else {
        tracing::debug!("unreadable event message on the events channel");
        return;
    };
    if sender == sh.id {
        return;
    }
    sh.stats.events_in.fetch_add(1, Ordering::Relaxed);
    state.events.publish_relayed(&event);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_data_untouched() {
        let e = Relayed {
            kind: EventKind::StreamPublished,
            stream: Some("__defaultVhost__/live/a\nb".into()),
            time_ms: 42,
            data_json: r#"{"key":"x","n":[1,2]}"#.into(),
        };
        let (sender, back) = decode(encode("r1", &e).as_bytes()).unwrap();
        assert_eq!(sender, "r1");
        assert_eq!((back.kind, back.stream.as_deref(), back.time_ms), (e.kind, e.stream.as_deref(), 42));
        assert_eq!(back.data_json, e.data_json);
        assert!(decode(b"not json\n{}").is_none());
    }
}

//! Cluster events: what happened (a stream published, a node down...) as numbered records, kept
//! in a bounded buffer for clients that reconnect, and fanned out live to every listener.
//!
//! The bus is the one place events enter: the directory merge (poll-driven, `producer`) and the
//! hook receiver (hook-driven, at once) publish here; `GET /api/v1/events` (`crate::http::events`:
//! WebSocket or SSE, over a `feed`) reads here. This module knows nothing of HTTP: the HTTP side
//! depends on it, never the reverse. Stream announcements are deduplicated between the two sources
//! (`announced`) and viewer counts are coalesced (`coalesce`).

mod announced;
mod coalesce;
pub mod producer;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use announced::Announced;
use coalesce::Coalescer;

/// At most one `viewers_changed` per stream per this long.
pub const VIEWERS_WINDOW: Duration = Duration::from_secs(1);

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    StreamPublished,
    StreamUnpublished,
    /// Coalesced to at most one per stream per second.
    ViewersChanged,
    NodeUp,
    NodeDown,
    /// A live stream's origin changed (the primary died and a replica took over).
    OriginFailover,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::StreamPublished,
        EventKind::StreamUnpublished,
        EventKind::ViewersChanged,
        EventKind::NodeUp,
        EventKind::NodeDown,
        EventKind::OriginFailover,
    ];

    /// The kind named `s` (`as_str`'s inverse).
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::StreamPublished => "stream_published",
            EventKind::StreamUnpublished => "stream_unpublished",
            EventKind::ViewersChanged => "viewers_changed",
            EventKind::NodeUp => "node_up",
            EventKind::NodeDown => "node_down",
            EventKind::OriginFailover => "origin_failover",
        }
    }
}

/// One event as listeners get it. Only its JSON text is kept: a stream record carried by a thousand
/// edges is ~100 KB as text but five times that as a `Value` tree, and the replay buffer holds
/// thousands of events.
#[derive(Clone, Debug)]
pub struct Event {
    /// Increasing, no gaps: a listener that saw id N and reconnects asks for what came after N.
    pub id: u64,
    /// Wall-clock ms.
    pub time_ms: u64,
    pub kind: EventKind,
    /// The stream key (`vhost/app/stream`) of stream events, for filters.
    pub stream: Option<Arc<str>>,
    /// This event as JSON (with `data`, the stream or node record, in the directory API's shape),
    /// made once for all listeners.
    json: Utf8Bytes,
    /// The same without the admin-only keys of `data`, made once for all non-admin listeners.
    public_json: OnceLock<Utf8Bytes>,
}

/// Keys of an event's `data` only admins are shown: a node's failure reason can hold internal
/// URLs and addresses, as its `last_error` on `/api/v1/nodes`.
const ADMIN_ONLY: &[&str] = &["reason"];

impl Event {
    /// An event whose `data` is already JSON text (made outside the bus lock: big records take a
    /// while to serialize).
    fn new(id: u64, time_ms: u64, kind: EventKind, stream: Option<&str>, data_json: &str) -> Event {
        let text = |v: &str| serde_json::to_string(v).unwrap_or_default();
        let mut json = format!(r#"{{"id":{id},"time_ms":{time_ms},"type":"{}""#, kind.as_str());
        if let Some(s) = stream {
            json.push_str(&format!(r#","stream":{}"#, text(s)));
        }
        json.push_str(&format!(r#","data":{data_json}}}"#));
        Event { id, time_ms, kind, stream: stream.map(Arc::from), json: json.into(), public_json: OnceLock::new() }
    }

    /// The event as one line of JSON (what a WebSocket frame or an SSE `data:` carries).
    pub fn json(&self) -> Utf8Bytes {
        self.json.clone()
    }

    /// The stream or node record, read back from the JSON (for tests and rare readers).
    pub fn data(&self) -> Value {
        serde_json::from_str::<Value>(self.json.as_str()).map(|mut v| v["data"].take()).unwrap_or_default()
    }

    /// [`Event::json`] for a listener without an admin key.
    pub fn public_json(&self) -> Utf8Bytes {
        // Node events are the only ones with admin-only keys; stream events skip the parse.
        if self.stream.is_some() {
            return self.json();
        }
        self.public_json
            .get_or_init(|| {
                let mut data = self.data();
                match data.as_object_mut() {
                    Some(o) if ADMIN_ONLY.iter().any(|k| o.contains_key(*k)) => {
                        ADMIN_ONLY.iter().for_each(|k| drop(o.remove(*k)));
                        Event::new(self.id, self.time_ms, self.kind, None, &data.to_string()).json
                    }
                    _ => self.json(),
                }
            })
            .clone()
    }
}

/// A listener asked for events older than the buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub struct TooOld {
    /// The oldest id still held.
    pub oldest: u64,
}

/// What `Bus::resume` gives: the held events a listener missed, and the live receiver after them.
pub type Resumed = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

struct Ring {
    next_id: u64,
    buf: VecDeque<Arc<Event>>,
    /// Approximate memory the held events take (see `held_bytes`).
    bytes: usize,
}

/// Memory the replay buffer may hold. Stream records of big clusters are large (one object per
/// edge carrying the stream), so a count alone does not bound it; a listener that falls behind
/// what was dropped gets `resync` and a snapshot.
const BUFFER_BYTES: usize = 64 << 20;

/// Events a live listener may be behind before it is resynced.
const LIVE_SLOTS: usize = 256;

/// An event's memory: its JSON text and the struct around it.
fn held_bytes(e: &Event) -> usize {
    e.json.len() + std::mem::size_of::<Event>() + 64
}

/// An event as it travels between index replicas (shared mode, `crate::index_replicas::relay`): what
/// [`Bus::publish`] was given, before this replica numbered it. Each replica numbers the events it
/// gets in its own sequence.
#[derive(Clone, Debug)]
pub struct Relayed {
    pub kind: EventKind,
    pub stream: Option<Arc<str>>,
    pub time_ms: u64,
    /// `data` as JSON text.
    pub data_json: String,
}

/// The event bus: a numbered, bounded history plus live fan-out.
pub struct Bus {
    ring: Mutex<Ring>,
    capacity: usize,
    tx: broadcast::Sender<Arc<Event>>,
    /// Streams listeners were told are live (shared by hooks and the merge).
    announced: Announced,
    viewers: Coalescer,
    /// Shared mode: every event published here (not those relayed in) also goes to the other
    /// replicas through this queue. Full: the event stays local (counted in `relay_dropped`).
    relay: OnceLock<tokio::sync::mpsc::Sender<Relayed>>,
    pub relay_dropped: std::sync::atomic::AtomicU64,
    /// Listeners connected now (see [`Bus::join`]).
    listeners: Arc<std::sync::atomic::AtomicUsize>,
}

/// A listener's place among the bus's listeners; leaving frees it.
#[derive(Debug)]
pub struct ListenerSlot(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for ListenerSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Bus {
    /// Keeps the last `capacity` events for replay; a live listener more than `capacity` behind
    /// is told it lagged.
    pub fn new(capacity: usize) -> Bus {
        let capacity = capacity.max(1);
        // The channel keeps its last `LIVE_SLOTS` events even after every listener read them:
        // small, so big records are not held twice. A listener that falls that far behind resyncs.
        let (tx, _) = broadcast::channel(capacity.min(LIVE_SLOTS));
        Bus {
            ring: Mutex::new(Ring { next_id: 1, buf: VecDeque::with_capacity(capacity), bytes: 0 }),
            capacity,
            tx,
            announced: Announced::default(),
            viewers: Coalescer::new(VIEWERS_WINDOW),
            relay: OnceLock::new(),
            relay_dropped: std::sync::atomic::AtomicU64::new(0),
            listeners: Arc::default(),
        }
    }

    /// Shared mode: from now on, events published here also go into `tx` for the other replicas.
    pub fn relay_to(&self, tx: tokio::sync::mpsc::Sender<Relayed>) {
        let _ = self.relay.set(tx);
    }

    /// Records and fans out an event; returns it.
    pub fn publish(&self, kind: EventKind, stream: Option<&str>, data: Value) -> Arc<Event> {
        let data_json = serde_json::to_string(&data).unwrap_or_else(|_| "null".into());
        let time_ms = crate::clock::now_ms();
        if let Some(tx) = self.relay.get() {
            let out = Relayed { kind, stream: stream.map(Arc::from), time_ms, data_json: data_json.clone() };
            if tx.try_send(out).is_err() {
                self.relay_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.record(kind, stream, time_ms, &data_json)
    }

    /// An event another replica published (shared mode): numbered and fanned out here, not sent
    /// back. Stream announcements go through the same marks as this replica's own, so a stream
    /// announced by a hook here and by the leader's poll there is announced once. Returns the
    /// event, or None when it was a repeat.
    pub fn publish_relayed(&self, r: &Relayed) -> Option<Arc<Event>> {
        let stream = r.stream.as_deref();
        match (r.kind, stream) {
            (EventKind::StreamPublished, Some(key)) => {
                let mut marks = self.announced.lock();
                marks
                    .hook_live(key, std::time::Instant::now())
                    .then(|| self.record(r.kind, stream, r.time_ms, &r.data_json))
            }
            (EventKind::StreamUnpublished, Some(key)) => {
                let mut marks = self.announced.lock();
                if !marks.hook_gone(key, std::time::Instant::now()) {
                    return None;
                }
                self.forget_viewers(key);
                Some(self.record(r.kind, stream, r.time_ms, &r.data_json))
            }
            _ => Some(self.record(r.kind, stream, r.time_ms, &r.data_json)),
        }
    }

    /// Forgets announcement marks of ended streams once `grace` passed: what the merge's diff does
    /// on a replica that does not run it (a follower in shared mode).
    pub fn forget_ended(&self, grace: Duration) {
        self.announced.lock().poll_unlisted(|_| true, std::time::Instant::now(), grace);
    }

    /// Marks what `dir` lists as announced, without announcing it: a follower in shared mode that
    /// starts polling takes over from a leader whose events already told listeners about those
    /// streams (a replica started after they were announced has no marks for them).
    pub fn adopt(&self, dir: &crate::directory::Directory, grace: Duration) {
        let now = std::time::Instant::now();
        let mut marks = self.announced.lock();
        for key in &dir.sorted {
            marks.poll_listed(key, now, grace);
        }
        let listed = |key: &str| !dir.warm || dir.streams.contains_key(key);
        for key in marks.poll_unlisted(listed, now, grace) {
            self.forget_viewers(&key);
        }
    }

    /// Numbers, keeps and fans out an event whose data is JSON text.
    fn record(&self, kind: EventKind, stream: Option<&str>, time_ms: u64, data_json: &str) -> Arc<Event> {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let event = Arc::new(Event::new(ring.next_id, time_ms, kind, stream, data_json));
        ring.next_id += 1;
        ring.bytes += held_bytes(&event);
        ring.buf.push_back(event.clone());
        while ring.buf.len() > self.capacity || (ring.bytes > BUFFER_BYTES && ring.buf.len() > 1) {
            if let Some(old) = ring.buf.pop_front() {
                ring.bytes = ring.bytes.saturating_sub(held_bytes(&old));
            }
        }
        // Sent under the lock, so live listeners see ids in order.
        let _ = self.tx.send(event.clone());
        event
    }

    /// Live events from now on.
    /// A place for one more listener, or None when `max` are connected already.
    pub fn join(&self, max: usize) -> Option<ListenerSlot> {
        use std::sync::atomic::Ordering;
        self.listeners.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(ListenerSlot(self.listeners.clone()))
    }

    /// Listeners connected now.
    pub fn listeners(&self) -> usize {
        self.listeners.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Live events from now on, and the held events after `since` — taken together, so nothing
    /// falls between them. `TooOld` when events after `since` were already dropped.
    pub fn resume(&self, since: u64) -> Result<Resumed, TooOld> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        let oldest = ring.buf.front().map_or(ring.next_id, |e| e.id);
        if since + 1 < oldest && since + 1 < ring.next_id {
            return Err(TooOld { oldest });
        }
        Ok((ring.buf.iter().filter(|e| e.id > since).cloned().collect(), rx))
    }

    /// The id of the newest event (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).next_id - 1
    }

    /// Live events after the newest one, and that newest id, taken together: a snapshot of the
    /// cluster read after this call, followed by what the receiver gets, misses nothing.
    pub fn subscribe_at(&self) -> (u64, broadcast::Receiver<Arc<Event>>) {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        (ring.next_id - 1, self.tx.subscribe())
    }

    /// The oldest id held for replay (the next id when none is held).
    pub fn oldest(&self) -> u64 {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.buf.front().map_or(ring.next_id, |e| e.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_events_are_bounded_by_memory_not_only_by_count() {
        let bus = Bus::new(4096);
        // 40 events of 4 MiB: 160 MiB, of which the 64 MiB budget holds the last 15.
        let big = Value::String("x".repeat(4 << 20));
        for _ in 0..40 {
            bus.publish(EventKind::ViewersChanged, Some("__defaultVhost__/live/a"), big.clone());
        }
        let oldest = bus.resume(bus.last_id() - 1).unwrap().0.len();
        assert_eq!(oldest, 1, "the newest is held");
        let err = bus.resume(0).unwrap_err();
        assert!(err.oldest > 24, "held events fit the memory budget: oldest held is {}", err.oldest);
    }

    #[test]
    fn ids_increase_and_resume_replays_what_was_missed() {
        let bus = Bus::new(3);
        for i in 0..3 {
            bus.publish(EventKind::NodeUp, None, serde_json::json!({ "n": i }));
        }
        let (missed, _rx) = bus.resume(1).unwrap();
        assert_eq!(missed.iter().map(|e| e.id).collect::<Vec<_>>(), [2, 3]);
        bus.publish(EventKind::NodeDown, None, Value::Null);
        bus.publish(EventKind::NodeDown, None, Value::Null);
        assert_eq!(bus.resume(1).unwrap_err(), TooOld { oldest: 3 }, "event 2 is gone");
        assert_eq!(bus.resume(2).unwrap().0.len(), 3, "3, 4, 5 are held");
        assert_eq!(bus.last_id(), 5);
    }

    #[tokio::test]
    async fn live_listeners_get_events_in_order() {
        let bus = Bus::new(8);
        let (held, mut rx) = bus.resume(0).unwrap();
        assert!(held.is_empty());
        bus.publish(EventKind::StreamPublished, Some("__defaultVhost__/live/a"), Value::Null);
        let e = rx.recv().await.unwrap();
        assert_eq!(
            (e.id, e.kind, e.stream.as_deref()),
            (1, EventKind::StreamPublished, Some("__defaultVhost__/live/a"))
        );
        let json: Value = serde_json::from_str(e.json().as_str()).unwrap();
        assert_eq!(json["type"], "stream_published");
        assert_eq!(json["stream"], "__defaultVhost__/live/a");
        assert_eq!(json["id"], 1);
    }
}

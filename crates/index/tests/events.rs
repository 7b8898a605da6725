//! Live events from an in-process index polling fake SRS nodes: what a WebSocket or SSE listener
//! sees when streams come and go, viewers change and nodes fail; resuming after a disconnect;
//! resync when too far behind; filters. Delays are printed, not asserted.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Api, DEADLINE, Docs, FakeNode, Mode, config, eventually};
use ferrocast_index::events::EventKind;
use ferrocast_index::http::caller::Caller;
use ferrocast_index::http::events::feed::{Feed, Filter};
use ferrocast_index::{Role, RunningIndex};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const CAM1: &str = "__defaultVhost__/live/cam1";

/// A fake node that answers with no streams until switched to `Mode::Normal`.
async fn empty(node: &str) -> FakeNode {
    let fake = FakeNode::start(Docs::captured(node)).await;
    fake.set(Mode::Restarted { service: format!("{node}-empty"), streams: vec![] }).await;
    fake
}

async fn index(db: &tempfile::TempDir, nodes: Vec<ferrocast_index::NodeSpec>) -> RunningIndex {
    RunningIndex::start(config(&db.path().join("index.db"), nodes), None).await.expect("the index starts")
}

/// Publishes a node event straight on the bus (it passes every filter): a probe.
fn probe(idx: &RunningIndex, n: u64) -> u64 {
    idx.state.events.publish(EventKind::NodeUp, None, json!({ "name": format!("probe{n}") })).id
}

fn is_probe(v: &Value) -> bool {
    v["data"]["name"].as_str().is_some_and(|n| n.starts_with("probe"))
}

/// A WebSocket listener.
struct Ws(tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>);

impl Ws {
    async fn connect(idx: &RunningIndex, query: &str) -> Ws {
        let url = format!("ws://{}/api/v1/events{query}", idx.addr);
        let (ws, resp) = tokio_tungstenite::connect_async(url.as_str()).await.expect("a WebSocket");
        assert_eq!(resp.status(), 101);
        Ws(ws)
    }

    /// The next event's JSON.
    async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(DEADLINE, self.0.next()).await.expect("an event in time");
            match msg.expect("the socket stays open").expect("a frame") {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Skips events until one of type `kind` matches `pred`; returns it and what came before.
    async fn until(&mut self, kind: &str, pred: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let started = Instant::now();
        let mut before = Vec::new();
        loop {
            assert!(started.elapsed() < DEADLINE, "no {kind} within {DEADLINE:?}; got {before:?}");
            let v = self.next().await;
            if v["type"] == kind && pred(&v) {
                return (v, before);
            }
            before.push(v);
        }
    }
}

/// One Server-Sent Event.
#[derive(Debug)]
struct SseEvent {
    id: Option<u64>,
    event: String,
    data: Value,
}

/// An SSE listener reading the body as it streams.
struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    async fn connect(idx: &RunningIndex, query: &str, last_event_id: Option<u64>) -> Sse {
        let mut req = reqwest::Client::new()
            .get(format!("http://{}/api/v1/events{query}", idx.addr))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().await.expect("an SSE answer");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Sse { resp, buf: String::new() }
    }

    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "id" => id = Some(value.parse().expect("a numeric id")),
                        "event" => event = value.to_string(),
                        "data" => data.push_str(value),
                        _ => {} // a comment (keep-alive)
                    }
                }
                if data.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).expect("JSON data");
                return SseEvent { id, event, data };
            }
            let chunk = tokio::time::timeout(DEADLINE, self.resp.chunk()).await.expect("an event in time");
            let chunk = chunk.expect("the body streams").expect("the stream stays open");
            self.buf.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

/// The poll-driven events as a WebSocket listener sees them: a stream the origin starts
/// answering with, viewers that change at every poll (coalesced to one a second, the last value
/// delivered), a node that stops answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_listener_sees_publishes_viewers_and_node_failures() {
    let (origin, edge) = (empty("origin").await, empty("edge1").await);
    let db = tempfile::tempdir().unwrap();
    let idx = index(&db, vec![origin.spec("origin", Role::Origin), edge.spec("edge1", Role::Edge)]).await;
    let mut ws = Ws::connect(&idx, "").await;
    let snap = ws.next().await;
    assert_eq!(snap["type"], "snapshot", "a new listener starts with a snapshot: {snap}");
    assert_eq!(snap["data"]["streams"], json!([]));

    let switched = Instant::now();
    origin.set(Mode::Normal).await;
    let (published, _) = ws.until("stream_published", |v| v["stream"] == CAM1).await;
    println!("stream_published {:?} after the origin started answering with the stream", switched.elapsed());
    assert_eq!(published["data"]["key"], CAM1);
    assert_eq!(published["data"]["origin"], "origin");
    assert_eq!(published["data"]["viewers"], 2, "the stream record of GET /api/v1/streams: {published}");
    assert!(published["id"].as_u64() > snap["id"].as_u64());

    origin.set(Mode::Churn).await;
    let churn = Instant::now();
    let mut changes = Vec::new();
    while churn.elapsed() < Duration::from_millis(3500) {
        let v = ws.next().await;
        if v["type"] == "viewers_changed" && v["stream"] == CAM1 {
            changes.push((v["time_ms"].as_u64().unwrap(), v["data"]["viewers"].as_u64().unwrap()));
        }
    }
    println!("viewers_changed while viewers changed at every 300 ms poll for 3.5 s: {changes:?}");
    assert!(changes.len() >= 2, "viewers change at every poll: {changes:?}");
    for pair in changes.windows(2) {
        // At least a second apart (time_ms is wall-clock ms, truncated).
        assert!(pair[1].0 >= pair[0].0 + 999, "more than one viewers_changed within a second: {changes:?}");
    }
    origin.set(Mode::Normal).await;
    ws.until("viewers_changed", |v| v["data"]["viewers"] == 2).await;
    println!("the last viewer count (2) arrived once the churn stopped");

    edge.set(Mode::Refuse).await;
    let (down, _) = ws.until("node_down", |v| v["data"]["name"] == "edge1").await;
    assert_eq!((down["data"]["role"].as_str(), down["data"]["health"].as_str()), (Some("edge"), Some("down")));
    assert!(down.get("stream").is_none(), "{down}");
    println!("node_down: {down}");
    idx.shutdown().await;
}

/// Delay from `Bus::publish` to a WebSocket listener holding the frame, in process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_to_websocket_delay() {
    let db = tempfile::tempdir().unwrap();
    let idx = index(&db, vec![]).await;
    let mut ws = Ws::connect(&idx, "").await;
    assert_eq!(ws.next().await["type"], "snapshot");
    let mut delays = Vec::new();
    for n in 0..300 {
        let sent = Instant::now();
        let id = probe(&idx, n);
        loop {
            let v = ws.next().await;
            if v["id"] == id {
                break;
            }
        }
        delays.push(sent.elapsed());
    }
    delays.sort();
    let pct = |p: usize| delays[(delays.len() - 1) * p / 100];
    println!(
        "bus -> WebSocket listener, {} events one at a time: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        delays.len(),
        pct(50),
        pct(90),
        pct(99),
        delays[delays.len() - 1]
    );
    idx.shutdown().await;
}

/// An SSE listener that disconnects and comes back with `Last-Event-ID` gets every event in
/// between: ids are contiguous across the reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_listener_that_reconnects_with_last_event_id_misses_nothing() {
    let (origin, edge) =
        (FakeNode::start(Docs::captured("origin")).await, FakeNode::start(Docs::captured("edge1")).await);
    let db = tempfile::tempdir().unwrap();
    let idx = index(&db, vec![origin.spec("origin", Role::Origin), edge.spec("edge1", Role::Edge)]).await;
    let mut sse = Sse::connect(&idx, "", None).await;
    let snap = sse.next().await;
    assert_eq!((snap.event.as_str(), snap.data["type"].as_str()), ("snapshot", Some("snapshot")));
    let start = snap.id.expect("the snapshot carries the id it is current to");

    let mut ids = Vec::new();
    for n in 0..20 {
        probe(&idx, n);
    }
    let mut probes = 0;
    while probes < 10 {
        let e = sse.next().await;
        assert_eq!(e.data["type"].as_str(), Some(e.event.as_str()));
        assert_eq!(e.data["id"].as_u64(), e.id);
        probes += usize::from(is_probe(&e.data));
        ids.push(e.id.expect("an id"));
    }
    let last_seen = *ids.last().unwrap();
    drop(sse);
    origin.set(Mode::Churn).await; // poll-driven events while it is away, too
    for n in 20..50 {
        probe(&idx, n);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let last_probe = probe(&idx, 50);

    let mut sse = Sse::connect(&idx, "", Some(last_seen)).await;
    loop {
        let e = sse.next().await;
        assert_ne!(e.event, "snapshot", "a resumed listener gets what it missed, not a snapshot");
        let id = e.id.expect("an id");
        ids.push(id);
        if id == last_probe {
            break;
        }
    }
    let expected: Vec<u64> = (start + 1..=last_probe).collect();
    assert_eq!(ids, expected, "ids contiguous across the reconnect (resumed after {last_seen})");
    println!("SSE: {} events, ids {}..={} with a reconnect after {last_seen}", ids.len(), start + 1, last_probe);
    idx.shutdown().await;
}

/// A listener asking for events the buffer no longer holds (or from an earlier run of the index)
/// is told so, gets a snapshot, and continues live; so does one whose receiver lagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_far_behind_means_resync_then_a_snapshot() {
    let db = tempfile::tempdir().unwrap();
    let idx = index(&db, vec![]).await;
    for n in 0..5000 {
        probe(&idx, n);
    }
    let oldest = idx.state.events.oldest();
    assert!(oldest > 2, "the buffer dropped the first events");

    let mut ws = Ws::connect(&idx, "?since=1").await;
    assert_eq!(ws.next().await, json!({ "type": "resync", "oldest": oldest }));
    let snap = ws.next().await;
    assert_eq!((snap["type"].as_str(), snap["id"].as_u64()), (Some("snapshot"), Some(5000)));
    let live = probe(&idx, 5000);
    assert_eq!(ws.next().await["id"], live, "then live");

    let mut sse = Sse::connect(&idx, "?since=2", None).await;
    let resync = sse.next().await;
    assert_eq!((resync.event.as_str(), resync.id), ("resync", None));
    assert_eq!(resync.data["oldest"].as_u64(), Some(idx.state.events.oldest()));
    assert_eq!(sse.next().await.event, "snapshot");

    let mut future = Ws::connect(&idx, "?since=999999").await;
    assert_eq!(future.next().await["type"], "resync", "an id from an earlier run of the index");
    assert_eq!(future.next().await["type"], "snapshot");

    let mut resumed = Ws::connect(&idx, &format!("?since={}", live - 3)).await;
    let ids: Vec<Value> =
        [resumed.next().await, resumed.next().await, resumed.next().await].map(|v| v["id"].clone()).into();
    assert_eq!(ids, [json!(live - 2), json!(live - 1), json!(live)], "held events are replayed");

    // A feed whose receiver lagged (more than the buffer published while it did not read).
    let mut feed = Feed::open(idx.state.clone(), Filter::default(), Caller::Viewer(None), None);
    assert_eq!(feed.next().await.unwrap().kind, "snapshot");
    for n in 0..5000 {
        probe(&idx, n);
    }
    let resync = feed.next().await.unwrap();
    assert_eq!(resync.kind, "resync");
    assert_eq!(feed.next().await.unwrap().kind, "snapshot");
    let live = probe(&idx, 0);
    assert_eq!(feed.next().await.unwrap().id, Some(live));
    ws.0.close(None).await.ok();
    idx.shutdown().await;
}

/// `?app=` and `?stream=` keep the stream events (and snapshot streams) of matching keys; node
/// events reach everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_keep_matching_streams_and_all_node_events() {
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let db = tempfile::tempdir().unwrap();
    let idx = index(&db, vec![origin.spec("origin", Role::Origin)]).await;
    let api = Api::new(&idx);
    eventually(DEADLINE, "cam1 live", async || {
        let keys = api.stream_keys().await?;
        if keys == [CAM1] { Ok(()) } else { Err(format!("{keys:?}")) }
    })
    .await;

    let mut cam1 = Ws::connect(&idx, "?app=live&stream=cam1").await;
    let mut game = Sse::connect(&idx, "?app=game", None).await;
    let snap = cam1.next().await;
    assert_eq!(snap["data"]["streams"].as_array().map(Vec::len), Some(1), "{snap}");
    assert_eq!(snap["data"]["nodes"][0]["name"], "origin");
    let snap = game.next().await;
    assert_eq!(snap.data["data"]["streams"], json!([]), "no game streams");

    let bus = &idx.state.events;
    for key in ["__defaultVhost__/live/cam1", "__defaultVhost__/live/cam2", "__defaultVhost__/game/cam1", "v2/game/x"] {
        bus.publish(EventKind::StreamPublished, Some(key), json!({ "key": key }));
    }
    let last = probe(&idx, 0);

    let mut seen = BTreeSet::new();
    loop {
        let v = cam1.next().await;
        if let Some(key) = v["stream"].as_str() {
            seen.insert(key.to_string());
        }
        if v["id"] == last {
            break;
        }
    }
    assert_eq!(seen, BTreeSet::from([CAM1.to_string()]), "?app=live&stream=cam1");

    let mut seen = BTreeSet::new();
    loop {
        let e = game.next().await;
        if let Some(key) = e.data["stream"].as_str() {
            seen.insert(key.to_string());
        }
        if e.id == Some(last) {
            assert_eq!(e.event, "node_up", "node events pass every filter");
            break;
        }
    }
    assert_eq!(seen, BTreeSet::from(["__defaultVhost__/game/cam1".to_string(), "v2/game/x".to_string()]), "?app=game");
    idx.shutdown().await;
}

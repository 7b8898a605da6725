//! Origin replication through the index: its answers to origins' `on_forward` hooks (which backup
//! origins, in which regions), and what the directory, the publish URLs and the event feed say
//! when a stream's primary origin dies and a replica holds it. The origins are fake SRS nodes
//! serving a real SRS origin's captured answers (each lists `live/cam1`).

mod common;

use common::{Api, DEADLINE, Docs, FakeNode, Mode, check, config, eventually};
use ferrocast_index::config::ReplicationConfig;
use ferrocast_index::events::EventKind;
use ferrocast_index::{IndexConfig, NodeSpec, Role, RunningIndex};
use serde_json::{Value, json};

/// Four origins: o1 and o3 in eu, o2 in us, o4 in ap; eu's nearest regions are us, then ap.
async fn origins() -> (Vec<FakeNode>, Vec<NodeSpec>) {
    let mut fakes = Vec::new();
    let mut specs = Vec::new();
    for (name, region) in [("o1", "eu"), ("o2", "us"), ("o3", "eu"), ("o4", "ap")] {
        let fake = FakeNode::start(Docs::captured("origin")).await;
        specs.push(NodeSpec { region: Some(region.into()), ..fake.spec(name, Role::Origin) });
        fakes.push(fake);
    }
    (fakes, specs)
}

async fn start(db: &tempfile::TempDir, nodes: Vec<NodeSpec>, replication: ReplicationConfig) -> RunningIndex {
    let mut cfg = IndexConfig { replication, ..config(&db.path().join("index.db"), nodes) };
    cfg.regions.nearest.insert("eu".into(), vec!["us".into(), "ap".into()]);
    let idx = RunningIndex::start(cfg, None).await.unwrap();
    let api = Api::new(&idx);
    eventually(DEADLINE, "four origins up", async || {
        let v = api.get_ok("/api/v1/nodes").await?;
        let up = v["nodes"].as_array().map_or(0, |n| n.iter().filter(|n| n["health"] == "up").count());
        check(up == 4, || v.to_string())
    })
    .await;
    idx
}

/// SRS's on_forward body, sent by the origin reached at `tc_url`. The server id is left empty so
/// the index finds the caller by its RTMP address (the fakes all report the same captured id).
fn on_forward(tc_url: &str, param: &str) -> Value {
    json!({
        "action": "on_forward", "server_id": "", "service_id": "584128l7", "client_id": "s20rw848",
        "ip": "127.0.0.1", "vhost": "__defaultVhost__", "app": "live", "tcUrl": tc_url, "stream": "cam1",
        "param": param,
    })
}

async fn urls(api: &Api, body: &Value) -> Vec<String> {
    let (status, answer) = api.post("/api/v1/hooks", body.to_string()).await.unwrap();
    assert_eq!((status, &answer["code"]), (200, &json!(0)), "{answer}");
    serde_json::from_value(answer["data"]["urls"].clone()).expect("data.urls: a list of URLs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_forward_names_healthy_origins_of_the_nearest_other_regions() {
    let (fakes, specs) = origins().await;
    let db = tempfile::tempdir().unwrap();
    let idx = start(&db, specs.clone(), ReplicationConfig { replicas: 2, regions: vec![] }).await;
    let api = Api::new(&idx);

    // From o1 (eu): us, then ap; the publisher's query goes along (its token passes their hooks).
    let got = urls(&api, &on_forward("rtmp://o1.test/live", "?token=abc")).await;
    assert_eq!(got, ["rtmp://o2.test:1935/live/cam1?token=abc", "rtmp://o4.test:1935/live/cam1?token=abc"]);
    // A forwarded stream is not forwarded again.
    let again = urls(&api, &on_forward("rtmp://o2.test:1935/live", "?token=abc&ferrocast_forwarded=1")).await;
    assert!(again.is_empty(), "{again:?}");
    // A backup that is down is skipped: o2 refuses its polls, so o4 then o3.
    fakes[1].set(Mode::Refuse).await;
    eventually(DEADLINE, "o2 leaves", async || {
        let got = urls(&api, &on_forward("rtmp://o1.test/live", "")).await;
        check(got == ["rtmp://o4.test:1935/live/cam1", "rtmp://o3.test:1935/live/cam1"], || format!("{got:?}"))
    })
    .await;
    idx.shutdown().await;

    // Configured replica regions win over distance.
    let db = tempfile::tempdir().unwrap();
    fakes[1].set(Mode::Normal).await;
    let idx = start(&db, specs, ReplicationConfig { replicas: 1, regions: vec!["eu".into()] }).await;
    let got = urls(&Api::new(&idx), &on_forward("rtmp://o1.test/live", "")).await;
    assert_eq!(got, ["rtmp://o3.test:1935/live/cam1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_primary_dies_its_replica_becomes_the_origin() {
    let (fakes, specs) = origins().await;
    let db = tempfile::tempdir().unwrap();
    let idx = start(&db, specs, ReplicationConfig::default()).await;
    let api = Api::new(&idx);
    let mut events = idx.state.events.subscribe();

    // o2 says it has the publisher (its on_forward): it is the stream's origin, although o1 comes
    // first in the config and holds the stream too (as a replica).
    assert_eq!(urls(&api, &on_forward("rtmp://o2.test/live", "")).await.len(), 1);
    eventually(DEADLINE, "o2 is cam1's origin", async || {
        let v = api.get_ok("/api/v1/streams/live/cam1").await?;
        let s = &v["stream"];
        check(s["origin"] == "o2" && s["origins"].as_array().map_or(0, Vec::len) == 4, || v.to_string())
    })
    .await;
    let publish = api.get_ok("/api/v1/publish/live/cam1").await.unwrap();
    assert_eq!(publish["node"], "o2", "the publisher stays on its origin: {publish}");

    // o2 dies: o1 (next in the config) is the origin, publishers go there, listeners are told.
    fakes[1].set(Mode::Refuse).await;
    eventually(DEADLINE, "o1 takes over", async || {
        let v = api.get_ok("/api/v1/streams/live/cam1").await?;
        check(v["stream"]["origin"] == "o1", || v.to_string())
    })
    .await;
    let publish = api.get_ok("/api/v1/publish/live/cam1").await.unwrap();
    assert_eq!(publish["node"], "o1", "{publish}");
    let failover = tokio::time::timeout(DEADLINE, async {
        loop {
            let e = events.recv().await.expect("the bus is open");
            if e.kind == EventKind::OriginFailover {
                return e.data();
            }
        }
    })
    .await
    .expect("an origin_failover event");
    assert_eq!((&failover["previous_origin"], &failover["origin"]), (&json!("o2"), &json!("o1")), "{failover}");
}

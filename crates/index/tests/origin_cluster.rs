//! The index as the memory of an origin cluster: publishers spread over origins by load (sticky
//! per stream, by region), and `/api/v1/clusters` tells any origin (SRS's `coworkers`) or edge
//! which origin holds a stream, in SRS's exact shape. Nodes are fake SRS nodes with the captures
//! of a real cluster.

mod common;

use std::collections::HashMap;

use common::{Api, DEADLINE, Docs, FakeNode, check, config, eventually};
use ferrocast_index::{NodeSpec, Role, RunningIndex};
use serde_json::{Value, json};

fn origin(node: &FakeNode, name: &str, host: &str, region: &str) -> NodeSpec {
    NodeSpec {
        rtmp: Some(format!("rtmp://{host}:19350")),
        api: node.api(),
        region: Some(region.into()),
        ..node.spec(name, Role::Origin)
    }
}

async fn all_up(api: &Api, n: usize) {
    eventually(DEADLINE, "every node up", async || {
        let v = api.get_ok("/api/v1/nodes").await?;
        let up = v["nodes"].as_array().into_iter().flatten().filter(|n| n["health"] == "up").count();
        check(up == n, || v.to_string())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_spread_over_the_origins_of_their_region_and_keep_theirs() {
    let db = tempfile::tempdir().unwrap();
    let fakes = [
        FakeNode::start(Docs::generated("none", 0)).await,
        FakeNode::start(Docs::generated("none", 0)).await,
        FakeNode::start(Docs::generated("none", 0)).await,
        FakeNode::start(Docs::generated("none", 0)).await,
    ];
    let nodes = vec![
        origin(&fakes[0], "o1", "10.0.0.1", "eu"),
        origin(&fakes[1], "o2", "10.0.0.2", "eu"),
        origin(&fakes[2], "o3", "10.0.0.3", "eu"),
        origin(&fakes[3], "us1", "10.0.1.1", "us"),
    ];
    let mut cfg = config(&db.path().join("index.db"), nodes);
    cfg.regions.default = "eu".into();
    let index = RunningIndex::start(cfg, None).await.unwrap();
    let api = Api::new(&index);
    all_up(&api, 4).await;
    // The fake origins never list what is published to them: the spread comes from the index
    // counting its placements until their streams show, however many polls come in between.
    let mut per_origin: HashMap<String, usize> = HashMap::new();
    let mut first_answer = HashMap::new();
    for i in 0..12 {
        let v = api.get_ok(&format!("/api/v1/publish/live/s{i}")).await.unwrap();
        *per_origin.entry(v["node"].as_str().unwrap().to_string()).or_default() += 1;
        assert!(v["url"].as_str().unwrap().ends_with(&format!(":19350/live/s{i}")), "{v}");
        first_answer.insert(format!("s{i}"), v["node"].clone());
        // Slower than the polls (300 ms apart here), as publishers arrive.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!((per_origin["o1"], per_origin["o2"], per_origin["o3"]), (4, 4, 4), "{per_origin:?}");
    assert!(!per_origin.contains_key("us1"), "eu publishers stay in eu: {per_origin:?}");
    // A publisher that asks again (a reconnect) keeps its origin.
    for (name, node) in &first_answer {
        let v = api.get_ok(&format!("/api/v1/publish/live/{name}")).await.unwrap();
        assert_eq!(&v["node"], node, "{name} moved");
    }
    let us = api.get_ok("/api/v1/publish/live/from-us?region=us").await.unwrap();
    assert_eq!(us["node"], "us1");
    assert_eq!(us["backups"][0]["region"], "eu", "the backups are the other region's origins");
    index.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_answers_as_srs_does() {
    let db = tempfile::tempdir().unwrap();
    let o1 = FakeNode::start(Docs::generated("none", 0)).await;
    let o2 = FakeNode::start(Docs::captured("origin")).await;
    let nodes = vec![origin(&o1, "o1", "10.0.0.1", "eu"), origin(&o2, "o2", "10.0.0.2", "eu")];
    let index = RunningIndex::start(config(&db.path().join("index.db"), nodes), None).await.unwrap();
    let api = Api::new(&index);
    all_up(&api, 2).await;
    eventually(DEADLINE, "cam1 listed", async || {
        let keys = api.stream_keys().await?;
        check(keys.iter().any(|k| k == "__defaultVhost__/live/cam1"), || format!("{keys:?}"))
    })
    .await;
    let coworker = index.addr.to_string();
    let q = format!("/api/v1/clusters?vhost=__defaultVhost__&ip=10.9.9.9&app=live&stream=cam1&coworker={coworker}");
    let v = api.get_ok(&q).await.unwrap();
    let api_addr = o2.addr.to_string();
    assert_eq!(
        v,
        json!({"code": 0, "data": {
            "query": {"ip": "10.9.9.9", "vhost": "__defaultVhost__", "app": "live", "stream": "cam1"},
            "origin": {"ip": "10.0.0.2", "port": 19350, "vhost": "__defaultVhost__", "api": api_addr,
                       "routers": [api_addr], "http": "http://o2.test:8080"}
        }})
    );
    // SRS's origins POST with an empty body; a vhost the stream is not in falls back to the
    // default vhost, as SRS's lookup does.
    let (status, posted) =
        api.post("/api/v1/clusters?vhost=other&app=live&stream=cam1&coworker=x", Vec::<u8>::new()).await.unwrap();
    assert_eq!((status, &posted["data"]["origin"]["ip"]), (200, &json!("10.0.0.2")));
    let missing = api.get_ok("/api/v1/clusters?app=live&stream=nobody").await.unwrap();
    assert_eq!(missing["data"]["origin"], Value::Null);
    assert_eq!(missing["data"]["query"]["vhost"], "__defaultVhost__");
    index.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_gets_an_origin_with_an_rtmp_address_even_behind_better_ones_without() {
    let db = tempfile::tempdir().unwrap();
    let mut fakes = Vec::new();
    for _ in 0..6 {
        fakes.push(FakeNode::start(Docs::generated("none", 0)).await);
    }
    // The first five in config order (all idle, so ranked first) have no RTMP address.
    let mut nodes: Vec<NodeSpec> =
        (0..5).map(|i| NodeSpec { rtmp: None, ..origin(&fakes[i], &format!("o{i}"), "10.0.0.1", "eu") }).collect();
    nodes.push(origin(&fakes[5], "o5", "10.0.0.5", "eu"));
    let mut cfg = config(&db.path().join("index.db"), nodes);
    cfg.regions.default = "eu".into();
    let index = RunningIndex::start(cfg, None).await.unwrap();
    let api = Api::new(&index);
    all_up(&api, 6).await;
    let v = api.get_ok("/api/v1/publish/live/cam9").await.unwrap();
    assert_eq!((v["node"].as_str(), v["url"].as_str()), (Some("o5"), Some("rtmp://10.0.0.5:19350/live/cam9")), "{v}");
    assert_eq!(v["backups"], json!([]), "no other origin can take RTMP: {v}");
    index.shutdown().await;
}

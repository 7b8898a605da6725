//! The index against fake SRS 7.0.18 nodes that answer with the captures of a real cluster (one
//! origin, two edges) and misbehave on demand: what operators rely on when nodes are real SRS.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Api, DEADLINE, Docs, FakeNode, Garbage, Mode, check, config, edges_of, eventually, sample};
use ferrocast_index::{IndexConfig, Role, RunningIndex};
use serde_json::Value;

const CAM1: &str = "__defaultVhost__/live/cam1";

/// The captured cluster: origin, edge1, edge2.
async fn captured() -> (FakeNode, FakeNode, FakeNode) {
    (
        FakeNode::start(Docs::captured("origin")).await,
        FakeNode::start(Docs::captured("edge1")).await,
        FakeNode::start(Docs::captured("edge2")).await,
    )
}

fn cluster_config(db: &tempfile::TempDir, origin: &FakeNode, edge1: &FakeNode, edge2: &FakeNode) -> IndexConfig {
    config(
        &db.path().join("index.db"),
        vec![origin.spec("origin", Role::Origin), edge1.spec("edge1", Role::Edge), edge2.spec("edge2", Role::Edge)],
    )
}

/// Waits until cam1 is listed with its origin and both edges; returns the stream list answer.
async fn until_cam1_on_both_edges(api: &Api) -> Value {
    eventually(DEADLINE, "cam1 on the origin and both edges", async || {
        let v = api.get_ok("/api/v1/streams").await?;
        let s = &v["streams"][0];
        check(s["origin"] == "origin" && edges_of(s).len() == 2, || v.to_string())?;
        Ok(v)
    })
    .await
}

/// Every node named in a play answer: the choice and the alternatives.
fn named(play: &Value) -> Vec<String> {
    let mut names = vec![play["node"].as_str().unwrap_or("").to_string()];
    for a in play["alternatives"].as_array().into_iter().flatten() {
        names.push(a["node"].as_str().unwrap_or("").to_string());
    }
    names
}

/// The fake keeps SRS's quirks the index must cope with: captured bytes as they are, the 302 of
/// slash-less list URLs, count raised to 10, no `total`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_answers_like_srs_7_0_18() {
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let big = FakeNode::start(Docs::generated("s", 25)).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = http.get(format!("{}/api/v1/streams?start=0&count=5", origin.api())).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/api/v1/streams/?start=0&count=5");
    let body = http.get(format!("{}/api/v1/streams/?start=0&count=5", origin.api())).send().await.unwrap();
    assert_eq!(body.bytes().await.unwrap(), sample("origin-streams.json"), "served byte for byte");
    let page: Value =
        http.get(format!("{}/api/v1/streams/?start=20&count=1", big.api())).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["streams"].as_array().map(Vec::len), Some(5), "count 1 is raised to 10: {page}");
    assert!(page.get("total").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_cluster_is_one_stream_on_an_origin_and_two_edges() {
    let (origin, edge1, edge2) = captured().await;
    let db = tempfile::tempdir().unwrap();
    let idx = RunningIndex::start(cluster_config(&db, &origin, &edge1, &edge2), None).await.unwrap();
    let api = Api::new(&idx);

    let list = until_cam1_on_both_edges(&api).await;
    assert_eq!(list["total"], 1, "{list}");
    let s = &list["streams"][0];
    assert_eq!(s["key"], CAM1);
    assert_eq!(
        (s["vhost"].as_str(), s["app"].as_str(), s["stream"].as_str()),
        (Some("__defaultVhost__"), Some("live"), Some("cam1"))
    );
    assert_eq!(s["origin"], "origin");
    assert_eq!(edges_of(s), vec![("edge1".to_string(), 1), ("edge2".to_string(), 2)], "edge1's cam1.flv is cam1");
    assert_eq!(s["viewers"], 3, "publisher and edge pulls are not viewers: {s}");
    assert_eq!(s["origin_viewers"], 0);
    assert_eq!(
        (s["video"]["codec"].as_str(), s["video"]["width"].as_u64(), s["video"]["height"].as_u64()),
        (Some("H264"), Some(640), Some(352))
    );
    assert_eq!(s["audio"]["codec"], "AAC");

    let legacy = api.get_ok("/api/streams").await.unwrap();
    assert_eq!(legacy["streams"], list["streams"], "/api/streams is the same list");

    for path in ["/api/v1/streams/live/cam1", "/api/v1/streams/live/cam1.flv"] {
        let one = api.get_ok(path).await.unwrap();
        assert_eq!((one["code"].as_i64(), one["stream"]["key"].as_str()), (Some(0), Some(CAM1)), "{path}: {one}");
    }

    let nodes = api.get_ok("/api/v1/nodes").await.unwrap();
    let names: Vec<&str> = nodes["nodes"].as_array().unwrap().iter().filter_map(|n| n["name"].as_str()).collect();
    assert_eq!(names, ["edge1", "edge2", "origin"]);
    let o = api.node("origin").await.unwrap();
    assert_eq!((o["role"].as_str(), o["health"].as_str()), (Some("origin"), Some("up")), "{o}");
    assert_eq!(
        (o["server"].as_str(), o["service"].as_str(), o["version"].as_str()),
        (Some("vid-5i8r3y9"), Some("584128l7"), Some("7.0.18"))
    );
    let e2 = api.node("edge2").await.unwrap();
    assert_eq!(
        (e2["role"].as_str(), e2["viewers"].as_u64(), e2["streams"].as_u64()),
        (Some("edge"), Some(2), Some(1)),
        "{e2}"
    );

    // SRS nodes do not say they serve LL-HLS or WebRTC (a Ferrocast node's summaries list its
    // protocols): no such viewer is sent to them, while HTTP-FLV viewers are.
    for proto in ["llhls", "whep"] {
        let (status, answer) = api.get(&format!("/api/v1/play/live/cam1?proto={proto}")).await.unwrap();
        assert_eq!(status, 503, "{proto}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| e.contains(&format!("over {proto}"))), "{answer}");
    }
    let (status, flv) = api.get("/api/v1/play/live/cam1?proto=flv").await.unwrap();
    assert!(status == 200 && flv["node"].as_str().is_some_and(|n| n.starts_with("edge")), "{flv}");

    let (status, missing) = api.get("/api/v1/streams/live/nope").await.unwrap();
    assert_eq!(status, 404, "{missing}");
    assert!(missing["error"].as_str().is_some_and(|e| e.contains("live/nope")), "{missing}");
    let (status, missing) = api.get("/api/v1/nodes/nope").await.unwrap();
    assert_eq!(status, 404, "{missing}");
    assert!(missing["error"].as_str().is_some_and(|e| e.contains("nope")), "{missing}");
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_of_a_big_node_is_read() {
    let big = FakeNode::start(Docs::generated("s", 2500)).await;
    let db = tempfile::tempdir().unwrap();
    let idx =
        RunningIndex::start(config(&db.path().join("a.db"), vec![big.spec("big", Role::Origin)]), None).await.unwrap();
    let api = Api::new(&idx);
    eventually(DEADLINE, "2,500 streams in the directory", async || {
        let v = api.get_ok("/api/v1/streams?count=1").await?;
        check(v["total"] == 2500, || format!("total {}", v["total"]))
    })
    .await;
    for name in ["s0000", "s1234", "s2499"] {
        let one = api.get_ok(&format!("/api/v1/streams/live/{name}")).await.unwrap();
        assert_eq!(one["stream"]["video"]["codec"], "H264", "{one}");
    }
    let pages = big.pages();
    for start in [0, 1000, 2000] {
        assert!(pages.contains(&(start, 1000)), "page at {start} of 1000 not asked: {pages:?}");
    }
    idx.shutdown().await;

    // SRS raises any count below 10 to 10; with page_size 10 the index reads 10 at a time, also
    // when the last page is full (exactly 100 streams) or short (105).
    let a = FakeNode::start(Docs::generated("a", 105)).await;
    let b = FakeNode::start(Docs::generated("b", 100)).await;
    let mut cfg = config(&db.path().join("b.db"), vec![a.spec("a", Role::Origin), b.spec("b", Role::Origin)]);
    cfg.poll.page_size = 10;
    let idx = RunningIndex::start(cfg, None).await.unwrap();
    let api = Api::new(&idx);
    eventually(DEADLINE, "205 streams in the directory", async || {
        let v = api.get_ok("/api/v1/streams?count=1").await?;
        check(v["total"] == 205, || format!("total {}", v["total"]))
    })
    .await;
    let keys = api.stream_keys().await.unwrap();
    assert!(
        keys.contains(&"__defaultVhost__/live/a0104".to_string())
            && keys.contains(&"__defaultVhost__/live/b0099".to_string())
    );
    let pages = a.pages();
    for start in (0..=100).step_by(10) {
        assert!(pages.contains(&(start, 10)), "page at {start} of 10 not asked: {pages:?}");
    }
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_one_node_fails_that_node_only() {
    let (origin, edge1, edge2) = captured().await;
    let db = tempfile::tempdir().unwrap();
    let mut cfg = cluster_config(&db, &origin, &edge1, &edge2);
    cfg.poll.timeout_ms = 5000;
    let idx = RunningIndex::start(cfg, None).await.unwrap();
    let api = Api::new(&idx);
    until_cam1_on_both_edges(&api).await;

    // Consecutive kinds leave different errors, so each one is seen afresh.
    let kinds: [(Garbage, &[&str]); 5] = [
        (Garbage::Huge, &["larger than"]),
        (Garbage::Truncated, &["not the JSON", "lots"]),
        (Garbage::HugeChunked, &["larger than"]),
        (Garbage::NotJson, &["not the JSON", "expected value"]),
        (Garbage::Code1234, &["code 1234"]),
    ];
    for (kind, words) in kinds {
        edge2.set(Mode::Garbage(kind)).await;
        eventually(DEADLINE, &format!("edge2 failing with {kind:?}"), async || {
            let n = api.node("edge2").await?;
            let err = n["last_error"].as_str().unwrap_or("");
            check(n["fails"].as_u64() > Some(0) && words.iter().all(|w| err.contains(w)), || n.to_string())
        })
        .await;
        // The others and their streams are untouched, and the index still serves.
        for name in ["origin", "edge1"] {
            let n = api.node(name).await.unwrap();
            assert_eq!((n["health"].as_str(), n["fails"].as_u64()), (Some("up"), Some(0)), "{kind:?}: {n}");
        }
        let s = api.get_ok("/api/v1/streams/live/cam1").await.unwrap();
        assert_eq!(s["stream"]["origin"], "origin", "{kind:?}: {s}");
        assert!(edges_of(&s["stream"]).contains(&("edge1".to_string(), 1)), "{kind:?}: {s}");
        assert_eq!(api.get_text("/healthz").await.unwrap().0, 200);
    }

    edge2.set(Mode::Normal).await;
    eventually(DEADLINE, "edge2 back after the garbage", async || {
        let n = api.node("edge2").await?;
        check(n["health"] == "up" && n["fails"] == 0 && n["last_error"].is_null(), || n.to_string())
    })
    .await;
    until_cam1_on_both_edges(&api).await;
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_that_refuses_connections_leaves_scheduling() {
    let (origin, edge1, edge2) = captured().await;
    let db = tempfile::tempdir().unwrap();
    let cfg = cluster_config(&db, &origin, &edge1, &edge2);
    let (interval, timeout) = (cfg.poll.interval_ms, cfg.poll.timeout_ms);
    let idx = RunningIndex::start(cfg, None).await.unwrap();
    let api = Api::new(&idx);
    until_cam1_on_both_edges(&api).await;
    let play = api.get_ok("/api/v1/play/live/cam1?proto=flv").await.unwrap();
    assert!(named(&play).contains(&"edge2".to_string()), "{play}");
    assert!(play.get("viewer").is_none() && play.get("stream").is_none(), "players get only what they use: {play}");
    // `explain` says how the answer was reached, and is the index's own parameter: not passed on.
    let why = api.get_ok("/api/v1/play/live/cam1?proto=flv&explain=1&k=v").await.unwrap();
    assert_eq!(why["stream"], serde_json::json!({ "key": CAM1, "live": true }), "{why}");
    assert_eq!(
        (why["viewer"]["ip"].as_str(), why["viewer"]["region_source"].as_str()),
        (Some("127.0.0.1"), Some("default"))
    );
    assert!(why["url"].as_str().is_some_and(|u| u.ends_with("/live/cam1.flv?k=v")), "{why}");

    let refused = Instant::now();
    edge2.set(Mode::Refuse).await;
    eventually(DEADLINE, "play answers without edge2", async || {
        let play = api.get_ok("/api/v1/play/live/cam1?proto=flv").await?;
        check(!named(&play).contains(&"edge2".to_string()), || play.to_string())
    })
    .await;
    let unscheduled = refused.elapsed();
    let n = eventually(DEADLINE, "edge2 down", async || {
        let n = api.node("edge2").await?;
        check(n["health"] == "down", || n.to_string()).map(|()| n)
    })
    .await;
    let down = refused.elapsed();
    println!(
        "refusing edge: out of play answers after {} ms, down after {} ms (2 intervals + timeout = {} ms)",
        unscheduled.as_millis(),
        down.as_millis(),
        2 * interval + timeout
    );
    assert!(n["last_error"].as_str().is_some_and(|e| e.to_lowercase().contains("refused")), "{n}");
    let play = api.get_ok("/api/v1/play/live/cam1?proto=flv").await.unwrap();
    assert_eq!(play["node"], "edge1", "{play}");
    let s = api.get_ok("/api/v1/streams/live/cam1").await.unwrap();
    assert_eq!(edges_of(&s["stream"]), vec![("edge1".to_string(), 1)], "a down node's streams leave the directory");
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_waits_on_a_hanging_node() {
    let (origin, edge1, edge2) = captured().await;
    let db = tempfile::tempdir().unwrap();
    let mut cfg = cluster_config(&db, &origin, &edge1, &edge2);
    cfg.poll.timeout_ms = 30_000;
    let idx = RunningIndex::start(cfg, None).await.unwrap();
    let api = Api::with_timeout(&idx, Duration::from_secs(2));
    until_cam1_on_both_edges(&api).await;

    edge2.set(Mode::Hang).await;
    eventually(DEADLINE, "a poll of edge2 hanging", async || check(edge2.hung() > 0, || "no hung request yet".into()))
        .await;
    for _ in 0..5 {
        for path in
            ["/api/v1/play/live/cam1?proto=flv", "/api/v1/streams", "/api/v1/nodes", "/api/v1/nodes/edge2", "/metrics"]
        {
            let (status, _) = api.get_text(path).await.unwrap_or_else(|e| panic!("{path} while a poll hangs: {e}"));
            assert_eq!(status, 200, "{path}");
        }
    }
    let n = api.node("edge2").await.unwrap();
    assert_eq!((n["fails"].as_u64(), n["health"].as_str()), (Some(0), Some("up")), "the poll is still pending: {n}");

    // Shutting down does not wait for the hanging poll either.
    let state = idx.state.clone();
    idx.shutdown().await;
    assert!(state.tasks.is_empty(), "{} index task(s) still running after shutdown", state.tasks.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_is_read_afresh() {
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let db = tempfile::tempdir().unwrap();
    let idx = RunningIndex::start(config(&db.path().join("index.db"), vec![origin.spec("origin", Role::Origin)]), None)
        .await
        .unwrap();
    let api = Api::new(&idx);
    eventually(DEADLINE, "cam1 listed", async || {
        let keys = api.stream_keys().await?;
        check(keys == [CAM1], || format!("{keys:?}"))
    })
    .await;

    origin.set(Mode::Restarted { service: "r3st4rt9".into(), streams: vec!["cam2".into(), "cam3".into()] }).await;
    eventually(DEADLINE, "the new stream list", async || {
        let keys = api.stream_keys().await?;
        check(keys == ["__defaultVhost__/live/cam2", "__defaultVhost__/live/cam3"], || format!("{keys:?}"))
    })
    .await;
    assert_eq!(api.node("origin").await.unwrap()["service"], "r3st4rt9");
    assert_eq!(api.get("/api/v1/streams/live/cam1").await.unwrap().0, 404);
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_a_restart_of_the_index() {
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let db = tempfile::tempdir().unwrap();
    let cfg = config(&db.path().join("index.db"), vec![origin.spec("origin", Role::Origin)]);
    let cam1_sessions = async |api: &Api| -> Result<Vec<Value>, String> {
        let h = api.get_ok("/api/v1/history").await?;
        Ok(h["sessions"].as_array().into_iter().flatten().filter(|s| s["stream"] == CAM1).cloned().collect())
    };

    let idx = RunningIndex::start(cfg.clone(), None).await.unwrap();
    let api = Api::new(&idx);
    let first = eventually(DEADLINE, "cam1's session recorded", async || {
        let s = cam1_sessions(&api).await?;
        check(s.len() == 1, || format!("{s:?}")).map(|()| s[0].clone())
    })
    .await;
    assert!(first["unpublished_ms"].is_null(), "{first}");
    assert_eq!(first["node"], "origin");
    idx.shutdown().await;

    let idx = RunningIndex::start(cfg, None).await.unwrap();
    let api = Api::new(&idx);
    let live =
        eventually(DEADLINE, "cam1 live after the restart", async || api.get_ok("/api/v1/streams/live/cam1").await)
            .await;
    assert_eq!(live["stream"]["live_since_ms"], first["published_ms"], "the session goes on: {live}");
    let h = api.get_ok("/api/v1/history").await.unwrap();
    let sessions = cam1_sessions(&api).await.unwrap();
    assert_eq!(sessions.len(), 1, "still one session: {h}");
    assert!(sessions[0]["unpublished_ms"].is_null(), "{h}");
    let events = h["node_events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["node"] == "origin" && e["to"] == "up"), "{h}");

    origin.set(Mode::Restarted { service: "gone0000".into(), streams: vec![] }).await;
    let ended = eventually(DEADLINE, "cam1's session ended", async || {
        let s = cam1_sessions(&api).await?;
        check(s.len() == 1 && s[0]["unpublished_ms"].is_i64(), || format!("{s:?}")).map(|()| s[0].clone())
    })
    .await;
    assert!(ended["unpublished_ms"].as_i64() >= ended["published_ms"].as_i64(), "{ended}");
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srs_heartbeat_registers_a_polled_edge() {
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let edge = FakeNode::start(Docs::captured("edge1")).await;
    let db = tempfile::tempdir().unwrap();
    let idx = RunningIndex::start(config(&db.path().join("index.db"), vec![origin.spec("origin", Role::Origin)]), None)
        .await
        .unwrap();
    let api = Api::new(&idx);

    let captured = String::from_utf8(sample("heartbeat-register.json").to_vec()).unwrap();
    let port = edge.addr.port();
    assert_eq!(captured.matches("\"192.0.2.2\"").count(), 1);
    assert_eq!(captured.matches("\"51631\"").count(), 1);
    let body = captured.replace("\"192.0.2.2\"", "\"127.0.0.1\"").replace("\"51631\"", &format!("\"{port}\""));
    let (status, answer) = api.post("/api/v1/srs/register?role=edge&region=eu", body.clone()).await.unwrap();
    assert_eq!((status, answer["node"].as_str()), (200, Some("added")), "{answer}");

    let n = eventually(DEADLINE, "the registered edge polled", async || {
        let n = api.node("edge-eu-1").await?;
        check(n["health"] == "up", || n.to_string()).map(|()| n)
    })
    .await;
    assert_eq!(
        (n["registered"].as_bool(), n["role"].as_str(), n["region"].as_str()),
        (Some(true), Some("edge"), Some("eu")),
        "{n}"
    );
    assert_eq!(n["api"], format!("http://127.0.0.1:{port}"));
    assert_eq!(n["http"], "http://127.0.0.1:45373");
    eventually(DEADLINE, "cam1 on the registered edge", async || {
        let s = api.get_ok("/api/v1/streams/live/cam1").await?;
        check(edges_of(&s["stream"]) == [("edge-eu-1".to_string(), 1)], || s.to_string())
    })
    .await;
    let (status, again) = api.post("/api/v1/srs/register?role=edge&region=eu", body).await.unwrap();
    assert_eq!((status, again["node"].as_str()), (200, Some("refreshed")), "{again}");

    let mut no_ports: Value = serde_json::from_str(&captured).unwrap();
    for key in ["rtmp", "http", "api"] {
        no_ports.as_object_mut().unwrap().remove(key);
    }
    let (status, refused) = api.post("/api/v1/srs/register", no_ports.to_string()).await.unwrap();
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("ports on")), "{refused}");
    let (status, refused) = api.post("/api/v1/srs/register", "{\"device_id\":").await.unwrap();
    assert_eq!(status, 400, "{refused}");
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_readiness() {
    let (origin, edge1, edge2) = captured().await;
    origin.set(Mode::Garbage(Garbage::Code1234)).await;
    let db = tempfile::tempdir().unwrap();
    let idx = RunningIndex::start(cluster_config(&db, &origin, &edge1, &edge2), None).await.unwrap();
    let api = Api::new(&idx);

    assert_eq!(api.get_text("/healthz").await.unwrap().0, 200);
    let (status, ready) = api.get("/readyz").await.unwrap();
    assert_eq!((status, ready["ready"].as_bool()), (503, Some(false)), "{ready}");
    eventually(DEADLINE, "the origin's poll failed", async || {
        let n = api.node("origin").await?;
        check(n["fails"].as_u64() > Some(0), || n.to_string())
    })
    .await;
    let (status, ready) = api.get("/readyz").await.unwrap();
    assert_eq!(status, 503, "no origin is fresh: {ready}");

    origin.set(Mode::Normal).await;
    eventually(DEADLINE, "ready once the origin answers", async || {
        let (status, ready) = api.get("/readyz").await?;
        check(status == 200 && ready["ready"] == true, || format!("{status} {ready}"))
    })
    .await;
    until_cam1_on_both_edges(&api).await;

    let (status, text) = api.get_text("/metrics").await.unwrap();
    assert_eq!(status, 200);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample line: {line}"));
        assert!(value.parse::<f64>().is_ok(), "not a number in {line:?}");
    }
    assert!(text.lines().any(|l| l == "ferrocast_index_streams 1"), "{text}");
    for node in ["origin", "edge1", "edge2"] {
        let prefix = format!("ferrocast_index_node_up{{node=\"{node}\",");
        assert!(text.lines().any(|l| l.starts_with(&prefix) && l.ends_with(" 1")), "{node} not up in:\n{text}");
    }
    assert!(text.contains("# TYPE ferrocast_index_poll_duration_seconds histogram"), "{text}");
    let polls = text
        .lines()
        .find_map(|l| l.strip_prefix("ferrocast_index_poll_duration_seconds_bucket{le=\"+Inf\"} "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(polls >= 3, "{text}");
    assert!(text.contains("ferrocast_index_poll_duration_seconds_sum "), "{text}");
    assert!(text.lines().any(|l| l == format!("ferrocast_index_poll_duration_seconds_count {polls}")), "{text}");
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_a_node_and_refuses_a_bad_config() {
    let (origin, edge1, edge2) = captured().await;
    let db = tempfile::tempdir().unwrap();
    let db_path = db.path().join("index.db");
    let initial = config(&db_path, vec![origin.spec("origin", Role::Origin), edge1.spec("edge1", Role::Edge)]);
    let next = Arc::new(Mutex::new(initial.clone()));
    let source = next.clone();
    let loader: ferrocast_index::ConfigLoader = Box::new(move || Ok(source.lock().unwrap().clone()));
    let idx = RunningIndex::start(initial.clone(), Some(loader)).await.unwrap();
    let api = Api::new(&idx);
    eventually(DEADLINE, "cam1 on edge1", async || {
        let s = api.get_ok("/api/v1/streams/live/cam1").await?;
        check(edges_of(&s["stream"]) == [("edge1".to_string(), 1)], || s.to_string())
    })
    .await;

    next.lock().unwrap().nodes.push(edge2.spec("edge2", Role::Edge));
    let (status, answer) = api.post("/api/v1/reload", "").await.unwrap();
    assert_eq!((status, answer["code"].as_i64()), (200, Some(0)), "{answer}");
    assert!(answer["message"].as_str().is_some_and(|m| m.contains("1 node(s) added")), "{answer}");
    until_cam1_on_both_edges(&api).await;
    assert_eq!(api.node("edge2").await.unwrap()["health"], "up");

    // Invalid: a page size SRS cannot honour, and edge1 removed. Nothing of it may apply.
    {
        let mut bad = next.lock().unwrap();
        bad.nodes.retain(|n| n.name != "edge1");
        bad.poll.page_size = 5;
    }
    let (status, refused) = api.post("/api/v1/reload", "").await.unwrap();
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("page_size")), "{refused}");
    assert_eq!(idx.state.config.load().poll.page_size, initial.poll.page_size);
    assert_eq!(idx.state.config.load().nodes.len(), 3, "the config of the last good reload stays");
    let before = api.node("edge1").await.unwrap()["last_ok_ms"].as_u64();
    eventually(DEADLINE, "edge1 still polled", async || {
        let n = api.node("edge1").await?;
        check(n["health"] == "up" && n["last_ok_ms"].as_u64() > before, || n.to_string())
    })
    .await;
    idx.shutdown().await;
}

/// The index's polls run below its requests in priority (`ferrocast_index::background`): on a
/// starved index a poll's timeout fires late, and that says nothing of the node. Here the
/// background runtime is stalled outright while a poll hangs: the late timeout is not held against
/// the node, which never goes down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_that_timed_out_while_the_index_was_starved_is_not_held_against_the_node() {
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let db = tempfile::tempdir().unwrap();
    let mut cfg = config(&db.path().join("index.db"), vec![origin.spec("origin", Role::Origin)]);
    cfg.poll.timeout_ms = 1000;
    cfg.poll.down_after = 1;
    let idx = RunningIndex::start(cfg, None).await.unwrap();
    let api = Api::new(&idx);
    eventually(DEADLINE, "the origin up", async || {
        let n = api.node("origin").await?;
        check(n["health"] == "up", || n.to_string())
    })
    .await;

    // A poll in flight that will get no answer...
    origin.set(Mode::Hang).await;
    eventually(DEADLINE, "a poll hanging", async || check(origin.hung() > 0, || "no hung request yet".into())).await;
    // ...and every thread of the background runtime busy for longer than its timeout and more.
    let rt = idx.state.background.get().expect("the background runtime").clone();
    let workers = rt.metrics().num_workers();
    let all_busy = Arc::new(std::sync::Barrier::new(workers));
    let stalls: Vec<_> = (0..workers)
        .map(|_| {
            let all_busy = all_busy.clone();
            rt.spawn(async move {
                all_busy.wait();
                std::thread::sleep(Duration::from_millis(2500));
            })
        })
        .collect();
    origin.set(Mode::Normal).await;
    for s in stalls {
        s.await.unwrap();
    }
    eventually(DEADLINE, "the late timeout counted as the index's lag", async || {
        let (_, m) = api.get_text("/metrics").await?;
        check(m.lines().any(|l| l.starts_with("ferrocast_index_poll_inconclusive_total ") && !l.ends_with(" 0")), || m)
    })
    .await;
    // The next polls answer; the node was never failed or marked down.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let n = api.node("origin").await.unwrap();
    assert_eq!((n["fails"].as_u64(), n["health"].as_str()), (Some(0), Some("up")), "{n}");
    let (_, m) = api.get_text("/metrics").await.unwrap();
    let errors = m.lines().find(|l| l.starts_with("ferrocast_index_node_poll_errors_total{node=\"origin\"")).unwrap();
    assert!(errors.ends_with(" 0"), "{errors}");
    idx.shutdown().await;
}

//! Index replicas sharing state through a real Redis (shared mode), in process: one leader polls
//! and the followers schedule from its records; events, assignments and token revocations cross
//! replicas; a stale leader's writes are refused. `ferrocast_index::testing::RedisServer` runs a real
//! `redis-server` per test (scripts/test installs it). Killing a leader process and stopping Redis
//! under running processes are in `crates/ferrocast/tests/index_replicas.rs`.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Api, DEADLINE, Docs, FakeNode, check, config, eventually, samples_dir};
use ferrocast_index::auth::{Action, AuthConfig, KeyConfig};
use ferrocast_index::config::SharedConfig;
use ferrocast_index::index_replicas::{Keys, lease, node_records};
use ferrocast_index::testing::RedisServer;
use ferrocast_index::{IndexConfig, NodeSpec, Role, RunningIndex};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const LEASE_MS: u64 = 1000;

fn shared(db: &tempfile::TempDir, n: usize, nodes: Vec<NodeSpec>, redis: &RedisServer) -> IndexConfig {
    IndexConfig {
        redis: Some(redis.url()),
        shared: SharedConfig { lease_ms: LEASE_MS, key_prefix: "test".into() },
        ..config(&db.path().join(format!("replica{n}.db")), nodes)
    }
}

async fn replicas(
    count: usize,
    nodes: &[NodeSpec],
    redis: &RedisServer,
    auth: AuthConfig,
) -> (tempfile::TempDir, Vec<RunningIndex>) {
    let db = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    for n in 0..count {
        let cfg = IndexConfig { auth: auth.clone(), ..shared(&db, n, nodes.to_vec(), redis) };
        out.push(RunningIndex::start(cfg, None).await.expect("a replica starts"));
    }
    (db, out)
}

/// `/metrics` as name → value (lines without labels).
async fn metrics(api: &Api) -> Result<HashMap<String, f64>, String> {
    let (status, text) = api.get_text("/metrics").await?;
    check(status == 200, || format!("/metrics: HTTP {status}"))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect())
}

/// Which replicas are leader, once exactly one is and every replica lists `want` streams.
async fn settled(apis: &[Api], want: usize) -> usize {
    eventually(DEADLINE, "one leader, every replica listing the streams", async || {
        let mut leaders = Vec::new();
        for (i, api) in apis.iter().enumerate() {
            let m = metrics(api).await?;
            if m.get("ferrocast_index_leader") == Some(&1.0) {
                leaders.push(i);
            }
            let keys = api.stream_keys().await?;
            check(keys.len() == want, || format!("replica {i} lists {keys:?}"))?;
        }
        check(leaders.len() == 1, || format!("leaders: {leaders:?}"))?;
        Ok(leaders[0])
    })
    .await
}

/// A WebSocket listener of `/api/v1/events`.
struct Ws(tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>);

impl Ws {
    async fn connect(idx: &RunningIndex) -> Ws {
        let url = format!("ws://{}/api/v1/events", idx.addr);
        let (ws, resp) = tokio_tungstenite::connect_async(url.as_str()).await.expect("a WebSocket");
        assert_eq!(resp.status(), 101);
        Ws(ws)
    }

    /// The next event within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(wait, self.0.next()).await.ok()?;
            match msg.expect("the socket stays open").expect("a frame") {
                Message::Text(t) => return Some(serde_json::from_str(t.as_str()).expect("JSON")),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }
}

fn hook_body(action: &str, stream: &str, param: &str) -> Value {
    let text = std::fs::read_to_string(samples_dir().join("hooks.jsonl")).expect("hooks.jsonl");
    let mut b: Value = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|b| b["action"] == action)
        .unwrap_or_else(|| panic!("no {action} in hooks.jsonl"));
    b["stream"] = json!(stream);
    b["param"] = json!(param);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_hooked_into_one_replica_reaches_a_websocket_client_of_another_once() {
    let redis = RedisServer::start();
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let nodes = [origin.spec("origin", Role::Origin)];
    let (_db, idx) = replicas(3, &nodes, &redis, AuthConfig::default()).await;
    let apis: Vec<Api> = idx.iter().map(Api::new).collect();
    settled(&apis, 1).await;

    let mut ws = Ws::connect(&idx[2]).await;
    let snap = ws.next(DEADLINE).await.expect("a snapshot");
    assert_eq!(snap["type"], "snapshot");
    // A listener of replica 1 too: its own event comes back from Redis and must not be repeated.
    let mut local = Ws::connect(&idx[0]).await;
    assert_eq!(local.next(DEADLINE).await.expect("a snapshot")["type"], "snapshot");
    let key = "__defaultVhost__/live/hooked";
    let sent = Instant::now();
    let (status, answer) =
        apis[0].post("/api/v1/hooks", hook_body("on_publish", "hooked", "").to_string()).await.unwrap();
    assert_eq!((status, answer["code"].as_i64()), (200, Some(0)), "{answer}");
    let mut seen = Vec::new();
    let mut first = None;
    // Everything replica 3 sends for a second after the hook.
    while let Some(v) = ws.next(Duration::from_secs(1)).await {
        if v["type"] == "stream_published" && v["stream"] == key {
            first.get_or_insert(sent.elapsed());
            seen.push(v);
        }
    }
    let delay = first.expect("replica 3's listener got the stream_published hooked into replica 1");
    println!("hook into replica 1 -> WebSocket client of replica 3: {delay:?}");
    assert_eq!(seen.len(), 1, "announced once: {seen:?}");
    assert_eq!(seen[0]["data"]["source"], "hook");
    assert_eq!(seen[0]["data"]["key"], key);
    let mut here = 0;
    while let Some(v) = local.next(Duration::from_millis(300)).await {
        here += usize::from(v["type"] == "stream_published" && v["stream"] == key);
    }
    assert_eq!(here, 1, "replica 1 announced it once, though Redis echoed it back");
    for i in idx {
        i.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_schedule_from_the_leaders_view_and_count_each_others_assignments() {
    let redis = RedisServer::start();
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let (e1, e2) = (FakeNode::start(Docs::captured("edge1")).await, FakeNode::start(Docs::captured("edge2")).await);
    let nodes = [origin.spec("origin", Role::Origin), e1.spec("edge1", Role::Edge), e2.spec("edge2", Role::Edge)];
    let db = tempfile::tempdir().unwrap();
    let mut idx = Vec::new();
    for n in 0..2 {
        let mut cfg = shared(&db, n, nodes.to_vec(), &redis);
        // Assignments count until the node's next poll: long enough to look at them.
        cfg.poll.interval_ms = 4000;
        idx.push(RunningIndex::start(cfg, None).await.unwrap());
    }
    let apis: Vec<Api> = idx.iter().map(Api::new).collect();
    let leader = settled(&apis, 1).await;
    let follower = 1 - leader;
    let m = metrics(&apis[follower]).await.unwrap();
    assert_eq!(m["ferrocast_index_poll_duration_seconds_count"], 0.0, "a follower does not poll");
    eventually(DEADLINE, "the follower lists the edges the leader polled", async || {
        let v = apis[follower].get_ok("/api/v1/streams/live/cam1").await?;
        let edges = common::edges_of(&v["stream"]);
        check(edges == [("edge1".to_string(), 1), ("edge2".to_string(), 2)], || format!("{v}"))
    })
    .await;
    // Ready once the leader's first poll of the origin reached it.
    let ready = eventually(DEADLINE, "the follower is ready", async || apis[follower].get_ok("/readyz").await).await;
    assert_eq!((ready["redis"].as_str(), ready["role"].as_str()), (Some("up"), Some("follower")), "{ready}");

    // Viewers the follower sends count as load on the leader too (within a poll of the nodes).
    eventually(DEADLINE, "the leader counts the follower's assignments", async || {
        let mut chosen = HashMap::<String, u64>::new();
        for _ in 0..10 {
            let v = apis[follower].get_ok("/api/v1/play/live/cam1?proto=flv").await?;
            *chosen.entry(v["node"].as_str().unwrap_or_default().to_string()).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (node, n) in &chosen {
            let on_leader = apis[leader].node(node).await?["assigned_since_poll"].as_u64().unwrap_or(0);
            let on_follower = apis[follower].node(node).await?["assigned_since_poll"].as_u64().unwrap_or(0);
            check(on_leader >= *n && on_leader == on_follower, || {
                format!("{node}: {n} sent by the follower, leader counts {on_leader}, follower {on_follower} (a poll may have reset them)")
            })?;
        }
        Ok(())
    })
    .await;
    for i in idx {
        i.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_replica_is_refused_by_the_others() {
    let redis = RedisServer::start();
    let auth = AuthConfig {
        enabled: true,
        keys: vec![KeyConfig { id: "k1".into(), secret: "a secret of the replica test".into() }],
        apps: vec!["live=play:token".parse().unwrap()],
        admin_token: Some("admin-token-0123456789".into()),
        hooks_open: true,
        ..AuthConfig::default()
    };
    let (_db, idx) = replicas(2, &[], &redis, auth).await;
    let apis: Vec<Api> = idx.iter().map(Api::new).collect();
    eventually(DEADLINE, "both replicas reach redis", async || {
        for api in &apis {
            let r = api.get("/readyz").await?.1;
            check(r["redis"] == "up", || format!("{r}"))?;
        }
        Ok(())
    })
    .await;
    let token = idx[0].state.auth.load().mint(Action::Play, "live/cam1", Duration::from_secs(600), None).unwrap();
    let play = hook_body("on_play", "cam1", &format!("?token={token}"));
    let (status, answer) = apis[1].post("/api/v1/hooks", play.to_string()).await.unwrap();
    assert_eq!((status, answer["code"].as_i64()), (200, Some(0)), "a valid token plays: {answer}");

    let client = reqwest::Client::new();
    let resp = client
        .post(format!("http://{}/api/v1/tokens/revoke", idx[0].addr))
        .bearer_auth("admin-token-0123456789")
        .body(json!({ "token": token }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["shared"], true, "{answer}");
    eventually(DEADLINE, "replica 2 refuses the revoked token", async || {
        let (status, answer) = apis[1].post("/api/v1/hooks", play.to_string()).await?;
        check(status == 200 && answer["code"] == 403, || format!("{status} {answer}"))?;
        check(answer["msg"].as_str().is_some_and(|m| m.contains("revoked")), || format!("{answer}"))
    })
    .await;
    // Another token (a token is its claims: the same claims would make the same token).
    let other = idx[0].state.auth.load().mint(Action::Play, "live/*", Duration::from_secs(600), None).unwrap();
    let (_, answer) = apis[1]
        .post("/api/v1/hooks", hook_body("on_play", "cam1", &format!("?token={other}")).to_string())
        .await
        .unwrap();
    assert_eq!(answer["code"], 0, "another token still plays: {answer}");
    for i in idx {
        i.shutdown().await;
    }
}

/// A leader paused past its lease (GC, a stopped VM) wakes up and writes: Redis refuses it, since
/// a newer leader took the lease with a newer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_leaders_write_is_refused() {
    let redis = RedisServer::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys = Keys::new("fence-test");
    let lease = Duration::from_millis(200);

    let old = lease::try_acquire(&mut conn, &keys, "a", lease, 0).await.unwrap().expect("a takes the free lease");
    assert_eq!(lease::try_acquire(&mut conn, &keys, "b", lease, 0).await.unwrap(), None, "held by a");
    let record = |who: &str| node_records::Batch::new(vec![("e1".into(), format!("written by {who}"))], vec![], vec![]);
    node_records::write(&mut conn, &keys, "a", old, &record("a")).await.expect("the leader writes");

    // a pauses for longer than its lease; b takes over.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let new = lease::try_acquire(&mut conn, &keys, "b", Duration::from_secs(5), 0).await.unwrap().expect("b takes it");
    assert!(new > old, "each term has a larger token: {old} then {new}");
    node_records::write(&mut conn, &keys, "b", new, &record("b")).await.expect("the new leader writes");

    // a wakes up: its renewal fails and its write is refused.
    assert!(!lease::renew(&mut conn, &keys, "a", old, lease).await.unwrap(), "a's lease is gone");
    let refused = node_records::write(&mut conn, &keys, "a", old, &record("a, stale")).await.unwrap_err();
    println!("stale write: {refused}");
    assert!(matches!(refused, lease::WriteError::Fenced { token, .. } if token == old), "{refused:?}");
    let stored: String = redis::cmd("HGET").arg(&keys.nodes).arg("e1").query_async(&mut conn).await.unwrap();
    assert_eq!(stored, "written by b");

    // A Redis that lost its data counts from 1 again; a replica's memory of the newest token keeps
    // the next term above it.
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    let after = lease::try_acquire(&mut conn, &keys, "a", lease, new).await.unwrap().unwrap();
    assert!(after > new, "{after} after {new}");
}

/// A replica started after the streams were announced, which then takes over, does not announce
/// them all again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_takes_over_does_not_announce_known_streams_again() {
    let redis = RedisServer::start();
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let nodes = vec![origin.spec("origin", Role::Origin)];
    let db = tempfile::tempdir().unwrap();
    let first = RunningIndex::start(shared(&db, 0, nodes.clone(), &redis), None).await.unwrap();
    settled(&[Api::new(&first)], 1).await;
    let late = RunningIndex::start(shared(&db, 1, nodes, &redis), None).await.unwrap();
    let api = Api::new(&late);
    eventually(DEADLINE, "the late replica lists the stream", async || {
        let keys = api.stream_keys().await?;
        check(keys.len() == 1, || format!("{keys:?}"))
    })
    .await;
    let mut ws = Ws::connect(&late).await;
    assert_eq!(ws.next(DEADLINE).await.expect("a snapshot")["type"], "snapshot");
    // The leader stops (its lease released): the late replica leads.
    first.shutdown().await;
    eventually(DEADLINE, "the late replica leads and polls", async || {
        let m = metrics(&api).await?;
        check(m["ferrocast_index_leader"] == 1.0 && m["ferrocast_index_poll_duration_seconds_count"] > 0.0, || {
            format!(
                "leader {}, polls {}",
                m["ferrocast_index_leader"], m["ferrocast_index_poll_duration_seconds_count"]
            )
        })
    })
    .await;
    let mut repeated = Vec::new();
    while let Some(v) = ws.next(Duration::from_secs(1)).await {
        if v["type"] == "stream_published" {
            repeated.push(v);
        }
    }
    assert!(repeated.is_empty(), "announced again by the new leader: {repeated:?}");
    late.shutdown().await;
}

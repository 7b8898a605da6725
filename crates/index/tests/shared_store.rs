//! Index replicas sharing one PostgreSQL database (`--db postgres://...`) and a Redis: the same
//! history on every replica, one row per event for the cluster; an admin key created on one
//! replica admitted by the others and, once revoked on one, refused by all; every replica naming
//! the same origin to a publisher before and after an origin failover; and PostgreSQL stopped and
//! restarted under a running index: no play answer fails, history written meanwhile arrives.
//! Real servers throughout: `PostgresServer` (initdb + postgres on a free port) and
//! `RedisServer` (scripts/test installs both); the nodes are fake SRS nodes serving a real SRS
//! cluster's captured answers.

mod common;

use std::time::Duration;

use common::{Api, DEADLINE, Docs, FakeNode, Mode, check, config, eventually};
use ferrocast_index::auth::{AuthConfig, KeyConfig};
use ferrocast_index::config::SharedConfig;
use ferrocast_index::testing::{PostgresServer, RedisServer};
use ferrocast_index::{IndexConfig, NodeSpec, Role, RunningIndex};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "admin-token-0123456789";
const CAM1: &str = "__defaultVhost__/live/cam1";

fn auth() -> AuthConfig {
    AuthConfig {
        enabled: true,
        keys: vec![KeyConfig { id: "k1".into(), secret: "a secret of the shared store test".into() }],
        admin_token: Some(ADMIN_TOKEN.into()),
        hooks_open: true,
        ..AuthConfig::default()
    }
}

/// GET `path` with `bearer`: (status, JSON body).
async fn get(idx: &RunningIndex, path: &str, bearer: &str) -> Result<(u16, Value), String> {
    let resp = reqwest::Client::new()
        .get(format!("http://{}{path}", idx.addr))
        .bearer_auth(bearer)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// The history as an admin sees it on `idx`.
async fn history(idx: &RunningIndex) -> Result<Value, String> {
    let (status, v) = get(idx, "/api/v1/history", ADMIN_TOKEN).await?;
    check(status == 200, || format!("history: HTTP {status} {v}"))?;
    Ok(v)
}

/// The origin `idx` sends a publisher of live/cam1 to.
async fn publish_origin(idx: &RunningIndex) -> Result<String, String> {
    let (status, v) = get(idx, "/api/v1/publish/live/cam1", ADMIN_TOKEN).await?;
    check(status == 200, || format!("publish: HTTP {status} {v}"))?;
    Ok(v["node"].as_str().unwrap_or_default().to_string())
}

fn on_forward(tc_url: &str) -> Value {
    hook("on_forward", tc_url)
}

fn hook(action: &str, tc_url: &str) -> Value {
    json!({
        "action": action, "server_id": "", "service_id": "584128l7", "client_id": "s20rw848",
        "ip": "127.0.0.1", "vhost": "__defaultVhost__", "app": "live", "tcUrl": tc_url, "stream": "cam1",
        "param": "",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_one_postgres_agree_on_history_keys_and_origins() {
    let pg = PostgresServer::start();
    let db = pg.new_database();
    let redis = RedisServer::start();
    // Two origins that both list live/cam1 (o2 as a replica of o1's stream, say).
    let (f1, f2) = (FakeNode::start(Docs::captured("origin")).await, FakeNode::start(Docs::captured("origin")).await);
    let nodes: Vec<NodeSpec> = vec![f1.spec("o1", Role::Origin), f2.spec("o2", Role::Origin)];
    let mut idx = Vec::new();
    for _ in 0..3 {
        let cfg = IndexConfig {
            db: db.clone().into(),
            redis: Some(redis.url()),
            shared: SharedConfig { lease_ms: 1000, key_prefix: "pgtest".into() },
            auth: auth(),
            ..config(std::path::Path::new("unused"), nodes.clone())
        };
        idx.push(RunningIndex::start(cfg, None).await.expect("a replica starts on PostgreSQL"));
    }
    let apis: Vec<Api> = idx.iter().map(Api::new).collect();

    // The same history on each replica, one session of cam1 for the cluster (not one per replica).
    let first = eventually(DEADLINE, "every replica shows cam1's session once", async || {
        let mut all = Vec::new();
        for (i, x) in idx.iter().enumerate() {
            let h = history(x).await?;
            let cam1 = h["sessions"].as_array().map_or(0, |s| s.iter().filter(|s| s["stream"] == CAM1).count());
            check(cam1 == 1, || format!("replica {i}: {cam1} sessions of cam1: {h}"))?;
            all.push(h);
        }
        check(all.iter().all(|h| *h == all[0]), || format!("histories differ: {all:?}"))?;
        Ok(all.remove(0))
    })
    .await;
    assert!(["o1", "o2"].contains(&first["sessions"][0]["node"].as_str().unwrap_or("")), "{first}");

    // A key created through replica 0 is admitted by the other two; revoked on replica 1, refused
    // by all three — also by those that verified it a moment ago (a minute of trust otherwise).
    let (_, key) = idx[0].state.store.create_key("ops").await.unwrap();
    for (i, x) in idx.iter().enumerate() {
        let (status, v) = get(x, "/api/v1/history", &key).await.unwrap();
        assert_eq!(status, 200, "replica {i} refuses a key created on replica 0: {v}");
    }
    let id = ferrocast_index::store::parse_key(&key).unwrap().0.to_string();
    idx[1].state.store.revoke_key(&id).await.unwrap().expect("the key exists");
    eventually(Duration::from_secs(3), "every replica refuses the revoked key", async || {
        for (i, x) in idx.iter().enumerate() {
            let (status, v) = get(x, "/api/v1/history", &key).await?;
            check(status == 401 || status == 403, || format!("replica {i} still admits it: {status} {v}"))?;
        }
        Ok(())
    })
    .await;

    // o2 reports the publisher (on_forward, to replica 2): every replica sends publishers there,
    // although o1 comes first in the config and the other replicas never saw the hook.
    let (status, answer) = apis[2].post("/api/v1/hooks", on_forward("rtmp://o2.test/live").to_string()).await.unwrap();
    assert_eq!((status, &answer["code"]), (200, &json!(0)), "{answer}");
    eventually(DEADLINE, "every replica names o2", async || {
        for (i, x) in idx.iter().enumerate() {
            let origin = publish_origin(x).await?;
            check(origin == "o2", || format!("replica {i} names {origin}"))?;
        }
        Ok(())
    })
    .await;
    // The primary is kept in Redis for replicas that start later; an unpublish from another origin
    // leaves it, one from o2 removes it (and o2 is told again, as its on_forward would).
    let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let primary = async |conn: &mut redis::aio::MultiplexedConnection| -> Option<String> {
        redis::cmd("HGET").arg("pgtest:primaries").arg(CAM1).query_async(conn).await.unwrap()
    };
    assert!(primary(&mut conn).await.is_some_and(|p| p.starts_with("o2\t")), "{:?}", primary(&mut conn).await);
    apis[0].post("/api/v1/hooks", hook("on_unpublish", "rtmp://o1.test/live").to_string()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(primary(&mut conn).await.is_some(), "an unpublish from o1 does not remove o2");
    apis[0].post("/api/v1/hooks", hook("on_unpublish", "rtmp://o2.test/live").to_string()).await.unwrap();
    eventually(DEADLINE, "o2's unpublish removes it", async || {
        check(primary(&mut conn).await.is_none(), || "still there".into())
    })
    .await;
    apis[1].post("/api/v1/hooks", on_forward("rtmp://o2.test/live").to_string()).await.unwrap();

    // o2 dies: every replica names o1, and the history of each says so once.
    f2.set(Mode::Refuse).await;
    eventually(DEADLINE, "every replica names o1 after the failover", async || {
        for (i, x) in idx.iter().enumerate() {
            let origin = publish_origin(x).await?;
            check(origin == "o1", || format!("replica {i} names {origin}"))?;
        }
        Ok(())
    })
    .await;
    eventually(DEADLINE, "o2's failure is in every replica's history once", async || {
        for (i, x) in idx.iter().enumerate() {
            let h = history(x).await?;
            let events = h["node_events"].as_array().cloned().unwrap_or_default();
            let down = events.iter().filter(|e| e["node"] == "o2" && e["to"] == "down").count();
            check(down == 1, || format!("replica {i}: {down} events of o2: {h}"))?;
        }
        Ok(())
    })
    .await;
    for x in idx {
        x.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_restarted_fails_no_play_answer_and_loses_no_history() {
    let mut pg = PostgresServer::start();
    let db = pg.new_database();
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let (e1, e2) = (FakeNode::start(Docs::captured("edge1")).await, FakeNode::start(Docs::captured("edge2")).await);
    let nodes = vec![origin.spec("origin", Role::Origin), e1.spec("edge1", Role::Edge), e2.spec("edge2", Role::Edge)];
    let cfg = IndexConfig { db: db.into(), ..config(std::path::Path::new("unused"), nodes) };
    let idx = RunningIndex::start(cfg, None).await.unwrap();
    let api = Api::new(&idx);
    eventually(DEADLINE, "cam1 is live with its session stored", async || {
        let h = api.get_ok("/api/v1/history").await?;
        check(h["sessions"].as_array().is_some_and(|s| s.iter().any(|s| s["stream"] == CAM1)), || h.to_string())
    })
    .await;

    // Viewers keep asking all the while.
    let stop = tokio_util::sync::CancellationToken::new();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let viewers = {
        let (api, stop, answered) = (Api::new(&idx), stop.clone(), answered.clone());
        tokio::spawn(async move {
            let mut failed = Vec::new();
            while !stop.is_cancelled() {
                match api.get("/api/v1/play/live/cam1?proto=flv").await {
                    Ok((200, _)) => drop(answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
                    other => failed.push(format!("{other:?}")),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            failed
        })
    };
    let answered_now = || answered.load(std::sync::atomic::Ordering::Relaxed);

    let before_outage = answered_now();
    tokio::task::block_in_place(|| pg.stop());
    eventually(DEADLINE, "the index says its store is down, and stays ready", async || {
        let (status, r) = api.get("/readyz").await?;
        check(status == 200 && r["store"]["state"] == "down", || format!("{status} {r}"))
    })
    .await;
    // History meanwhile: edge2 goes down (a node change) while the database is away.
    e2.set(Mode::Refuse).await;
    eventually(DEADLINE, "edge2 is down", async || {
        let n = api.node("edge2").await?;
        check(n["health"] == "down", || n.to_string())
    })
    .await;
    let (status, h) = api.get("/api/v1/history").await.unwrap();
    assert_eq!(status, 503, "a history read while the database is away is refused at once: {h}");
    let metrics = api.get_text("/metrics").await.unwrap().1;
    assert!(metrics.contains("ferrocast_index_store_up{backend=\"postgres\"} 0"), "{metrics}");

    let during_outage = answered_now() - before_outage;
    tokio::task::block_in_place(|| pg.restart());
    eventually(DEADLINE, "edge2's change arrives in the history after the restart", async || {
        let h = api.get_ok("/api/v1/history").await?;
        let events = h["node_events"].as_array().cloned().unwrap_or_default();
        check(events.iter().any(|e| e["node"] == "edge2" && e["to"] == "down"), || h.to_string())
    })
    .await;
    let (_, r) = api.get("/readyz").await.unwrap();
    assert_eq!(r["store"]["state"], "up", "{r}");
    stop.cancel();
    let failed = viewers.await.unwrap();
    assert!(failed.is_empty(), "play answers failed while PostgreSQL was away: {failed:?}");
    assert!(during_outage >= 10, "only {during_outage} play answers while PostgreSQL was away");
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_started_while_postgres_is_down_schedules_and_catches_up() {
    let mut pg = PostgresServer::start();
    let db = pg.new_database();
    tokio::task::block_in_place(|| pg.stop());
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let edge = FakeNode::start(Docs::captured("edge1")).await;
    let nodes = vec![origin.spec("origin", Role::Origin), edge.spec("edge1", Role::Edge)];
    let cfg = IndexConfig { db: db.into(), ..config(std::path::Path::new("unused"), nodes) };
    let idx = RunningIndex::start(cfg, None).await.expect("a replica starts while its database is down");
    let api = Api::new(&idx);
    eventually(DEADLINE, "it schedules viewers and says its store is down", async || {
        let (status, r) = api.get("/readyz").await?;
        check(status == 200 && r["store"]["state"] == "down", || format!("{status} {r}"))?;
        let (status, v) = api.get("/api/v1/play/live/cam1?proto=flv").await?;
        check(status == 200 && v["node"] == "edge1", || format!("{status} {v}"))
    })
    .await;
    tokio::task::block_in_place(|| pg.restart());
    eventually(DEADLINE, "the schema is made and the session written once the database answers", async || {
        let h = api.get_ok("/api/v1/history").await?;
        check(h["sessions"].as_array().is_some_and(|s| s.iter().any(|s| s["stream"] == CAM1)), || h.to_string())
    })
    .await;
    idx.shutdown().await;
}

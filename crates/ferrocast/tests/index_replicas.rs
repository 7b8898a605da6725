//! Three `ferrocast index` processes sharing state through a real Redis (`--redis`), polling a
//! fake SRS origin that serves the captures in `fixtures/srs/`: exactly one replica polls; when it
//! is killed (SIGKILL: no lease released) another polls within 2 x the lease; with Redis stopped
//! every replica still answers `/api/v1/play`, and once Redis is back they converge on one leader.
//! The in-process tests of shared mode are in `crates/index/tests/replicas.rs`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use common::{IndexProcess, eventually};
use ferrocast_index::testing::RedisServer;
use serde_json::Value;

const LEASE_MS: u64 = 2000;
const WAIT: Duration = Duration::from_secs(15);

/// A fake SRS 7 origin answering with the captured documents; it notes when each request came.
struct FakeSrs {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Instant>>>,
}

impl FakeSrs {
    async fn start() -> FakeSrs {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let app = Router::new().fallback(move |uri: Uri| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(Instant::now());
                answer(uri.path())
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeSrs { addr, requests }
    }

    fn spec(&self) -> String {
        format!("name=o1,role=origin,api=http://{},rtmp=rtmp://o1.test:1935,http=http://o1.test:8080", self.addr)
    }

    /// When the first request after `t` came.
    fn first_after(&self, t: Instant) -> Option<Instant> {
        self.requests.lock().unwrap().iter().copied().find(|r| *r > t)
    }
}

fn answer(path: &str) -> Response {
    let file = match path {
        "/api/v1/vhosts/" => "origin-vhosts.json",
        "/api/v1/summaries" => "origin-summaries.json",
        "/api/v1/streams/" => "origin-streams.json",
        _ => return (axum::http::StatusCode::NOT_FOUND, "Not Found").into_response(),
    };
    let path = format!("{}/../../fixtures/srs/{file}", env!("CARGO_MANIFEST_DIR"));
    ([(header::CONTENT_TYPE, "application/json")], std::fs::read(path).unwrap()).into_response()
}

async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().ok()?;
    let resp = client.get(format!("http://{addr}{path}")).send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

/// A gauge or counter without labels from `/metrics`.
async fn metric(addr: &str, name: &str) -> Option<f64> {
    let (_, text) = get(addr, "/metrics").await?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn start(count: usize, redis: &RedisServer, fake: &FakeSrs, dir: &std::path::Path) -> Vec<IndexProcess> {
    let (url, lease, spec) = (redis.url(), LEASE_MS.to_string(), fake.spec());
    let mut out = Vec::new();
    for n in 0..count {
        let args = ["--redis", &url, "--lease-ms", &lease, "--node", &spec];
        out.push(IndexProcess::start(&dir.join(format!("replica{n}.db")), &args).await);
    }
    out
}

/// The one leader among `alive` replicas, once every one of them lists the captured stream.
async fn one_leader(idx: &[IndexProcess], alive: &[usize]) -> Option<usize> {
    eventually(WAIT, || async {
        let mut leaders = Vec::new();
        for &i in alive {
            let (_, streams) = get(&idx[i].addr, "/api/v1/streams").await?;
            if !streams.contains("__defaultVhost__/live/cam1") {
                return None;
            }
            if metric(&idx[i].addr, "ferrocast_index_leader").await? == 1.0 {
                leaders.push(i);
            }
        }
        (leaders.len() == 1).then(|| leaders[0])
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_hands_polling_to_another_replica_within_two_leases() {
    let redis = RedisServer::start();
    let fake = FakeSrs::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut idx = start(3, &redis, &fake, dir.path()).await;
    let leader = one_leader(&idx, &[0, 1, 2]).await.expect("one leader, every replica listing the stream");
    for i in (0..3).filter(|&i| i != leader) {
        let polls = metric(&idx[i].addr, "ferrocast_index_poll_duration_seconds_count").await;
        assert_eq!(polls, Some(0.0), "replica {i} follows: it never polled");
    }

    idx[leader].child.start_kill().unwrap();
    let killed = Instant::now();
    idx[leader].child.wait().await.unwrap();
    // A poll the dead leader had sent may still be answered just after the kill: skip 100 ms.
    let first = eventually(WAIT, || async { fake.first_after(killed + Duration::from_millis(100)) })
        .await
        .expect("another replica polls the node");
    let took = first - killed;
    println!("leader killed: the next poll came {took:?} later (lease {LEASE_MS} ms)");
    assert!(took < Duration::from_millis(2 * LEASE_MS), "polling resumed after {took:?}, more than 2 x the lease");

    let alive: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new = one_leader(&idx, &alive).await.expect("one of the two others leads, both list the stream");
    let polls = metric(&idx[new].addr, "ferrocast_index_poll_duration_seconds_count").await.unwrap_or(0.0);
    assert!(polls > 0.0, "the new leader polls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_every_replica_answers_play_and_they_converge_when_it_returns() {
    let mut redis = RedisServer::start();
    let fake = FakeSrs::start().await;
    let dir = tempfile::tempdir().unwrap();
    let idx = start(3, &redis, &fake, dir.path()).await;
    one_leader(&idx, &[0, 1, 2]).await.expect("one leader, every replica listing the stream");

    redis.stop();
    let stopped = Instant::now();
    for (i, r) in idx.iter().enumerate() {
        let (status, body) = get(&r.addr, "/api/v1/play/live/cam1?proto=flv").await.expect("an answer");
        assert_eq!(status, 200, "replica {i} answers play with redis down: {body}");
    }
    // Cut off for a lease, each replica polls on its own and says so; its own polls keep it ready
    // (a follower's view can be stale until its first one: the test polls every 300 ms).
    for (i, r) in idx.iter().enumerate() {
        let ready = eventually(WAIT, || async {
            let (status, body) = get(&r.addr, "/readyz").await?;
            let v: Value = serde_json::from_str(&body).ok()?;
            (status == 200 && v["redis"] == "down" && v["role"] == "standalone").then_some(v)
        })
        .await
        .unwrap_or_else(|| panic!("replica {i} reports redis down, polls on its own and stays ready"));
        println!("replica {i} /readyz with redis down: {ready}");
        let (status, _) = get(&r.addr, "/api/v1/play/live/cam1?proto=flv").await.unwrap();
        assert_eq!(status, 200);
    }
    println!("all replicas standalone {:?} after redis stopped", stopped.elapsed());

    redis.restart();
    let back = Instant::now();
    let leader = one_leader(&idx, &[0, 1, 2]).await.expect("one leader again once redis is back");
    for (i, r) in idx.iter().enumerate() {
        let v = eventually(WAIT, || async {
            let (status, body) = get(&r.addr, "/readyz").await?;
            let v: Value = serde_json::from_str(&body).ok()?;
            (status == 200 && v["redis"] == "up" && v["role"] == if i == leader { "leader" } else { "follower" })
                .then_some(v)
        })
        .await;
        assert!(v.is_some(), "replica {i} is ready and sees redis up, as leader or follower");
    }
    println!("converged {:?} after redis returned (leader: replica {leader})", back.elapsed());
}

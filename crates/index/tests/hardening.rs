//! The index's trust boundaries, attacked over HTTP against a real index (and fake nodes served
//! from the test where the attack needs one): each attack is refused while a normal viewer keeps
//! getting play answers from the captured cluster.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use common::{Api, DEADLINE, Docs, FakeNode, check, config, edges_of, eventually};
use ferrocast_index::auth::{AuthConfig, KeyConfig};
use ferrocast_index::config::RegisterConfig;
use ferrocast_index::{IndexConfig, Role, RunningIndex, StartError};
use serde_json::json;

const SECRET: &str = "register-secret-0123456789";
const HOOK_SECRET: &str = "hook-secret-0123456789";
const ADMIN: &str = "admin-token-0123456789";

/// Access control on: app `live` needs a play token; hooks need their secret.
fn auth() -> AuthConfig {
    AuthConfig {
        enabled: true,
        keys: vec![KeyConfig { id: "k1".into(), secret: "a secret of the hardening test".into() }],
        apps: vec!["live=play:token".parse().unwrap()],
        hook_secret: Some(HOOK_SECRET.into()),
        admin_token: Some(ADMIN.into()),
        ..AuthConfig::default()
    }
}

/// The captured cluster (origin, edge1, edge2) the normal viewer plays from.
struct Cluster {
    _nodes: [FakeNode; 3],
    _db: tempfile::TempDir,
    _idx: RunningIndex,
    api: Api,
}

async fn cluster(tune: impl FnOnce(&mut IndexConfig)) -> Cluster {
    let nodes = [
        FakeNode::start(Docs::captured("origin")).await,
        FakeNode::start(Docs::captured("edge1")).await,
        FakeNode::start(Docs::captured("edge2")).await,
    ];
    let db = tempfile::tempdir().unwrap();
    let mut cfg = config(
        &db.path().join("index.db"),
        vec![
            nodes[0].spec("origin", Role::Origin),
            nodes[1].spec("edge1", Role::Edge),
            nodes[2].spec("edge2", Role::Edge),
        ],
    );
    tune(&mut cfg);
    let idx = RunningIndex::start(cfg, None).await.unwrap();
    let api = Api::new(&idx);
    eventually(DEADLINE, "cam1 on both edges", async || {
        let v = admin_get(&idx, "/api/v1/streams/live/cam1").await;
        check(v["stream"]["origin"] == "origin" && edges_of(&v["stream"]).len() == 2, || v.to_string())
    })
    .await;
    Cluster { _nodes: nodes, _db: db, _idx: idx, api }
}

/// GET as an admin (the bootstrap token; with access control off, a caller on loopback).
async fn admin_get(idx: &RunningIndex, path: &str) -> serde_json::Value {
    let resp = reqwest::Client::new().get(format!("http://{}{path}", idx.addr)).bearer_auth(ADMIN).send().await;
    resp.unwrap().json().await.unwrap()
}

impl Cluster {
    /// A normal viewer asks where to play cam1: it is sent to one of the captured edges.
    async fn viewer_is_served(&self) {
        // A new connection each time: a kept-alive one may be closed by the index's idle timeout.
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let url = format!("http://{}/api/v1/play/live/cam1?proto=flv", self._idx.addr);
        let resp = client.get(url).send().await.expect("a play answer");
        assert_eq!(resp.status(), 200);
        let play: serde_json::Value = resp.json().await.expect("a JSON play answer");
        let node = play["node"].as_str().unwrap_or_default();
        assert!(["edge1", "edge2"].contains(&node), "the viewer goes to a real edge: {play}");
    }

    /// The directory still follows the other nodes: edge2 goes away, and leaves cam1.
    async fn directory_follows_edge2_leaving(&self) {
        self._nodes[2].set(common::Mode::Refuse).await;
        eventually(DEADLINE, "edge2 leaves cam1", async || {
            let v = self.api.get_ok("/api/v1/streams/live/cam1").await?;
            let edges: Vec<String> = edges_of(&v["stream"]).into_iter().map(|(n, _)| n).collect();
            check(edges == ["edge1"], || v.to_string())
        })
        .await;
    }

    async fn node_names(&self) -> Vec<String> {
        let v = self.api.get_ok("/api/v1/nodes").await.unwrap();
        v["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_string()).collect()
    }
}

/// A heartbeat as SRS sends it, for node `name` at `ip`, with a huge capacity asked for.
fn heartbeat(name: &str, ip: &str) -> String {
    json!({ "device_id": name, "ip": ip, "rtmp": ["1935"], "http": ["8080"], "api": ["1985"] }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_needs_the_secret_and_an_ip_address() {
    let c = cluster(|cfg| cfg.register.secret = Some(SECRET.into())).await;
    let path = "/api/v1/srs/register?max_viewers=1000000";
    let (status, why) = c.api.post(path, heartbeat("evil", "127.0.0.1")).await.unwrap();
    assert_eq!(status, 403, "no secret: {why}");
    let wrong = format!("{path}&secret=not-the-secret-0123456");
    assert_eq!(c.api.post(&wrong, heartbeat("evil", "127.0.0.1")).await.unwrap().0, 403, "a wrong secret");
    c.viewer_is_served().await;
    let good = format!("{path}&secret={SECRET}");
    for ip in ["169.254.169.254/latest/meta-data/#", "169.254.169.254", "evil.example", "127.0.0.1:1985/x", "0.0.0.0"] {
        let (status, why) = c.api.post(&good, heartbeat("evil", ip)).await.unwrap();
        assert_eq!(status, 400, "ip {ip:?} is refused even with the secret: {why}");
    }
    assert!(!c.node_names().await.contains(&"evil".to_string()), "no refused heartbeat made a node");
    let (status, v) = c.api.post(&good, heartbeat("edge-eu-9", "127.0.0.1")).await.unwrap();
    assert_eq!((status, v["node"].as_str()), (200, Some("added")), "{v}");
    let (status, v) = c.api.post(&good.replace("?", "?role=edge&"), heartbeat("edge-eu-9", "::1")).await.unwrap();
    assert_eq!((status, v["node"].as_str()), (200, Some("updated")), "the secret moves a name: {v}");
    c.viewer_is_served().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_moves_only_with_the_secret_and_registrations_are_capped() {
    let c = cluster(|cfg| {
        cfg.register =
            RegisterConfig { secret: Some(SECRET.into()), allow: vec!["127.0.0.0/8".parse().unwrap()], max_nodes: 2 }
    })
    .await;
    let plain = "/api/v1/srs/register";
    assert_eq!(c.api.post(plain, heartbeat("r1", "127.0.0.1")).await.unwrap().0, 200, "an allowed network");
    // Another host of the allowed network claims r1's name for its own address: refused.
    let (status, why) = c.api.post(plain, heartbeat("r1", "127.0.0.9")).await.unwrap();
    assert_eq!(status, 409, "{why}");
    let r1 = eventually(DEADLINE, "r1 in the directory", async || c.api.node("r1").await).await;
    assert_eq!(r1["api"], "http://127.0.0.1:1985", "r1 stays where it was");
    let secret = format!("{plain}?secret={SECRET}");
    assert_eq!(c.api.post(&secret, heartbeat("r1", "127.0.0.9")).await.unwrap().0, 200, "with the secret");
    assert_eq!(c.api.post(plain, heartbeat("r2", "127.0.0.1")).await.unwrap().0, 200);
    let (status, why) = c.api.post(&secret, heartbeat("r3", "127.0.0.1")).await.unwrap();
    assert_eq!(status, 503, "register.max_nodes is 2: {why}");
    assert_eq!(c.api.post(plain, heartbeat("r2", "127.0.0.1")).await.unwrap().0, 200, "a known node refreshes");
    assert!(!c.node_names().await.contains(&"r3".to_string()));
    c.viewer_is_served().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_from_outside_the_allowed_network_are_refused() {
    let c = cluster(|cfg| cfg.register.allow = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let (status, why) = c.api.post("/api/v1/srs/register", heartbeat("r1", "127.0.0.1")).await.unwrap();
    assert_eq!(status, 403, "loopback is not 10.0.0.0/8: {why}");
    assert!(why["error"].as_str().unwrap_or_default().contains("register.allow"), "{why}");
    c.viewer_is_served().await;
}

/// A node whose API redirects every request to `target`.
async fn redirecting_node(target: String) -> String {
    let app = Router::new().fallback(move || {
        let target = target.clone();
        async move { (StatusCode::FOUND, [(header::LOCATION, target)]).into_response() }
    });
    serve(app).await
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_follows_no_redirect_off_the_node() {
    // The "metadata service" the hostile node points the index at, counting what reaches it.
    let hits = Arc::new(AtomicU64::new(0));
    let counted = hits.clone();
    let victim = serve(Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        async { "secret-credentials" }
    }))
    .await;
    let evil = redirecting_node(format!("{victim}/latest/meta-data/")).await;
    let c = cluster(|cfg| {
        let mut spec = cfg.nodes[1].clone();
        spec.name = "evil".into();
        spec.api = evil;
        cfg.nodes.push(spec);
    })
    .await;
    let node = eventually(DEADLINE, "the redirecting node fails its polls", async || {
        let n = c.api.node("evil").await?;
        check(n["last_error"].as_str().is_some_and(|e| e.contains("redirected")), || n.to_string())?;
        Ok(n)
    })
    .await;
    assert_ne!(node["health"], "up", "{node}");
    assert_eq!(hits.load(Ordering::Relaxed), 0, "no request reached the redirect's target");
    c.viewer_is_served().await;
}

/// Two hostile edges report the same two streams with `u64::MAX` viewers and bitrates: every sum
/// over them would overflow. The directory keeps updating for the other nodes, `/readyz` and
/// `/metrics` keep answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_at_u64_max_do_not_stop_the_merge() {
    let hostile = [
        FakeNode::start(Docs::generated("max", 2).with_counters(u64::MAX)).await,
        FakeNode::start(Docs::generated("max", 2).with_counters(u64::MAX)).await,
    ];
    let c = cluster(|cfg| {
        cfg.nodes.push(hostile[0].spec("evil1", Role::Edge));
        cfg.nodes.push(hostile[1].spec("evil2", Role::Edge));
    })
    .await;
    eventually(DEADLINE, "the hostile edges are merged", async || {
        let v = c.api.get_ok("/api/v1/streams?count=1000").await?;
        let max = v["streams"].as_array().into_iter().flatten().find(|s| s["stream"] == "max0000");
        check(max.is_some_and(|s| edges_of(s).len() == 2), || v.to_string())
    })
    .await;
    let (status, text) = c.api.get_text("/metrics").await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&format!("ferrocast_index_viewers {}", u64::MAX)), "sums saturate: {text}");
    assert!(!text.contains("ferrocast_index_task_restarts_total{"), "no task died: {text}");
    eventually(DEADLINE, "/readyz answers ready", async || {
        let (status, v) = c.api.get("/readyz").await?;
        check(status == 200, || v.to_string())
    })
    .await;
    c.viewer_is_served().await;
    c.directory_follows_edge2_leaving().await;
    c.viewer_is_served().await;
}

/// A path with `*` is no stream: the index mints no app-wide token from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wildcard_token_is_minted_from_a_path() {
    let c = cluster(|cfg| cfg.auth = auth()).await;
    for path in ["/api/v1/play/live/*", "/api/v1/play/live/*?proto=hls", "/play/live/*.flv", "/play/live/*"] {
        let (status, text) = c.api.get_text(path).await.unwrap();
        assert_eq!(status, 400, "{path}: {text}");
        assert!(!text.contains("token="), "{path} hands out no token: {text}");
    }
    let (status, text) = c.api.get_text("/api/v1/publish/live/*").await.unwrap();
    assert_ne!(status, 200, "{text}");
    let admin = reqwest::Client::new()
        .get(format!("http://{}/api/v1/publish/live/*", c._idx.addr))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 400, "not even an admin gets a wildcard publish token from a path");
    c.viewer_is_served().await;
}

/// Play and publish answers say whether a stream is live only to a caller who may see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_tell_whether_a_stream_is_live_only_to_who_may_see_it() {
    let c = cluster(|cfg| cfg.auth = auth()).await;
    for path in ["/api/v1/play/live/cam1?explain=1", "/api/v1/play/live/nothing?explain=1"] {
        let v = c.api.get_ok(path).await.unwrap();
        assert!(v["stream"]["live"].is_null(), "{path}: an anonymous caller is not told: {v}");
    }
    for path in ["/api/v1/publish/live/cam1?token=junk", "/api/v1/publish/live/nothing?token=junk"] {
        let v = c.api.get_ok(path).await.unwrap();
        assert!(v["stream"]["live"].is_null(), "{path}: a junk token is not told: {v}");
    }
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("http://{}{path}", c._idx.addr)).bearer_auth(ADMIN).send();
    let v: serde_json::Value = get("/api/v1/play/live/cam1?explain=1").await.unwrap().json().await.unwrap();
    assert_eq!(v["stream"]["live"], true, "an admin is told: {v}");
    let v: serde_json::Value = get("/api/v1/publish/live/nothing").await.unwrap().json().await.unwrap();
    assert_eq!(v["stream"]["live"], false, "an admin is told: {v}");
    // A viewer with a token for the stream is told, as the stream routes would show it.
    let play = c.api.get_ok("/api/v1/play/live/cam1").await.unwrap();
    let url = play["url"].as_str().unwrap();
    let token = url.split("token=").nth(1).unwrap().split('&').next().unwrap();
    let v = c.api.get_ok(&format!("/api/v1/play/live/cam1?explain=1&token={token}")).await.unwrap();
    assert_eq!(v["stream"]["live"], true, "{v}");
    c.viewer_is_served().await;
}

/// With access control on, an index whose hook receiver anyone could call does not start unless
/// the operator says so; with a hook secret, a spoofed hook is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_hook_receiver_needs_saying_so() {
    let db = tempfile::tempdir().unwrap();
    let open = AuthConfig { hook_secret: None, ..auth() };
    let cfg = IndexConfig { auth: open.clone(), ..config(&db.path().join("a.db"), vec![]) };
    match RunningIndex::start(cfg, None).await {
        Err(StartError::Config(why)) => assert!(why.contains("hooks_open"), "{why}"),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("an index with auth on and an open hook receiver started"),
    }
    let cfg = IndexConfig { auth: AuthConfig { hooks_open: true, ..open }, ..config(&db.path().join("b.db"), vec![]) };
    RunningIndex::start(cfg, None).await.expect("said so: it starts").shutdown().await;

    let c = cluster(|cfg| cfg.auth = auth()).await;
    let spoof = json!({ "action": "on_publish", "app": "live", "stream": "spoofed", "param": "", "tcUrl": "rtmp://x/live",
                        "vhost": "__defaultVhost__", "client_id": "1", "ip": "10.0.0.1", "server_id": "vid-x" });
    let (status, v) = c.api.post("/api/v1/hooks", spoof.to_string()).await.unwrap();
    assert_eq!(status, 403, "{v}");
    let v = admin_get(&c._idx, "/api/v1/streams").await;
    assert!(!v.to_string().contains("spoofed"), "{v}");
    c.viewer_is_served().await;
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(DEADLINE, s.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the index kept the connection open: {}", String::from_utf8_lossy(&got));
    String::from_utf8_lossy(&got).into_owned()
}

/// Slow-loris: a connection that trickles its headers, or sends nothing, is closed after
/// `http.header_timeout_ms`; meanwhile viewers are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    use tokio::io::AsyncWriteExt;
    let c = cluster(|cfg| cfg.http.header_timeout_ms = 300).await;
    let mut slow = tokio::net::TcpStream::connect(c._idx.addr).await.unwrap();
    slow.write_all(b"GET /api/v1/play/live/cam1 HTTP/1.1\r\nHost: index\r\nX-Slow: ").await.unwrap();
    let mut silent = tokio::net::TcpStream::connect(c._idx.addr).await.unwrap();
    c.viewer_is_served().await;
    read_to_close(&mut slow).await;
    read_to_close(&mut silent).await;
    c.viewer_is_served().await;
}

/// Connections beyond `http.max_connections` are answered 503 and closed; once the idle ones are
/// gone, viewers are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused() {
    let c = cluster(|cfg| {
        cfg.http.max_connections = 3;
        cfg.http.header_timeout_ms = 60_000;
    })
    .await;
    // The test's own client may hold a kept-alive connection: fill whatever is left.
    let mut idle = Vec::new();
    let refused = loop {
        let mut s = tokio::net::TcpStream::connect(c._idx.addr).await.unwrap();
        let mut buf = [0u8; 512];
        let answer = tokio::time::timeout(std::time::Duration::from_secs(1), s.peek(&mut buf)).await;
        match answer {
            Ok(Ok(n)) if n > 0 => break read_to_close(&mut s).await,
            _ => idle.push(s),
        }
        assert!(idle.len() <= 3, "more than http.max_connections connections were taken");
    };
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("max_connections"), "{refused}");
    drop(idle);
    eventually(DEADLINE, "a viewer is served once the idle connections closed", async || {
        let v = Api::new(&c._idx).get_ok("/api/v1/play/live/cam1?proto=flv").await?;
        check(v["node"] == "edge1" || v["node"] == "edge2", || v.to_string())
    })
    .await;
}

/// A WebSocket listener that sends a message larger than `http.ws_max_message_bytes` is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_listener_sending_a_huge_message_is_dropped() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let c = cluster(|_| {}).await;
    let url = format!("ws://{}/api/v1/events", c._idx.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("a WebSocket");
    let first = ws.next().await.expect("a snapshot").expect("a frame");
    assert!(first.to_text().unwrap().contains("snapshot"), "{first:?}");
    let _ = ws.send(Message::text("x".repeat(64 * 1024))).await;
    let end = tokio::time::timeout(DEADLINE, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the index kept reading a 64 KiB message");
    c.viewer_is_served().await;
}

/// Event listeners beyond `http.max_listeners` are refused with a 503; a place frees when one
/// leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_listeners_beyond_the_cap_are_refused() {
    let c = cluster(|cfg| cfg.http.max_listeners = 2).await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/api/v1/events", c._idx.addr);
    let sse = || client.get(&url).header("accept", "text/event-stream").send();
    let (a, b) = (sse().await.unwrap(), sse().await.unwrap());
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let third = sse().await.unwrap();
    assert_eq!(third.status(), 503);
    assert!(third.text().await.unwrap().contains("max_listeners"));
    c.viewer_is_served().await;
    drop(a);
    eventually(DEADLINE, "a place frees when a listener leaves", async || {
        let r = sse().await.map_err(|e| e.to_string())?;
        check(r.status() == 200, || r.status().to_string())
    })
    .await;
    drop(b);
}

/// Behind a trusted proxy, the client is the rightmost hop no trusted proxy wrote: what the client
/// put in `X-Forwarded-For` itself places it nowhere and passes no token's address check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_written_forwarded_for_hop_is_not_believed() {
    let c = cluster(|cfg| {
        cfg.regions.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        cfg.regions.cidrs = vec![
            ferrocast_index::region::CidrRegion { cidr: "198.51.100.0/24".parse().unwrap(), region: "eu".into() },
            ferrocast_index::region::CidrRegion { cidr: "203.0.113.0/24".parse().unwrap(), region: "us".into() },
        ];
        cfg.auth = auth();
    })
    .await;
    let client = reqwest::Client::new();
    let get = |path: String, xff: &'static str| {
        client.get(format!("http://{}{path}", c._idx.addr)).header("x-forwarded-for", xff).send()
    };
    // The client (really at 203.0.113.7) claims 198.51.100.9; the proxy appends what it saw.
    let spoofed = "198.51.100.9, 203.0.113.7";
    let v: serde_json::Value =
        get("/api/v1/play/live/cam1?explain=1".into(), spoofed).await.unwrap().json().await.unwrap();
    assert_eq!((v["viewer"]["ip"].as_str(), v["viewer"]["region"].as_str()), (Some("203.0.113.7"), Some("us")), "{v}");
    // A play token bound to 198.51.100.0/24 does not open the listing for that client.
    let mint = client
        .post(format!("http://{}/api/v1/tokens", c._idx.addr))
        .bearer_auth(ADMIN)
        .body(json!({ "scope": "play", "stream": "live/cam1", "ttl_s": 600, "ip": "198.51.100.0/24" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(mint.status(), 200);
    let token = mint.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let listing = get(format!("/api/v1/streams/live/cam1?token={token}"), spoofed).await.unwrap();
    assert_eq!(listing.status(), 403, "the token's network is not the client's");
    let honest = get(format!("/api/v1/streams/live/cam1?token={token}"), "198.51.100.9").await.unwrap();
    assert_eq!(honest.status(), 200, "the same token from its network is good");
    c.viewer_is_served().await;
}

/// A web page must not drive admin routes: with access control off, a browser's request from the
/// index host is no local admin, and admin answers carry no wildcard CORS header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_refuse_what_a_browser_sends() {
    let c = cluster(|_| {}).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", c._idx.addr);
    let from_page = client.post(url("/api/v1/reload")).header("origin", "http://evil.example").send().await.unwrap();
    assert_eq!(from_page.status(), 403);
    assert!(from_page.headers().get("access-control-allow-origin").is_none(), "{:?}", from_page.headers());
    let navigated = client.get(url("/api/v1/history")).header("sec-fetch-site", "same-origin").send().await.unwrap();
    assert_eq!(navigated.status(), 403, "a page of the index's own origin is a browser too");
    let cli = client.get(url("/api/v1/history")).send().await.unwrap();
    assert_eq!(cli.status(), 200, "a script on the index host is the local admin");
    assert!(cli.headers().get("access-control-allow-origin").is_none(), "admin answers have no CORS");
    let public =
        client.get(url("/api/v1/play/live/cam1")).header("origin", "http://player.example").send().await.unwrap();
    assert_eq!(public.headers()["access-control-allow-origin"], "*", "players on other origins read play answers");
    c.viewer_is_served().await;
}

/// Mints a token as the admin: `{"scope","stream","ttl_s"}`.
async fn mint(c: &Cluster, stream: &str, ttl_s: u64) -> String {
    let resp = reqwest::Client::new()
        .post(format!("http://{}/api/v1/tokens", c._idx.addr))
        .bearer_auth(ADMIN)
        .body(json!({ "scope": "play", "stream": stream, "ttl_s": ttl_s }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_string()
}

/// Reads an SSE answer until the index ends it; returns what it sent.
async fn sse_until_end(mut resp: reqwest::Response) -> String {
    let mut text = String::new();
    let ended = tokio::time::timeout(DEADLINE, async {
        while let Ok(Some(chunk)) = resp.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(ended.is_ok(), "the feed is still open: {text}");
    text
}

/// A revoked token lists nothing and its open feed ends; so does a feed whose token expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_or_expired_token_stops_listing_and_ends_its_feed() {
    let c = cluster(|cfg| cfg.auth = auth()).await;
    let client = reqwest::Client::new();
    let url = |path: String| format!("http://{}{path}", c._idx.addr);
    let token = mint(&c, "live/cam1", 600).await;
    let listing = format!("/api/v1/streams/live/cam1?token={token}");
    assert_eq!(client.get(url(listing.clone())).send().await.unwrap().status(), 200, "a good token lists cam1");
    let feed = client
        .get(url(format!("/api/v1/events?token={token}")))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let revoke = client
        .post(url("/api/v1/tokens/revoke".into()))
        .bearer_auth(ADMIN)
        .body(json!({ "token": token }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    let seen = sse_until_end(feed).await;
    assert!(seen.contains("snapshot"), "the feed ran until the revocation: {seen}");
    assert_eq!(client.get(url(listing)).send().await.unwrap().status(), 403, "a revoked token lists nothing");
    let events = client.get(url(format!("/api/v1/events?token={token}"))).header("accept", "text/event-stream");
    assert_eq!(events.send().await.unwrap().status(), 403, "nor opens a feed");

    let short = mint(&c, "live/cam1", 3).await;
    let feed = client
        .get(url(format!("/api/v1/events?token={short}")))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200, "a token good for 3 s opens a feed");
    let seen = sse_until_end(feed).await;
    assert!(seen.contains("snapshot"), "the feed ends at the token's expiry: {seen}");
    c.viewer_is_served().await;
}

/// Node API URLs are internal: only admins see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_api_urls_are_for_admins_only() {
    let c = cluster(|cfg| cfg.auth = auth()).await;
    let anon = c.api.get_ok("/api/v1/nodes").await.unwrap();
    let nodes = anon["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(nodes.iter().all(|n| n["api"].is_null()), "{anon}");
    let one = c.api.get_ok("/api/v1/nodes/edge1").await.unwrap();
    assert!(one["node"]["api"].is_null(), "{one}");
    let admin = admin_get(&c._idx, "/api/v1/nodes").await;
    assert!(
        admin["nodes"].as_array().unwrap().iter().all(|n| n["api"].as_str().is_some_and(|a| a.starts_with("http://")))
    );
    c.viewer_is_served().await;
}

/// A publisher cannot switch off the replication of its own stream with the forwarded-stream mark:
/// the mark counts only on a stream an origin pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_origin_may_mark_a_stream_forwarded() {
    let backup = FakeNode::start(Docs::generated("b", 1)).await;
    let c = cluster(|cfg| {
        cfg.nodes.push(ferrocast_index::NodeSpec { region: Some("us".into()), ..backup.spec("backup", Role::Origin) })
    })
    .await;
    eventually(DEADLINE, "the backup origin is up", async || {
        let n = c.api.node("backup").await?;
        check(n["health"] == "up", || n.to_string())
    })
    .await;
    let on_forward = |ip: &str| {
        json!({ "action": "on_forward", "server_id": "", "client_id": "c1", "ip": ip, "vhost": "__defaultVhost__",
                "app": "live", "tcUrl": "rtmp://origin.test:1935/live", "stream": "cam9",
                "param": "?ferrocast_forwarded=1" })
        .to_string()
    };
    let (status, v) = c.api.post("/api/v1/hooks", on_forward("203.0.113.50")).await.unwrap();
    assert_eq!(status, 200, "{v}");
    let urls = v["data"]["urls"].as_array().unwrap();
    assert!(
        urls.iter().any(|u| u.as_str().unwrap().starts_with("rtmp://backup.test:1935/live/cam9")),
        "replicated: {v}"
    );
    // Pushed by an origin (the publisher's address is an origin's): no further hop.
    let (_, v) = c.api.post("/api/v1/hooks", on_forward("127.0.0.1")).await.unwrap();
    assert_eq!(v["data"]["urls"], json!([]), "{v}");
    c.viewer_is_served().await;
}

/// A hook for a stream whose name holds a '/' announces nothing under another app's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_a_slash_is_not_announced_as_another_apps_stream() {
    let c = cluster(|_| {}).await;
    let mut sse = reqwest::Client::new()
        .get(format!("http://{}/api/v1/events", c._idx.addr))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let publish = |stream: &str| {
        json!({ "action": "on_publish", "server_id": "vid-x", "client_id": "c1", "ip": "10.0.0.1",
                "vhost": "__defaultVhost__", "app": "live", "tcUrl": "rtmp://origin.test/live", "stream": stream,
                "param": "" })
        .to_string()
    };
    // `live` + `other/x` would make the key `__defaultVhost__/live/other/x`: app `live/other`.
    assert_eq!(c.api.post("/api/v1/hooks", publish("other/x")).await.unwrap().0, 200);
    assert_eq!(c.api.post("/api/v1/hooks", publish("fine")).await.unwrap().0, 200);
    // Events are in order: had the first been announced, it would come before `fine`.
    let mut seen = String::new();
    let got = tokio::time::timeout(DEADLINE, async {
        while let Ok(Some(chunk)) = sse.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("__defaultVhost__/live/fine") {
                return;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "no stream_published for fine: {seen}");
    assert!(!seen.contains("other/x"), "{seen}");
    c.viewer_is_served().await;
}

/// A hostile node's API: `vhosts` (its whole answer), and stream pages that never end (every
/// page full, whatever `start`).
async fn hostile_api(vhosts: bytes::Bytes) -> String {
    use axum::routing::get;
    let summaries = common::sample("origin-summaries.json");
    let page = |q: axum::extract::RawQuery| async move {
        let count: usize =
            q.0.as_deref()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("count=")))
                .and_then(|c| c.parse().ok())
                .unwrap_or(10);
        let start: usize =
            q.0.as_deref()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("start=")))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
        let streams: Vec<serde_json::Value> = (start..start + count)
            .map(|i| {
                json!({ "id": format!("vid-{i}"), "name": format!("p{i}"), "vhost": "vid-x", "app": "endless",
                              "url": format!("/endless/p{i}"), "clients": 1, "kbps": { "recv_30s": 0, "send_30s": 0 },
                              "publish": { "active": true } })
            })
            .collect();
        axum::Json(json!({ "code": 0, "server": "vid-h", "service": "h", "streams": streams }))
    };
    let app = Router::new()
        .route("/api/v1/vhosts/", get(move || async move { ([(header::CONTENT_TYPE, "application/json")], vhosts) }))
        .route(
            "/api/v1/summaries",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], summaries) }),
        )
        .route("/api/v1/streams/", get(page));
    serve(app).await
}

/// Done-when 2 of issue 15: nodes answering endless stream pages or a 30 MB vhost list leave the
/// directory updating for every other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_pages_and_a_30_mb_vhost_list_leave_the_directory_updating() {
    let small = bytes::Bytes::from(r#"{"code":0,"server":"vid-h","vhosts":[]}"#);
    let mut big = String::from(r#"{"code":0,"server":"vid-h","vhosts":["#);
    let mut i = 0;
    while big.len() < 30 << 20 {
        if i > 0 {
            big.push(',');
        }
        big.push_str(&format!(r#"{{"id":"vid-{i:07}","name":"vhost-{i:07}.example","enabled":true}}"#));
        i += 1;
    }
    big.push_str("]}");
    let pages = hostile_api(small).await;
    let vhosts = hostile_api(bytes::Bytes::from(big)).await;
    let c = cluster(|cfg| {
        cfg.poll.page_size = 10;
        for (name, api) in [("pages", pages), ("vhosts", vhosts)] {
            let mut spec = cfg.nodes[1].clone();
            spec.name = name.into();
            spec.api = api;
            cfg.nodes.push(spec);
        }
    })
    .await;
    c.viewer_is_served().await;
    c.directory_follows_edge2_leaving().await;
    let pages = eventually(DEADLINE, "the endless node fails its polls", async || {
        let n = c.api.node("pages").await?;
        check(n["last_error"].is_string(), || n.to_string())?;
        Ok(n)
    })
    .await;
    assert_ne!(pages["health"], "up", "{pages}");
    c.viewer_is_served().await;
}

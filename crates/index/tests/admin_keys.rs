//! Admin API keys and what each caller may see, with the index in process: every admin route
//! refuses a caller without a key and serves one with a key until it is revoked; stream lists keep
//! to what the caller's play token may play; node errors are for admins only.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Api, DEADLINE, Docs, FakeNode, check, config, eventually};
use ferrocast_index::auth::{Action, AuthConfig, KeyConfig};
use ferrocast_index::{IndexConfig, NodeSpec, Role, RunningIndex};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "admin-token-0123456789";

fn auth() -> AuthConfig {
    AuthConfig {
        enabled: true,
        keys: vec![KeyConfig { id: "k1".into(), secret: "a secret of the test index".into() }],
        apps: vec!["live=play:token".parse().unwrap()],
        admin_token: Some(ADMIN_TOKEN.into()),
        hooks_open: true,
        ..AuthConfig::default()
    }
}

/// An index whose reload reads `next` (so `POST /api/v1/reload` can succeed).
async fn start(
    db: &tempfile::TempDir,
    nodes: Vec<NodeSpec>,
    auth: AuthConfig,
) -> (RunningIndex, Arc<Mutex<IndexConfig>>) {
    let cfg = IndexConfig { auth, ..config(&db.path().join("index.db"), nodes) };
    let next = Arc::new(Mutex::new(cfg.clone()));
    let source = next.clone();
    let loader: ferrocast_index::ConfigLoader = Box::new(move || Ok(source.lock().unwrap().clone()));
    (RunningIndex::start(cfg, Some(loader)).await.unwrap(), next)
}

/// How a request presents itself.
#[derive(Clone, Copy)]
enum Cred<'a> {
    None,
    Bearer(&'a str),
    ApiKey(&'a str),
    /// No credential, relayed by a proxy on this machine.
    Proxied,
}

/// `method path` with `cred`: (status, JSON answer).
async fn call(idx: &RunningIndex, method: &str, path: &str, cred: Cred<'_>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("http://{}{path}", idx.addr);
    let mut req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    if path == "/api/v1/tokens" {
        req = req.json(&json!({ "scope": "play", "stream": "live/cam1", "ttl_s": 60 }));
    }
    req = match cred {
        Cred::None => req,
        Cred::Bearer(b) => req.bearer_auth(b),
        Cred::ApiKey(k) => req.header("X-Api-Key", k),
        Cred::Proxied => req.header("X-Forwarded-For", "203.0.113.9"),
    };
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}")))
}

/// Every admin route, as (method, path).
const ADMIN_ROUTES: [(&str, &str); 4] = [
    ("POST", "/api/v1/tokens"),
    ("POST", "/api/v1/reload"),
    ("GET", "/api/v1/history"),
    ("GET", "/api/v1/publish/live/cam1"),
];

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_a_key_until_it_is_revoked() {
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let db = tempfile::tempdir().unwrap();
    let (idx, _) = start(&db, vec![origin.spec("origin", Role::Origin)], auth()).await;
    let api = Api::new(&idx);
    eventually(DEADLINE, "the origin up", async || {
        let n = api.node("origin").await?;
        check(n["health"] == "up", || n.to_string())
    })
    .await;
    let play = idx.state.auth.load().mint(Action::Play, "live/cam1", Duration::from_secs(60), None).unwrap();

    for (method, path) in ADMIN_ROUTES {
        for cred in [Cred::None, Cred::Bearer("fc_000000000000_nope"), Cred::Bearer(&play), Cred::ApiKey("junk")] {
            let (status, v) = call(&idx, method, path, cred).await;
            assert_eq!(status, 401, "{method} {path}: {v}");
            assert!(error_of(&v).contains("ferrocast index keys create"), "{method} {path}: {v}");
        }
    }

    let (id, key) = idx.state.store.create_key("ops").await.unwrap();
    for (method, path) in ADMIN_ROUTES {
        for cred in [Cred::Bearer(&key), Cred::ApiKey(&key), Cred::Bearer(ADMIN_TOKEN)] {
            let (status, v) = call(&idx, method, path, cred).await;
            assert_eq!((status, v["code"].as_i64()), (200, Some(0)), "{method} {path}: {v}");
        }
    }
    // The publish URL an admin gets carries a fresh publish token.
    let (_, v) = call(&idx, "GET", "/api/v1/publish/live/cam1", Cred::Bearer(&key)).await;
    let url = v["url"].as_str().unwrap();
    let token = url.split_once("?token=").map(|(_, t)| t).unwrap_or_else(|| panic!("no token in {v}"));
    assert_eq!(idx.state.auth.load().verify(token).unwrap().scope, Action::Publish);
    idx.state.store.flush().await.unwrap();
    let listed = idx.state.store.list_keys().await.unwrap();
    assert!(listed[0].last_used_ms.is_some(), "{listed:?}");

    assert!(idx.state.store.revoke_key(&id).await.unwrap().is_some());
    for (method, path) in ADMIN_ROUTES {
        let (status, v) = call(&idx, method, path, Cred::Bearer(&key)).await;
        assert_eq!(status, 401, "{method} {path} after the revocation: {v}");
        assert!(error_of(&v).contains("revoked"), "{v}");
    }
    // The bootstrap token is not tied to the store.
    assert_eq!(call(&idx, "GET", "/api/v1/history", Cred::Bearer(ADMIN_TOKEN)).await.0, 200);
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_off_admin_routes_are_open_to_local_callers_only() {
    let db = tempfile::tempdir().unwrap();
    let (idx, _) = start(&db, vec![], AuthConfig::default()).await;
    for (method, path) in [("POST", "/api/v1/reload"), ("GET", "/api/v1/history")] {
        assert_eq!(call(&idx, method, path, Cred::None).await.0, 200, "{method} {path} from 127.0.0.1");
        let (status, v) = call(&idx, method, path, Cred::Proxied).await;
        assert_eq!(status, 401, "{method} {path} through a proxy: {v}");
        assert!(error_of(&v).contains("auth.enabled = false") && error_of(&v).contains("127.0.0.1"), "{v}");
        assert!(error_of(&v).contains("ferrocast index keys create"), "{v}");
    }
    let (_, key) = idx.state.store.create_key("remote ops").await.unwrap();
    let resp = reqwest::Client::new()
        .get(format!("http://{}/api/v1/history", idx.addr))
        .header("X-Forwarded-For", "203.0.113.9")
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "a key opens admin routes from anywhere");
    idx.shutdown().await;
}

/// The stream keys a caller sees on `path`.
async fn seen(idx: &RunningIndex, path: &str, cred: Cred<'_>) -> Vec<String> {
    let (status, v) = call(idx, "GET", path, cred).await;
    assert_eq!(status, 200, "{path}: {v}");
    let keys: Vec<String> =
        v["streams"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap().to_string()).collect();
    assert_eq!(v["total"].as_u64(), Some(keys.len() as u64), "total counts what the caller sees: {v}");
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_lists_keep_to_what_the_play_token_may_play() {
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let db = tempfile::tempdir().unwrap();
    let (idx, next) = start(&db, vec![origin.spec("origin", Role::Origin)], auth()).await;
    let (_, key) = idx.state.store.create_key("ops").await.unwrap();
    let cam1 = vec!["__defaultVhost__/live/cam1".to_string()];
    eventually(DEADLINE, "cam1 in the directory", async || {
        let v = call(&idx, "GET", "/api/v1/streams", Cred::ApiKey(&key)).await.1;
        check(v["total"] == 1, || v.to_string())
    })
    .await;
    let mint =
        |pattern: &str| idx.state.auth.load().mint(Action::Play, pattern, Duration::from_secs(60), None).unwrap();
    let (mine, app, other) = (mint("live/cam1"), mint("live/*"), mint("live/other"));

    for list in ["/api/v1/streams", "/api/streams"] {
        assert!(seen(&idx, list, Cred::None).await.is_empty(), "{list}: live plays with a token only");
        assert_eq!(seen(&idx, &format!("{list}?token={mine}"), Cred::None).await, cam1);
        assert_eq!(seen(&idx, list, Cred::Bearer(&app)).await, cam1, "{list}: a bearer play token counts too");
        assert!(seen(&idx, list, Cred::Bearer(&other)).await.is_empty());
        assert_eq!(seen(&idx, list, Cred::Bearer(&key)).await, cam1, "{list}: an admin sees everything");
    }
    let one = "/api/v1/streams/live/cam1";
    let (status, v) = call(&idx, "GET", one, Cred::None).await;
    assert!(status == 401 && error_of(&v).contains("token"), "{v}");
    let (status, v) = call(&idx, "GET", &format!("{one}?token={other}"), Cred::None).await;
    assert!(status == 403 && error_of(&v).contains("live/other"), "{v}");
    assert_eq!(call(&idx, "GET", &format!("{one}.flv?token={mine}"), Cred::None).await.0, 200);
    assert_eq!(call(&idx, "GET", one, Cred::ApiKey(&key)).await.0, 200);
    // Not live and not allowed reads the same as live and not allowed: nothing leaks.
    assert_eq!(call(&idx, "GET", "/api/v1/streams/live/ghost", Cred::None).await.0, 401);
    let (status, v) = call(&idx, "GET", "/api/v1/streams", Cred::Bearer("fc_000000000000_nope")).await;
    assert!(status == 401 && error_of(&v).contains("revoked"), "a wrong key is refused, not ignored: {v}");

    // The charts' history: nodes for all, the stream for whoever may see it.
    let history = eventually(DEADLINE, "a sample with cam1", async || {
        let (status, v) = call(&idx, "GET", "/api/v1/stats/history", Cred::ApiKey(&key)).await;
        check(status == 200 && v["streams"]["live/cam1"]["viewers"].as_array().is_some(), || v.to_string())?;
        Ok(v)
    })
    .await;
    let points = history["times"].as_array().map_or(0, Vec::len);
    assert!(points >= 1 && history["nodes"]["origin"]["viewers"].as_array().map(Vec::len) == Some(points), "{history}");
    let anonymous = call(&idx, "GET", "/api/v1/stats/history", Cred::None).await.1;
    assert!(anonymous["nodes"]["origin"].is_object() && anonymous["streams"] == json!({}), "{anonymous}");
    let with_token = call(&idx, "GET", &format!("/api/v1/stats/history?token={mine}"), Cred::None).await.1;
    assert!(with_token["streams"]["live/cam1"].is_object(), "{with_token}");

    // Apps whose play is open are visible to all.
    next.lock().unwrap().auth.apps = vec!["live=play:open".parse().unwrap()];
    idx.state.reload().unwrap();
    assert_eq!(seen(&idx, "/api/v1/streams", Cred::None).await, cam1);
    assert_eq!(seen(&idx, "/api/v1/streams", Cred::Bearer(&other)).await, cam1);
    assert_eq!(call(&idx, "GET", one, Cred::None).await.0, 200);
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_errors_are_shown_to_admins_only() {
    // A node whose API port refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = NodeSpec {
        name: "dead".into(),
        role: Role::Edge,
        api: format!("http://127.0.0.1:{port}"),
        rtmp: None,
        http: None,
        region: None,
        weight: 1.0,
        max_viewers: None,
        max_mbps: None,
        api_token: None,
        dns_address: None,
        max_streams: None,
        max_mbps_in: None,
    };
    let db = tempfile::tempdir().unwrap();
    let (idx, _) = start(&db, vec![dead], auth()).await;
    let (_, key) = idx.state.store.create_key("ops").await.unwrap();
    let full = eventually(DEADLINE, "dead down with an error", async || {
        let (_, v) = call(&idx, "GET", "/api/v1/nodes/dead", Cred::ApiKey(&key)).await;
        let n = v["node"].clone();
        check(n["health"] == "down" && n["last_error"].is_string(), || v.to_string()).map(|()| n)
    })
    .await;
    assert!(full["last_error"].as_str().unwrap().contains(&port.to_string()), "admins see the detail: {full}");

    let (status, v) = call(&idx, "GET", "/api/v1/nodes", Cred::None).await;
    assert_eq!(status, 200, "the node list stays public: {v}");
    assert_eq!(v["nodes"][0]["last_error"], "unreachable", "{v}");
    assert_eq!(v["nodes"][0]["health"], "down", "{v}");
    let play = idx.state.auth.load().mint(Action::Play, "live/*", Duration::from_secs(60), None).unwrap();
    let (_, v) = call(&idx, "GET", "/api/v1/nodes/dead", Cred::Bearer(&play)).await;
    assert_eq!(v["node"]["last_error"], "unreachable", "a play token is no admin: {v}");
    let (_, v) = call(&idx, "GET", "/api/v1/nodes", Cred::Bearer(ADMIN_TOKEN)).await;
    assert_eq!(v["nodes"][0]["last_error"], full["last_error"], "{v}");
    idx.shutdown().await;
}

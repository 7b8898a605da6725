//! Access control through the hook receiver, with the index in process and the hook bodies a real
//! SRS 7 cluster sent (`../shared/srs-samples/hooks.jsonl`), tokens put into their `param`: what
//! the nodes of a site with tokens rely on. Also the token-minting route, token-filtered stream
//! lists and the tokens in the scheduler's URLs.

mod common;

use std::time::Duration;

use common::{Api, DEADLINE, Docs, FakeNode, check, config, eventually, samples_dir};
use ferrocast_index::auth::{Action, AuthConfig, KeyConfig, now_secs};
use ferrocast_index::events::EventKind;
use ferrocast_index::{IndexConfig, Role, RunningIndex};
use serde_json::{Value, json};

const HOOK_SECRET: &str = "hook-secret-0123456789";
const ADMIN: &str = "admin-token-0123456789";

fn auth() -> AuthConfig {
    AuthConfig {
        enabled: true,
        keys: vec![KeyConfig { id: "k1".into(), secret: "a secret of the test index".into() }],
        apps: vec!["live=play:token".parse().unwrap()],
        hook_secret: Some(HOOK_SECRET.into()),
        admin_token: Some(ADMIN.into()),
        ..AuthConfig::default()
    }
}

async fn start(db: &tempfile::TempDir, nodes: Vec<ferrocast_index::NodeSpec>, auth: AuthConfig) -> RunningIndex {
    let cfg = IndexConfig { auth, ..config(&db.path().join("index.db"), nodes) };
    RunningIndex::start(cfg, None).await.unwrap()
}

/// The captured hook bodies with this `action`.
fn captured(action: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(samples_dir().join("hooks.jsonl")).expect("hooks.jsonl");
    let all: Vec<Value> =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
    all.into_iter().filter(|b| b["action"] == action).collect()
}

/// A captured body for `action` on `stream` (as a player names it) with `param`.
fn body(action: &str, stream: &str, param: &str) -> Value {
    let mut b = captured(action).into_iter().next().unwrap_or_else(|| panic!("no {action} in hooks.jsonl"));
    b["stream"] = json!(stream);
    b["param"] = json!(param);
    b
}

/// Posts a hook body as a node configured with `secret` would: (HTTP status, answer).
async fn hook(api: &Api, b: &Value, secret: Option<&str>) -> (u16, Value) {
    let path = match secret {
        Some(s) => format!("/api/v1/hooks?secret={s}"),
        None => "/api/v1/hooks".to_string(),
    };
    api.post(&path, b.to_string()).await.unwrap()
}

fn mint(idx: &RunningIndex, scope: Action, pattern: &str) -> String {
    idx.state.auth.load().mint(scope, pattern, Duration::from_secs(600), None).unwrap()
}

/// SRS's rule: allowed only on HTTP 200/201 with the integer code 0.
fn allowed(answer: &(u16, Value)) -> bool {
    (answer.0 == 200 || answer.0 == 201) && answer.1["code"].as_i64() == Some(0)
}

fn msg(answer: &(u16, Value)) -> String {
    answer.1["msg"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_needs_a_valid_publish_token() {
    let db = tempfile::tempdir().unwrap();
    let idx = start(&db, vec![], auth()).await;
    let api = Api::new(&idx);
    let secret = Some(HOOK_SECRET);

    let none = hook(&api, &body("on_publish", "cam1", ""), secret).await;
    assert!(!allowed(&none), "{none:?}");
    assert_eq!((none.0, none.1["code"].as_i64()), (200, Some(403)), "SRS's way: 200 with a non-zero code");
    assert!(msg(&none).contains("needs a token"), "{none:?}");
    // The captured param `?token=abc` is not a token of this index.
    let junk = hook(&api, &body("on_publish", "cam1", "?token=abc"), secret).await;
    assert!(!allowed(&junk) && msg(&junk).contains("malformed"), "{junk:?}");

    let expired = idx.state.auth.load().mint_until(Action::Publish, "live/cam1", now_secs() - 10, None).unwrap();
    let old = hook(&api, &body("on_publish", "cam1", &format!("?token={expired}")), secret).await;
    assert!(!allowed(&old) && msg(&old).contains("expired"), "{old:?}");

    let play = mint(&idx, Action::Play, "live/cam1");
    let wrong = hook(&api, &body("on_publish", "cam1", &format!("?token={play}")), secret).await;
    assert!(!allowed(&wrong) && msg(&wrong).contains("play token cannot publish"), "{wrong:?}");

    let other = mint(&idx, Action::Publish, "live/other");
    let uncovered = hook(&api, &body("on_publish", "cam1", &format!("?token={other}")), secret).await;
    assert!(!allowed(&uncovered) && msg(&uncovered).contains("not live/cam1"), "{uncovered:?}");

    let bound = idx.state.auth.load().mint(
        Action::Publish,
        "live/cam1",
        Duration::from_secs(60),
        Some("10.0.0.0/8".parse().unwrap()),
    );
    let away = hook(&api, &body("on_publish", "cam1", &format!("?token={}", bound.unwrap())), secret).await;
    assert!(!allowed(&away) && msg(&away).contains("address not allowed"), "the hook's ip is 127.0.0.1: {away:?}");

    let (_, mut rx) = idx.state.events.resume(idx.state.events.last_id()).unwrap();
    let publish = mint(&idx, Action::Publish, "live/*");
    let ok =
        hook(&api, &body("on_publish", "cam1", &format!("?vhost=__defaultVhost__&token={publish}&x=1")), secret).await;
    assert!(allowed(&ok), "{ok:?}");
    assert_eq!(ok.1, json!({ "code": 0 }));

    // The accepted publish is an event at once.
    let e = tokio::time::timeout(DEADLINE, rx.recv()).await.expect("an event").unwrap();
    assert_eq!((e.kind, e.stream.as_deref()), (EventKind::StreamPublished, Some("__defaultVhost__/live/cam1")));
    let data = e.data();
    assert_eq!(data["node"], "vid-5i8r3y9", "the hook's server_id: {data}");
    assert_eq!((data["source"].as_str(), data["client_id"].as_str()), (Some("hook"), Some("s20rw848")));
    let mut unpublish = body("on_publish", "cam1", "");
    unpublish["action"] = json!("on_unpublish");
    assert!(allowed(&hook(&api, &unpublish, secret).await));
    let e = tokio::time::timeout(DEADLINE, rx.recv()).await.expect("an event").unwrap();
    assert_eq!((e.kind, e.stream.as_deref()), (EventKind::StreamUnpublished, Some("__defaultVhost__/live/cam1")));
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_token_plays_its_stream_only() {
    let db = tempfile::tempdir().unwrap();
    let idx = start(&db, vec![], auth()).await;
    let api = Api::new(&idx);
    let secret = Some(HOOK_SECRET);
    let token = mint(&idx, Action::Play, "live/a");
    let param = format!("?token={token}");

    // HTTP-FLV players name the stream with its extension.
    assert!(allowed(&hook(&api, &body("on_play", "a.flv", &param), secret).await));
    assert!(allowed(&hook(&api, &body("on_play", "a", &param), secret).await));
    let b = hook(&api, &body("on_play", "b", &param), secret).await;
    assert!(!allowed(&b) && msg(&b).contains("not live/b"), "{b:?}");
    let none = hook(&api, &body("on_play", "a", ""), secret).await;
    assert!(!allowed(&none), "play of app live needs a token: {none:?}");
    // Every other hook of the captures is answered with code 0.
    for action in ["on_stop", "on_connect", "on_close"] {
        let mut b = body("on_play", "a", "");
        b["action"] = json!(action);
        assert!(allowed(&hook(&api, &b, secret).await), "{action}");
    }
    let mut fwd = body("on_publish", "a", "");
    fwd["action"] = json!("on_forward");
    assert_eq!(hook(&api, &fwd, secret).await.1, json!({ "code": 0, "data": { "urls": [] } }));
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_known_nodes_may_call_the_hooks() {
    let db = tempfile::tempdir().unwrap();
    let idx = start(&db, vec![], auth()).await;
    let api = Api::new(&idx);
    let publish = mint(&idx, Action::Publish, "live/cam1");
    let b = body("on_publish", "cam1", &format!("?token={publish}"));
    let missing = hook(&api, &b, None).await;
    assert_eq!(missing.0, 403, "{missing:?}");
    assert!(msg(&missing).contains("?secret="), "{missing:?}");
    assert_eq!(hook(&api, &b, Some("hook-secret-0123456780")).await.0, 403);
    assert!(allowed(&hook(&api, &b, Some(HOOK_SECRET)).await));
    assert_eq!(api.post("/api/v1/hooks?secret=hook-secret-0123456789", "not json").await.unwrap().0, 400);
    idx.shutdown().await;

    // A CIDR list that does not hold the caller (127.0.0.1).
    let db = tempfile::tempdir().unwrap();
    let idx = start(&db, vec![], AuthConfig { hook_allow: vec!["10.0.0.0/8".parse().unwrap()], ..auth() }).await;
    let api = Api::new(&idx);
    let far = hook(&api, &b, Some(HOOK_SECRET)).await;
    assert_eq!(far.0, 403, "{far:?}");
    assert!(msg(&far).contains("hook_allow"), "{far:?}");
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_off_hooks_allow_everyone() {
    let db = tempfile::tempdir().unwrap();
    let idx = start(&db, vec![], AuthConfig::default()).await;
    let api = Api::new(&idx);
    for line in ["on_publish", "on_play", "on_stop"] {
        for b in captured(line) {
            assert!(allowed(&hook(&api, &b, None).await), "{b}");
        }
    }
    idx.shutdown().await;
}

/// POSTs JSON with an optional bearer: (status, answer).
async fn post_bearer(idx: &RunningIndex, path: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("http://{}{path}", idx.addr)).json(&body);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_mints_tokens_over_the_api() {
    let db = tempfile::tempdir().unwrap();
    let idx = start(&db, vec![], auth()).await;
    let req = json!({ "scope": "play", "stream": "live/cam1", "ttl_s": 60, "ip": "10.1.0.0/16" });
    assert_eq!(post_bearer(&idx, "/api/v1/tokens", None, req.clone()).await.0, 401);
    assert_eq!(post_bearer(&idx, "/api/v1/tokens", Some("wrong-token-0123456789"), req.clone()).await.0, 401);
    let (status, v) = post_bearer(&idx, "/api/v1/tokens", Some(ADMIN), req).await;
    assert_eq!((status, v["code"].as_i64()), (200, Some(0)), "{v}");
    let expires = v["expires"].as_u64().unwrap();
    assert!(expires.abs_diff(now_secs() + 60) <= 5, "{v}");
    let claims = idx.state.auth.load().verify(v["token"].as_str().unwrap()).unwrap();
    assert_eq!((claims.scope, claims.pattern.to_string(), claims.expires), (Action::Play, "live/cam1".into(), expires));
    assert_eq!(claims.ip, Some("10.1.0.0/16".parse().unwrap()));
    let bad = json!({ "scope": "watch", "stream": "live/cam1", "ttl_s": 60 });
    let (status, v) = post_bearer(&idx, "/api/v1/tokens", Some(ADMIN), bad).await;
    assert_eq!(status, 400, "{v}");
    let bad = json!({ "scope": "play", "stream": "cam1", "ttl_s": 60 });
    let (status, v) = post_bearer(&idx, "/api/v1/tokens", Some(ADMIN), bad).await;
    assert!(status == 400 && v["error"].as_str().unwrap().contains("app/stream"), "{v}");
    idx.shutdown().await;

    // Without an admin token configured, only API keys open the route, and the answer says how
    // to make one.
    let db = tempfile::tempdir().unwrap();
    let idx = start(&db, vec![], AuthConfig { admin_token: None, ..auth() }).await;
    let req = json!({ "scope": "play", "stream": "live/cam1", "ttl_s": 60 });
    let (status, v) = post_bearer(&idx, "/api/v1/tokens", Some(ADMIN), req).await;
    assert!(status == 401 && v["error"].as_str().unwrap().contains("ferrocast index keys create"), "{v}");
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_token_sees_only_its_streams_and_scheduler_urls_carry_tokens() {
    let origin = FakeNode::start(Docs::captured("origin")).await;
    let edge = FakeNode::start(Docs::captured("edge1")).await;
    let db = tempfile::tempdir().unwrap();
    let nodes = vec![origin.spec("origin", Role::Origin), edge.spec("edge1", Role::Edge)];
    let idx = start(&db, nodes, auth()).await;
    let api = Api::new(&idx);
    let app = mint(&idx, Action::Play, "live/*");
    eventually(DEADLINE, "cam1 listed with its origin", async || {
        let v = api.get_ok(&format!("/api/v1/streams?token={app}")).await?;
        check(v["total"] == 1 && v["streams"][0]["origin"] == "origin", || v.to_string())
    })
    .await;
    // Playing live needs a token: without one, its streams are not listed.
    assert_eq!(api.get_ok("/api/v1/streams").await.unwrap()["total"], 0);

    let cam1 = mint(&idx, Action::Play, "live/cam1");
    let v = api.get_ok(&format!("/api/v1/streams?token={cam1}")).await.unwrap();
    assert_eq!(v["total"], 1, "{v}");
    let other = mint(&idx, Action::Play, "live/other");
    assert_eq!(api.get_ok(&format!("/api/v1/streams?token={other}")).await.unwrap()["total"], 0);
    let (status, v) = api.get(&format!("/api/v1/streams/live/cam1?token={other}")).await.unwrap();
    assert_eq!(status, 403, "{v}");
    let publish = mint(&idx, Action::Publish, "live/cam1");
    let (status, v) = api.get(&format!("/api/v1/streams?token={publish}")).await.unwrap();
    assert!(status == 403 && v["error"].as_str().unwrap().contains("scope"), "{v}");

    // Play URLs carry a fresh play token for the app's streams; a viewer's own token goes on as is.
    let play = api.get_ok("/api/v1/play/live/cam1?proto=flv").await.unwrap();
    let url = play["url"].as_str().unwrap();
    let token = url.split_once("?token=").map(|(_, t)| t).unwrap_or_else(|| panic!("no token in {url}"));
    let claims = idx.state.auth.load().verify(token).unwrap();
    assert_eq!((claims.scope, claims.pattern.to_string()), (Action::Play, "live/cam1".to_string()));
    assert!(play["alternatives"].as_array().unwrap().iter().all(|a| a["url"].as_str().unwrap().contains("token=")));
    let own = api.get_ok(&format!("/api/v1/play/live/cam1?proto=rtmp&token={cam1}")).await.unwrap();
    assert!(own["url"].as_str().unwrap().ends_with(&format!("/live/cam1?token={cam1}")), "{own}");
    let open = api.get_ok("/api/v1/play/vod/cam1?proto=flv").await.unwrap();
    assert!(!open["url"].as_str().unwrap().contains("token"), "vod plays open: {open}");

    // Publish URLs: a fresh token only for the admin; others bring theirs.
    let (status, v) = api.get("/api/v1/publish/live/cam2").await.unwrap();
    assert!(status == 401 && v["error"].as_str().unwrap().contains("--scope publish --stream live/cam2"), "{v}");
    let theirs = mint(&idx, Action::Publish, "live/cam2");
    let v = api.get_ok(&format!("/api/v1/publish/live/cam2?token={theirs}")).await.unwrap();
    assert!(v["url"].as_str().unwrap().ends_with(&format!("/live/cam2?token={theirs}")), "{v}");
    let resp = reqwest::Client::new()
        .get(format!("http://{}/api/v1/publish/live/cam2", idx.addr))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    let url = v["url"].as_str().unwrap();
    let token = url.split_once("?token=").map(|(_, t)| t).unwrap_or_else(|| panic!("no token in {v}"));
    assert_eq!(idx.state.auth.load().verify(token).unwrap().scope, Action::Publish);
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_on_reload_without_a_restart() {
    let db = tempfile::tempdir().unwrap();
    let base = IndexConfig { auth: auth(), ..config(&db.path().join("index.db"), vec![]) };
    let next = std::sync::Arc::new(std::sync::Mutex::new(base.clone()));
    let source = next.clone();
    let loader: ferrocast_index::ConfigLoader = Box::new(move || Ok(source.lock().unwrap().clone()));
    let idx = RunningIndex::start(base.clone(), Some(loader)).await.unwrap();
    let api = Api::new(&idx);
    let old = mint(&idx, Action::Publish, "live/cam1");

    // The new key signs; tokens of the old one still verify while it is listed.
    let mut rotated = base.auth.clone();
    rotated.keys.push(KeyConfig { id: "k2".into(), secret: "the next secret of the index".into() });
    rotated.sign_with = Some("k2".into());
    next.lock().unwrap().auth = rotated.clone();
    idx.state.reload().unwrap();
    let new = mint(&idx, Action::Publish, "live/cam1");
    assert!(new.starts_with("k2."), "{new}");
    for token in [&old, &new] {
        let b = body("on_publish", "cam1", &format!("?token={token}"));
        assert!(allowed(&hook(&api, &b, Some(HOOK_SECRET)).await), "{token}");
    }
    // The old key removed: its tokens are refused, the new ones still work.
    rotated.keys.retain(|k| k.id == "k2");
    next.lock().unwrap().auth = rotated;
    idx.state.reload().unwrap();
    let gone = hook(&api, &body("on_publish", "cam1", &format!("?token={old}")), Some(HOOK_SECRET)).await;
    assert!(!allowed(&gone) && msg(&gone).contains("unknown key id \"k1\""), "{gone:?}");
    assert!(allowed(&hook(&api, &body("on_publish", "cam1", &format!("?token={new}")), Some(HOOK_SECRET)).await));
    // A bad auth section is refused and the running one stays.
    next.lock().unwrap().auth.sign_with = Some("k9".into());
    assert!(idx.state.reload().unwrap_err().contains("k9"));
    assert!(mint(&idx, Action::Play, "live/cam1").starts_with("k2."));
    idx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_listeners_see_only_what_their_token_may_see() {
    use ferrocast_index::http::admin::AdminKey;
    use ferrocast_index::http::caller::Caller;
    use ferrocast_index::http::events::feed::{Feed, Filter};

    let db = tempfile::tempdir().unwrap();
    let idx = start(&db, vec![], auth()).await;
    let api = Api::new(&idx);
    // A bad token is refused, as on the stream routes, rather than silently shown less.
    let (status, _) = api.get_text("/api/v1/events?token=not.a.token").await.unwrap();
    assert_eq!(status, 403);

    let cam1 = idx.state.auth.load().verify(&mint(&idx, Action::Play, "live/cam1")).unwrap();
    let open = |caller| Feed::open(idx.state.clone(), Filter::default(), caller, None);
    let mut anonymous = open(Caller::Viewer(None));
    let mut viewer = open(Caller::Viewer(Some(cam1)));
    let mut admin = open(Caller::Admin(AdminKey::Bootstrap));
    for feed in [&mut anonymous, &mut viewer, &mut admin] {
        assert_eq!(feed.next().await.unwrap().kind, "snapshot");
    }
    let bus = &idx.state.events;
    let published = |key: &str| bus.publish(EventKind::StreamPublished, Some(key), json!({ "key": key })).id;
    let secret_cam = published("__defaultVhost__/live/cam1");
    let secret_other = published("__defaultVhost__/live/other");
    let open_app = published("__defaultVhost__/open/cam1");
    let down = bus
        .publish(
            EventKind::NodeDown,
            None,
            json!({ "name": "e1", "reason": "refused: http://10.1.2.3:1985/api/v1/streams/" }),
        )
        .id;

    async fn next(feed: &mut Feed) -> (u64, Value) {
        let out = tokio::time::timeout(DEADLINE, feed.next()).await.expect("an event in time").expect("open");
        (out.id.unwrap(), serde_json::from_str(out.json.as_str()).unwrap())
    }
    // `live` needs a play token: its events go to tokens that may play the stream, and to admins.
    assert_eq!(next(&mut anonymous).await.0, open_app);
    let (id, node) = next(&mut anonymous).await;
    assert_eq!(id, down);
    assert_eq!(node["data"], json!({ "name": "e1" }), "the failure reason is for admins only");
    assert_eq!(next(&mut viewer).await.0, secret_cam);
    assert_eq!(next(&mut viewer).await.0, open_app);
    assert!(next(&mut viewer).await.1["data"].get("reason").is_none());
    let ids = [next(&mut admin).await.0, next(&mut admin).await.0, next(&mut admin).await.0];
    assert_eq!(ids, [secret_cam, secret_other, open_app]);
    assert!(next(&mut admin).await.1["data"]["reason"].as_str().unwrap().contains("10.1.2.3"));
}

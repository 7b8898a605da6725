//! Tests of the hooks client against a real local hook service.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::*;

/// One call the hook service received.
#[derive(Clone, Debug)]
struct Call {
    /// Path and query.
    uri: String,
    user_agent: String,
    content_type: String,
    body: Value,
}

#[derive(Clone, Default)]
struct Service {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Service {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn paths(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.uri).collect()
    }
}

/// `/auth` answers by the token in `param`, `/deny` always refuses, `/allow` answers `0`.
async fn hook(State(service): State<Service>, uri: Uri, headers: HeaderMap, body: String) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let answer = match uri.path() {
        "/auth" if body["param"] == "?token=good" => r#"{"code":0}"#,
        "/auth" => r#"{"code":403,"msg":"bad token"}"#,
        "/deny" => r#"{"code":1}"#,
        _ => "0",
    };
    let call = Call {
        uri: uri.path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_default(),
        user_agent: header("user-agent"),
        content_type: header("content-type"),
        body,
    };
    service.calls.lock().unwrap().push(call);
    answer.to_owned()
}

async fn hook_service() -> (Service, SocketAddr) {
    let service = Service::default();
    let app = Router::new().fallback(hook).with_state(service.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (service, addr)
}

/// A TCP server that accepts and then does `then` with each socket.
async fn tcp_server(garbage: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            if garbage {
                let _ = socket.write_all(b"not http at all\r\n\r\n").await;
            } else {
                held.push(socket); // never answers
            }
        }
    });
    addr
}

fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn publish_ctx(param: &str) -> HookContext {
    HookContext {
        client_id: "s20rw848".into(),
        ip: "127.0.0.1".into(),
        vhost: "__defaultVhost__".into(),
        app: "live".into(),
        tc_url: "rtmp://127.0.0.1:19350/live".into(),
        stream: "cam1".into(),
        param: param.into(),
        stream_url: "/live/cam1".into(),
        stream_id: Some("vid-948bt92".into()),
        ..HookContext::default()
    }
}

fn hooks(config: HooksConfig) -> Hooks {
    Hooks::new(config, "vid-5i8r3y9".into(), "584128l7".into())
}

#[tokio::test]
async fn check_allows_and_refuses_by_token() {
    let (service, addr) = hook_service().await;
    let url = format!("http://{addr}/auth?secret=s3");
    let h = hooks(HooksConfig { on_publish: vec![url.clone()], ..HooksConfig::default() });

    h.check(HookAction::Publish, &publish_ctx("?token=good")).await.unwrap();
    let err = h.check(HookAction::Publish, &publish_ctx("?token=bad")).await.unwrap_err();
    match &err {
        HookError::Refused { action, url, reason } => {
            assert_eq!(*action, "on_publish");
            assert!(!url.contains("s3"), "the shared secret is redacted: {url}");
            assert!(reason.contains("403") && reason.contains("bad token"), "{reason}");
        }
        other => panic!("want Refused, got {other:?}"),
    }

    let calls = service.calls();
    assert_eq!(calls.len(), 2);
    let first = &calls[0];
    assert_eq!(first.uri, "/auth?secret=s3", "the configured query string is kept");
    assert_eq!(first.content_type, "application/json");
    assert_eq!(first.user_agent, format!("Ferrocast/{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(first.body, body(HookAction::Publish, "vid-5i8r3y9", "584128l7", &publish_ctx("?token=good")));
    // Other events have no URL: nothing is called, everything is allowed.
    assert!(!h.enabled(HookAction::Play));
    h.check(HookAction::Play, &publish_ctx("?token=bad")).await.unwrap();
    assert_eq!(service.calls().len(), 2);
}

#[tokio::test]
async fn several_urls_first_refusal_wins() {
    let (service, addr) = hook_service().await;
    let url = |path: &str| format!("http://{addr}{path}");
    let h = hooks(HooksConfig { on_play: vec![url("/auth"), url("/deny"), url("/allow")], ..HooksConfig::default() });
    let err = h.check(HookAction::Play, &publish_ctx("?token=good")).await.unwrap_err();
    assert!(matches!(&err, HookError::Refused { url, .. } if url.ends_with("/deny")), "{err}");
    assert_eq!(service.paths(), ["/auth", "/deny"], "URLs after the refusal are not called");

    let h = hooks(HooksConfig { on_play: vec![url("/auth"), url("/allow")], ..HooksConfig::default() });
    h.check(HookAction::Play, &publish_ctx("?token=good")).await.unwrap();
    assert_eq!(service.paths(), ["/auth", "/deny", "/auth", "/allow"], "all are called when all allow");
}

#[test]
fn answer_rule_matches_srs() {
    let table: &[(u16, &str, bool)] = &[
        (200, "0", true),
        (201, r#"{"code":0}"#, true),
        (200, r#"{"code":0,"msg":"x"}"#, true),
        (200, " {\"code\":0}\n", true),
        (200, "0\n", false),
        (200, " 0", false),
        (200, "1", false),
        (200, r#"{"code":"0"}"#, false),
        (200, r#"{"code":0.0}"#, false),
        (200, r#"{"code":403}"#, false),
        (200, "{}", false),
        (200, "[0]", false),
        (500, r#"{"code":0}"#, false),
        (302, "0", false),
        (200, "", false),
        (200, "<html>garbage</html>", false),
        (200, "ok", false),
    ];
    for &(status, body, allows) in table {
        assert_eq!(answer_allows(status, body).is_ok(), allows, "{status} {body:?}: {:?}", answer_allows(status, body));
    }
}

#[tokio::test]
async fn unreachable_refuses_unless_allow_on_error() {
    let url = format!("http://{}/hook", closed_port());
    let config = HooksConfig { on_connect: vec![url], ..HooksConfig::default() };
    let err = hooks(config.clone()).check(HookAction::Connect, &publish_ctx("")).await.unwrap_err();
    assert!(matches!(err, HookError::Unreachable { action: "on_connect", .. }), "{err}");

    let lenient = HooksConfig { allow_on_error: true, ..config };
    hooks(lenient).check(HookAction::Connect, &publish_ctx("")).await.unwrap();
}

#[tokio::test]
async fn silent_service_hits_the_timeout() {
    let url = format!("http://{}/hook", tcp_server(false).await);
    let config = HooksConfig { on_play: vec![url], timeout_ms: 200, ..HooksConfig::default() };
    let (h, ctx) = (hooks(config.clone()), publish_ctx(""));
    let check = h.check(HookAction::Play, &ctx);
    let err = tokio::time::timeout(Duration::from_secs(10), check).await.expect("the hook timeout fired").unwrap_err();
    match err {
        HookError::Unreachable { reason, .. } => assert!(reason.contains("200 ms"), "{reason}"),
        other => panic!("want Unreachable, got {other:?}"),
    }
    let lenient = HooksConfig { allow_on_error: true, ..config };
    hooks(lenient).check(HookAction::Play, &publish_ctx("")).await.unwrap();
}

#[tokio::test]
async fn non_http_answer_is_a_failure_not_a_refusal() {
    let url = format!("http://{}/hook", tcp_server(true).await);
    let config = HooksConfig { on_publish: vec![url], ..HooksConfig::default() };
    let err = hooks(config.clone()).check(HookAction::Publish, &publish_ctx("")).await.unwrap_err();
    assert!(matches!(err, HookError::Unreachable { .. }), "{err}");
    hooks(HooksConfig { allow_on_error: true, ..config }).check(HookAction::Publish, &publish_ctx("")).await.unwrap();
}

#[tokio::test]
async fn notify_delivers_in_the_background() {
    let (service, addr) = hook_service().await;
    let h = hooks(HooksConfig {
        on_close: vec![format!("http://{addr}/deny"), format!("http://{addr}/allow")],
        ..HooksConfig::default()
    });
    let ctx = HookContext { send_bytes: 12345, recv_bytes: 678, ..publish_ctx("?token=x") };
    h.notify(HookAction::Close, ctx);
    assert!(h.flush(Duration::from_secs(10)).await);
    assert_eq!(service.paths(), ["/deny", "/allow"], "a failure does not stop later URLs of a notification");
    let calls = service.calls();
    assert_eq!(
        calls[0].body,
        json!({"server_id":"vid-5i8r3y9","service_id":"584128l7","action":"on_close","client_id":"s20rw848",
               "ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","send_bytes":12345,"recv_bytes":678})
    );
    // Not configured: nothing is sent.
    h.notify(HookAction::Stop, publish_ctx(""));
    assert!(h.flush(Duration::from_secs(10)).await);
    assert_eq!(service.calls().len(), 2);
}

#[test]
fn on_publish_body_is_srs_byte_for_byte() {
    // The first line of ../shared/srs-samples/hooks.jsonl, captured from SRS 7.
    let srs = r#"{"server_id":"vid-5i8r3y9","service_id":"584128l7","action":"on_publish","client_id":"s20rw848","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://127.0.0.1:19350/live","stream":"cam1","param":"?token=abc","stream_url":"/live/cam1","stream_id":"vid-948bt92"}"#;
    let ours = body(HookAction::Publish, "vid-5i8r3y9", "584128l7", &publish_ctx("?token=abc"));
    assert_eq!(serde_json::to_string(&ours).unwrap(), srs);
}

#[test]
fn play_stop_and_connect_bodies_follow_srs_order() {
    let ctx = HookContext {
        client_id: "rg059g22".into(),
        stream: "cam1.flv".into(),
        param: String::new(),
        ..publish_ctx("")
    };
    let play = r#"{"server_id":"vid-5i8r3y9","service_id":"584128l7","action":"on_play","client_id":"rg059g22","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","stream":"cam1.flv","tcUrl":"rtmp://127.0.0.1:19350/live","param":"","pageUrl":"","stream_url":"/live/cam1","stream_id":"vid-948bt92"}"#;
    let stop = r#"{"server_id":"vid-5i8r3y9","service_id":"584128l7","action":"on_stop","client_id":"rg059g22","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://127.0.0.1:19350/live","stream":"cam1.flv","param":"","stream_url":"/live/cam1","stream_id":"vid-948bt92"}"#;
    let to_string = |a| serde_json::to_string(&body(a, "vid-5i8r3y9", "584128l7", &ctx)).unwrap();
    assert_eq!(to_string(HookAction::Play), play);
    assert_eq!(to_string(HookAction::Stop), stop);

    let connect = body(HookAction::Connect, "s", "v", &ctx);
    let keys: Vec<&str> = connect.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["server_id", "service_id", "action", "client_id", "ip", "vhost", "app", "stream", "param", "tcUrl", "pageUrl"]
    );
    let without_id = body(HookAction::Unpublish, "s", "v", &HookContext { stream_id: None, ..ctx });
    assert!(without_id.get("stream_id").is_none(), "stream_id is omitted when unknown");
    assert_eq!(without_id["action"], "on_unpublish");
}

#[test]
fn on_forward_body_and_answer_follow_srs() {
    let body = body(HookAction::Forward, "vid-5i8r3y9", "584128l7", &publish_ctx("?token=abc"));
    let srs = r#"{"action":"on_forward","server_id":"vid-5i8r3y9","service_id":"584128l7","client_id":"s20rw848","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://127.0.0.1:19350/live","stream":"cam1","param":"?token=abc"}"#;
    assert_eq!(serde_json::to_string(&body).unwrap(), srs);

    let urls = forward_urls(r#"{"code":0,"data":{"urls":["rtmp://b:1935/live/cam1","","rtmp://c/live/x?k=1"]}}"#);
    assert_eq!(urls.unwrap(), ["rtmp://b:1935/live/cam1", "rtmp://c/live/x?k=1"]);
    assert_eq!(forward_urls("0").unwrap(), Vec::<String>::new(), "a bare 0 allows without destinations");
    assert!(forward_urls(r#"{"code":0}"#).unwrap_err().contains("data.urls"));
    assert!(forward_urls(r#"{"code":0,"data":{"urls":[1]}}"#).is_err());
}

#[tokio::test]
async fn on_forward_reads_the_urls_or_says_why_not() {
    let (_, addr) = hook_service().await;
    let h = hooks(HooksConfig { timeout_ms: 200, ..HooksConfig::default() });
    // `/allow` answers `0`: allowed, no destination; `/deny` refuses.
    assert_eq!(h.on_forward(&format!("http://{addr}/allow"), &publish_ctx("")).await.unwrap(), Vec::<String>::new());
    let refused = h.on_forward(&format!("http://{addr}/deny"), &publish_ctx("")).await.unwrap_err();
    assert!(refused.contains("refused") && refused.contains("code 1"), "{refused}");
    let silent = h.on_forward(&format!("http://{}/f", tcp_server(false).await), &publish_ctx("")).await;
    assert!(silent.unwrap_err().contains("no answer"), "a silent backend times out");
}

#[test]
fn config_defaults_and_helpers() {
    let d = HooksConfig::default();
    assert_eq!(d.timeout_ms, 3000);
    assert!(d.is_empty() && !d.allow_on_error);
    let parsed: HooksConfig = serde_json::from_str(r#"{"on_publish":["http://a/hook"]}"#).unwrap();
    assert_eq!((parsed.timeout_ms, parsed.on_publish.len(), parsed.is_empty()), (3000, 1, false));
    assert!(serde_json::from_str::<HooksConfig>(r#"{"on_dvr":["http://a/hook"]}"#).is_err());
    assert_eq!(HooksConfig { timeout_ms: 0, ..d }.timeout(), Duration::from_millis(3000));

    let all = HooksConfig::all("http://idx/hooks?k=1");
    for action in HookAction::ALL {
        assert_eq!(all.urls(action), ["http://idx/hooks?k=1"]);
    }
    assert!(all.validate().is_ok());
    assert!(HooksConfig::all("https://idx/hooks").validate().unwrap_err().contains("https"));
    assert!(HooksConfig::all("idx:8080/hooks").validate().is_err());
    assert!(HooksConfig::all("not a url").validate().is_err());

    let blocking: Vec<&str> = HookAction::ALL.iter().filter(|a| a.blocks()).map(|a| a.name()).collect();
    assert_eq!(blocking, ["on_connect", "on_publish", "on_play"]);
}

#[test]
fn urls_are_redacted_in_logs() {
    assert_eq!(redact("http://idx:8080/hooks?secret=x"), "http://idx:8080/hooks?redacted");
    assert_eq!(redact("http://u:pw@idx/hooks"), "http://u:redacted@idx/hooks");
    assert_eq!(redact("http://idx/hooks"), "http://idx/hooks");
}

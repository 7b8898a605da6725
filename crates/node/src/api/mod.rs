//! The SRS HTTP API v1 on the node's API port: what SRS answers, the way SRS answers it — the
//! envelope, HTTP 200 with a non-zero `code` for unknown ids, the 302 from slash-less list paths,
//! `start`/`count` paging, CORS and JSONP — so pollers written for SRS manage our nodes too.

pub mod json;
pub mod metrics;
pub mod summaries;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::context::NodeContext;

/// SRS error codes we answer with.
pub const ERROR_VHOST_NOT_FOUND: i64 = 2014;
pub const ERROR_STREAM_NOT_FOUND: i64 = 2048;
pub const ERROR_CLIENT_NOT_FOUND: i64 = 2049;

type Params = Query<HashMap<String, String>>;

pub fn router(ctx: Arc<NodeContext>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/api/", get(api_root))
        .route("/api/v1/", get(v1_root))
        .route("/api/v1/versions", get(versions))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/summaries", get(summaries))
        .route("/api/v1/vhosts/", get(vhosts))
        .route("/api/v1/vhosts/{id}", get(vhost))
        .route("/api/v1/streams/", get(streams))
        .route("/api/v1/streams/{id}", get(stream))
        .route("/api/v1/clients/", get(clients))
        .route("/api/v1/clients/{id}", get(client).delete(kick_client))
        .route("/api/v1/vhosts", get(redirect_slash))
        .route("/api/v1/streams", get(redirect_slash))
        .route("/api/v1/clients", get(redirect_slash))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), authorize))
        .layer(axum::middleware::map_response(cors))
        .with_state(ctx)
}

/// The API token check. The token comes as `Authorization: Bearer TOKEN` or, for pollers that
/// cannot set headers, `?api_token=TOKEN`. `DELETE` (kicking a client) always needs it: a node
/// without a token refuses every kick. Reads need it when one is configured; `/api/v1/versions`
/// stays open for health checks. CORS preflights (`OPTIONS`) carry no credentials and pass.
pub async fn authorize(
    State(ctx): State<Arc<NodeContext>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = req.method().clone();
    let open = method == axum::http::Method::OPTIONS
        || (method != axum::http::Method::DELETE && req.uri().path() == "/api/v1/versions");
    let expected = ctx.config.api_token.as_deref();
    if open || (expected.is_none() && method != axum::http::Method::DELETE) {
        return next.run(req).await;
    }
    let Some(expected) = expected else {
        tracing::warn!(path = %req.uri().path(), "API kick refused: no --api-token configured");
        return (StatusCode::FORBIDDEN, "kicking clients needs an API token: start the node with --api-token\n")
            .into_response();
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let query = req.uri().query().and_then(|q| crate::key::query_value(q, "api_token"));
    if bearer.or(query).is_some_and(|given| same_secret(given, expected)) {
        return next.run(req).await;
    }
    tracing::info!(%method, path = %req.uri().path(), "API request without a valid token refused");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "this API needs its token: Authorization: Bearer TOKEN (or ?api_token=TOKEN)\n",
    )
        .into_response()
}

/// Compares secrets in time that depends only on their lengths.
fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn cors(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("*"));
    h.insert(header::SERVER, HeaderValue::from_static(concat!("Ferrocast/", env!("CARGO_PKG_VERSION"))));
    res
}

/// JSON, or JSONP when the caller passed `?callback=fn` (as SRS).
fn reply(params: &HashMap<String, String>, body: Value) -> Response {
    match params.get("callback").filter(|c| c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.')) {
        Some(cb) if !cb.is_empty() => {
            ([(header::CONTENT_TYPE, "text/javascript")], format!("{cb}({body})")).into_response()
        }
        _ => ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response(),
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

/// `/api/v1/streams` → 302 `/api/v1/streams/?query`, as SRS's mux does.
async fn redirect_slash(uri: axum::http::Uri, RawQuery(q): RawQuery) -> Response {
    let location = match q {
        Some(q) => format!("{}/?{q}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn root(State(ctx): State<Arc<NodeContext>>, Query(p): Params) -> Response {
    reply(&p, json::envelope(&ctx, 0, json!({ "urls": { "api": "the api root" } })))
}

async fn api_root(State(ctx): State<Arc<NodeContext>>, Query(p): Params) -> Response {
    reply(&p, json::envelope(&ctx, 0, json!({ "urls": { "v1": "the api version 1.0" } })))
}

async fn v1_root(State(ctx): State<Arc<NodeContext>>, Query(p): Params) -> Response {
    let urls = json!({
        "versions": "the version of SRS-compatible server",
        "summaries": "the summary(pid, cpu, mem) of server",
        "vhosts": "manage all vhosts or specified vhost",
        "streams": "manage all streams or specified stream",
        "clients": "manage all clients or specified client, default query top 10 clients",
    });
    reply(&p, json::envelope(&ctx, 0, json!({ "urls": urls })))
}

pub async fn versions(State(ctx): State<Arc<NodeContext>>, Query(p): Params) -> Response {
    let v = env!("CARGO_PKG_VERSION");
    let mut parts = v.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    let data = json!({
        "major": parts.next().unwrap_or(0),
        "minor": parts.next().unwrap_or(0),
        "revision": parts.next().unwrap_or(0),
        "version": v,
        "server_type": "ferrocast",
    });
    reply(&p, json::envelope(&ctx, 0, json!({ "data": data })))
}

async fn summaries(State(ctx): State<Arc<NodeContext>>, Query(p): Params) -> Response {
    reply(&p, json::envelope(&ctx, 0, summaries::summaries(&ctx)))
}

/// `start` and `count` as SRS reads them: start ≥ 0, count defaults to 10, at least 1.
fn page<T>(items: Vec<T>, p: &HashMap<String, String>) -> (usize, Vec<T>) {
    let total = items.len();
    let start = p.get("start").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0).max(0) as usize;
    let count = p.get("count").and_then(|v| v.parse::<i64>().ok()).unwrap_or(10).max(1) as usize;
    (total, items.into_iter().skip(start).take(count).collect())
}

fn active_streams_in(ctx: &NodeContext, vhost_id: &str) -> usize {
    ctx.registry.streams().iter().filter(|s| s.vhost.id == vhost_id && s.media().active).count()
}

async fn vhosts(State(ctx): State<Arc<NodeContext>>, Query(p): Params) -> Response {
    let now = Instant::now();
    let list: Vec<Value> =
        ctx.registry.vhosts().iter().map(|v| json::vhost(v, active_streams_in(&ctx, &v.id), now)).collect();
    reply(&p, json::envelope(&ctx, 0, json!({ "vhosts": list })))
}

async fn vhost(State(ctx): State<Arc<NodeContext>>, Path(id): Path<String>, Query(p): Params) -> Response {
    match ctx.registry.vhost_by_id(&id) {
        Some(v) => {
            let body = json::vhost(&v, active_streams_in(&ctx, &v.id), Instant::now());
            reply(&p, json::envelope(&ctx, 0, json!({ "vhost": body })))
        }
        None => reply(&p, json::code_only(ERROR_VHOST_NOT_FOUND)),
    }
}

async fn streams(State(ctx): State<Arc<NodeContext>>, Query(p): Params) -> Response {
    let now = Instant::now();
    let (total, items) = page(ctx.registry.streams(), &p);
    let list: Vec<Value> = items.iter().map(|s| json::stream(s, now)).collect();
    reply(&p, json::envelope(&ctx, 0, json!({ "streams": list, "total": total })))
}

async fn stream(State(ctx): State<Arc<NodeContext>>, Path(id): Path<String>, Query(p): Params) -> Response {
    match ctx.registry.stream_by_id(&id) {
        Some(s) => reply(&p, json::envelope(&ctx, 0, json!({ "stream": json::stream(&s, Instant::now()) }))),
        None => reply(&p, json::code_only(ERROR_STREAM_NOT_FOUND)),
    }
}

async fn clients(State(ctx): State<Arc<NodeContext>>, Query(p): Params) -> Response {
    let now = Instant::now();
    let (total, items) = page(ctx.registry.clients(), &p);
    let list: Vec<Value> = items.iter().map(|c| json::client(c, now)).collect();
    reply(&p, json::envelope(&ctx, 0, json!({ "clients": list, "total": total })))
}

async fn client(State(ctx): State<Arc<NodeContext>>, Path(id): Path<String>, Query(p): Params) -> Response {
    match ctx.registry.client(&id) {
        Some(c) => reply(&p, json::envelope(&ctx, 0, json!({ "client": json::client(&c, Instant::now()) }))),
        None => reply(&p, json::code_only(ERROR_CLIENT_NOT_FOUND)),
    }
}

async fn kick_client(State(ctx): State<Arc<NodeContext>>, Path(id): Path<String>, Query(p): Params) -> Response {
    match ctx.registry.client(&id) {
        Some(c) => {
            tracing::info!(client = %id, stream = %c.info.key, "client kicked through the API");
            c.kick.cancel();
            reply(&p, json::envelope(&ctx, 0, json!({})))
        }
        None => reply(&p, json::code_only(ERROR_CLIENT_NOT_FOUND)),
    }
}

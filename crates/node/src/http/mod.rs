//! The node's HTTP side: the media port (HTTP-FLV, HLS, LL-HLS, WHEP, and `/api/v1/versions` as
//! SRS mounts it there for health checks) and the shared accept loop.

pub mod flv;
mod flv_chunks;
pub mod hls;
mod llhls;
pub mod serve;
mod whep;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;

use crate::context::NodeContext;

/// Routes of the media port.
pub fn media_router(ctx: Arc<NodeContext>) -> Router {
    Router::new()
        .route("/api/v1/versions", get(crate::api::versions))
        .route("/{app}/{file}", get(media))
        .route(
            "/{app}/{stream}/{file}",
            get(ll_hls).post(whep_offer).options(|| async { whep::preflight() }).patch(|| async { whep::no_trickle() }),
        )
        .route("/{app}/{stream}/whep/{id}", axum::routing::delete(whep_delete).options(|| async { whep::preflight() }))
        .with_state(ctx)
}

/// A short plain-text answer: `what`, one line.
pub fn plain(status: axum::http::StatusCode, what: &str) -> Response {
    use axum::response::IntoResponse;
    (status, format!("{what}\n")).into_response()
}

/// A request whose names break the grammar (`crate::key::check_name`): 400, before anything else.
pub fn bad_name(e: crate::key::NameError) -> Response {
    use axum::response::IntoResponse;
    tracing::info!("http request refused: {e}");
    (axum::http::StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
}

/// Origin cluster: a redirect (`status`: 302 for a GET, 307 for a WHEP offer's POST, which keeps
/// its method and body) to the origin that holds `key`, when this origin does not and the
/// coworkers' answer names the other's HTTP address (`path` and `query` kept).
pub async fn redirect_elsewhere(
    ctx: &NodeContext,
    key: &crate::key::StreamKey,
    (path, query): (&str, &str),
    status: axum::http::StatusCode,
) -> Option<Response> {
    use axum::response::IntoResponse;
    let there = ctx.elsewhere(key, query).await?;
    let base = there.http?;
    let location = format!("{base}{path}{query}");
    tracing::info!(stream = %key, to = %base, "http play redirected to the origin holding the stream");
    let value = axum::http::HeaderValue::from_str(&location).ok()?;
    let mut resp = (status, format!("{location}\n")).into_response();
    resp.headers_mut().insert(axum::http::header::LOCATION, value);
    Some(resp)
}

/// The client's address, as `crate::client_addr` decides it (forwarding headers count only from
/// a trusted proxy).
pub fn client_ip(ctx: &NodeContext, headers: &axum::http::HeaderMap, conn: &serve::ConnInfo) -> String {
    crate::client_addr::client_ip(headers, conn.peer.ip(), &ctx.config.trusted_proxies).to_string()
}

/// An HTTP viewer (HTTP-FLV, HLS, WebRTC) for `key`, as the API will list it.
pub struct Player<'a> {
    pub key: &'a crate::key::StreamKey,
    pub app: &'a str,
    /// The name it asked for, as SRS lists it (`cam1.flv`, `cam1.m3u8`, `cam1`).
    pub name: String,
    pub kind: crate::stats::ClientKind,
    /// Its address (`client_ip`: through trusted proxies).
    pub ip: String,
    /// Its query (its token), for the hooks and, on an edge, the origin.
    pub param: String,
    pub kick: tokio_util::sync::CancellationToken,
    pub delivery: crate::admission::Delivery,
}

/// Admits an HTTP viewer (`on_play`, the node's limits): its client record takes the page from
/// `Referer` and the tcUrl from `Host`. A refusal is
/// logged and comes back as the text for the viewer's 403.
pub async fn admit_player(
    ctx: &Arc<NodeContext>,
    headers: &axum::http::HeaderMap,
    player: Player<'_>,
) -> Result<crate::admission::Viewer, String> {
    use axum::http::header;
    let text = |name| headers.get(name).and_then(|h| h.to_str().ok());
    let info = crate::stats::ClientInfo {
        key: player.key.clone(),
        name: player.name,
        kind: player.kind,
        ip: player.ip,
        tc_url: format!("http://{}/{}", text(header::HOST).unwrap_or("localhost"), player.app),
        page_url: text(header::REFERER).unwrap_or("").to_string(),
        swf_url: String::new(),
    };
    let request =
        crate::admission::ViewerRequest { info, param: player.param, kick: player.kick, delivery: player.delivery };
    crate::admission::admit(ctx, request).await.map_err(|refused| {
        let e = refused.reason;
        let what = match player.kind {
            crate::stats::ClientKind::HlsPlay => "hls",
            crate::stats::ClientKind::RtcPlay => "whep",
            _ => "http-flv",
        };
        tracing::warn!(stream = %player.key, client = refused.client, "{what} play refused at admission: {e}");
        format!("play refused: {e}")
    })
}

/// `/{app}/{stream}/{file}`: Low-Latency HLS (fMP4).
async fn ll_hls(
    State(ctx): State<Arc<NodeContext>>,
    conn: axum::Extension<serve::ConnInfo>,
    Path((app, stream, file)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
) -> Response {
    let q = query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
    llhls::serve(ctx, &conn, &headers, (&app, &stream, &file), &q).await
}

/// `POST /{app}/{stream}/whep`: a WebRTC viewer's offer.
async fn whep_offer(
    State(ctx): State<Arc<NodeContext>>,
    conn: axum::Extension<serve::ConnInfo>,
    Path((app, stream, file)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use axum::response::IntoResponse;
    if file != "whep" {
        return (axum::http::StatusCode::METHOD_NOT_ALLOWED, "POST is for /{app}/{stream}/whep\n").into_response();
    }
    let q = query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
    whep::offer(ctx, &conn, &headers, (&app, &stream), &q, body).await
}

/// `DELETE /{app}/{stream}/whep/{id}`.
async fn whep_delete(
    State(ctx): State<Arc<NodeContext>>,
    Path((_app, _stream, id)): Path<(String, String, String)>,
) -> Response {
    whep::delete(ctx, &id).await
}

/// `/{app}/{file}`: by extension, an HTTP-FLV play, an HLS playlist or an HLS segment.
async fn media(
    State(ctx): State<Arc<NodeContext>>,
    conn: axum::Extension<serve::ConnInfo>,
    Path((app, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
) -> Response {
    let q = query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
    if let Some(name) = file.strip_suffix(".m3u8") {
        return hls::playlist(ctx, &conn, &headers, &app, name, &q).await;
    }
    if file.ends_with(".ts") {
        return hls::segment(ctx, &conn, &headers, &app, &file, &q).await;
    }
    flv::play(State(ctx), conn, Path((app, file)), RawQuery(query), headers).await
}

//! `POST /api/v1/tokens`: mint a signed token over the API, for sites that hand tokens to their
//! publishers and viewers from their own backend. An admin route ([`AdminKey`]).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::admin::AdminKey;
use super::error;
use crate::auth::token::parse_ip_or_cidr;
use crate::auth::{Action, MintError, now_secs};
use crate::state::IndexState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    scope: Action,
    /// `app/stream` or `app/*`.
    stream: String,
    ttl_s: u64,
    /// An address or CIDR the token is bound to.
    #[serde(default)]
    ip: Option<String>,
}

pub async fn mint(State(st): State<Arc<IndexState>>, _admin: AdminKey, body: Bytes) -> Response {
    let auth = st.auth.load();
    let req: TokenRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "bad request body ({e}); send JSON {{\"scope\":\"play\"|\"publish\",\"stream\":\"live/cam1\",\
                     \"ttl_s\":3600,\"ip\":\"10.0.0.0/8\" (optional)}}"
                ),
            );
        }
    };
    let ip = match req.ip.as_deref().map(parse_ip_or_cidr).transpose() {
        Ok(ip) => ip,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("ip: {e}")),
    };
    if req.ttl_s == 0 {
        return error(StatusCode::BAD_REQUEST, "ttl_s must be at least 1 (seconds)");
    }
    let expires = now_secs().saturating_add(req.ttl_s);
    match auth.mint_until(req.scope, &req.stream, expires, ip) {
        Ok(token) => Json(json!({ "code": 0, "token": token, "expires": expires })).into_response(),
        Err(e @ MintError::NoKey) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

//! `POST /api/v1/tokens`: mint a signed token over the API, for sites that hand tokens to their
//! publishers and viewers from their own backend; `POST /api/v1/tokens/revoke`: refuse one from
//! now on. Admin routes ([`AdminKey`]).

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
use crate::auth::{Action, MintError, now_secs, revoked};
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    /// The whole token.
    #[serde(default)]
    token: Option<String>,
    /// Or only its signature (its last part), with `expires`.
    #[serde(default)]
    signature: Option<String>,
    /// Unix seconds until which a signature stays revoked [default: a year from now].
    #[serde(default)]
    expires: Option<u64>,
}

/// Longest a revocation by signature alone is kept (a token's own expiry is unknown then).
const SIGNATURE_ONLY_S: u64 = 366 * 24 * 3600;

/// `POST /api/v1/tokens/revoke`: the hook receiver refuses this token from now on (on every
/// replica in shared mode). `{"token":"k1.…"}`, or `{"signature":"…","expires":UNIX_S}`.
pub async fn revoke(State(st): State<Arc<IndexState>>, _admin: AdminKey, body: Bytes) -> Response {
    let how = "send JSON {\"token\":\"k1.<claims>.<signature>\"} or {\"signature\":\"<last part of the token>\",\
               \"expires\":<unix s> (optional)}";
    let req: RevokeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body ({e}); {how}")),
    };
    let now = now_secs();
    let (sig, expires) = match (&req.token, &req.signature) {
        (Some(token), None) => {
            let Some(sig) = revoked::signature(token) else {
                return error(StatusCode::BAD_REQUEST, format!("not a token; {how}"));
            };
            // A token that verifies names its expiry; one that does not is kept a year.
            let expires = st.auth.load().verify(token).map_or(now + SIGNATURE_ONLY_S, |c| c.expires);
            (sig.to_string(), req.expires.unwrap_or(expires))
        }
        (None, Some(sig)) => match revoked::signature(&format!(".{sig}")) {
            Some(sig) => (sig.to_string(), req.expires.unwrap_or(now + SIGNATURE_ONLY_S)),
            None => return error(StatusCode::BAD_REQUEST, format!("not a token signature; {how}")),
        },
        _ => return error(StatusCode::BAD_REQUEST, format!("give token or signature, not both or neither; {how}")),
    };
    if expires < now {
        return Json(json!({ "code": 0, "signature": sig, "expires": expires, "note": "already expired" }))
            .into_response();
    }
    st.revoked.insert(&sig, expires);
    let queued = st.store.token_revoked(&sig, expires, crate::clock::now_ms() as i64);
    // Answered once it is on disk: a revocation answered 200 survives a crash of the index.
    if let Err(e) = if queued { st.store.flush().await } else { Err(crate::store::StoreError::Busy) } {
        tracing::warn!(signature = %sig, "revocation not written to the history database: {e}");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the revocation holds in memory but was not written to disk ({e}): send it again"),
        );
    }
    if let Some(shared) = &st.replicas {
        shared.revoke(vec![(sig.clone(), expires)]);
    }
    tracing::info!(signature = %sig, expires, "token revoked");
    Json(json!({ "code": 0, "signature": sig, "expires": expires, "shared": st.replicas.is_some() })).into_response()
}

//! Who is reading the directory, and what they may see of it: [`Caller`], the extractor of the
//! stream and node routes. Those routes stay public, but with access control on, a stream of an
//! app whose play needs a token is listed only to a caller whose play token (`?token=` or
//! `Authorization: Bearer`) may play it, and node errors (which can hold internal URLs) are shown
//! to admins only. An admin (see [`super::admin`]) sees everything.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::admin::{self, AdminKey, Presented};
use super::error;
use crate::auth::{Action, Auth, Claims, now_secs, revoked, token_in};
use crate::state::IndexState;

/// A reader of the directory.
#[derive(Clone, Debug, PartialEq)]
pub enum Caller {
    Admin(AdminKey),
    /// Anyone else, with the claims of the play token they brought (checked: signature, expiry,
    /// scope and address). With access control off, tokens are not looked at.
    Viewer(Option<Claims>),
}

impl Caller {
    /// Sorts out the request: a wrong admin key is a 401, a bad play token a 403, so a caller is
    /// never silently shown less than they asked for.
    pub async fn of(
        st: &IndexState,
        headers: &HeaderMap,
        query: Option<&str>,
        peer: Option<SocketAddr>,
    ) -> Result<Caller, Response> {
        let found = admin::presented(headers, &st.auth.load());
        let token = match found {
            Presented::Admin(c) => return admin::verify(st, c).await.map(Caller::Admin).map_err(|r| r.response()),
            Presented::Other(bearer) => query.and_then(token_in).or(Some(bearer)),
            Presented::None => query.and_then(token_in),
        };
        let auth = st.auth.load();
        if !auth.enabled() {
            let local = admin::local_caller(peer, headers);
            return Ok(if local { Caller::Admin(AdminKey::Loopback) } else { Caller::Viewer(None) });
        }
        let Some(token) = token else { return Ok(Caller::Viewer(None)) };
        if revoked::signature(token).is_some_and(|sig| st.revoked.contains(sig)) {
            return Err(error(StatusCode::FORBIDDEN, "the play token was revoked: ask for a new one"));
        }
        let xff = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let client = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| st.resolver.load().client_ip(p.ip(), xff));
        auth.verify(token)
            .and_then(|c| c.usable(Action::Play, client, now_secs()).map(|()| c))
            .map(|c| Caller::Viewer(Some(c)))
            .map_err(|e| error(StatusCode::FORBIDDEN, e.to_string()))
    }

    /// The signature of the token a request brought (to check it for revocation later).
    pub fn token_signature(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
        let token = match admin::bearer(headers) {
            Some(b) => query.and_then(token_in).or(Some(b)),
            None => query.and_then(token_in),
        }?;
        revoked::signature(token).map(str::to_string)
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin(_))
    }

    /// Whether this caller may see stream `app/stream`: an admin always; others when the app's
    /// play is open, or their token covers the stream.
    pub fn may_see(&self, auth: &Auth, app: &str, stream: &str) -> bool {
        match self {
            Caller::Admin(_) => true,
            Caller::Viewer(claims) => {
                !auth.needs_token(Action::Play, app) || claims.as_ref().is_some_and(|c| c.pattern.covers(app, stream))
            }
        }
    }

    /// The answer for a caller who may not see `app/stream`: it reads the same whether the
    /// stream is live or not.
    pub fn refusal(&self, app: &str, stream: &str) -> Response {
        match self {
            Caller::Viewer(Some(c)) => {
                error(StatusCode::FORBIDDEN, format!("the play token is for {}, not {app}/{stream}", c.pattern))
            }
            _ => error(
                StatusCode::UNAUTHORIZED,
                format!(
                    "playing {app} needs a token, and so does seeing its streams: add ?token=<play token> or send \
                     Authorization: Bearer <play token> (an admin API key sees every stream)"
                ),
            ),
        }
    }
}

impl FromRequestParts<Arc<IndexState>> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<IndexState>) -> Result<Self, Self::Rejection> {
        Caller::of(st, &parts.headers, parts.uri.query(), admin::peer(parts)).await
    }
}

//! The admin gate: [`AdminKey`], the one extractor every admin route takes (token minting,
//! reload, history, publish URLs with a fresh token), so no admin route can forget the check.
//!
//! An admin proves itself with an API key from `ferrocast index keys create`, sent as
//! `Authorization: Bearer <key>` or `X-Api-Key: <key>`, or with the configured
//! `auth.admin_token` (a bootstrap credential for `ferrocast up` and tests). With access control
//! off, a caller on this machine (127.0.0.1 or ::1, not relayed by a proxy) needs no credential.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::error;
use crate::auth::Auth;
use crate::state::IndexState;
use crate::store::KeyInfo;
use crate::store::keys::KEY_PREFIX;

/// The header an API key may come in, instead of `Authorization: Bearer`.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Headers a reverse proxy adds: a request carrying one is not taken for a local caller.
const FORWARDING_HEADERS: [&str; 3] = ["x-forwarded-for", "forwarded", "x-real-ip"];

/// An admin caller, and how it proved it; take it as a handler argument to make a route admin-only.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminKey {
    /// An API key of the store.
    Key(KeyInfo),
    /// The configured `auth.admin_token`.
    Bootstrap,
    /// No credential, from this machine, with access control off.
    Loopback,
}

/// Why a caller is not an admin; [`Refusal::response`] tells them what to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// No admin credential; `auth_on` says whether local callers could have gone without one.
    Missing { auth_on: bool },
    /// A credential that is no valid key: unknown, revoked, wrong, or no API key at all.
    Invalid,
    /// The key store could not answer.
    Unavailable(String),
    /// A web browser sent it (`Origin` or `Sec-Fetch-*` headers): a page must not drive admin routes.
    Browser,
}

const HOW_TO: &str = "send an API key as `Authorization: Bearer <key>` or `X-Api-Key: <key>`; create one on \
                      the index host with `ferrocast index keys create --name NAME` (the configured \
                      auth.admin_token is accepted too)";

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::Missing { auth_on: true } => format!("this is an admin route: {HOW_TO}"),
            Refusal::Missing { auth_on: false } => format!(
                "this is an admin route: {HOW_TO}. Access control is off (auth.enabled = false), so only callers \
                 on the index host itself (127.0.0.1 or ::1, not through a proxy) may use admin routes without a key"
            ),
            Refusal::Invalid => format!(
                "the API key is unknown, revoked or wrong (a play or publish token is no API key); \
                 `ferrocast index keys list` shows the keys; {HOW_TO}"
            ),
            Refusal::Unavailable(e) => format!("cannot check the API key right now: {e}"),
            Refusal::Browser => "admin routes refuse requests a web browser sends (this one has an Origin or \
                                 Sec-Fetch-* header): call them from a script, curl or the ferrocast CLI"
                .to_string(),
        }
    }

    /// 401 with `WWW-Authenticate: Bearer`, or 503 when the store failed.
    pub fn response(&self) -> Response {
        match self {
            Refusal::Unavailable(_) => return error(StatusCode::SERVICE_UNAVAILABLE, self.message()),
            Refusal::Browser => return error(StatusCode::FORBIDDEN, self.message()),
            _ => {}
        }
        let mut resp = error(StatusCode::UNAUTHORIZED, self.message());
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        resp
    }
}

/// A credential a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presented<'a> {
    None,
    /// `X-Api-Key`, or a bearer that is shaped like an API key or is the admin token.
    Admin(&'a str),
    /// Any other bearer: a play or publish token, for the routes that take one.
    Other(&'a str),
}

/// The value of `Authorization: Bearer <it>` (scheme in any case).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|t| !t.is_empty())
}

/// What credential `headers` carry, told apart without looking anything up: an API key is
/// `fc_...` and never holds a '.', which every signed token does.
pub fn presented<'a>(headers: &'a HeaderMap, auth: &Auth) -> Presented<'a> {
    if let Some(key) = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::trim) {
        return Presented::Admin(key);
    }
    match bearer(headers) {
        Some(b) if (b.starts_with(KEY_PREFIX) && !b.contains('.')) || auth.is_admin_token(b) => Presented::Admin(b),
        Some(b) => Presented::Other(b),
        None => Presented::None,
    }
}

/// Whether the peer is this machine, no proxy relayed the request and no web browser sent it (a
/// page on the index host must not pass for a local admin).
pub fn local_caller(peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    peer.is_some_and(|p| p.ip().to_canonical().is_loopback())
        && FORWARDING_HEADERS.iter().all(|h| !headers.contains_key(*h))
        && !from_browser(headers)
}

/// Whether a web browser sent the request: browsers add `Origin` to cross-origin and every
/// non-GET request, and `Sec-Fetch-*` to every request; scripts and the CLI send neither.
pub fn from_browser(headers: &HeaderMap) -> bool {
    ["origin", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest"].iter().any(|h| headers.contains_key(*h))
}

/// The admin behind credential `c`: the admin token, else a valid key of the store.
pub async fn verify(st: &IndexState, c: &str) -> Result<AdminKey, Refusal> {
    if st.auth.load().is_admin_token(c) {
        return Ok(AdminKey::Bootstrap);
    }
    match st.store.verify_key(c).await {
        Ok(Some(info)) => Ok(AdminKey::Key(info)),
        Ok(None) => Err(Refusal::Invalid),
        Err(e) => {
            tracing::warn!("cannot check an API key: {e}");
            Err(Refusal::Unavailable(e.to_string()))
        }
    }
}

impl AdminKey {
    /// Whether the request (`headers`, from `peer`) is an admin's.
    pub async fn check(st: &IndexState, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<AdminKey, Refusal> {
        // The config guard is let go before any await (argon2 takes a while).
        if from_browser(headers) {
            return Err(Refusal::Browser);
        }
        let (found, auth_on) = {
            let auth = st.auth.load();
            (presented(headers, &auth), auth.enabled())
        };
        match found {
            Presented::Admin(c) => verify(st, c).await,
            Presented::Other(_) => Err(Refusal::Invalid),
            Presented::None if !auth_on && local_caller(peer, headers) => Ok(AdminKey::Loopback),
            Presented::None => Err(Refusal::Missing { auth_on }),
        }
    }
}

/// The peer address the server recorded, if it did.
pub fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

impl FromRequestParts<Arc<IndexState>> for AdminKey {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<IndexState>) -> Result<Self, Self::Rejection> {
        AdminKey::check(st, &parts.headers, peer(parts)).await.map_err(|r| r.response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthConfig;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn credentials_are_told_apart() {
        let auth =
            Auth::new(&AuthConfig { admin_token: Some("admin-0123456789abc".into()), ..Default::default() }).unwrap();
        let key = "fc_0123456789ab_AAAA";
        assert_eq!(presented(&headers(&[("x-api-key", key)]), &auth), Presented::Admin(key));
        assert_eq!(presented(&headers(&[("authorization", &format!("Bearer {key}"))]), &auth), Presented::Admin(key));
        assert_eq!(
            presented(&headers(&[("authorization", "bearer admin-0123456789abc")]), &auth),
            Presented::Admin("admin-0123456789abc")
        );
        assert_eq!(
            presented(&headers(&[("authorization", "Bearer k1.abc.def")]), &auth),
            Presented::Other("k1.abc.def")
        );
        assert_eq!(
            presented(&headers(&[("authorization", "Bearer fc_1.abc.def")]), &auth),
            Presented::Other("fc_1.abc.def")
        );
        assert_eq!(presented(&headers(&[("authorization", "Basic dXNlcjpwdw==")]), &auth), Presented::None);
        assert_eq!(presented(&HeaderMap::new(), &auth), Presented::None);
    }

    #[test]
    fn only_unrelayed_loopback_peers_are_local() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let far: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        assert!(local_caller(Some(local), &HeaderMap::new()));
        assert!(local_caller(Some(mapped), &HeaderMap::new()));
        assert!(local_caller(Some("[::1]:5000".parse().unwrap()), &HeaderMap::new()));
        assert!(!local_caller(Some(far), &HeaderMap::new()));
        assert!(!local_caller(None, &HeaderMap::new()));
        assert!(!local_caller(Some(local), &headers(&[("x-forwarded-for", "203.0.113.9")])));
    }

    #[test]
    fn refusals_say_how_to_get_a_key() {
        for r in [Refusal::Missing { auth_on: true }, Refusal::Missing { auth_on: false }, Refusal::Invalid] {
            assert!(r.message().contains("ferrocast index keys create"), "{r:?}");
            assert_eq!(r.response().status(), StatusCode::UNAUTHORIZED);
        }
        assert!(Refusal::Missing { auth_on: false }.message().contains("127.0.0.1"));
        assert_eq!(Refusal::Unavailable("closed".into()).response().status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}

//! Revoked tokens: signed tokens carry their own claims, so one handed to the wrong person stays
//! valid until it expires — unless its signature is listed here. `POST /api/v1/tokens/revoke`
//! (admin) lists it; the hook receiver refuses a listed token for publish and play. The list is in
//! memory (checked with no I/O), kept in SQLite across restarts until each token's expiry, and in
//! shared mode kept in Redis and announced to every replica (`crate::index_replicas`).

use std::collections::HashMap;
use std::sync::RwLock;

use super::{Action, Auth, token_in};

/// The signature of `token` (`<kid>.<claims>.<sig>`): its last part, which names it.
pub fn signature(token: &str) -> Option<&str> {
    let (_, sig) = token.rsplit_once('.')?;
    (!sig.is_empty() && sig.len() <= 64 && sig.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then_some(sig)
}

/// Revoked signatures and when their tokens expire (unix s).
#[derive(Debug, Default)]
pub struct Revoked {
    map: RwLock<HashMap<String, u64>>,
}

impl Revoked {
    /// Lists `sig` until `expires`; true when it was not listed (or listed shorter) before.
    pub fn insert(&self, sig: &str, expires: u64) -> bool {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(sig) {
            Some(e) if *e >= expires => false,
            Some(e) => {
                *e = expires;
                true
            }
            None => {
                map.insert(sig.to_string(), expires);
                true
            }
        }
    }

    pub fn contains(&self, sig: &str) -> bool {
        self.map.read().unwrap_or_else(|p| p.into_inner()).contains_key(sig)
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets revocations of tokens expired at `now`: they are refused as expired anyway.
    pub fn prune(&self, now: u64) {
        self.map.write().unwrap_or_else(|p| p.into_inner()).retain(|_, e| *e >= now);
    }

    /// The hook decision's last step: a token-protected `action` on `app` whose token in `param`
    /// is revoked is refused (after `Auth::check` allowed it).
    pub fn check(&self, auth: &Auth, action: Action, app: &str, param: &str) -> Result<(), String> {
        if !auth.needs_token(action, app) {
            return Ok(());
        }
        match token_in(param).and_then(signature) {
            Some(sig) if self.contains(sig) => {
                Err("token revoked: an admin revoked this token (POST /api/v1/tokens/revoke); mint a new one".into())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthConfig, KeyConfig};

    #[test]
    fn a_revoked_token_is_refused_where_tokens_are_needed() {
        let auth = Auth::new(&AuthConfig {
            enabled: true,
            keys: vec![KeyConfig { id: "k1".into(), secret: "a secret of the revocation test".into() }],
            apps: vec!["live=play:token".parse().unwrap()],
            ..AuthConfig::default()
        })
        .unwrap();
        let token = auth.mint(Action::Play, "live/cam1", std::time::Duration::from_secs(60), None).unwrap();
        let param = format!("?token={token}");
        let r = Revoked::default();
        assert_eq!(r.check(&auth, Action::Play, "live", &param), Ok(()));
        assert!(r.insert(signature(&token).unwrap(), u64::MAX));
        assert!(!r.insert(signature(&token).unwrap(), 5), "listed already, for longer");
        assert!(r.check(&auth, Action::Play, "live", &param).unwrap_err().contains("revoked"));
        assert_eq!(r.check(&auth, Action::Play, "open-app", &param), Ok(()), "no token needed there");
        r.prune(u64::MAX - 1);
        assert_eq!(r.len(), 1);
        assert_eq!(signature("k1.abc.def"), Some("def"));
        assert_eq!(signature("nodots"), None);
    }
}

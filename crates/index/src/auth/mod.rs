//! Access control: signed tokens ([`token`]), per-app rules ([`rules`]) and their config
//! ([`config`]), brought together in [`Auth`], the one value the request path asks "may this
//! client publish or play this stream?". It is built from the config and swapped whole on reload,
//! so a decision reads memory only: no database, no network.

pub mod config;
pub mod revoked;
pub mod rules;
pub mod token;

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

pub use config::{AuthConfig, KeyConfig};
pub use rules::{Access, AppRule, Rules};
pub use token::{Action, Claims, Keyring, MintError, Pattern, TokenError};

/// Why a client was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "{action} of {app}/{stream} needs a token: add ?token=<{action} token> to the URL (mint one with \
         `ferrocast token --scope {action} --stream {app}/{stream}` or POST /api/v1/tokens)"
    )]
    NoToken { action: Action, app: String, stream: String },
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Access control as configured; immutable, swapped whole on reload.
#[derive(Debug, Default)]
pub struct Auth {
    enabled: bool,
    keys: Keyring,
    signer: Option<String>,
    rules: Rules,
    url_ttl_s: u64,
    admin_token: Option<Box<str>>,
    hook_secret: Option<Box<str>>,
    hook_allow: Vec<IpNet>,
}

/// Wall-clock seconds since the epoch.
pub use crate::clock::now_secs;

impl Auth {
    /// Validates `cfg` and prepares its keys.
    pub fn new(cfg: &AuthConfig) -> Result<Auth, String> {
        cfg.validate()?;
        let keys = Keyring::new(cfg.keys.iter().map(|k| (k.id.as_str(), k.secret.as_bytes())))
            .map_err(|e| format!("auth.keys: {e}"))?;
        if cfg.enabled && cfg.hook_secret.is_none() && cfg.hook_allow.is_empty() {
            tracing::warn!(
                "auth is on but anyone may call /api/v1/hooks (auth.hooks_open): set auth.hook_secret \
                 (--hook-secret) and/or auth.hook_allow (--hook-allow CIDR)"
            );
        }
        Ok(Auth {
            enabled: cfg.enabled,
            keys,
            signer: cfg.signer().map(str::to_string),
            rules: Rules::new(&cfg.apps),
            url_ttl_s: cfg.url_ttl_s,
            admin_token: cfg.admin_token.as_deref().map(Box::from),
            hook_secret: cfg.hook_secret.as_deref().map(Box::from),
            hook_allow: cfg.hook_allow.clone(),
        })
    }

    /// Whether the rules apply (`auth.enabled`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `action` on `app` needs a token right now.
    pub fn needs_token(&self, action: Action, app: &str) -> bool {
        self.enabled && self.rules.access(action, app) == Access::Token
    }

    /// Lifetime of the tokens put into scheduler URLs.
    pub fn url_ttl(&self) -> Duration {
        Duration::from_secs(self.url_ttl_s)
    }

    /// May a client at `client_ip` do `action` on `app/stream`? `param` is SRS's `param`
    /// (`?token=...&k=v`, with or without the `?`); `now` is unix seconds.
    pub fn check(
        &self,
        action: Action,
        app: &str,
        stream: &str,
        param: &str,
        client_ip: IpAddr,
        now: u64,
    ) -> Result<(), Denied> {
        if !self.needs_token(action, app) {
            return Ok(());
        }
        let Some(token) = token_in(param) else {
            return Err(Denied::NoToken { action, app: app.to_string(), stream: stream.to_string() });
        };
        self.keys.verify(token)?.allows(action, app, stream, client_ip, now)?;
        Ok(())
    }

    /// The claims of `token` if its key is listed and its signature holds.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.keys.verify(token)
    }

    /// A token for `scope` on `pattern` (`app/stream` or `app/*`) valid for `ttl` from now.
    pub fn mint(&self, scope: Action, pattern: &str, ttl: Duration, ip: Option<IpNet>) -> Result<String, MintError> {
        if ttl.as_secs() == 0 {
            return Err(MintError::BadTtl);
        }
        self.mint_until(scope, pattern, now_secs().saturating_add(ttl.as_secs()), ip)
    }

    /// A token for `scope` on `pattern` valid until `expires` (unix seconds).
    pub fn mint_until(
        &self,
        scope: Action,
        pattern: &str,
        expires: u64,
        ip: Option<IpNet>,
    ) -> Result<String, MintError> {
        let signer = self.signer.as_deref().ok_or(MintError::NoKey)?;
        let pattern = pattern.parse().map_err(MintError::BadPattern)?;
        self.keys.sign(signer, &Claims { scope, pattern, expires, ip: ip.map(|n| n.trunc()) })
    }

    /// Whether `presented` is the configured `auth.admin_token`: the bootstrap admin credential
    /// accepted beside the API keys of the store (for `ferrocast up` and tests).
    pub fn is_admin_token(&self, presented: &str) -> bool {
        self.admin_token.as_deref().is_some_and(|want| same(presented, want))
    }

    /// Whether a hook call with `?secret=` `secret` from `peer` comes from a known node. Each
    /// configured check must pass; none configured lets every caller in.
    pub fn hook_caller(&self, secret: Option<&str>, peer: IpAddr) -> Result<(), String> {
        if let Some(want) = &self.hook_secret
            && !secret.is_some_and(|s| same(s, want))
        {
            let why = if secret.is_some() { "a wrong ?secret=" } else { "no ?secret=" };
            return Err(format!(
                "hook call with {why}: put ?secret=<auth.hook_secret> in the node's hook URLs \
                 (e.g. --hooks http://index/api/v1/hooks?secret=...)"
            ));
        }
        let peer = peer.to_canonical();
        if !self.hook_allow.is_empty() && !self.hook_allow.iter().any(|n| n.contains(&peer)) {
            return Err(format!(
                "hook call from {peer}, which is not in auth.hook_allow: add the node's network there"
            ));
        }
        Ok(())
    }
}

/// The token in SRS's `param`: `?token=x`, `token=x`, `a=1&token=x&b=2`. The first non-empty
/// `token` key wins; tokens are URL-safe, so no decoding is needed.
pub fn token_in(param: &str) -> Option<&str> {
    let param = param.strip_prefix('?').unwrap_or(param);
    param.split('&').filter_map(|kv| kv.strip_prefix("token=")).find(|t| !t.is_empty())
}

/// Equal strings, compared in time that depends on the length only.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;

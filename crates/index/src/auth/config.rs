//! The `[auth]` section of the index configuration: signing keys, per-app rules, who may call the
//! hook receiver and the admin routes. Secrets never appear in `Debug` output (logs).

use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::rules::AppRule;
use super::token::check_key;

/// One signing key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Written into every token it signs (`A-Z a-z 0-9 - _`, up to 32 characters).
    pub id: String,
    /// At least 16 bytes.
    pub secret: String,
}

impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyConfig").field("id", &self.id).field("secret", &"<hidden>").finish()
    }
}

impl std::str::FromStr for KeyConfig {
    type Err = String;
    /// `ID=SECRET`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, secret) = s.split_once('=').ok_or("expected ID=SECRET (e.g. k1=<at least 16 characters>)")?;
        check_key(id, secret.as_bytes())?;
        Ok(KeyConfig { id: id.to_string(), secret: secret.to_string() })
    }
}

/// Access control. Off by default: everyone may publish and play, and tokens are not asked for.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Apply the rules: hooks refuse clients without a valid token where one is needed, and the
    /// scheduler's URLs carry tokens.
    pub enabled: bool,
    /// Keys that verify tokens; list a new key beside the old one to rotate without downtime.
    pub keys: Vec<KeyConfig>,
    /// The key new tokens are signed with [default: the only key, when there is one].
    pub sign_with: Option<String>,
    /// Per-app rules; apps not listed: play open, publish needs a token.
    pub apps: Vec<AppRule>,
    /// Lifetime of the tokens added to the URLs of /api/v1/play and /api/v1/publish, in seconds.
    pub url_ttl_s: u64,
    /// A bearer accepted on the admin routes besides the API keys made with
    /// `ferrocast index keys create`: a bootstrap credential for `ferrocast up` and tests.
    pub admin_token: Option<String>,
    /// When set, hook calls must carry `?secret=<it>` in their URL.
    pub hook_secret: Option<String>,
    /// When not empty, hook calls must come from these networks.
    pub hook_allow: Vec<IpNet>,
    /// With access control on, the index refuses to start while anyone may call its hook
    /// receiver (no `hook_secret`, no `hook_allow`) unless this says it is meant.
    pub hooks_open: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: false,
            keys: Vec::new(),
            sign_with: None,
            apps: Vec::new(),
            url_ttl_s: 3600,
            admin_token: None,
            hook_secret: None,
            hook_allow: Vec::new(),
            hooks_open: false,
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "<hidden>");
        f.debug_struct("AuthConfig")
            .field("enabled", &self.enabled)
            .field("keys", &self.keys)
            .field("sign_with", &self.sign_with)
            .field("apps", &self.apps)
            .field("url_ttl_s", &self.url_ttl_s)
            .field("admin_token", &hidden(&self.admin_token))
            .field("hook_secret", &hidden(&self.hook_secret))
            .field("hook_allow", &self.hook_allow)
            .field("hooks_open", &self.hooks_open)
            .finish()
    }
}

impl AuthConfig {
    /// The id of the signing key, if any.
    pub fn signer(&self) -> Option<&str> {
        match (&self.sign_with, self.keys.as_slice()) {
            (Some(id), _) => Some(id),
            (None, [only]) => Some(&only.id),
            _ => None,
        }
    }

    /// Checks what a running index relies on; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        let mut ids = std::collections::HashSet::new();
        for k in &self.keys {
            check_key(&k.id, k.secret.as_bytes()).map_err(|e| format!("auth.keys: {e}"))?;
            if !ids.insert(k.id.as_str()) {
                return Err(format!("auth.keys: key id {:?} is listed twice; give each key its own id", k.id));
            }
        }
        if let Some(id) = &self.sign_with
            && !ids.contains(id.as_str())
        {
            return Err(format!(
                "auth.sign_with names key {id:?}, which is not in auth.keys (listed: {})",
                if ids.is_empty() {
                    "none".to_string()
                } else {
                    self.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>().join(", ")
                }
            ));
        }
        if self.keys.len() > 1 && self.sign_with.is_none() {
            return Err(
                "auth.sign_with must name the key new tokens are signed with when several keys are listed".into()
            );
        }
        if self.enabled && self.keys.is_empty() {
            return Err(
                "auth.enabled needs a signing key: add [[auth.keys]] with id and secret (or --auth-key ID=SECRET)"
                    .into(),
            );
        }
        let mut apps = std::collections::HashSet::new();
        for r in &self.apps {
            if r.app.is_empty() {
                return Err("auth.apps: an entry has an empty app name".into());
            }
            if !apps.insert(r.app.as_str()) {
                return Err(format!("auth.apps: app {:?} has two rules; merge them into one", r.app));
            }
        }
        if self.url_ttl_s == 0 {
            return Err("auth.url_ttl_s must be at least 1 second".into());
        }
        for (name, value) in [("admin_token", &self.admin_token), ("hook_secret", &self.hook_secret)] {
            if value.as_deref().is_some_and(|v| v.len() < 16) {
                return Err(format!("auth.{name} must be at least 16 characters (e.g. `openssl rand -hex 16`)"));
            }
        }
        if value_has_url_specials(self.hook_secret.as_deref()) {
            return Err(
                "auth.hook_secret must be URL-safe (A-Z a-z 0-9 - _ . ~): it goes in the hook URL's query".into()
            );
        }
        Ok(())
    }
}

fn value_has_url_specials(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> KeyConfig {
        KeyConfig { id: id.into(), secret: "0123456789abcdef".into() }
    }

    #[test]
    fn validation_names_the_key_to_fix() {
        let ok = AuthConfig { enabled: true, keys: vec![key("k1")], ..Default::default() };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.signer(), Some("k1"), "the only key signs");
        let two = AuthConfig { keys: vec![key("k1"), key("k2")], ..ok.clone() };
        assert!(two.validate().unwrap_err().contains("sign_with"));
        let dup = AuthConfig { keys: vec![key("k1"), key("k1")], sign_with: Some("k1".into()), ..ok.clone() };
        assert!(dup.validate().unwrap_err().contains("twice"));
        let unknown = AuthConfig { sign_with: Some("k9".into()), ..ok.clone() };
        assert!(unknown.validate().unwrap_err().contains("\"k9\""));
        let short = AuthConfig { keys: vec![KeyConfig { id: "k1".into(), secret: "short".into() }], ..ok.clone() };
        assert!(short.validate().unwrap_err().contains("at least 16"));
        let nokey = AuthConfig { keys: vec![], ..ok.clone() };
        assert!(nokey.validate().unwrap_err().contains("auth.enabled"));
        let secret = AuthConfig { hook_secret: Some("a secret with spaces".into()), ..ok.clone() };
        assert!(secret.validate().unwrap_err().contains("URL-safe"));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c =
            AuthConfig { keys: vec![key("k1")], admin_token: Some("admin-token-1234567".into()), ..Default::default() };
        let text = format!("{c:?}");
        assert!(!text.contains("0123456789abcdef") && !text.contains("admin-token"), "{text}");
        assert!(text.contains("k1"));
    }

    #[test]
    fn key_flag_parses() {
        let k: KeyConfig = "k2=0123456789abcdef0".parse().unwrap();
        assert_eq!((k.id.as_str(), k.secret.as_str()), ("k2", "0123456789abcdef0"));
        assert!("k2".parse::<KeyConfig>().unwrap_err().contains("ID=SECRET"));
        assert!("k 2=0123456789abcdef0".parse::<KeyConfig>().unwrap_err().contains("key id"));
    }
}

//! Signed tokens: who may publish or play which streams, until when, and from where. A token
//! carries its own claims and an HMAC over them, so the hook receiver checks it with no database
//! and no network, and any index holding the key verifies what another minted.
//!
//! Format: `<kid>.<claims>.<sig>`, three parts in the base64url alphabet (URL-safe as is, no `%`
//! escaping). `kid` names the key (an id of `[A-Za-z0-9_-]`, kept as written so operators can read
//! which key signed a token); `claims` is base64url (no padding) of
//! `<scope>|<expiry unix s>|<ip or CIDR, or empty>|<app/stream or app/*>`; `sig` is base64url of
//! HMAC-SHA256(secret, "<kid>.<claims>") cut to its first 16 bytes. Several keys may be listed at
//! once, so a new key signs while tokens of the old one still verify until it is removed.
//! A play token for `live/cam1` valid for an hour is about 60 characters.

use std::fmt;
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use sha2::Sha256;

/// Bytes of the HMAC kept in a token.
pub const SIG_LEN: usize = 16;
/// Characters of the signature part (base64url of `SIG_LEN` bytes).
const SIG_CHARS: usize = 22;
/// Longest token looked at; anything longer is refused before decoding.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Longest key id.
pub const MAX_KID_LEN: usize = 32;
/// Shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

/// What a token allows, and what a client asks to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Publish,
    Play,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "publish" => Ok(Action::Publish),
            "play" => Ok(Action::Play),
            other => Err(format!("unknown scope {other:?}: expected \"publish\" or \"play\"")),
        }
    }
}

/// The streams a token covers: one stream (`live/cam1`) or every stream of an app (`live/*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    app: String,
    /// `None` for `*`.
    stream: Option<String>,
}

impl Pattern {
    pub fn covers(&self, app: &str, stream: &str) -> bool {
        self.app == app && self.stream.as_deref().is_none_or(|s| s == stream)
    }
}

impl std::str::FromStr for Pattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("stream pattern {s:?} {why}: use app/stream or app/* (e.g. live/cam1, live/*)");
        let (app, stream) = s.split_once('/').ok_or_else(|| bad("has no /"))?;
        if app.is_empty() || stream.is_empty() {
            return Err(bad("has an empty app or stream"));
        }
        if stream.contains('/') {
            return Err(bad("has more than one /"));
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace() || c == '?' || c == '&') {
            return Err(bad("contains spaces, control characters, ? or &"));
        }
        if app.contains('*') || (stream != "*" && stream.contains('*')) {
            return Err(bad("uses * other than as the whole stream name"));
        }
        let stream = (stream != "*").then(|| stream.to_string());
        Ok(Pattern { app: app.to_string(), stream })
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.stream.as_deref().unwrap_or("*"))
    }
}

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub scope: Action,
    pub pattern: Pattern,
    /// Unix seconds; the token is refused from this second on.
    pub expires: u64,
    /// Only clients from this address or network, when set.
    pub ip: Option<IpNet>,
}

impl Claims {
    /// Whether the token lets a client at `ip` do `action` on `app/stream` at `now` (unix s).
    pub fn allows(&self, action: Action, app: &str, stream: &str, ip: IpAddr, now: u64) -> Result<(), TokenError> {
        self.usable(action, ip, now)?;
        if !self.pattern.covers(app, stream) {
            return Err(TokenError::NotCovered {
                pattern: self.pattern.to_string(),
                stream: format!("{app}/{stream}"),
            });
        }
        Ok(())
    }

    /// Everything but the stream: expiry, scope, address.
    pub fn usable(&self, action: Action, ip: IpAddr, now: u64) -> Result<(), TokenError> {
        if now >= self.expires {
            return Err(TokenError::Expired { at: self.expires, now });
        }
        if self.scope != action {
            return Err(TokenError::WrongScope { token: self.scope, wanted: action });
        }
        if let Some(net) = self.ip {
            let ip = ip.to_canonical();
            if !net.contains(&ip) {
                return Err(TokenError::AddressNotAllowed { allowed: net, ip });
            }
        }
        Ok(())
    }

    fn encode(&self) -> String {
        let ip =
            self.ip.map(|n| if n.prefix_len() == n.max_prefix_len() { n.addr().to_string() } else { n.to_string() });
        format!("{}|{}|{}|{}", self.scope, self.expires, ip.unwrap_or_default(), self.pattern)
    }

    fn decode(text: &str) -> Result<Claims, TokenError> {
        let mut parts = text.splitn(4, '|');
        let mut next = || parts.next().ok_or(TokenError::Malformed("the claims have too few fields"));
        let scope = next()?.parse().map_err(|_| TokenError::Malformed("unknown scope"))?;
        let expires = next()?.parse().map_err(|_| TokenError::Malformed("the expiry is not a number"))?;
        let ip = match next()? {
            "" => None,
            s => Some(parse_ip_or_cidr(s).map_err(|_| TokenError::Malformed("the address is not an IP or CIDR"))?),
        };
        let pattern = next()?.parse().map_err(|_| TokenError::Malformed("the stream pattern is not app/stream"))?;
        Ok(Claims { scope, pattern, expires, ip })
    }
}

/// `10.0.0.7` (one address) or `10.0.0.0/8`.
pub fn parse_ip_or_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| IpNet::from(ip.to_canonical())))
        .map(|n| n.trunc())
        .map_err(|_| format!("{s:?} is neither an IP address (10.0.0.7) nor a CIDR (10.0.0.0/8)"))
}

/// Why a token was refused; each message says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token ({0}): a token looks like k1.<claims>.<signature>; copy it whole or mint a new one")]
    Malformed(&'static str),
    #[error(
        "token signed with unknown key id {0:?}: the index no longer lists (or never listed) that key; \
         mint a new token, or add the key back to [auth] keys"
    )]
    UnknownKey(String),
    #[error("bad token signature: the token was altered or signed with another secret for key {0:?}; mint a new one")]
    BadSignature(String),
    #[error("token expired at {} ({} s ago): mint a new one", utc(*at), now.saturating_sub(*at))]
    Expired { at: u64, now: u64 },
    #[error("wrong scope: a {token} token cannot {wanted}; mint one with scope {wanted}")]
    WrongScope { token: Action, wanted: Action },
    #[error("stream not covered: the token is for {pattern}, not {stream}; mint one for {stream}")]
    NotCovered { pattern: String, stream: String },
    #[error("address not allowed: the token is for clients in {allowed}, not {ip}")]
    AddressNotAllowed { allowed: IpNet, ip: IpAddr },
}

/// Why a token could not be minted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    #[error(
        "no signing key: add a key ([[auth.keys]] id and secret, or --auth-key ID=SECRET) and name it in \
         auth.sign_with (--sign-with ID)"
    )]
    NoKey,
    #[error("{0}")]
    BadPattern(String),
    #[error("the lifetime must be at least 1 second")]
    BadTtl,
}

/// Checks a key id and secret; the message says what to change.
pub fn check_key(id: &str, secret: &[u8]) -> Result<(), String> {
    if id.is_empty()
        || id.len() > MAX_KID_LEN
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("key id {id:?} must be 1 to {MAX_KID_LEN} characters of A-Z, a-z, 0-9, - and _"));
    }
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!(
            "the secret of key {id:?} is {} bytes; use at least {MIN_SECRET_LEN} (e.g. `openssl rand -base64 32`)",
            secret.len()
        ));
    }
    Ok(())
}

struct Key {
    id: Box<str>,
    /// Keyed once: each use clones the state instead of hashing the secret again.
    mac: Hmac<Sha256>,
}

/// The keys tokens are signed and verified with.
#[derive(Default)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys.iter().map(|k| &k.id)).finish()
    }
}

impl Keyring {
    /// Keys as `(id, secret)`; ids must be unique.
    pub fn new<'a>(keys: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Result<Keyring, String> {
        let mut ring = Keyring::default();
        for (id, secret) in keys {
            check_key(id, secret)?;
            if ring.find(id).is_some() {
                return Err(format!("key id {id:?} is listed twice"));
            }
            let mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| format!("key {id:?}: {e}"))?;
            ring.keys.push(Key { id: id.into(), mac });
        }
        Ok(ring)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.find(id).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn find(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|k| &*k.id == id)
    }

    /// A token of `claims` signed with key `kid`.
    pub fn sign(&self, kid: &str, claims: &Claims) -> Result<String, MintError> {
        let key = self.find(kid).ok_or(MintError::NoKey)?;
        let claims = B64.encode(claims.encode());
        let mut token = String::with_capacity(kid.len() + claims.len() + SIG_CHARS + 2);
        token.push_str(kid);
        token.push('.');
        token.push_str(&claims);
        let tag = tag(key, &token);
        token.push('.');
        B64.encode_string(&tag[..SIG_LEN], &mut token);
        Ok(token)
    }

    /// The claims of a token whose signature holds (checks nothing else: see [`Claims::allows`]).
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed("it is too long"));
        }
        let (signed, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed("it has no signature"))?;
        let (kid, claims) = signed.split_once('.').ok_or(TokenError::Malformed("it has no key id"))?;
        if kid.is_empty() || claims.contains('.') {
            return Err(TokenError::Malformed("it does not have three parts"));
        }
        let key = self.find(kid).ok_or_else(|| TokenError::UnknownKey(kid.to_string()))?;
        let mut got = [0u8; SIG_LEN + 2];
        if sig.len() != SIG_CHARS || B64.decode_slice(sig, &mut got) != Ok(SIG_LEN) {
            return Err(TokenError::Malformed("the signature is not 22 base64url characters"));
        }
        let mut mac = key.mac.clone();
        mac.update(signed.as_bytes());
        // The length is fixed above, so this compares all 16 bytes, in constant time.
        mac.verify_truncated_left(&got[..SIG_LEN]).map_err(|_| TokenError::BadSignature(kid.to_string()))?;
        let bytes = B64.decode(claims).map_err(|_| TokenError::Malformed("the claims are not base64url"))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| TokenError::Malformed("the claims are not text"))?;
        Claims::decode(text)
    }
}

fn tag(key: &Key, signed: &str) -> [u8; 32] {
    let mut mac = key.mac.clone();
    mac.update(signed.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (beyond the year 9999, the bare number).
pub fn utc(secs: u64) -> String {
    const YEAR_10000: u64 = 253_402_300_800;
    if secs >= YEAR_10000 {
        return format!("{secs} (unix seconds)");
    }
    let (mut days, rem) = (secs / 86_400, secs % 86_400);
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let mut month = 1;
    for len in [31, if leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] {
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    format!("{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}Z", days + 1, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests;

//! Admin API keys: what an operator creates with `ferrocast index keys create` and an admin client
//! sends on every admin request. A key reads `fc_<id>_<secret>`: the id finds its row, the secret
//! (32 random bytes, base64url) proves it. Only an argon2id hash of the secret is stored, so a
//! copy of the database gives no key away; the full key is shown once, at creation.
//!
//! argon2 is slow on purpose (tens of ms and ~19 MiB per check), so a key that verified is
//! remembered for [`CACHE_TTL`] under the SHA-256 of what was presented, and an admin client pays
//! the hash once a minute, not per request. Revoking a key empties that memory, in every process
//! on the database (each notices revocations within [`super::REVOCATION_CHECK`]). Hashing runs on
//! tokio's blocking pool, at most [`MAX_HASHING`] at once, so a flood of wrong keys costs bounded
//! memory and never stalls the request path or the store thread. One of those places is kept for
//! keys that verified within [`KNOWN_TTL`] (by the SHA-256 of what was presented): an admin whose
//! key was in use today never queues behind anonymous guesses.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::worker::{Ask, NewKeyRow, Write};
use super::{Store, StoreError};

/// Every key starts with this.
pub const KEY_PREFIX: &str = "fc_";
/// How long a verified key is trusted without hashing again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// argon2 computations running at once (each holds ~19 MiB).
pub const MAX_HASHING: usize = 2;
/// Longest key name.
pub const MAX_NAME_LEN: usize = 64;
/// Random bytes of a key id (hex in the key) and of its secret (base64url in the key).
const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;
/// base64url characters of `SECRET_BYTES`, without padding.
const SECRET_CHARS: usize = 43;

/// What is known of an API key; never its secret or hash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
    /// Set once the key is revoked; it is refused from then on.
    pub revoked_ms: Option<i64>,
    /// The last time a request with this key was checked against its hash (at most once per
    /// [`CACHE_TTL`] for a busy key).
    pub last_used_ms: Option<i64>,
}

/// The id and secret of a well-formed key (`fc_<hex id>_<43 base64url chars>`), else `None`.
/// An API key never contains '.', which tells it apart from a signed play or publish token.
pub fn parse_key(key: &str) -> Option<(&str, &str)> {
    let (id, secret) = key.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    let id_ok = id.len() == 2 * ID_BYTES && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let secret_ok =
        secret.len() == SECRET_CHARS && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

/// Successful verifications, by the SHA-256 of the presented key.
#[derive(Debug)]
pub(super) struct KeyCache {
    inner: Mutex<CacheInner>,
    /// For keys not verified lately: every anonymous guess waits here.
    hashing: Semaphore,
    /// For keys that verified within `KNOWN_TTL`.
    known_lane: Semaphore,
}

/// How long a key that verified keeps its place in the known keys' lane.
pub const KNOWN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Keys remembered for the known keys' lane, at most.
const KNOWN_MAX: usize = 10_000;

#[derive(Debug, Default)]
struct CacheInner {
    verified: HashMap<[u8; 32], (KeyInfo, Instant)>,
    /// Keys (by digest) that verified, and when: they hash in the known keys' lane.
    known: HashMap<[u8; 32], Instant>,
    /// Bumped by every revocation: a verification that started before one is not remembered.
    generation: u64,
}

impl KeyCache {
    pub(super) fn new() -> KeyCache {
        KeyCache { inner: Mutex::default(), hashing: Semaphore::new(MAX_HASHING - 1), known_lane: Semaphore::new(1) }
    }

    fn lock(&self) -> MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, digest: &[u8; 32]) -> Option<KeyInfo> {
        let inner = self.lock();
        inner.verified.get(digest).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(info, _)| info.clone())
    }

    /// The lane a check of `digest` hashes in.
    fn lane(&self, digest: &[u8; 32]) -> &Semaphore {
        let known = self.lock().known.get(digest).is_some_and(|at| at.elapsed() < KNOWN_TTL);
        if known { &self.known_lane } else { &self.hashing }
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn remember(&self, digest: [u8; 32], info: KeyInfo, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        inner.verified.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        inner.verified.insert(digest, (info, Instant::now()));
        if inner.known.len() >= KNOWN_MAX {
            inner.known.retain(|_, at| at.elapsed() < KNOWN_TTL);
        }
        if inner.known.len() < KNOWN_MAX {
            inner.known.insert(digest, Instant::now());
        }
    }

    pub(super) fn clear(&self) {
        let mut inner = self.lock();
        inner.verified.clear();
        inner.generation += 1;
    }

    /// Takes every place of the unknown keys' lane (tests: a flood of guesses).
    #[cfg(test)]
    pub(super) fn hold_unknown_lane(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.hashing.try_acquire_many((MAX_HASHING - 1) as u32).expect("the lane is free")
    }

    /// Forgets the minute of trust (tests: the next check hashes again).
    #[cfg(test)]
    pub(super) fn expire_verified(&self) {
        self.lock().verified.clear();
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().verified.len()
    }
}

fn now_ms() -> i64 {
    i64::try_from(crate::clock::now_ms()).unwrap_or(i64::MAX)
}

/// The argon2id PHC string of `secret` (default parameters, a fresh random salt).
fn hash_secret(secret: &str) -> Result<String, StoreError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| StoreError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Hash(e.to_string()))
}

/// Whether `secret` matches the PHC string `hash`; a malformed hash matches nothing.
fn secret_matches(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(secret.as_bytes(), &h).is_ok())
}

/// Runs `f` (argon2) on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Hash(e.to_string()))
}

impl Store {
    /// Creates a key named `name` (1 to 64 characters, no control characters) and returns its id
    /// and the full key, which is not kept anywhere: show it to the user once.
    pub async fn create_key(&self, name: &str) -> Result<(String, String), StoreError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(StoreError::BadKeyName(name.to_string()));
        }
        let id: String = rand::random::<[u8; ID_BYTES]>().iter().map(|b| format!("{b:02x}")).collect();
        let secret = B64.encode(rand::random::<[u8; SECRET_BYTES]>());
        let key = format!("{KEY_PREFIX}{id}_{secret}");
        let hash = {
            let _permit = self.keys.hashing.acquire().await.map_err(|_| StoreError::Closed)?;
            blocking(move || hash_secret(&secret)).await??
        };
        let row = NewKeyRow { id: id.clone(), name: name.to_string(), hash, created_ms: now_ms() };
        self.ask(|reply| Ask::CreateKey(row, reply)).await??;
        Ok((id, key))
    }

    /// Every key, revoked ones too, oldest first.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, StoreError> {
        self.ask(Ask::Keys).await?
    }

    /// Revokes key `id`: at once for this process; another process on the same database (an index
    /// replica, or the index a `ferrocast index keys revoke` ran beside) forgets what it verified
    /// within [`super::REVOCATION_CHECK`]. `None` when no key has that id; a key revoked before
    /// keeps its first revocation time.
    pub async fn revoke_key(&self, id: &str) -> Result<Option<KeyInfo>, StoreError> {
        let info = self.ask(|reply| Ask::RevokeKey(id.to_string(), now_ms(), reply)).await??;
        // After the database says revoked: a verification racing with this one is either
        // cleared here or refused by the new generation.
        self.keys.clear();
        Ok(info)
    }

    /// The key `presented` belongs to, if it is well formed, known, not revoked and its secret
    /// matches the stored hash. Successes are remembered for [`CACHE_TTL`].
    pub async fn verify_key(&self, presented: &str) -> Result<Option<KeyInfo>, StoreError> {
        let Some((id, secret)) = parse_key(presented) else { return Ok(None) };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if let Some(info) = self.keys.get(&digest) {
            return Ok(Some(info));
        }
        let generation = self.keys.generation();
        let Some((info, hash)) = self.ask(|reply| Ask::KeyHash(id.to_string(), reply)).await?? else {
            return Ok(None);
        };
        if info.revoked_ms.is_some() {
            return Ok(None);
        }
        let matches = {
            let _permit = self.keys.lane(&digest).acquire().await.map_err(|_| StoreError::Closed)?;
            let secret = secret.to_string();
            blocking(move || secret_matches(&secret, &hash)).await?
        };
        if !matches {
            return Ok(None);
        }
        let now = now_ms();
        self.write(Write::KeyUsed { id: info.id.clone(), at_ms: now });
        let info = KeyInfo { last_used_ms: Some(now), ..info };
        self.keys.remember(digest, info.clone(), generation);
        Ok(Some(info))
    }
}

//! HLS viewers as clients. HLS is plain HTTP requests, so a "viewer" is a session: created by a
//! playlist request (after admission, `crate::admission`), named by the `hls_ctx` id carried in
//! every segment URL (SRS's scheme), kept alive by its requests, and ended — dropping its
//! `Viewer`, which fires `on_stop` — when it stops fetching.
//!
//! The `hls_ctx` is the viewer's credential for segments, so it is an unguessable token (not the
//! client id the API lists), and a session answers only for the stream it was admitted to, from
//! the address it was admitted from. Players that reload the playlist without `hls_ctx` are
//! matched by address, stream and query (their token): a neighbour behind the same NAT without
//! that query is a new viewer, checked by `on_play`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::admission::Viewer;
use crate::ids;
use crate::key::StreamKey;

/// Most HLS sessions open at once: each is an admitted viewer, but on a node without hooks anyone
/// is admitted, and a new query opens a new session.
pub const MAX_SESSIONS: usize = 100_000;

struct Session {
    viewer: Viewer,
    last_seen: Instant,
}

impl Session {
    /// Whether this session was admitted for `key`, from `ip`.
    fn binds(&self, key: &StreamKey, ip: &str) -> bool {
        let info = &self.viewer.guard().stat().info;
        info.key == *key && info.ip == ip
    }
}

#[derive(Default)]
pub struct HlsSessions {
    sessions: Mutex<HashMap<String, Session>>,
}

impl HlsSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the session alive and counts `bytes` sent to it; false if there is no such session
    /// for `key` from `ip` (another stream's or another address's token opens nothing).
    pub fn touch(&self, id: &str, key: &StreamKey, ip: &str, bytes: u64) -> bool {
        match self.lock().get_mut(id).filter(|s| s.binds(key, ip)) {
            Some(s) => {
                s.last_seen = Instant::now();
                s.viewer.guard().traffic().add_send(bytes);
                true
            }
            None => false,
        }
    }

    /// The session of a viewer that reloads without `hls_ctx`: same address, same stream, same
    /// query.
    pub fn find(&self, ip: &str, key: &StreamKey, param: &str) -> Option<String> {
        self.lock().iter().find(|(_, s)| s.binds(key, ip) && s.viewer.param() == param).map(|(id, _)| id.clone())
    }

    /// Whether any viewer of the stream `url` is watching.
    pub fn any_for(&self, url: &str) -> bool {
        self.lock().values().any(|s| s.viewer.guard().stat().info.key.url() == url)
    }

    /// Opens a session for an admitted viewer; returns its `hls_ctx` token.
    /// None (the viewer is dropped: it ends) when `MAX_SESSIONS` are open.
    pub fn insert(&self, viewer: Viewer) -> Option<String> {
        let mut sessions = self.lock();
        if sessions.len() >= MAX_SESSIONS {
            return None;
        }
        let id = ids::session_token();
        sessions.insert(id.clone(), Session { viewer, last_seen: Instant::now() });
        Some(id)
    }

    /// Removes the sessions idle for `timeout` or kicked through the API, and returns them: the
    /// caller drops them outside the lock, which ends them (`on_stop`).
    pub fn expire(&self, timeout: Duration) -> Vec<Viewer> {
        let mut sessions = self.lock();
        let gone: Vec<String> = sessions
            .iter()
            .filter(|(_, s)| s.last_seen.elapsed() >= timeout || s.viewer.guard().kick_token().is_cancelled())
            .map(|(id, _)| id.clone())
            .collect();
        gone.iter().filter_map(|id| sessions.remove(id)).map(|s| s.viewer).collect()
    }
}

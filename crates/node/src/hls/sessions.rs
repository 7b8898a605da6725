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

/// The sessions, and two indexes so the per-request lookups do not scan them all: a reload
/// without `hls_ctx` (hls.js reloads the playlist URL it was given, several times a second in
/// low-latency mode) and an edge segmenter's "anyone still watching?".
#[derive(Default)]
struct Table {
    sessions: HashMap<String, Session>,
    /// (address, stream, query) → session id.
    by_viewer: HashMap<(String, StreamKey, String), String>,
    /// Sessions per stream URL.
    per_stream: HashMap<String, usize>,
}

impl Table {
    fn viewer_key(s: &Session) -> (String, StreamKey, String) {
        let info = &s.viewer.guard().stat().info;
        (info.ip.clone(), info.key.clone(), s.viewer.param().to_string())
    }

    fn remove(&mut self, id: &str) -> Option<Session> {
        let s = self.sessions.remove(id)?;
        let key = Self::viewer_key(&s);
        if self.by_viewer.get(&key).is_some_and(|v| v == id) {
            self.by_viewer.remove(&key);
        }
        let url = key.1.url();
        if let Some(n) = self.per_stream.get_mut(&url) {
            *n -= 1;
            if *n == 0 {
                self.per_stream.remove(&url);
            }
        }
        Some(s)
    }
}

#[derive(Default)]
pub struct HlsSessions {
    table: Mutex<Table>,
}

impl HlsSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the session alive and counts `bytes` sent to it; false if there is no such session
    /// for `key` from `ip` (another stream's or another address's token opens nothing).
    pub fn touch(&self, id: &str, key: &StreamKey, ip: &str, bytes: u64) -> bool {
        match self.lock().sessions.get_mut(id).filter(|s| s.binds(key, ip)) {
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
        self.lock().by_viewer.get(&(ip.to_string(), key.clone(), param.to_string())).cloned()
    }

    /// Whether any viewer of the stream `url` is watching.
    pub fn any_for(&self, url: &str) -> bool {
        self.lock().per_stream.contains_key(url)
    }

    /// Opens a session for an admitted viewer; returns its `hls_ctx` token.
    /// None (the viewer is dropped: it ends) when `MAX_SESSIONS` are open.
    pub fn insert(&self, viewer: Viewer) -> Option<String> {
        let mut table = self.lock();
        if table.sessions.len() >= MAX_SESSIONS {
            return None;
        }
        let id = ids::session_token();
        let session = Session { viewer, last_seen: Instant::now() };
        let key = Table::viewer_key(&session);
        *table.per_stream.entry(key.1.url()).or_default() += 1;
        table.by_viewer.insert(key, id.clone());
        table.sessions.insert(id.clone(), session);
        Some(id)
    }

    /// Removes the sessions idle for `timeout` or kicked through the API, and returns them: the
    /// caller drops them outside the lock, which ends them (`on_stop`).
    pub fn expire(&self, timeout: Duration) -> Vec<Viewer> {
        let mut table = self.lock();
        let gone: Vec<String> = table
            .sessions
            .iter()
            .filter(|(_, s)| s.last_seen.elapsed() >= timeout || s.viewer.guard().kick_token().is_cancelled())
            .map(|(id, _)| id.clone())
            .collect();
        gone.iter().filter_map(|id| table.remove(id)).map(|s| s.viewer).collect()
    }
}

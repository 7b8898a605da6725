//! HLS viewers as clients. HLS is plain HTTP requests, so a "viewer" is a session: created by a
//! playlist request (after admission, `crate::admission`), named by the `hls_ctx` id carried in
//! every segment URL (SRS's scheme), kept alive by its requests, and ended — dropping its
//! `Viewer`, which fires `on_stop` — when it stops fetching. Players that reload the playlist
//! without `hls_ctx` are matched by address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::admission::Viewer;

struct Session {
    viewer: Viewer,
    last_seen: Instant,
}

#[derive(Default)]
pub struct HlsSessions {
    sessions: Mutex<HashMap<String, Session>>,
}

impl HlsSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the session alive and counts `bytes` sent to it; false if there is no such session.
    pub fn touch(&self, id: &str, bytes: u64) -> bool {
        match self.lock().get_mut(id) {
            Some(s) => {
                s.last_seen = Instant::now();
                s.viewer.guard().traffic().add_send(bytes);
                true
            }
            None => false,
        }
    }

    /// The session of a viewer that reloads without `hls_ctx`: same address, same stream.
    pub fn find(&self, ip: &str, url: &str) -> Option<String> {
        self.lock()
            .iter()
            .find(|(_, s)| s.viewer.guard().stat().info.ip == ip && s.viewer.guard().stat().info.key.url() == url)
            .map(|(id, _)| id.clone())
    }

    /// Whether any viewer of the stream `url` is watching.
    pub fn any_for(&self, url: &str) -> bool {
        self.lock().values().any(|s| s.viewer.guard().stat().info.key.url() == url)
    }

    pub fn insert(&self, viewer: Viewer) -> String {
        let id = viewer.id().to_string();
        self.lock().insert(id.clone(), Session { viewer, last_seen: Instant::now() });
        id
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

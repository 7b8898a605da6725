//! The edge role: one upstream pull per stream, started by the first player and stopped a grace
//! period after the last one leaves, failing over between origins without dropping players.

mod origins;
mod publish_up;
mod relay;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

pub use origins::OriginPool;
pub use publish_up::run as publish_up;

use crate::config::EdgeConfig;
use crate::context::NodeContext;
use crate::hub::Source;
use crate::key::StreamKey;

/// The running pulls of an edge.
pub struct EdgeRelays {
    pub origins: OriginPool,
    running: Mutex<HashSet<StreamKey>>,
    pub config: EdgeConfig,
}

impl EdgeRelays {
    pub fn new(origins: Vec<String>, config: EdgeConfig) -> Arc<EdgeRelays> {
        let origins = OriginPool::new(origins, config.origin_retry());
        Arc::new(EdgeRelays { origins, running: Mutex::new(HashSet::new()), config })
    }

    /// Starts the pull for `key` unless one runs. Call after subscribing the player, so the relay
    /// sees it. `param` (the player's query, with its token) goes upstream and `cid` becomes the
    /// stream's `publish.cid`, as on SRS's edge.
    pub fn ensure(self: &Arc<Self>, ctx: &Arc<NodeContext>, key: &StreamKey, param: &str, cid: &str) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if ctx.hub.get(key).is_some_and(|s| s.is_publishing() && !running.contains(key)) {
            return; // published locally on this edge
        }
        if !running.insert(key.clone()) {
            return;
        }
        let reg = Registration { relays: self.clone(), key: key.clone(), active: true };
        tokio::spawn(relay::run(ctx.clone(), reg, key.clone(), param.to_string(), cid.to_string()));
    }
}

/// A relay's entry in `EdgeRelays::running`. It leaves the set exactly once: when the relay
/// decides to stop (under the lock, see `should_stop`), or when the relay ends any other way.
pub struct Registration {
    relays: Arc<EdgeRelays>,
    key: StreamKey,
    active: bool,
}

impl Registration {
    pub fn relays(&self) -> &Arc<EdgeRelays> {
        &self.relays
    }

    /// True (and the relay deregistered) once no player has been there for `grace`.
    fn should_stop(&mut self, source: &Source, idle_since: &mut Option<Instant>, grace: Duration) -> bool {
        if source.player_count() > 0 {
            *idle_since = None;
            return false;
        }
        let since = *idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() < grace {
            return false;
        }
        // Decide under the lock: a player subscribes before calling `ensure`, so either we see
        // it here, or its `ensure` runs after we deregister and starts a new relay.
        let mut running = self.relays.running.lock().unwrap_or_else(|e| e.into_inner());
        if source.player_count() > 0 {
            *idle_since = None;
            return false;
        }
        running.remove(&self.key);
        self.active = false;
        true
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.active {
            self.relays.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
        }
    }
}

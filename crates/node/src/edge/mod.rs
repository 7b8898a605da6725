//! The edge role: one upstream pull per stream, started by the first player and stopped a grace
//! period after the last one leaves, failing over between origins without dropping players.

mod forward;
mod origins;
mod relay;
pub mod upstream;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

pub use forward::run as forward_publisher;
pub use origins::OriginPool;

use crate::context::NodeContext;
use crate::hub::Source;
use crate::key::StreamKey;

/// Timing of relays.
#[derive(Clone, Copy, Debug)]
pub struct RelayConfig {
    pub grace: Duration,
    pub no_media_timeout: Duration,
    pub upstream_timeout: Duration,
}

/// The running pulls of an edge.
pub struct EdgeRelays {
    pub origins: OriginPool,
    running: Mutex<HashSet<StreamKey>>,
    pub config: RelayConfig,
}

impl EdgeRelays {
    pub fn new(origins: Vec<String>, retry_after: Duration, config: RelayConfig) -> Arc<EdgeRelays> {
        Arc::new(EdgeRelays {
            origins: OriginPool::new(origins, retry_after),
            running: Mutex::new(HashSet::new()),
            config,
        })
    }

    /// Starts the pull for `key` unless one runs. Call after subscribing the player, so the relay
    /// sees it. `param` (the player's query, with its token) goes upstream, as SRS's edge does.
    pub fn ensure(self: &Arc<Self>, ctx: &Arc<NodeContext>, key: &StreamKey, param: &str) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if ctx.hub.get(key).is_some_and(|s| s.is_publishing() && !running.contains(key)) {
            return; // published locally on this edge
        }
        if !running.insert(key.clone()) {
            return;
        }
        tokio::spawn(relay::run(ctx.clone(), self.clone(), key.clone(), param.to_string(), self.config));
    }

    /// True (and the relay deregistered) once no player has been there for `grace`.
    fn should_stop(&self, key: &StreamKey, source: &Source, idle_since: &mut Option<Instant>, grace: Duration) -> bool {
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
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if source.player_count() > 0 {
            *idle_since = None;
            return false;
        }
        running.remove(key);
        true
    }
}

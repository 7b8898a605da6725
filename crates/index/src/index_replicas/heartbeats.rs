//! Heartbeats across replicas: a node's registration reaches one replica through the load
//! balancer; it is passed on (throttled) so every replica, and whichever becomes leader, knows
//! the node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Replicas, lock};
use crate::config::NodeSpec;
use crate::state::IndexState;

impl Replicas {
    /// A node's heartbeat reached this replica: pass it on to the others (throttled).
    pub fn heartbeat(&self, spec: &NodeSpec, forget_ms: u64) {
        let every = Duration::from_millis((forget_ms / 4).max(1000));
        let mut seen = lock(&self.heartbeats);
        let fresh = seen.get(&spec.name).is_some_and(|(s, at)| s == spec && at.elapsed() < every);
        if fresh {
            return;
        }
        seen.insert(spec.name.clone(), (spec.clone(), Instant::now()));
        if seen.len() > 100_000 {
            seen.retain(|_, (_, at)| at.elapsed() < every);
        }
        let _ = self.heartbeat_tx.send(spec.clone());
    }
}

/// Passes heartbeats on to the other replicas.
pub(super) async fn sender(state: Arc<IndexState>, sh: Arc<Replicas>, mut rx: mpsc::UnboundedReceiver<NodeSpec>) {
    loop {
        let spec = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            s = rx.recv() => match s { Some(s) => s, None => return },
        };
        let msg = serde_json::json!({ "r": sh.id, "spec": spec }).to_string();
        let mut conn = sh.conn.clone();
        let sent: redis::RedisResult<i64> =
            redis::cmd("PUBLISH").arg(&sh.keys.ch_register).arg(msg).query_async(&mut conn).await;
        if let Err(e) = sent {
            tracing::debug!(node = %spec.name, "heartbeat not passed on (redis: {e})");
        }
    }
}

/// A heartbeat another replica received.
pub(crate) fn heartbeat_in(state: &Arc<IndexState>, sh: &Replicas, payload: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Msg {
        r: String,
        spec: NodeSpec,
    }
    match serde_json::from_slice::<Msg>(payload) {
        Ok(m) if m.r == sh.id => {}
        Ok(m) => {
            if m.spec.validate().is_ok()
                && let crate::state::RegisterOutcome::Added(poller) = state.register(m.spec, true)
            {
                crate::poller::start(state, [poller]);
            }
        }
        Err(e) => tracing::debug!("unreadable heartbeat message: {e}"),
    }
}

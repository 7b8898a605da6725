//! The merge: turns the node table into a new immutable `Directory` whenever it changed, paced so
//! rebuilds cost a bounded share of a core, and passes what changed on (history sessions, events,
//! the shared-mode record writer). The one writer of `IndexState::directory`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::now_ms;
use crate::directory::Directory;
use crate::history::Sessions;
use crate::state::IndexState;

/// Rebuilds the directory whenever the node table changed. Rebuilds are paced to 20 times their
/// own duration (20 ms to 1 s), so they cost at most ~5% of a core however many nodes report:
/// polls that land together make one rebuild. A node leaving scheduling (down, forgotten) cuts
/// the wait to twice the rebuild time.
pub async fn run(state: Arc<IndexState>, mut sessions: Sessions) {
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = state.changed() => {}
        }
        let started = Instant::now();
        step(&state, &mut sessions);
        let took = started.elapsed();
        state.metrics.observe_merge(took);
        let pace = (took * 20).clamp(Duration::from_millis(20), Duration::from_secs(1));
        let urgent_pace = took * 2;
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = state.changed_urgently() => tokio::time::sleep(urgent_pace).await,
            _ = tokio::time::sleep(pace) => {}
        }
    }
}

/// One merge: builds the directory from the node table, orders replicated streams' origins,
/// carries the assignment counts of nodes not polled since, updates the history sessions, swaps
/// the directory in and publishes what changed.
pub fn step(state: &IndexState, sessions: &mut Sessions) {
    let cfg = state.config.load();
    let now = now_ms();
    let mut dir = {
        let table = state.table();
        Directory::build(&table, &cfg, now)
    };
    state.primaries.order(&mut dir, now);
    let prev = state.directory.load_full();
    dir.carry_assignments(&prev);
    state.placements.observe(&prev, &dir, now);
    sessions.observe(&mut dir, state.records_history().then_some(&state.store), now);
    state.directory.store(Arc::new(dir));
    match state.replicas.as_deref() {
        // Index replicas decide what a merge announces (a follower's changes are the leader's).
        Some(replicas) => replicas.after_merge(state, &prev),
        None => crate::events::producer::publish_changes(&state.events, &cfg.poll, &prev, &state.directory.load()),
    }
}

#[cfg(test)]
mod tests;

//! Stream sessions as the directory sees them come and go, written to the store: when a stream
//! went live, where, its peak viewers and when it ended. After a restart of the index the open
//! sessions are read back, so a stream that stayed live keeps its session and its `live_since`.

use std::collections::HashMap;
use std::sync::Arc;

use crate::directory::Directory;
use crate::store::Store;

struct Open {
    node: String,
    since_ms: u64,
    peak: u64,
}

/// Open sessions read back late (the database did not answer at start), for the merge task.
type Later = Arc<std::sync::Mutex<Option<Vec<crate::store::Session>>>>;

/// The open sessions, owned by the merge task.
#[derive(Default)]
pub struct Sessions {
    open: HashMap<Arc<str>, Open>,
    /// Set while the sessions of the previous run are not read yet: until they are, nothing is
    /// written (a stream still live would get a second session).
    later: Option<Later>,
}

fn open_map(list: Vec<crate::store::Session>) -> HashMap<Arc<str>, Open> {
    list.into_iter()
        .map(|s| {
            (
                Arc::from(s.stream.as_str()),
                Open { node: s.node, since_ms: s.published_ms.max(0) as u64, peak: s.peak_viewers },
            )
        })
        .collect()
}

impl Sessions {
    /// Sessions left open by the previous run of the index. When the database does not answer,
    /// they are read again every second in the background until it does.
    pub async fn restore(store: &Store) -> Sessions {
        match store.open_sessions().await {
            Ok(list) => Sessions { open: open_map(list), later: None },
            Err(e) => {
                tracing::warn!(
                    "cannot read open sessions from the history yet ({e}); sessions are written once it answers"
                );
                let later = Later::default();
                let (slot, store) = (Arc::downgrade(&later), store.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        let Some(slot) = slot.upgrade() else { return };
                        if let Ok(list) = store.open_sessions().await {
                            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(list);
                            return;
                        }
                    }
                });
                Sessions { open: HashMap::new(), later: Some(later) }
            }
        }
    }

    /// Compares the new directory with the open sessions: starts, ends and updates sessions in the
    /// store (when given: a follower sharing its database with the leader keeps count without
    /// writing) and fills each entry's `live_since_ms` and `peak_viewers`. Sessions of streams not
    /// in the directory end only once every node was polled (a restarted index must not end
    /// streams of nodes it has not read yet).
    pub fn observe(&mut self, dir: &mut Directory, mut store: Option<&Store>, now_ms: u64) {
        match self.later.as_ref().map(|l| l.lock().unwrap_or_else(|p| p.into_inner()).take()) {
            Some(Some(list)) => {
                self.open = open_map(list);
                self.later = None;
            }
            Some(None) => store = None,
            None => {}
        }
        for (key, entry) in dir.streams.iter_mut() {
            let node = entry.origins.first().or(entry.edges.first()).map(|h| dir.nodes[h.node].spec.name.as_str());
            let node = node.unwrap_or("");
            match self.open.get_mut(key) {
                Some(open) => {
                    if open.node != node && !entry.origins.is_empty() {
                        if let Some(store) = store {
                            store.session_node(key, node);
                        }
                        open.node = node.to_string();
                    }
                    if entry.viewers > open.peak {
                        open.peak = entry.viewers;
                        if let Some(store) = store {
                            store.session_peak(key, entry.viewers);
                        }
                    }
                    entry.live_since_ms = open.since_ms;
                    entry.peak_viewers = open.peak;
                }
                None => {
                    tracing::info!(stream = %key, node, "stream live");
                    if let Some(store) = store {
                        store.session_started(key, node, now_ms as i64);
                        if entry.viewers > 0 {
                            store.session_peak(key, entry.viewers);
                        }
                    }
                    self.open
                        .insert(key.clone(), Open { node: node.to_string(), since_ms: now_ms, peak: entry.viewers });
                }
            }
        }
        if dir.warm {
            self.open.retain(|key, _| {
                let live = dir.streams.contains_key(key);
                if !live {
                    tracing::info!(stream = %key, "stream ended");
                    if let Some(store) = store {
                        store.session_ended(key, now_ms as i64);
                    }
                }
                live
            });
        }
    }
}

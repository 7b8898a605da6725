//! One listener's view of the bus, whatever carries it (WebSocket or SSE): where it starts (a
//! snapshot of the cluster, or a replay of what came after the id it last saw), which events it
//! wants (`?app=`, `?stream=`), and what it is told when it fell too far behind (`resync`, then a
//! fresh snapshot). The bus never waits for a listener: one that lagged is resynced.
//!
//! A listener sees what the stream and node routes would show it (see [`Caller`]): streams of an
//! app whose play needs a token only with a token that may play them, node failure reasons (which
//! can hold internal URLs) only with an admin key.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::clock::now_ms;
use crate::directory::json;
use crate::events::{Bus, Event};
use crate::http::caller::Caller;
use crate::state::IndexState;

/// Which stream events a listener wants; node events go to everyone.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub app: Option<String>,
    /// The stream name (without app or vhost).
    pub stream: Option<String>,
}

impl Filter {
    fn passes_parts(&self, app: &str, stream: &str) -> bool {
        self.app.as_deref().is_none_or(|a| a == app) && self.stream.as_deref().is_none_or(|s| s == stream)
    }

    pub fn passes(&self, e: &Event) -> bool {
        e.stream.as_deref().is_none_or(|key| {
            let (app, stream) = app_and_stream(key);
            self.passes_parts(app, stream)
        })
    }
}

/// The app and stream of a stream key `vhost/app/stream`.
fn app_and_stream(key: &str) -> (&str, &str) {
    let rest = key.split_once('/').map_or(key, |(_, rest)| rest);
    rest.rsplit_once('/').unwrap_or(("", rest))
}

/// One message for a listener: an event of the bus, or a `snapshot` / `resync` of its own.
#[derive(Clone, Debug)]
pub struct Out {
    /// The SSE `id:`: the bus id the listener resumes after (none for `resync`).
    pub id: Option<u64>,
    pub kind: &'static str,
    /// The whole message as JSON.
    pub json: Utf8Bytes,
}

impl Out {
    fn event(e: &Event, admin: bool) -> Out {
        Out { id: Some(e.id), kind: e.kind.as_str(), json: if admin { e.json() } else { e.public_json() } }
    }
}

/// A listener's position on the bus.
pub struct Feed {
    state: Arc<IndexState>,
    filter: Filter,
    caller: Caller,
    rx: broadcast::Receiver<Arc<Event>>,
    /// Messages to send before the next live event.
    queue: VecDeque<Out>,
    /// This listener's place under `http.max_listeners`, held while the feed lives.
    _slot: Option<crate::events::ListenerSlot>,
    /// The signature of the caller's token: the feed ends once it is revoked.
    token_sig: Option<String>,
    /// Why the feed ended, when it did for its caller's token (expired, revoked).
    ended: Option<&'static str>,
}

/// How often a feed whose caller brought a token checks whether it was revoked.
const REVOCATION_CHECK: std::time::Duration = std::time::Duration::from_millis(500);

impl Feed {
    /// A new listener (`since` None) starts with a snapshot; one that saw up to `since` gets what
    /// it missed, or a resync and a snapshot when that is no longer held (or `since` is from an
    /// earlier run of the index: ids start again at 1 after a restart).
    pub fn open(state: Arc<IndexState>, filter: Filter, caller: Caller, since: Option<u64>) -> Feed {
        let bus: &Bus = &state.events;
        let (rx, queue) = match since {
            None => {
                let (id, rx) = bus.subscribe_at();
                (rx, VecDeque::from([snapshot(&state, &filter, &caller, id)]))
            }
            Some(since) if since > bus.last_id() => {
                let (id, rx) = bus.subscribe_at();
                (rx, VecDeque::from([resync(bus.oldest()), snapshot(&state, &filter, &caller, id)]))
            }
            Some(since) => match bus.resume(since) {
                Ok((held, rx)) => {
                    let wanted = held.iter().filter(|e| wants(&state, &filter, &caller, e));
                    (rx, wanted.map(|e| Out::event(e, caller.is_admin())).collect())
                }
                Err(too_old) => {
                    let (id, rx) = bus.subscribe_at();
                    (rx, VecDeque::from([resync(too_old.oldest), snapshot(&state, &filter, &caller, id)]))
                }
            },
        };
        Feed { state, filter, caller, rx, queue, _slot: None, token_sig: None, ended: None }
    }

    /// The feed ends once the token with this signature is revoked (its expiry ends it anyway).
    pub fn revocable(mut self, token_sig: Option<String>) -> Feed {
        self.token_sig = token_sig;
        self
    }

    /// Why the feed ended for its caller's token ("the token expired"...), if it did.
    pub fn ended(&self) -> Option<&'static str> {
        self.ended
    }

    /// The caller's token is no longer good: expired or revoked.
    fn token_gone(&mut self) -> bool {
        let expired = matches!(&self.caller, Caller::Viewer(Some(c)) if crate::auth::now_secs() >= c.expires);
        let revoked = self.token_sig.as_deref().is_some_and(|sig| self.state.revoked.contains(sig));
        self.ended = if expired {
            Some("the token expired")
        } else if revoked {
            Some("the token was revoked")
        } else {
            None
        };
        self.ended.is_some()
    }

    /// The feed holds `slot` (a place under `http.max_listeners`) until it ends.
    pub fn holding(mut self, slot: crate::events::ListenerSlot) -> Feed {
        self._slot = Some(slot);
        self
    }

    /// The next message; `None` once the index shuts down, or the caller's token expired or was
    /// revoked ([`Feed::ended`] says which). Cancel-safe.
    pub async fn next(&mut self) -> Option<Out> {
        let tokened = matches!(self.caller, Caller::Viewer(Some(_)));
        loop {
            if tokened && self.token_gone() {
                return None;
            }
            if let Some(out) = self.queue.pop_front() {
                return Some(out);
            }
            let check = async {
                if tokened { tokio::time::sleep(REVOCATION_CHECK).await } else { std::future::pending().await }
            };
            let got = tokio::select! {
                _ = self.state.shutdown.cancelled() => return None,
                _ = check => continue,
                got = self.rx.recv() => got,
            };
            match got {
                Ok(e) if wants(&self.state, &self.filter, &self.caller, &e) => {
                    return Some(Out::event(&e, self.caller.is_admin()));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "an event listener fell behind: resynced");
                    let (id, rx) = self.state.events.subscribe_at();
                    self.rx = rx;
                    self.queue.push_back(resync(self.state.events.oldest()));
                    self.queue.push_back(snapshot(&self.state, &self.filter, &self.caller, id));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// Whether a listener gets event `e`: it asked for it and may see it (the rules of the moment:
/// a reload that closes an app stops its events at once).
fn wants(state: &IndexState, filter: &Filter, caller: &Caller, e: &Event) -> bool {
    filter.passes(e)
        && e.stream.as_deref().is_none_or(|key| {
            let (app, stream) = app_and_stream(key);
            caller.may_see(&state.auth.load(), app, stream)
        })
}

/// `{"type":"resync","oldest":N}`: events were lost for this listener; a snapshot follows.
fn resync(oldest: u64) -> Out {
    Out { id: None, kind: "resync", json: json!({ "type": "resync", "oldest": oldest }).to_string().into() }
}

/// The live streams (filtered) and all nodes, as of bus event `id`.
fn snapshot(state: &IndexState, filter: &Filter, caller: &Caller, id: u64) -> Out {
    let dir = state.directory.load();
    let cap = state.config.load().scheduler.default_max_viewers;
    let auth = state.auth.load();
    let streams: Vec<_> = dir
        .sorted_streams()
        .filter(|s| filter.passes_parts(&s.app, &s.stream) && caller.may_see(&auth, &s.app, &s.stream))
        .map(|s| json::stream(&dir, s))
        .collect();
    let nodes: Vec<_> = (0..dir.nodes.len()).map(|i| json::node(&dir, i, cap, caller.is_admin())).collect();
    let body = json!({
        "id": id,
        "time_ms": now_ms(),
        "type": "snapshot",
        "data": { "streams": streams, "nodes": nodes },
    });
    Out { id: Some(id), kind: "snapshot", json: body.to_string().into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventKind;
    use serde_json::Value;

    #[test]
    fn filters_compare_the_key_parts_and_let_node_events_through() {
        let bus = Bus::new(8);
        let e = |key: Option<&str>| bus.publish(EventKind::StreamPublished, key, Value::Null);
        let f = Filter { app: Some("live".into()), stream: Some("cam1".into()) };
        assert!(f.passes(&e(Some("__defaultVhost__/live/cam1"))));
        assert!(f.passes(&e(Some("other.vhost/live/cam1"))));
        assert!(!f.passes(&e(Some("__defaultVhost__/live/cam10"))));
        assert!(!f.passes(&e(Some("__defaultVhost__/game/cam1"))));
        assert!(f.passes(&e(None)), "node events go to everyone");
        assert!(Filter::default().passes(&e(Some("__defaultVhost__/game/x"))));
    }
}

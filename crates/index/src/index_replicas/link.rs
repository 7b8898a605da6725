//! The subscriber: one pub/sub connection per replica to the cluster's channels (node records,
//! events, assignments, heartbeats, revocations, origins), reconnected with backoff when it drops, and
//! pinged so a connection that silently died is noticed. After every (re)connect a follower
//! fetches all node records: what was announced while it was away is not replayed.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::Replicas;
use crate::state::IndexState;

const PING_EVERY: Duration = Duration::from_secs(2);

pub(super) async fn run(state: Arc<IndexState>, sh: Arc<Replicas>) {
    let mut backoff = Duration::from_millis(100);
    let connect_timeout = (sh.lease / 3).clamp(Duration::from_millis(100), Duration::from_secs(2));
    let channels = [
        sh.keys.ch_nodes.clone(),
        sh.keys.ch_events.clone(),
        sh.keys.ch_assign.clone(),
        sh.keys.ch_register.clone(),
        sh.keys.ch_revoke.clone(),
        sh.keys.ch_origins.clone(),
    ];
    while !state.shutdown.is_cancelled() {
        let connected = tokio::time::timeout(connect_timeout, async {
            let mut ps = sh.client.get_async_pubsub().await?;
            ps.subscribe(&channels).await?;
            Ok::<_, redis::RedisError>(ps)
        })
        .await;
        let ps = match connected {
            Ok(Ok(ps)) => ps,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "no answer in time".into(),
                };
                tracing::debug!("redis subscriber: cannot connect: {why}");
                tokio::select! {
                    _ = state.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // Whatever was announced while not subscribed is fetched whole.
        sh.resync.notify_one();
        super::revocations::revoke_sync(&state, &sh);
        super::origins::sync(&state, &sh);
        let (mut sink, mut stream) = ps.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let why = loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                msg = stream.next() => match msg {
                    Some(msg) => dispatch(&state, &sh, msg.get_channel_name(), msg.get_payload_bytes()),
                    None => break "connection closed".to_string(),
                },
                _ = ping.tick() => {
                    match tokio::time::timeout(connect_timeout, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => break e.to_string(),
                        Err(_) => break "no answer to PING in time".to_string(),
                    }
                }
            }
        };
        tracing::debug!("redis subscriber lost: {why}; reconnecting");
    }
}

/// Largest message taken from another replica: an event carrying a stream held by thousands of
/// edges is ~100 KB; anything far bigger is no message of ours.
const MAX_MESSAGE: usize = 4 << 20;

fn dispatch(state: &Arc<IndexState>, sh: &Arc<Replicas>, channel: &str, payload: &[u8]) {
    if payload.len() > MAX_MESSAGE {
        tracing::warn!(channel, bytes = payload.len(), "a redis message larger than {MAX_MESSAGE} bytes: ignored");
        return;
    }
    let k = &sh.keys;
    if channel == k.ch_events {
        super::relay::received(state, sh, payload);
    } else if channel == k.ch_nodes {
        super::node_records::reader::announced(sh, payload);
    } else if channel == k.ch_assign {
        super::assign::received(state, sh, payload);
    } else if channel == k.ch_register {
        super::heartbeats::heartbeat_in(state, sh, payload);
    } else if channel == k.ch_revoke {
        super::revocations::revoke_in(state, sh, payload);
    } else if channel == k.ch_origins {
        super::origins::received(state, sh, payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IndexConfig;

    #[tokio::test]
    async fn a_message_over_the_cap_is_ignored() {
        // Redis is never reached: the connection is lazy and nothing here talks to it.
        let config = IndexConfig { redis: Some("redis://127.0.0.1:1/0".into()), ..IndexConfig::default() };
        let state = IndexState::new(config, crate::store::Store::open_in_memory().unwrap(), None).unwrap();
        let sh = state.replicas.clone().unwrap();
        let heartbeat = |name: &str, pad: usize| {
            let spec = serde_json::json!({ "name": name, "role": "edge", "api": "http://127.0.0.1:1985" });
            let msg = serde_json::json!({ "r": "another-replica", "spec": spec }).to_string();
            format!("{msg}{}", " ".repeat(pad)).into_bytes()
        };
        dispatch(&state, &sh, &sh.keys.ch_register, &heartbeat("huge", MAX_MESSAGE));
        dispatch(&state, &sh, &sh.keys.ch_register, &heartbeat("small", 0));
        let table = state.table();
        assert!(!table.contains_key("huge"), "over the cap: ignored");
        assert!(table.contains_key("small"), "a message within the cap is taken");
    }

    #[tokio::test]
    async fn origin_notes_that_name_no_known_origin_or_do_not_parse_create_nothing() {
        let config = IndexConfig { redis: Some("redis://127.0.0.1:1/0".into()), ..IndexConfig::default() };
        let state = IndexState::new(config, crate::store::Store::open_in_memory().unwrap(), None).unwrap();
        let sh = state.replicas.clone().unwrap();
        let key = "__defaultVhost__/live/cam1";
        let huge = "k".repeat(1 << 20);
        let notes = |d: serde_json::Value| serde_json::json!({ "r": "another-replica", "d": d }).to_string();
        for payload in [
            b"not json".to_vec(),
            br#"{"r":"x","d":[["q","a","b"]]}"#.to_vec(),
            notes(serde_json::json!([["p", key, "nowhere"], ["o", key, "nowhere"]])).into_bytes(),
            notes(serde_json::json!([["p", huge, "nowhere"]])).into_bytes(),
            notes(serde_json::Value::Array(vec![serde_json::json!(["o", key, "nowhere"]); 10_000])).into_bytes(),
        ] {
            dispatch(&state, &sh, &sh.keys.ch_origins, &payload);
        }
        assert_eq!(state.primaries.get(key), None, "no primary for a node the directory does not list");
        assert_eq!(state.placements.recent(key, crate::clock::now_ms()), None, "no placement either");
    }
}

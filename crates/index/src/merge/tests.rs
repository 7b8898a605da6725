//! One merge step on a hand-built node table: no HTTP, no Redis, no pollers.

use std::sync::Arc;

use super::*;
use crate::config::{IndexConfig, Role};
use crate::nodes::{Health, NodeEntry, NodeReport, NodeStream};
use crate::srs::Kbps;
use crate::store::Store;

const CAM: &str = "__defaultVhost__/live/cam";

fn state() -> Arc<IndexState> {
    IndexState::new(IndexConfig::default(), Store::open_in_memory().unwrap(), None).unwrap()
}

fn up(name: &str, role: Role, order: usize, streams: Vec<NodeStream>) -> NodeEntry {
    let spec = format!("name={name},role={role},api=http://127.0.0.1:1985").parse().unwrap();
    let mut e = NodeEntry::new(spec, order, None);
    e.health = Health::Up;
    e.report = Some(Arc::new(NodeReport { streams, ..Default::default() }));
    e
}

fn stream(active: bool, clients: u64) -> NodeStream {
    NodeStream { key: CAM.into(), active, clients, kbps: Kbps::default(), video: None, audio: None }
}

fn kinds(state: &IndexState) -> Vec<&'static str> {
    let (held, _) = state.events.resume(0).unwrap();
    held.iter().map(|e| e.kind.as_str()).collect()
}

#[tokio::test]
async fn a_step_swaps_in_the_merged_directory_and_announces_what_changed() {
    let state = state();
    {
        let mut table = state.table();
        table.insert("o1".into(), up("o1", Role::Origin, 0, vec![stream(true, 2)]));
        table.insert("e1".into(), up("e1", Role::Edge, 1, vec![stream(true, 4)]));
    }
    let mut sessions = Sessions::default();
    step(&state, &mut sessions);
    let dir = state.directory.load();
    let cam = &dir.streams[CAM];
    assert_eq!(dir.nodes[cam.origins[0].node].spec.name, "o1");
    assert_eq!(cam.edges.iter().map(|h| dir.nodes[h.node].spec.name.as_str()).collect::<Vec<_>>(), ["e1"]);
    assert_eq!(kinds(&state), ["stream_published"]);

    // The origin goes down: the next step drops the stream and announces its end.
    state.table().get_mut("o1").unwrap().health = Health::Down;
    state.table().get_mut("o1").unwrap().report = None;
    state.table().get_mut("e1").unwrap().report = None;
    step(&state, &mut sessions);
    assert!(state.directory.load().streams.is_empty());
    assert_eq!(kinds(&state), ["stream_published", "stream_unpublished"]);
}

#[tokio::test]
async fn assignments_carry_over_until_the_node_is_polled_again() {
    let state = state();
    state.table().insert("e1".into(), up("e1", Role::Edge, 0, vec![stream(true, 1)]));
    let mut sessions = Sessions::default();
    step(&state, &mut sessions);
    state.directory.load().assigned[0].store(5, std::sync::atomic::Ordering::Relaxed);
    step(&state, &mut sessions);
    assert_eq!(state.directory.load().assigned(0), 5, "not polled since: the count stays");
    let report = NodeReport { streams: vec![stream(true, 6)], ..Default::default() };
    crate::nodes::apply_poll(
        state.table().get_mut("e1").unwrap(),
        Ok(report),
        Duration::from_millis(1),
        Duration::from_secs(1),
        2,
        1,
    );
    step(&state, &mut sessions);
    assert_eq!(state.directory.load().assigned(0), 0, "a poll's numbers include those viewers");
}

//! The merge's diff on hand-made directories: what each change announces, the warm rule, and
//! hook-announced streams not announced twice.

use std::sync::Arc;

use super::*;
use crate::config::{IndexConfig, Role};
use crate::nodes::{NodeEntry, NodeReport, NodeStream, NodeTable};
use crate::srs::Kbps;

const GRACE: Duration = Duration::from_secs(3);
const CAM1: &str = "__defaultVhost__/live/cam1";
const CAM2: &str = "__defaultVhost__/live/cam2";

/// A node: name, role, health, and its streams `(name, clients)` in app `live` (none when down
/// or not polled).
type NodeDef<'a> = (&'a str, Role, Health, &'a [(&'a str, u64)]);

fn directory(nodes: &[NodeDef]) -> Directory {
    let table: NodeTable = nodes
        .iter()
        .enumerate()
        .map(|(order, (name, role, health, streams))| {
            let spec = format!("name={name},role={role},api=http://127.0.0.1:1985").parse().unwrap();
            let mut e = NodeEntry::new(spec, order, None);
            e.health = *health;
            if health.schedulable() {
                let streams = streams
                    .iter()
                    .map(|(s, clients)| NodeStream {
                        key: format!("__defaultVhost__/live/{s}").into(),
                        active: true,
                        clients: *clients,
                        kbps: Kbps::default(),
                        video: None,
                        audio: None,
                    })
                    .collect();
                e.report = Some(Arc::new(NodeReport { streams, ..Default::default() }));
            }
            (name.to_string(), e)
        })
        .collect();
    Directory::build(&table, &IndexConfig::default(), 1)
}

/// Events after `since`: (type, stream key, viewers or previous origin).
fn seen(bus: &Bus, since: u64) -> Vec<(&'static str, String, Value)> {
    let (held, _) = bus.resume(since).unwrap();
    held.iter()
        .map(|e| {
            let extra = match e.kind {
                EventKind::OriginFailover => e.data()["previous_origin"].clone(),
                _ => e.data()["viewers"].clone(),
            };
            (e.kind.as_str(), e.stream.as_deref().unwrap_or("").to_string(), extra)
        })
        .collect()
}

#[test]
fn streams_come_change_and_go_but_not_before_every_node_was_polled() {
    use Health::*;
    let bus = Bus::new(64);
    let t = Instant::now();
    let empty = Directory::default();
    // The edge is not polled yet: the directory is not warm.
    let d1 = directory(&[("o1", Role::Origin, Up, &[("cam1", 3)]), ("e1", Role::Edge, Unknown, &[])]);
    diff(&bus, &empty, &d1, t, GRACE);
    assert_eq!(seen(&bus, 0), [("stream_published", CAM1.into(), json!(2))]);
    let d2 = directory(&[("o1", Role::Origin, Up, &[("cam1", 5), ("cam2", 1)]), ("e1", Role::Edge, Unknown, &[])]);
    diff(&bus, &d1, &d2, t, GRACE);
    assert_eq!(
        seen(&bus, 1),
        [("viewers_changed", CAM1.into(), json!(4)), ("stream_published", CAM2.into(), json!(0))]
    );
    let d3 = directory(&[("o1", Role::Origin, Down, &[]), ("e1", Role::Edge, Unknown, &[])]);
    diff(&bus, &d2, &d3, t, GRACE);
    assert_eq!(seen(&bus, 3), [], "not warm: streams of unpolled nodes are not announced gone");
    let d4 = directory(&[("o1", Role::Origin, Down, &[]), ("e1", Role::Edge, Up, &[])]);
    diff(&bus, &d3, &d4, t, GRACE);
    assert_eq!(
        seen(&bus, 3),
        [("stream_unpublished", CAM1.into(), json!(0)), ("stream_unpublished", CAM2.into(), json!(0))],
        "warm: gone, with a stub record when the previous directory lacked them too"
    );
    assert_eq!(bus.resume(3).unwrap().0[0].data()["key"], CAM1);
}

#[test]
fn a_new_first_origin_is_a_failover() {
    use Health::*;
    let bus = Bus::new(64);
    let t = Instant::now();
    let d1 = directory(&[("o1", Role::Origin, Up, &[("cam1", 1)]), ("o2", Role::Origin, Up, &[])]);
    diff(&bus, &Directory::default(), &d1, t, GRACE);
    let d2 = directory(&[("o1", Role::Origin, Down, &[]), ("o2", Role::Origin, Up, &[("cam1", 1)])]);
    diff(&bus, &d1, &d2, t, GRACE);
    assert_eq!(seen(&bus, 1), [("origin_failover", CAM1.into(), json!("o1"))]);
    let e = &bus.resume(1).unwrap().0[0];
    assert_eq!((e.data()["origin"].as_str(), e.data()["origins"][0]["node"].as_str()), (Some("o2"), Some("o2")));
}

#[test]
fn a_hook_announced_stream_is_not_announced_again_by_polls() {
    use Health::*;
    let bus = Bus::new(64);
    let t = Instant::now();
    let empty = Directory::default();
    assert!(bus.hook_published(CAM1, || stub(CAM1)).is_some());
    assert!(bus.hook_published(CAM1, || stub(CAM1)).is_none(), "a repeated hook");
    let d1 = directory(&[("o1", Role::Origin, Up, &[("cam1", 3)])]);
    diff(&bus, &empty, &d1, t, GRACE);
    assert_eq!(seen(&bus, 0), [("stream_published", CAM1.into(), json!(0))], "the hook's, not the poll's");
    assert!(bus.hook_unpublished(CAM1, || stub(CAM1)).is_some());
    let d2 = directory(&[("o1", Role::Origin, Up, &[("cam1", 4)])]);
    diff(&bus, &d1, &d2, t, GRACE);
    assert_eq!(seen(&bus, 2), [], "a stale snapshot neither republishes it nor counts its viewers");
    let d3 = directory(&[("o1", Role::Origin, Up, &[])]);
    diff(&bus, &d2, &d3, t, GRACE);
    assert_eq!(seen(&bus, 2), [], "nor unpublishes it twice");
    assert!(!bus.announced_live(CAM1));
    assert_eq!(stream_data(&d1, CAM1)["viewers"], 2);
    assert_eq!(stream_data(&d3, CAM1)["stream"], "cam1");
}

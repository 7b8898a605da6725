//! The merge of node reports into one directory, fed with what real SRS 7 nodes answered
//! (`fixtures/srs/`) and converted exactly as the poller converts it.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::nodes::{NodeStream, NodeTable, apply_poll};
use crate::poller::report_from;
use crate::srs::{Kbps, StreamsAnswer, SummariesAnswer, VhostsAnswer};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/srs/");
const CAM1: &str = "__defaultVhost__/live/cam1";
const NOW: u64 = 1_795_461_400_000;

/// A capture, parsed; the bytes live for the rest of the test run (answers borrow from them).
fn sample<T: serde::Deserialize<'static>>(file: &str) -> T {
    let path = format!("{SAMPLES}{file}");
    let bytes: &'static [u8] = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")).leak();
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A node's report from its captured streams page, with the origin's vhost list (as the
/// edges' own vhost ids are not in it, this is also what an unknown id looks like).
fn capture(node: &str, streams: StreamsAnswer<'static>) -> NodeReport {
    let summaries: SummariesAnswer = sample(&format!("{node}-summaries.json"));
    report_from(sample("origin-vhosts.json"), vec![streams], summaries, None).unwrap()
}

fn captured(node: &str, streams_file: &str) -> NodeReport {
    capture(node, sample(streams_file))
}

fn node(name: &str, role: Role, order: usize, health: Health, report: Option<NodeReport>) -> NodeEntry {
    let spec = format!("name={name},role={role},api=http://127.0.0.1:1985").parse().unwrap();
    let mut e = NodeEntry::new(spec, order, None);
    e.health = health;
    e.report = report.map(Arc::new);
    e
}

fn up(name: &str, role: Role, order: usize, streams: Vec<NodeStream>) -> NodeEntry {
    node(name, role, order, Health::Up, Some(NodeReport { streams, ..Default::default() }))
}

fn stream(key: &str, active: bool, clients: u64) -> NodeStream {
    NodeStream { key: key.into(), active, clients, kbps: Kbps::default(), video: None, audio: None }
}

fn build(nodes: impl IntoIterator<Item = NodeEntry>) -> Directory {
    let table: NodeTable = nodes.into_iter().map(|e| (e.spec.name.clone(), e)).collect();
    Directory::build(&table, &IndexConfig::default(), NOW)
}

fn holder_names<'a>(dir: &'a Directory, holders: &[Holder]) -> Vec<&'a str> {
    let mut names: Vec<&str> = holders.iter().map(|h| dir.nodes[h.node].spec.name.as_str()).collect();
    names.sort_unstable();
    names
}

fn node_names<'a>(dir: &'a Directory, nodes: &[usize]) -> Vec<&'a str> {
    nodes.iter().map(|&i| dir.nodes[i].spec.name.as_str()).collect()
}

fn keys(report: &NodeReport) -> Vec<&str> {
    report.streams.iter().map(|s| &*s.key).collect()
}

/// One page of `/api/v1/streams/` with records `(url, vhost id, active, clients)`.
fn page(records: &[(&str, &str, bool, u64)]) -> StreamsAnswer<'static> {
    let streams: Vec<_> = records
        .iter()
        .map(|(url, vhost, active, clients)| {
            let name = url.rsplit('/').next().unwrap();
            json!({"name": name, "vhost": vhost, "app": "live", "url": url, "clients": clients,
                   "publish": {"active": active}})
        })
        .collect();
    let text = json!({"code": 0, "server": "vid-1", "service": "s1", "streams": streams}).to_string();
    serde_json::from_str(text.leak()).unwrap()
}

fn vhosts(list: &[(&str, &str)]) -> VhostsAnswer {
    let vhosts: Vec<_> = list.iter().map(|(id, name)| json!({"id": id, "name": name})).collect();
    serde_json::from_value(json!({"code": 0, "vhosts": vhosts})).unwrap()
}

fn srs_cluster() -> Directory {
    build([
        node("origin", Role::Origin, 0, Health::Up, Some(captured("origin", "origin-streams.json"))),
        node("edge1", Role::Edge, 1, Health::Up, Some(captured("edge1", "edge1-streams.json"))),
        node("edge2", Role::Edge, 2, Health::Up, Some(captured("edge2", "edge2-streams.json"))),
    ])
}

#[test]
fn real_srs_cluster_is_one_stream_with_its_origin_edges_and_viewers() {
    let dir = srs_cluster();
    assert_eq!(dir.streams.keys().map(|k| &**k).collect::<Vec<_>>(), [CAM1], "one entry, not one per node");
    let e = &dir.streams[CAM1];
    assert_eq!((&*e.vhost, &*e.app, &*e.stream), ("__defaultVhost__", "live", "cam1"));
    assert_eq!(holder_names(&dir, &e.origins), ["origin"]);
    assert_eq!(holder_names(&dir, &e.edges), ["edge1", "edge2"]);
    // edge1: 1 HTTP-FLV viewer; edge2: 2 RTMP viewers; origin: publisher + 2 edge pulls.
    assert_eq!((e.viewers, e.origin_viewers, e.peak_viewers), (3, 0, 3));
    assert_eq!(dir.viewers(), 3);
    let v = e.video.as_deref().expect("video from the origin");
    assert_eq!((v.codec.as_str(), v.width, v.height), ("H264", 640, 352));
    let a = e.audio.as_deref().expect("audio from the origin");
    assert_eq!((a.codec.as_str(), a.sample_rate, a.channels), ("AAC", 44100, 2));
    assert_eq!(e.live_since_ms, NOW);
    // Per node: an edge's clients are all viewers; an origin's are all but the publisher.
    let viewers = |name: &str| dir.node(name).unwrap().viewers;
    assert_eq!((viewers("origin"), viewers("edge1"), viewers("edge2")), (2, 1, 2));
    assert!(dir.nodes.iter().all(|n| n.streams == 1));
    assert!(dir.warm);
    let origin = dir.node("origin").unwrap().report.as_deref().unwrap();
    assert_eq!(origin.service.as_deref(), Some("584128l7"), "the restart detector's id");
    assert_eq!(origin.version.as_deref(), Some("7.0.18"));
}

#[test]
fn edge_vhost_ids_and_player_extensions_do_not_split_the_stream() {
    // The edges' vhost ids (vid-s29f01a, vid-30vdf90) are not in the vhost list they are read with.
    for (node, file) in [("edge1", "edge1-streams.json"), ("edge2", "edge2-streams.json")] {
        let answer: StreamsAnswer = sample(file);
        let id = answer.streams[0].vhost.clone();
        let known: VhostsAnswer = sample("origin-vhosts.json");
        assert!(known.vhosts.iter().all(|v| v.id != id), "{id} must be unknown for this test");
        assert_eq!(keys(&capture(node, answer)), [CAM1], "{node}");
    }
    // Without `url` (older builds), edge1's record is keyed by its name `cam1.flv` minus `.flv`.
    let mut answer: StreamsAnswer = sample("edge1-streams.json");
    assert_eq!(answer.streams[0].name, "cam1.flv");
    answer.streams[0].url = "".into();
    let edge1 = capture("edge1", answer);
    assert_eq!(keys(&edge1), [CAM1]);
    let dir = build([
        node("origin", Role::Origin, 0, Health::Up, Some(captured("origin", "origin-streams.json"))),
        node("edge1", Role::Edge, 1, Health::Up, Some(edge1)),
    ]);
    assert_eq!(dir.streams.len(), 1);
    assert_eq!(holder_names(&dir, &dir.streams[CAM1].edges), ["edge1"]);
}

#[test]
fn unpublished_stream_leaves_but_its_remaining_clients_still_count() {
    let report = captured("origin", "origin-streams-after-unpublish.json");
    assert_eq!(keys(&report), [CAM1], "the record itself is still read");
    let dir = build([node("origin", Role::Origin, 0, Health::Up, Some(report))]);
    assert!(dir.streams.is_empty(), "publish.active false: not live");
    let origin = dir.node("origin").unwrap();
    assert_eq!(origin.viewers, 2, "no publisher to subtract: both clients are still served");
    assert_eq!((origin.kbps_in, origin.kbps_out, origin.streams), (549, 886, 0));
}

#[test]
fn down_or_unpolled_nodes_contribute_nothing() {
    // edge2 goes down the way a poller takes it down: two failed polls after a good one.
    let mut edge2 = node("edge2", Role::Edge, 2, Health::Unknown, None);
    let snap = NodeReport { streams: vec![stream(CAM1, true, 7)], ..Default::default() };
    apply_poll(&mut edge2, Ok(snap), Duration::ZERO, Duration::from_secs(1), 2, NOW);
    for _ in 0..2 {
        apply_poll(&mut edge2, Err("refused".into()), Duration::ZERO, Duration::from_secs(1), 2, NOW);
    }
    assert_eq!(edge2.health, Health::Down);
    let dir = build([
        up("origin", Role::Origin, 0, vec![stream(CAM1, true, 3)]),
        up("edge1", Role::Edge, 1, vec![stream(CAM1, true, 1)]),
        edge2,
        node("edge3", Role::Edge, 3, Health::Unknown, None),
    ]);
    let e = &dir.streams[CAM1];
    assert_eq!(holder_names(&dir, &e.edges), ["edge1"]);
    assert_eq!((e.viewers, e.origin_viewers), (1 + 1, 1), "origin: publisher + 1 pull + 1 direct viewer");
    for name in ["edge2", "edge3"] {
        let n = dir.node(name).unwrap();
        assert_eq!((n.viewers, n.streams, n.kbps_out), (0, 0, 0), "{name}");
    }
    // The origin down: an edge still serving the stream keeps it listed, with no origin to publish to.
    let dir = build([
        node("origin", Role::Origin, 0, Health::Down, None),
        up("edge1", Role::Edge, 1, vec![stream(CAM1, true, 1)]),
    ]);
    assert!(dir.streams[CAM1].origins.is_empty());
    assert!(dir.origins.is_empty());
}

#[test]
fn only_up_and_degraded_nodes_are_schedulable_and_origins_keep_config_order() {
    let with_region = |mut e: NodeEntry, region: &str| {
        Arc::make_mut(&mut e.spec).region = Some(region.into());
        e
    };
    let nodes = |unknown: Health| {
        [
            // Names sort the other way round from the config order.
            node("origin-z", Role::Origin, 0, Health::Up, Some(NodeReport::default())),
            node("origin-m", Role::Origin, 1, Health::Degraded, Some(NodeReport::default())),
            node("origin-a", Role::Origin, 2, Health::Down, None),
            node("origin-b", Role::Origin, 3, unknown, None),
            with_region(up("eu-2", Role::Edge, 4, vec![]), "eu"),
            with_region(node("eu-1", Role::Edge, 5, Health::Degraded, Some(NodeReport::default())), "eu"),
            with_region(node("us-1", Role::Edge, 6, Health::Down, None), "us"),
            with_region(node("ap-1", Role::Edge, 7, unknown, None), "ap"),
            up("plain", Role::Edge, 8, vec![]),
        ]
    };
    let dir = build(nodes(Health::Unknown));
    assert!(!dir.warm, "a node not polled yet");
    assert_eq!(node_names(&dir, &dir.origins), ["origin-z", "origin-m"]);
    let mut regions: Vec<(&str, Vec<&str>)> = dir
        .edges_by_region
        .iter()
        .map(|(r, e)| (&**r, node_names(&dir, &e.slots.iter().map(|s| s.node).collect::<Vec<_>>())))
        .collect();
    regions.sort();
    assert_eq!(regions, [("default", vec!["plain"]), ("eu", vec!["eu-1", "eu-2"])]);
    assert_eq!(dir.nodes.len(), 9, "every node is shown, schedulable or not");

    let dir = build(nodes(Health::Down));
    assert!(dir.warm, "every node polled at least once, whatever the outcome");
}

#[test]
fn a_stream_on_two_origins_is_one_entry() {
    // Forwarded: origin-b receives it from origin-a; origin-a also has one direct viewer.
    let dir = build([
        up("origin-a", Role::Origin, 0, vec![stream(CAM1, true, 2)]),
        up("origin-b", Role::Origin, 1, vec![stream(CAM1, true, 2)]),
        up("edge1", Role::Edge, 2, vec![stream(CAM1, true, 4)]),
    ]);
    assert_eq!(dir.streams.len(), 1);
    let e = &dir.streams[CAM1];
    assert_eq!(holder_names(&dir, &e.origins), ["origin-a", "origin-b"]);
    assert_eq!(holder_names(&dir, &e.edges), ["edge1"]);
    // Origins: (2 - 1) + (2 - 1) clients beyond their publishers, one of them edge1's pull.
    assert_eq!((e.viewers, e.origin_viewers), (4 + 1, 1));
}

#[test]
fn a_stream_repeated_across_pages_is_one_node_stream() {
    let pages = vec![
        page(&[("/live/a", "vid-1", true, 1), ("/live/b", "vid-1", true, 5)]),
        page(&[("/live/b", "vid-1", true, 5), ("/live/c", "vid-1", true, 2)]),
    ];
    let snap = report_from(vhosts(&[("vid-1", "__defaultVhost__")]), pages, SummariesAnswer::default(), None).unwrap();
    assert_eq!(keys(&snap), ["__defaultVhost__/live/a", "__defaultVhost__/live/b", "__defaultVhost__/live/c"]);
    let dir = build([up("o", Role::Origin, 0, vec![]), node("e", Role::Edge, 1, Health::Up, Some(snap))]);
    assert_eq!(dir.node("e").unwrap().viewers, 1 + 5 + 2, "b counted once");

    // Republished between the pages: the live record is the one kept, whichever page had it.
    for (first, second) in [(false, true), (true, false)] {
        let pages = vec![page(&[("/live/b", "vid-1", first, 3)]), page(&[("/live/b", "vid-1", second, 3)])];
        let snap = report_from(vhosts(&[]), pages, SummariesAnswer::default(), None).unwrap();
        assert_eq!(snap.streams.len(), 1);
        assert!(snap.streams[0].active, "{first} then {second}");
    }
}

#[test]
fn an_error_code_in_any_answer_fails_the_report() {
    let mut bad = page(&[]);
    bad.code = 1000;
    let err = report_from(vhosts(&[]), vec![page(&[]), bad], SummariesAnswer::default(), None).unwrap_err();
    assert!(err.contains("streams") && err.contains("1000"), "{err}");
    let summaries = SummariesAnswer { code: 2048, data: None };
    let err = report_from(vhosts(&[]), vec![page(&[])], summaries, None).unwrap_err();
    assert!(err.contains("summaries") && err.contains("2048"), "{err}");
}

#[test]
fn streams_outside_the_default_vhost_key_by_vhost_name() {
    let ids = vhosts(&[("vid-1", "__defaultVhost__"), ("vid-2", "news")]);
    let pages = vec![page(&[
        ("news/live/a", "vid-1", true, 1), // the url names the vhost
        ("/live/b", "vid-2", true, 1),     // the vhost id names it
        ("/live/c", "vid-1", true, 1),
    ])];
    let snap = report_from(ids, pages, SummariesAnswer::default(), None).unwrap();
    assert_eq!(keys(&snap), ["__defaultVhost__/live/c", "news/live/a", "news/live/b"]);
    let dir = build([node("o", Role::Origin, 0, Health::Up, Some(snap))]);
    let e = &dir.streams["news/live/a"];
    assert_eq!((&*e.vhost, &*e.app, &*e.stream), ("news", "live", "a"));
    assert_eq!(holder_names(&dir, &e.origins), ["o"]);
}

#[test]
fn assignments_carry_over_until_the_node_is_polled_again() {
    let mut table: NodeTable = [up("e1", Role::Edge, 0, vec![]), up("e2", Role::Edge, 1, vec![])]
        .into_iter()
        .map(|e| (e.spec.name.clone(), e))
        .collect();
    let first = Directory::build(&table, &IndexConfig::default(), NOW);
    crate::scheduler::assign(&first, 0);
    crate::scheduler::assign(&first, 1);
    crate::scheduler::assign(&first, 1);
    // e2 answers a poll: its numbers now include the viewers sent to it.
    let e2 = table.get_mut("e2").unwrap();
    apply_poll(e2, Ok(NodeReport::default()), Duration::ZERO, Duration::from_secs(1), 2, NOW);
    let second = Directory::build(&table, &IndexConfig::default(), NOW);
    second.carry_assignments(&first);
    assert_eq!((second.assigned(0), second.assigned(1)), (1, 0));
}

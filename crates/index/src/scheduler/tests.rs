//! Which edge a viewer gets and which origin a publisher gets, on directories built the way the
//! index builds them (node table → `Directory::build`).

use crate::nodes::{Health, NodeCounters};
use std::collections::HashMap;
use std::sync::Arc;

const NO_FALLBACK: &[&str] = &[];

use super::*;
use crate::config::{IndexConfig, NodeSpec};
use crate::directory::mix;
use crate::nodes::{NodeEntry, NodeReport, NodeStream, NodeTable};
use crate::srs::Kbps;

/// A node to put in a test cluster.
#[derive(Clone)]
struct N {
    spec: NodeSpec,
    health: Health,
    /// (key, clients, kbit/s both ways), all live.
    streams: Vec<(String, u64, u64)>,
}

fn n(name: &str, role: Role) -> N {
    let spec = format!("name={name},role={role},api=http://127.0.0.1:1985").parse().unwrap();
    N { spec, health: Health::Up, streams: Vec::new() }
}
fn edge(name: &str) -> N {
    n(name, Role::Edge)
}
fn origin(name: &str) -> N {
    n(name, Role::Origin)
}

impl N {
    fn region(mut self, r: &str) -> N {
        self.spec.region = Some(r.into());
        self
    }
    fn health(mut self, h: Health) -> N {
        self.health = h;
        self
    }
    fn cap(mut self, max_viewers: u64) -> N {
        self.spec.max_viewers = Some(max_viewers);
        self
    }
    fn mbps(mut self, max_mbps: f64) -> N {
        self.spec.max_mbps = Some(max_mbps);
        self
    }
    fn carrying(mut self, key: &str, clients: u64, kbps: u64) -> N {
        self.streams.push((key.into(), clients, kbps));
        self
    }
    /// `viewers` on a stream no test asks about.
    fn viewers(self, viewers: u64) -> N {
        let key = format!("__defaultVhost__/live/load-{}", self.spec.name);
        self.carrying(&key, viewers, 0)
    }
}

/// The directory of `nodes`, their config order being their position.
fn cluster(nodes: &[N]) -> Directory {
    let mut table = NodeTable::new();
    for (order, node) in nodes.iter().enumerate() {
        let mut e = NodeEntry::new(node.spec.clone(), order, None);
        e.health = node.health;
        if node.health.schedulable() {
            let streams = node.streams.iter().map(|(key, clients, kbps)| NodeStream {
                key: key.as_str().into(),
                active: true,
                clients: *clients,
                kbps: Kbps { recv_30s: *kbps, send_30s: *kbps },
                video: None,
                audio: None,
            });
            e.report = Some(Arc::new(NodeReport { streams: streams.collect(), ..Default::default() }));
        }
        table.insert(node.spec.name.clone(), e);
    }
    Directory::build(&table, &IndexConfig::default(), 0)
}

fn cfg() -> SchedulerConfig {
    SchedulerConfig::default()
}

fn key(i: usize) -> String {
    format!("__defaultVhost__/live/s{i}")
}

fn idx(dir: &Directory, name: &str) -> usize {
    dir.nodes.iter().position(|n| n.spec.name == name).unwrap()
}

fn names<'a>(dir: &'a Directory, ranking: &[usize]) -> Vec<&'a str> {
    ranking.iter().map(|&i| dir.nodes[i].spec.name.as_str()).collect()
}

/// The viewer's ranking for `key` in the default region, with the stream's entry if it is live.
fn rank<'a>(dir: &'a Directory, key: &str) -> Vec<&'a str> {
    names(dir, &rank_edges(dir, &cfg(), key, dir.streams.get(key), "default", NO_FALLBACK))
}

/// How many of `keys` streams each node comes first for; `assign` counts each choice.
fn firsts(dir: &Directory, keys: impl Iterator<Item = String>, assign_each: bool) -> HashMap<String, usize> {
    let mut won = HashMap::new();
    for k in keys {
        let best = rank_edges(dir, &cfg(), &k, dir.streams.get(k.as_str()), "default", NO_FALLBACK)[0];
        if assign_each {
            assign(dir, best);
        }
        *won.entry(dir.nodes[best].spec.name.clone()).or_insert(0) += 1;
    }
    won
}

fn won(w: &HashMap<String, usize>, name: &str) -> usize {
    w.get(name).copied().unwrap_or(0)
}

#[test]
fn regions_by_tier_then_origins_then_full_edges() {
    let dir = cluster(&[
        origin("origin-b"),
        origin("origin-a"),
        edge("eu-1").region("eu"),
        edge("eu-2").region("eu"),
        edge("eu-full").region("eu").cap(10).viewers(10),
        edge("us-full").region("us").cap(10).viewers(15),
        edge("us-1").region("us"),
        edge("ap-1").region("ap"),
        edge("sa-1").region("sa"),
        edge("plain"),
    ]);
    let fallback = ["oc".to_string(), "us".to_string(), "ap".to_string()];
    for i in 0..50 {
        let r = names(&dir, &rank_edges(&dir, &cfg(), &key(i), None, "eu", &fallback));
        let mut own = r[..2].to_vec();
        own.sort_unstable();
        assert_eq!(own, ["eu-1", "eu-2"], "{r:?}");
        assert_eq!(r[2..4], ["us-1", "ap-1"], "fallbacks in the given order: {r:?}");
        let mut others = r[4..6].to_vec();
        others.sort_unstable();
        assert_eq!(others, ["plain", "sa-1"], "then any other region: {r:?}");
        assert_eq!(
            r[6..],
            ["origin-b", "origin-a", "eu-full", "us-full"],
            "origins in config order, then full edges, least loaded first"
        );
    }
    // A region without edges starts with the others.
    let r = names(&dir, &rank_edges(&dir, &cfg(), &key(0), None, "mars", NO_FALLBACK));
    assert_eq!(r.len(), 10);
    assert_eq!(r[6..8], ["origin-b", "origin-a"]);
}

#[test]
fn down_and_unknown_nodes_are_never_chosen() {
    let dir = cluster(&[
        origin("origin-up"),
        origin("origin-down").health(Health::Down),
        edge("us-down").region("us").health(Health::Down),
        edge("us-new").region("us").health(Health::Unknown),
        edge("eu-up").region("eu"),
        edge("eu-slow").region("eu").health(Health::Degraded),
    ]);
    for i in 0..100 {
        let mut r = names(&dir, &rank_edges(&dir, &cfg(), &key(i), None, "us", NO_FALLBACK));
        assert_eq!(r.pop(), Some("origin-up"));
        r.sort_unstable();
        assert_eq!(r, ["eu-slow", "eu-up"]);
    }
}

#[test]
fn load_counts_viewers_assignments_and_bandwidth() {
    let dir = cluster(&[
        edge("small").cap(100).viewers(50),
        edge("bw").mbps(100.0).carrying("__defaultVhost__/live/x", 10, 50_000),
    ]);
    let (small, bw) = (idx(&dir, "small"), idx(&dir, "bw"));
    assert_eq!(load(&dir, small, &cfg(), 2500.0), 0.5);
    assign(&dir, small);
    assign(&dir, small);
    assert_eq!(load(&dir, small, &cfg(), 2500.0), 0.52, "viewers sent since the last poll count");
    assert_eq!(load(&dir, bw, &cfg(), 2500.0), 0.5, "50 of 100 Mbit/s outweighs 10 of 1000 viewers");
    assign(&dir, bw);
    assert_eq!(load(&dir, bw, &cfg(), 2500.0), 0.525, "one more viewer of a 2.5 Mbit/s stream");

    // An edge one unknown-rate viewer away from its bandwidth: full, unless the stream is light.
    let heavy = "__defaultVhost__/live/heavy";
    let dir = cluster(&[
        origin("o").carrying(heavy, 1, 500),
        edge("bw").mbps(10.0).carrying("__defaultVhost__/live/x", 1, 9_000),
    ]);
    assign(&dir, idx(&dir, "bw"));
    assert_eq!(rank(&dir, &key(1)), ["o", "bw"], "unknown rate: assumed 2.5 Mbit/s, 11.5 of 10");
    assert_eq!(rank(&dir, heavy), ["bw", "o"], "a 500 kbit/s stream: 9.5 of 10");
}

#[test]
fn a_loaded_edge_wins_far_fewer_streams() {
    let dir = cluster(&[edge("busy").viewers(900), edge("idle")]);
    let w = firsts(&dir, (0..1000).map(key), false);
    // Weights are capacity × headroom: 1000 × 0.1 against 1000 × 1, so busy's share is
    // 100 / 1100 ≈ 9.1% (σ ≈ 0.9% over 1000 streams).
    let busy = won(&w, "busy");
    assert!((45..=150).contains(&busy), "busy won {busy} of 1000");
    assert_eq!(busy + won(&w, "idle"), 1000);
}

/// A cluster where `carrier` has `viewers` (one of them on the returned stream) and a stream key
/// that the idle edge would win if nobody carried it.
fn sticky_case(viewers: u64) -> (Directory, String) {
    for i in 0.. {
        let k = key(i);
        let dir = cluster(&[edge("carrier").viewers(viewers - 1).carrying(&k, 1, 0), edge("idle")]);
        if names(&dir, &rank_edges(&dir, &cfg(), &k, None, "default", NO_FALLBACK))[0] == "idle" {
            return (dir, k);
        }
    }
    unreachable!()
}

#[test]
fn an_edge_carrying_the_stream_keeps_it_until_the_load_threshold() {
    let (dir, k) = sticky_case(500);
    assert_eq!(rank(&dir, &k), ["carrier", "idle"], "half loaded and carrying it");
    let (dir, k) = sticky_case(810);
    assert_eq!(rank(&dir, &k), ["idle", "carrier"], "past 0.8, the hash decides again");

    // Viewers sent to it count: from 700, exactly 100 more reach the threshold.
    let (dir, k) = sticky_case(700);
    let choices: Vec<&str> = (0..200)
        .map(|_| {
            let best = rank_edges(&dir, &cfg(), &k, dir.streams.get(k.as_str()), "default", NO_FALLBACK)[0];
            assign(&dir, best);
            dir.nodes[best].spec.name.as_str()
        })
        .collect();
    assert_eq!(choices.iter().position(|c| *c != "carrier"), Some(100), "{choices:?}");
}

#[test]
fn a_burst_of_new_streams_spreads_by_capacity() {
    let dir = cluster(&[origin("o"), edge("big").cap(2000), edge("small").cap(1000)]);
    let w = firsts(&dir, (0..1000).map(key), true);
    let (big, small) = (won(&w, "big"), won(&w, "small"));
    assert_eq!(big + small, 1000, "{w:?}");
    // Capacity shares 2/3 and 1/3, within 20% of each.
    assert!((534..=800).contains(&big), "{w:?}");
    assert!((267..=400).contains(&small), "{w:?}");
    let counters = &dir.nodes[idx(&dir, "big")].counters;
    assert_eq!(NodeCounters::get(&counters.scheduled_total), big as u64);
}

#[test]
fn a_burst_on_one_stream_spills_over_but_mostly_stays() {
    // Equal capacities, so whichever edge the hash puts first, it stays first until its headroom
    // falls below the other's by the ratio of their hash draws: it keeps most, never all.
    for i in 0..5 {
        let k = key(i);
        let dir = cluster(&[edge("a"), edge("b")]);
        let first = rank(&dir, &k)[0];
        let w = firsts(&dir, std::iter::repeat_n(k.clone(), 1000), true);
        let (a, b) = (won(&w, "a"), won(&w, "b"));
        assert_eq!(a + b, 1000, "{k}: {w:?}");
        assert!(a > 0 && b > 0, "{k} spills to the second edge: {w:?}");
        assert!(won(&w, first) > 500, "{k}: {first} keeps the majority: {w:?}");
    }
}

#[test]
fn rankings_are_stable_and_move_only_what_they_must() {
    // FNV-1a of "a" is 0xaf63dc4c8601ec8c: the hash is a fixed function, not seeded per process,
    // so index replicas and restarts send a stream's viewers to the same edge.
    assert_eq!(stable_hash("a"), mix(0xaf63_dc4c_8601_ec8c));
    let nodes = [edge("a"), edge("b"), edge("c").region("x"), edge("d").region("x")];
    let one = cluster(&nodes);
    let mut reversed = nodes.to_vec();
    reversed.reverse();
    let two = cluster(&reversed);
    let x = |dir: &Directory, k: &str| names(dir, &rank_edges(dir, &cfg(), k, None, "x", NO_FALLBACK)).concat();
    for i in 0..200 {
        assert_eq!(rank(&one, &key(i)), rank(&two, &key(i)), "config order does not matter");
        assert_eq!(x(&one, &key(i)), x(&two, &key(i)));
    }

    // Removing an edge moves only the streams it had, and spreads them over the others.
    let with_b = cluster(&[edge("a"), edge("b"), edge("c"), edge("d")]);
    let without_b = cluster(&[edge("a"), edge("c"), edge("d")]);
    let mut moved = HashMap::new();
    for i in 0..300 {
        let (before, after) = (rank(&with_b, &key(i))[0], rank(&without_b, &key(i))[0]);
        if before == "b" {
            *moved.entry(after).or_insert(0) += 1;
        } else {
            assert_eq!(before, after, "{}", key(i));
        }
    }
    assert_eq!(moved.len(), 3, "b's streams go to all three others: {moved:?}");
}

#[test]
fn a_degraded_edge_gets_about_half_the_share() {
    let dir = cluster(&[edge("fast"), edge("slow").health(Health::Degraded)]);
    let w = firsts(&dir, (0..1000).map(key), false);
    // Expected 1/3 against 2/3: a ratio of 0.5.
    let ratio = won(&w, "slow") as f64 / won(&w, "fast") as f64;
    assert!((0.35..=0.7).contains(&ratio), "{w:?}");
}

#[test]
fn publishers_go_back_to_their_origin_else_the_primary() {
    let k = "__defaultVhost__/live/cam1";
    let dir = cluster(&[
        origin("origin-z"),
        origin("origin-a").health(Health::Degraded).carrying(k, 2, 0),
        origin("origin-m").health(Health::Down),
        edge("edge").carrying(k, 1, 0),
    ]);
    let entry = dir.streams.get(k);
    assert_eq!(names(&dir, &place(&dir, entry, None, "default")), ["origin-a", "origin-z"]);
    assert_eq!(names(&dir, &place(&dir, None, None, "default")), ["origin-z", "origin-a"], "the idle one first");
    assert_eq!(rank(&dir, k), ["edge", "origin-a", "origin-z"], "viewers fall back to the holding origin too");
}

fn place(dir: &Directory, entry: Option<&StreamEntry>, recent: Option<&str>, region: &str) -> Ranking {
    place_publisher(dir, entry, recent, region, &["near"], &[], usize::MAX)
}

#[test]
fn new_streams_go_to_the_least_loaded_origin_of_their_region() {
    let dir = cluster(&[
        origin("o1").region("eu").carrying("__defaultVhost__/live/a", 1, 0).carrying("__defaultVhost__/live/b", 1, 0),
        origin("o2").region("eu").carrying("__defaultVhost__/live/c", 1, 0),
        origin("o3").region("eu"),
        origin("near").region("near"),
        origin("far").region("far"),
    ]);
    assert_eq!(names(&dir, &place(&dir, None, None, "eu")), ["o3", "o2", "o1", "near", "far"]);
    assert_eq!(names(&dir, &place_publisher(&dir, None, None, "eu", &["near"], &[], 2)), ["o3", "o2"], "the best 2");
    assert_eq!(names(&dir, &place(&dir, None, None, "near"))[0], "near");
    // A region with no origin: its nearest region first, then any by load.
    assert_eq!(names(&dir, &place(&dir, None, None, "nowhere")), ["near", "o3", "far", "o2", "o1"]);
    // Placements not live yet count as load: twelve publishers spread evenly.
    let mut got: HashMap<String, usize> = HashMap::new();
    let mut pending = vec![0u64; dir.nodes.len()];
    for _ in 0..12 {
        let first = place_publisher(&dir, None, None, "eu", &["near"], &pending, 1)[0];
        pending[first] += 1;
        *got.entry(dir.nodes[first].spec.name.clone()).or_default() += 1;
    }
    assert_eq!((got["o1"], got["o2"], got["o3"]), (3, 4, 5), "{got:?}");
}

#[test]
fn a_full_origin_comes_after_the_region_and_capacity_counts() {
    let mut small = origin("small").region("eu");
    small.spec.max_streams = Some(2);
    let mut slow = origin("slow").region("eu");
    slow.spec.max_mbps_in = Some(5.0);
    let dir = cluster(&[
        small.carrying("__defaultVhost__/live/a", 1, 0).carrying("__defaultVhost__/live/b", 1, 0),
        slow.carrying("__defaultVhost__/live/c", 1, 4000),
        origin("big").region("eu").carrying("__defaultVhost__/live/d", 1, 0).carrying("__defaultVhost__/live/e", 1, 0),
        origin("near").region("near"),
    ]);
    // small: 2/2 streams (full); slow: 4 of 5 Mbit/s; big: 2/1000.
    assert_eq!(names(&dir, &place(&dir, None, None, "eu")), ["big", "slow", "near", "small"]);
}

#[test]
fn a_stream_that_just_ended_goes_back_to_its_origin() {
    let dir = cluster(&[origin("o1").region("eu"), origin("o2").region("eu").viewers(5)]);
    assert_eq!(names(&dir, &place(&dir, None, Some("o2"), "eu"))[0], "o2", "sticky within the minute");
    assert_eq!(
        names(&dir, &place(&dir, None, Some("gone"), "eu"))[0],
        "o1",
        "a recent origin not up counts for nothing"
    );
}

#[test]
fn the_few_best_are_the_head_of_the_whole_ranking() {
    // The request path ranks only until nothing left can beat what it kept; whatever the mix of
    // loads, capacities, sticky and full edges, its answer must be the head of the full ranking.
    let mut nodes = vec![origin("o")];
    for i in 0..60u64 {
        let r = mix(i);
        // Capacities over a decade; loads from idle to past full.
        let cap = 100 + r % 900;
        let mut e = edge(&format!("e{i:02}")).cap(cap).viewers(cap * ((r >> 20) % 115) / 100);
        if i % 7 == 0 {
            e = e.mbps(50.0 + (r % 100) as f64);
        }
        // Each stream is carried by about a third of the edges, some of them past the threshold.
        for s in 0..40u64 {
            if mix(i * 1000 + s).is_multiple_of(3) {
                e = e.carrying(&key(s as usize), mix(s ^ i) % 20, 100);
            }
        }
        nodes.push(e);
    }
    let dir = cluster(&nodes);
    for round in 0..3 {
        for s in 0..60 {
            let k = key(s);
            let entry = dir.streams.get(k.as_str());
            let all = rank_edges(&dir, &cfg(), &k, entry, "default", NO_FALLBACK);
            for want in [1, 2, 4, 7] {
                let top = top_edges(&dir, &cfg(), &k, entry, "default", NO_FALLBACK, want);
                assert_eq!(names(&dir, &top), names(&dir, &all[..want]), "stream {s}, want {want}, round {round}");
            }
            // Loads move between requests: assignments make some edges fuller, some full.
            assign(&dir, all[0]);
            for _ in 0..(s % 5) * 40 {
                assign(&dir, all[s % 3]);
            }
        }
    }
}

//! The index's whole read path from a node's answers to what it serves, as one function for the
//! fuzzing campaign (`fuzz/`, target `srs_api`) and its regression test (cargo feature
//! `test-support`; never in a release build).
//!
//! A node is a peer like any other: whatever JSON its SRS API answers — wrong types, huge
//! numbers, odd names, duplicate records — must end in that node's poll failing or in a
//! directory, and never stop the directory from listing the other nodes. The function parses the
//! answers as the poller does, applies them to a node table, merges the directory, and renders
//! everything a request can read from it: `/metrics`, the JSON of every stream and node, and a
//! scheduler ranking for every stream.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{IndexConfig, NodeSpec};
use crate::directory::{Directory, json};
use crate::metrics::Metrics;
use crate::nodes::{self, NodeEntry, NodeReport, NodeStream, NodeTable};
use crate::poller::ReportBuilder;
use crate::srs::{Kbps, StreamsAnswer, SummariesAnswer, VhostsAnswer};

/// The stream a well-behaved third node carries in every run: it must always be listed.
pub const WITNESS: &str = "__defaultVhost__/live/witness";

/// `data` is up to two nodes' answers, separated by `0xFF` bytes (never in UTF-8 JSON): an
/// origin's vhosts, summaries and streams pages, then an edge's. Returns how many streams the
/// directory lists. Panics only on a bug.
pub fn poll_answers_to_directory(data: &[u8]) -> usize {
    let mut parts = data.split(|&b| b == 0xFF);
    let mut table = NodeTable::new();
    for (order, (name, role)) in [("o1", "origin"), ("e1", "edge")].into_iter().enumerate() {
        let (vhosts, summaries, pages) = (parts.next(), parts.next(), parts.next());
        let result = report(vhosts.unwrap_or_default(), summaries.unwrap_or_default(), pages.unwrap_or_default());
        let mut entry = NodeEntry::new(spec(name, role, "eu"), order, None);
        nodes::apply_poll(&mut entry, result, Duration::from_millis(5), Duration::from_secs(1), 1, 1_000);
        table.insert(name.to_string(), entry);
    }
    let mut witness = NodeEntry::new(spec("e2", "edge", "us"), 2, None);
    let stream =
        NodeStream { key: WITNESS.into(), active: true, clients: 3, kbps: Kbps::default(), video: None, audio: None };
    let report = NodeReport { streams: vec![stream], ..NodeReport::default() };
    nodes::apply_poll(&mut witness, Ok(report), Duration::from_millis(5), Duration::from_secs(1), 1, 1_000);
    table.insert("e2".to_string(), witness);

    let config = IndexConfig::default();
    let dir = Directory::build(&table, &config, 2_000);
    assert!(dir.streams.contains_key(WITNESS), "a hostile node's answers hid another node's stream");
    serve_everything(&dir, &config);
    dir.streams.len()
}

/// One node's answers parsed as the poller parses them. Several streams pages are separated by
/// `0xFE` inside the third part.
fn report(vhosts: &[u8], summaries: &[u8], pages: &[u8]) -> Result<NodeReport, String> {
    let vhosts: VhostsAnswer = serde_json::from_slice(vhosts).map_err(|e| e.to_string())?;
    let summaries: SummariesAnswer = serde_json::from_slice(summaries).map_err(|e| e.to_string())?;
    let mut builder = ReportBuilder::new(&vhosts, summaries, None)?;
    for page in pages.split(|&b| b == 0xFE) {
        let page: StreamsAnswer<'_> = serde_json::from_slice(page).map_err(|e| e.to_string())?;
        builder.add_page(&page)?;
    }
    Ok(builder.finish())
}

fn spec(name: &str, role: &str, region: &str) -> NodeSpec {
    let text = format!(
        "name={name},role={role},api=http://127.0.0.1:1985,rtmp=rtmp://127.0.0.1:1935,http=http://127.0.0.1:8080,region={region}"
    );
    text.parse().expect("a valid node spec")
}

/// Everything a request can read from the directory.
fn serve_everything(dir: &Directory, config: &IndexConfig) {
    let _ = Metrics::default().render(dir);
    for i in 0..dir.nodes.len() {
        let _ = json::node(dir, i, config.scheduler.default_max_viewers, true).to_string();
    }
    for key in &dir.sorted {
        let entry = &dir.streams[key];
        let _ = json::stream(dir, entry).to_string();
        let ranking = crate::scheduler::top_edges(dir, &config.scheduler, key, Some(entry), "eu", &["us"], 3);
        drop(Arc::new(ranking));
    }
    let _ = crate::scheduler::place_publisher(dir, dir.streams.get(WITNESS), Some("o1"), "eu", &["us"], &[1, 2], 4);
}

/// One DNS query through the DNS server's answer path (target `dns_query`), over UDP and over
/// TCP, against a fixed cluster (edges known by IPv4, IPv6 and host name in two regions, an
/// origin, a live stream). Whatever the packet, the answer is silence or a well-formed DNS
/// response to it: same id, QR set, no larger than the client can take over UDP. Returns the
/// answer's record count, or None for silence. Panics only on a bug.
pub fn dns_query(data: &[u8]) -> Option<usize> {
    use std::sync::OnceLock;

    use hickory_proto::op::{Message, MessageType};

    use crate::dns::answer::{Context, MAX_UDP_ANSWER, Transport, respond};

    struct Fixture {
        zone: crate::dns::Zone,
        dir: Directory,
        resolver: crate::region::RegionResolver,
        metrics: crate::metrics::DnsMetrics,
        scheduler: crate::config::SchedulerConfig,
        placements: crate::placements::Placements,
    }
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    let f = FIXTURE.get_or_init(|| {
        let mut table = NodeTable::new();
        let nodes = [
            "name=e1,api=http://127.0.0.1:1,rtmp=rtmp://127.0.0.2:1935,region=eu",
            "name=e2,api=http://127.0.0.1:1,rtmp=rtmp://[2001:db8::2]:1935,region=eu",
            "name=u1,api=http://127.0.0.1:1,dns_address=edge-u1.example.net,region=us",
            "name=o1,role=origin,api=http://127.0.0.1:1,rtmp=rtmp://127.0.0.9:1935,region=us",
        ];
        for (order, s) in nodes.iter().enumerate() {
            let spec: NodeSpec = s.parse().expect("a node spec");
            let mut e = NodeEntry::new(spec.clone(), order, None);
            let stream = NodeStream {
                key: "__defaultVhost__/live/cam1".into(),
                active: true,
                clients: 2,
                kbps: Kbps::default(),
                video: None,
                audio: None,
            };
            let report = NodeReport { streams: vec![stream], ..NodeReport::default() };
            nodes::apply_poll(&mut e, Ok(report), Duration::from_millis(5), Duration::from_secs(1), 1, 1_000);
            table.insert(spec.name.clone(), e);
        }
        let dns = crate::dns::DnsConfig {
            zone: Some("live.example.com".into()),
            names: vec!["edge".into()],
            nameservers: vec!["ns1.live.example.com=192.0.2.53".into(), "ns1.live.example.com=2001:db8::53".into()],
            ..crate::dns::DnsConfig::default()
        };
        let regions = crate::region::RegionsConfig {
            cidrs: vec![crate::region::CidrRegion { cidr: "10.0.0.0/8".parse().expect("a CIDR"), region: "us".into() }],
            ..Default::default()
        };
        Fixture {
            zone: crate::dns::Zone::new(&dns).expect("the zone"),
            dir: Directory::build(&table, &IndexConfig::default(), 2_000),
            resolver: crate::region::RegionResolver::new(&regions).expect("the regions"),
            metrics: Default::default(),
            scheduler: Default::default(),
            placements: Default::default(),
        }
    });
    let cx = Context {
        zone: &f.zone,
        dir: &f.dir,
        scheduler: &f.scheduler,
        resolver: &f.resolver,
        metrics: &f.metrics,
        placements: &f.placements,
    };
    let peer = "10.1.2.3".parse().expect("an address");
    let mut records = None;
    for transport in [Transport::Udp, Transport::Tcp] {
        let Some(out) = respond(&cx, data, peer, transport, false) else { continue };
        let answer = Message::from_vec(&out).expect("our answer parses");
        assert_eq!(answer.metadata.message_type, MessageType::Response);
        assert_eq!(&out[..2], &data[..2], "the answer carries the query's id");
        if transport == Transport::Udp {
            assert!(out.len() <= usize::from(MAX_UDP_ANSWER), "a UDP answer of {} bytes", out.len());
        }
        records = Some(answer.answers.len() + answer.authorities.len() + answer.additionals.len());
    }
    records
}

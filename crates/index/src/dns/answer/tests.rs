//! Answers to queries built with hickory-proto, on directories built the way the index builds
//! them; the same code answers real `dig` and `unbound` in `tests/dns.rs`.

use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use super::*;
use crate::config::{IndexConfig, NodeSpec};
use crate::dns::DnsConfig;
use crate::nodes::{Health, NodeEntry, NodeReport, NodeStream, NodeTable};
use crate::region::{CidrRegion, RegionsConfig};
use crate::srs::Kbps;

/// eu: e1 (127.0.0.2), e2 (127.0.0.3); us: u1 (127.0.0.4, carries live/cam1), u2 (::5);
/// named: n1 (known as edge-n1.example.net); origin o1 (127.0.0.9).
fn directory(extra: &[&str]) -> Directory {
    let mut specs: Vec<&str> = vec![
        "name=e1,api=http://127.0.0.1:1,rtmp=rtmp://127.0.0.2:1935,region=eu",
        "name=e2,api=http://127.0.0.1:1,rtmp=rtmp://127.0.0.3:1935,region=eu",
        "name=u1,api=http://127.0.0.1:1,rtmp=rtmp://127.0.0.4:1935,region=us",
        "name=u2,api=http://127.0.0.1:1,rtmp=rtmp://[::5]:1935,region=us",
        "name=o1,role=origin,api=http://127.0.0.1:1,rtmp=rtmp://127.0.0.9:1935,region=us",
    ];
    specs.extend_from_slice(extra);
    let mut table = NodeTable::new();
    for (order, s) in specs.iter().enumerate() {
        let spec: NodeSpec = s.parse().unwrap();
        let mut e = NodeEntry::new(spec.clone(), order, None);
        e.health = Health::Up;
        let streams = if spec.name == "u1" || spec.name == "o1" {
            vec![NodeStream {
                key: "__defaultVhost__/live/cam1".into(),
                active: true,
                clients: 3,
                kbps: Kbps { recv_30s: 100, send_30s: 100 },
                video: None,
                audio: None,
            }]
        } else {
            Vec::new()
        };
        e.report = Some(Arc::new(NodeReport { streams, ..Default::default() }));
        table.insert(spec.name.clone(), e);
    }
    Directory::build(&table, &IndexConfig::default(), 7_000)
}

struct Fixture {
    zone: Zone,
    dir: Directory,
    scheduler: SchedulerConfig,
    resolver: RegionResolver,
    metrics: DnsMetrics,
    placements: crate::placements::Placements,
}

impl Fixture {
    fn new(extra: &[&str]) -> Fixture {
        let zone = Zone::new(&DnsConfig {
            zone: Some("live.example.com".into()),
            names: vec!["edge".into()],
            nameservers: vec!["ns1.live.example.com=192.0.2.53".into(), "ns2.example.net".into()],
            ..DnsConfig::default()
        })
        .unwrap();
        let resolver = RegionResolver::new(&RegionsConfig {
            default: "eu".into(),
            cidrs: vec![
                CidrRegion { cidr: "10.1.0.0/16".parse().unwrap(), region: "eu".into() },
                CidrRegion { cidr: "10.2.0.0/16".parse().unwrap(), region: "us".into() },
            ],
            ..RegionsConfig::default()
        })
        .unwrap();
        Fixture {
            zone,
            dir: directory(extra),
            scheduler: SchedulerConfig::default(),
            resolver,
            metrics: DnsMetrics::default(),
            placements: Default::default(),
        }
    }

    fn cx(&self) -> Context<'_> {
        Context {
            zone: &self.zone,
            dir: &self.dir,
            scheduler: &self.scheduler,
            resolver: &self.resolver,
            metrics: &self.metrics,
            placements: &self.placements,
        }
    }

    /// The answer to `msg` from `peer` over UDP.
    fn ask_from(&self, msg: &Message, peer: &str) -> Message {
        let bytes = respond(&self.cx(), &msg.to_vec().unwrap(), peer.parse().unwrap(), Transport::Udp, false)
            .expect("an answer");
        Message::from_vec(&bytes).unwrap()
    }

    fn ask(&self, name: &str, qtype: RecordType) -> Message {
        self.ask_from(&query(name, qtype), "10.1.0.7")
    }
}

fn query(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m
}

fn with_subnet(mut m: Message, subnet: &str) -> Message {
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.options_mut().insert(EdnsOption::Subnet(subnet.parse().unwrap()));
    m.set_edns(edns);
    m
}

fn addresses(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => a.0.to_string(),
            RData::AAAA(a) => a.0.to_string(),
            RData::CNAME(c) => format!("CNAME {}", c.0),
            other => format!("{other:?}"),
        })
        .collect()
}

fn subnet_of(m: &Message) -> Option<ClientSubnet> {
    match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) => Some(*s),
        _ => None,
    }
}

#[test]
fn the_apex_gives_the_edges_of_the_clients_region_first() {
    let f = Fixture::new(&[]);
    let eu = f.ask("live.example.com.", RecordType::A);
    assert_eq!(eu.metadata.response_code, ResponseCode::NoError);
    assert!(eu.metadata.authoritative && !eu.metadata.recursion_available);
    assert!(eu.metadata.recursion_desired, "RD is copied");
    assert_eq!(eu.metadata.id, 4242);
    let got = addresses(&eu);
    assert!(got.len() >= 2, "{got:?}");
    let mut first_two = got[..2].to_vec();
    first_two.sort();
    assert_eq!(first_two, ["127.0.0.2", "127.0.0.3"], "eu edges first: {got:?}");
    assert!(eu.answers.iter().all(|r| r.ttl == 10));
    let us = f.ask_from(&query("edge.live.example.com.", RecordType::A), "10.2.3.4");
    assert_eq!(addresses(&us)[0], "127.0.0.4", "the us edge with IPv4 first, by the resolver's address");
    let us6 = f.ask_from(&query("live.example.com.", RecordType::AAAA), "10.2.3.4");
    assert_eq!(addresses(&us6), ["::5"]);
}

#[test]
fn the_client_subnet_places_the_answer_and_comes_back_with_its_scope() {
    let f = Fixture::new(&[]);
    let m = f.ask_from(&with_subnet(query("live.example.com.", RecordType::A), "10.2.9.0/24"), "10.1.0.7");
    assert_eq!(addresses(&m)[0], "127.0.0.4", "placed in us by the subnet, not the eu resolver");
    let s = subnet_of(&m).expect("ECS echoed");
    assert_eq!((s.addr().to_string().as_str(), s.source_prefix(), s.scope_prefix()), ("10.2.9.0", 24, 24));
    let soa = f.ask_from(&with_subnet(query("live.example.com.", RecordType::SOA), "10.2.9.0/24"), "10.1.0.7");
    assert_eq!(subnet_of(&soa).unwrap().scope_prefix(), 0, "an answer for everyone has scope 0");
    // Bits beyond the source prefix (9 is odd, the prefix /23): FORMERR (RFC 7871 section 7.1.1).
    let bad = f.ask_from(&with_subnet(query("live.example.com.", RecordType::A), "10.2.9.0/23"), "10.1.0.7");
    assert_eq!(bad.metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn a_stream_name_gives_the_edge_carrying_it_and_origin_names_the_origin() {
    let f = Fixture::new(&[]);
    // From eu: the eu edges first (region before stickiness), but the stream's own carrier leads
    // its region; from us the carrier comes first.
    let us = f.ask_from(&query("cam1.live.live.example.com.", RecordType::A), "10.2.0.1");
    assert_eq!(addresses(&us)[0], "127.0.0.4");
    let case = f.ask_from(&query("CAM1.Live.live.example.com.", RecordType::A), "10.2.0.1");
    assert_eq!(addresses(&case)[0], "127.0.0.4", "resolvers may change the case of a name");
    let origin = f.ask("origin.live.example.com.", RecordType::A);
    assert_eq!(addresses(&origin), ["127.0.0.9"]);
    let origin = f.ask("cam1.live.origin.live.example.com.", RecordType::A);
    assert_eq!(addresses(&origin), ["127.0.0.9"]);
}

#[test]
fn a_node_known_by_name_is_a_cname() {
    let f = Fixture::new(&["name=n1,api=http://127.0.0.1:1,rtmp=rtmp://edge-n1.example.net:1935,region=ap"]);
    let m = f.ask_from(&with_subnet(query("edge.live.example.com.", RecordType::A), "10.3.0.0/16"), "10.3.0.1");
    // 10.3/16 is in no CIDR: the default region eu.
    assert_ne!(addresses(&m)[0], "CNAME edge-n1.example.net.");
    let f = Fixture::new(&["name=n1,api=http://127.0.0.1:1,dns_address=Edge-N1.example.net,region=eu"]);
    let m = f.ask_from(&query("n1stream.live.live.example.com.", RecordType::A), "10.1.0.1");
    let got = addresses(&m);
    assert!(got.len() == 1 || !got.iter().any(|a| a.starts_with("CNAME")), "a CNAME stands alone: {got:?}");
    // Over many streams n1 comes first for some: those answers are one CNAME to its name.
    let cnames = (0..40)
        .filter(|i| {
            let m = f.ask_from(&query(&format!("s{i}.live.live.example.com."), RecordType::A), "10.1.0.1");
            addresses(&m) == ["CNAME edge-n1.example.net."]
        })
        .count();
    assert!(cnames > 0, "n1 never came first");
    let apex = (0..40).all(|i| {
        let m = f.ask_from(&query("live.example.com.", RecordType::A), &format!("10.1.{i}.1"));
        !addresses(&m).iter().any(|a| a.starts_with("CNAME"))
    });
    assert!(apex, "no CNAME at the apex");
}

#[test]
fn soa_ns_nodata_and_nxdomain_follow_the_rfcs() {
    let f = Fixture::new(&[]);
    let soa = f.ask("live.example.com.", RecordType::SOA);
    assert_eq!(soa.answers.len(), 1);
    let RData::SOA(s) = &soa.answers[0].data else { panic!("{soa:?}") };
    assert_eq!(s.mname.to_ascii(), "ns1.live.example.com.");
    assert_eq!((s.minimum, s.serial), (10, 7));
    let ns = f.ask("live.example.com.", RecordType::NS);
    assert_eq!(ns.answers.len(), 2);
    let mut glue_only = ns.clone();
    glue_only.answers = ns.additionals.clone();
    assert_eq!(addresses(&glue_only), ["192.0.2.53"], "glue");
    let glue = f.ask("ns1.live.example.com.", RecordType::A);
    assert_eq!(addresses(&glue), ["192.0.2.53"]);
    for (name, qtype, rcode) in [
        ("live.example.com.", RecordType::MX, ResponseCode::NoError),
        ("live.live.example.com.", RecordType::A, ResponseCode::NoError),
        ("cam1.live.live.example.com.", RecordType::TXT, ResponseCode::NoError),
        ("a.b.c.live.example.com.", RecordType::A, ResponseCode::NXDomain),
    ] {
        let m = f.ask(name, qtype);
        assert_eq!(m.metadata.response_code, rcode, "{name} {qtype}");
        assert!(m.answers.is_empty(), "{name} {qtype}");
        assert_eq!(m.authorities.len(), 1, "{name}: the SOA says how long to cache the negative answer");
        assert_eq!(m.authorities[0].ttl, 10);
        assert!(m.metadata.authoritative);
    }
}

#[test]
fn outside_the_zone_and_beyond_queries_are_refused() {
    let f = Fixture::new(&[]);
    let other = f.ask("example.org.", RecordType::A);
    assert_eq!(other.metadata.response_code, ResponseCode::Refused);
    assert!(!other.metadata.authoritative && other.answers.is_empty());
    let axfr = f.ask("live.example.com.", RecordType::AXFR);
    assert_eq!(axfr.metadata.response_code, ResponseCode::Refused);
    let mut chaos = query("version.bind.", RecordType::TXT);
    chaos.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(f.ask_from(&chaos, "10.1.0.1").metadata.response_code, ResponseCode::Refused);
    let any = f.ask("live.example.com.", RecordType::ANY);
    assert!(!any.answers.is_empty() && any.answers.len() <= 4, "ANY is answered as A (RFC 8482): {any:?}");
    assert!(f.metrics.answered(ResponseCode::Refused) >= 3);
}

#[test]
fn hostile_packets_get_formerr_notimp_or_silence() {
    let f = Fixture::new(&[]);
    let cx = f.cx();
    let peer = "10.1.0.1".parse().unwrap();
    let ask = |bytes: &[u8]| respond(&cx, bytes, peer, Transport::Udp, false);
    assert_eq!(ask(&[]), None);
    assert_eq!(ask(&[0x12, 0x34, 0x01]), None, "shorter than a header");
    let mut resp = query("live.example.com.", RecordType::A);
    resp.metadata.message_type = MessageType::Response;
    assert_eq!(ask(&resp.to_vec().unwrap()), None, "a response is never answered");
    let rcode = |bytes: Option<Vec<u8>>| Message::from_vec(&bytes.expect("an answer")).unwrap().metadata.response_code;
    let mut two = query("live.example.com.", RecordType::A);
    two.add_query(Query::query(Name::from_ascii("live.example.com.").unwrap(), RecordType::AAAA));
    assert_eq!(rcode(ask(&two.to_vec().unwrap())), ResponseCode::FormErr);
    let mut notify = query("live.example.com.", RecordType::SOA);
    notify.metadata.op_code = OpCode::Notify;
    assert_eq!(rcode(ask(&notify.to_vec().unwrap())), ResponseCode::NotImp);
    let mut v1 = query("live.example.com.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_version(1);
    v1.set_edns(edns);
    // BADVERS is 16, which hickory reads back by its other name, BADSIG.
    assert_eq!(u16::from(rcode(ask(&v1.to_vec().unwrap()))), u16::from(ResponseCode::BADVERS));
    // A header that claims 65535 queries, then ends: FORMERR, without reading them.
    assert_eq!(rcode(ask(&[0, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0])), ResponseCode::FormErr);
    // A name whose compression pointer points at itself.
    let mut looped = vec![0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(rcode(ask(&looped)), ResponseCode::FormErr);
    // Truncated mid-question.
    let whole = query("live.example.com.", RecordType::A).to_vec().unwrap();
    assert_eq!(rcode(ask(&whole[..whole.len() - 3])), ResponseCode::FormErr);
}

#[test]
fn the_rate_limit_truncates_to_the_question() {
    let f = Fixture::new(&[]);
    let q = query("live.example.com.", RecordType::A).to_vec().unwrap();
    let out = respond(&f.cx(), &q, "10.1.0.1".parse().unwrap(), Transport::Udp, true).unwrap();
    let m = Message::from_vec(&out).unwrap();
    assert!(m.metadata.truncation && m.answers.is_empty() && m.queries.len() == 1);
    assert!(out.len() <= q.len(), "no amplification: {} > {}", out.len(), q.len());
}

#[test]
fn answers_count_as_assignments() {
    let f = Fixture::new(&[]);
    let before: u64 = (0..f.dir.nodes.len()).map(|i| f.dir.assigned(i)).sum();
    for _ in 0..5 {
        f.ask("cam1.live.live.example.com.", RecordType::A);
    }
    let after: u64 = (0..f.dir.nodes.len()).map(|i| f.dir.assigned(i)).sum();
    assert_eq!(after - before, 5);
}

#[test]
fn nodes_sharing_a_host_are_one_record() {
    let f = Fixture::new(&["name=e3,api=http://127.0.0.1:1,rtmp=rtmp://127.0.0.2:1936,region=eu"]);
    let got = sorted_unique(addresses(&f.ask("live.example.com.", RecordType::A)));
    assert_eq!(got.0, ["127.0.0.2", "127.0.0.3"], "each address once: {:?}", got.1);
}

/// The addresses sorted and deduplicated, with the original list.
fn sorted_unique(v: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut s = v.clone();
    s.sort();
    s.dedup();
    assert_eq!(s.len(), v.len(), "a repeated record: {v:?}");
    (s, v)
}

//! One DNS query in, one answer out, from the directory in memory.
//!
//! The wire format is hickory-proto's; this module decides what to say. Every packet is hostile
//! until parsed: a response (or something shorter than a header) gets silence, a malformed query
//! FORMERR, another opcode NOTIMP, a name outside the zone or a zone transfer REFUSED, and none
//! of them allocates more than the packet's size. Edge answers are the scheduler's ranking for the
//! client's region ([`crate::scheduler::top_edges`], as `/api/v1/play`), each node as an address
//! record or a CNAME to its host name ([`NodeAddress`]); the first edge of an answer counts as an
//! assignment, so a burst of answers spreads by capacity between two polls.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::NodeAddress;
use super::zone::{StreamName, Target, Zone};
use crate::config::SchedulerConfig;
use crate::directory::{DEFAULT_VHOST, Directory, StreamEntry, stream_key};
use crate::metrics::DnsMetrics;
use crate::region::RegionResolver;
use crate::scheduler;

/// The largest UDP answer sent whatever the client's EDNS buffer says (the DNS flag day 2020
/// size: no IP fragmentation on common paths).
pub const MAX_UDP_ANSWER: u16 = 1232;

/// Origins ranked for a publisher's answer before looking at all of them (an answer names one).
const PUBLISH_CANDIDATES: usize = 4;

/// Additional records a query may carry (EDNS, a cookie, a TSIG...): more is no honest query.
const MAX_QUERY_RECORDS: u16 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What an answer reads: the zone, the directory and the settings in force.
pub struct Context<'a> {
    pub zone: &'a Zone,
    pub dir: &'a Directory,
    pub scheduler: &'a SchedulerConfig,
    pub resolver: &'a RegionResolver,
    pub metrics: &'a DnsMetrics,
    /// Where publishers were sent (origin names count as placements, as `/api/v1/publish`).
    pub placements: &'a crate::placements::Placements,
}

/// What an answer counted, so that the same answer given again from [`super::cache`] counts the
/// same, and whether it may be given again at all.
#[derive(Clone, Debug)]
pub struct Note {
    pub qtype: RecordType,
    pub rcode: ResponseCode,
    /// The node counted as assigned, and the client's region counted in the answers.
    pub assigned: Option<(usize, Arc<str>)>,
    /// The same query from the same address would get these bytes again while the directory and
    /// zone are the same: no placement was made, nothing was cut for the rate limit or size.
    pub cacheable: bool,
}

impl Default for Note {
    fn default() -> Self {
        Note { qtype: RecordType::Unknown(0), rcode: ResponseCode::NoError, assigned: None, cacheable: false }
    }
}

/// The answer to `packet` from `peer`, or None for silence. `truncate`: the rate limit allows only
/// a truncated answer (TC, no records).
pub fn respond(cx: &Context<'_>, packet: &[u8], peer: IpAddr, transport: Transport, truncate: bool) -> Option<Vec<u8>> {
    respond_noted(cx, packet, peer, transport, truncate, &mut Note::default())
}

/// [`respond`], saying in `note` what the answer counted.
pub fn respond_noted(
    cx: &Context<'_>,
    packet: &[u8],
    peer: IpAddr,
    transport: Transport,
    truncate: bool,
    note: &mut Note,
) -> Option<Vec<u8>> {
    let mut decoder = BinDecoder::new(packet);
    let Ok(Header { metadata, counts }) = Header::read(&mut decoder) else {
        cx.metrics.dropped("malformed");
        return None;
    };
    if metadata.message_type == MessageType::Response {
        // Answering a response is how reflection loops between servers start.
        cx.metrics.dropped("response");
        return None;
    }
    let bare = |rcode: ResponseCode| {
        let mut m = Message::error_msg(metadata.id, metadata.op_code, rcode);
        m.metadata.recursion_desired = metadata.recursion_desired;
        cx.metrics.query(RecordType::Unknown(0), rcode);
        m.to_vec().ok()
    };
    if metadata.op_code != OpCode::Query {
        return bare(ResponseCode::NotImp);
    }
    if counts.queries != 1
        || counts.answers > 0
        || counts.authorities > MAX_QUERY_RECORDS
        || counts.additionals > MAX_QUERY_RECORDS
    {
        return bare(ResponseCode::FormErr);
    }
    let Ok(query_msg) = Message::from_vec(packet) else {
        return bare(ResponseCode::FormErr);
    };
    let Some(query) = query_msg.queries.first() else { return bare(ResponseCode::FormErr) };
    let qtype = query.query_type();

    let mut resp = Message::response(metadata.id, OpCode::Query);
    resp.metadata.recursion_desired = metadata.recursion_desired;
    resp.metadata.checking_disabled = metadata.checking_disabled;
    resp.add_query(query.clone());
    let mut udp_limit = 512u16;
    let mut subnet: Option<ClientSubnet> = None;
    if let Some(edns) = &query_msg.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(MAX_UDP_ANSWER);
        if edns.version() > 0 {
            resp.metadata.response_code = ResponseCode::BADVERS;
            resp.set_edns(ours);
            return finish(cx, resp, qtype, transport, udp_limit, note);
        }
        udp_limit = edns.max_payload().clamp(512, MAX_UDP_ANSWER);
        if let Some(EdnsOption::Subnet(s)) = edns.option(EdnsCode::Subnet) {
            if !subnet_is_canonical(s) {
                let mut m = Message::error_msg(metadata.id, OpCode::Query, ResponseCode::FormErr);
                m.add_query(query.clone());
                m.set_edns(ours);
                return finish(cx, m, qtype, transport, udp_limit, note);
            }
            subnet = Some(*s);
        }
        resp.set_edns(ours);
    }
    if truncate {
        resp.metadata.truncation = true;
        return finish(cx, resp, qtype, transport, udp_limit, note);
    }
    let target = cx.zone.classify(query.name());
    if query.query_class() != DNSClass::IN
        || target == Target::OutOfZone
        || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
    {
        // No recursion, no other classes, no zone transfers.
        resp.metadata.response_code = ResponseCode::Refused;
        return finish(cx, resp, qtype, transport, udp_limit, note);
    }
    resp.metadata.authoritative = true;
    // The address answers are placed by: the client subnet the resolver sent, else the resolver.
    let client = subnet.filter(|s| s.source_prefix() > 0).map_or(peer, |s| s.addr());
    let mut by_client = false;
    let serial = (cx.dir.built_ms / 1000) as u32;
    // Answers that place a publisher are never given again from the cache: each is a placement.
    note.cacheable = !matches!(target, Target::Origins(_));
    match target {
        Target::OutOfZone => {}
        Target::NoSuchName => {
            resp.metadata.response_code = ResponseCode::NXDomain;
            resp.add_authority(cx.zone.negative_soa(serial));
        }
        Target::Empty => {
            resp.add_authority(cx.zone.negative_soa(serial));
        }
        Target::Apex if qtype == RecordType::SOA => {
            resp.add_answer(cx.zone.soa(serial));
        }
        Target::Apex if qtype == RecordType::NS => {
            resp.add_answers(cx.zone.ns_records());
            for ns in cx.zone.nameservers.iter().filter(|ns| cx.zone.apex.zone_of(&ns.name)) {
                if let Some(ip) = ns.address {
                    resp.add_additional(address_record(ns.name.clone(), cx.zone.ttl.max(super::zone::INFRA_TTL), ip));
                }
            }
        }
        Target::NameServer(i) => {
            let ns = &cx.zone.nameservers[i];
            match ns.address.filter(|ip| family_wanted(qtype, *ip)) {
                Some(ip) => {
                    resp.add_answer(address_record(query.name().clone(), super::zone::INFRA_TTL, ip));
                }
                None => {
                    resp.add_authority(cx.zone.negative_soa(serial));
                }
            }
        }
        Target::Apex | Target::Edges(_) | Target::Origins(_) => {
            let records = if matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::CNAME | RecordType::ANY) {
                by_client = !matches!(target, Target::Origins(_));
                node_records(cx, target, query.name(), qtype, client, note)
            } else {
                Vec::new()
            };
            if records.is_empty() {
                resp.add_authority(cx.zone.negative_soa(serial));
            } else {
                resp.add_answers(records);
            }
        }
    }
    if let (Some(s), Some(edns)) = (subnet, resp.edns.as_mut()) {
        // The answer holds for the client's subnet as sent when the region depends on addresses;
        // for everyone (scope 0) when it does not.
        let scope = if by_client && cx.resolver.places_by_address() { s.source_prefix() } else { 0 };
        edns.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(s.addr(), s.source_prefix(), scope)));
    }
    finish(cx, resp, qtype, transport, udp_limit, note)
}

/// Encodes `resp`; over UDP, an answer larger than the client takes goes out truncated (TC).
fn finish(
    cx: &Context<'_>,
    resp: Message,
    qtype: RecordType,
    transport: Transport,
    udp_limit: u16,
    note: &mut Note,
) -> Option<Vec<u8>> {
    cx.metrics.query(qtype, resp.metadata.response_code);
    (note.qtype, note.rcode) = (qtype, resp.metadata.response_code);
    let bytes = match resp.to_vec() {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!(error = %e, "cannot encode a DNS answer");
            cx.metrics.dropped("encode");
            note.cacheable = false;
            return None;
        }
    };
    if transport == Transport::Udp && bytes.len() > usize::from(udp_limit) {
        cx.metrics.dropped("truncated_size");
        note.cacheable = false;
        return resp.truncate().to_vec().ok();
    }
    Some(bytes)
}

/// RFC 7871: the address carries no bits beyond the source prefix.
fn subnet_is_canonical(s: &ClientSubnet) -> bool {
    let prefix = u32::from(s.source_prefix());
    match s.addr() {
        IpAddr::V4(a) => prefix <= 32 && u32::from(a).checked_shl(prefix).unwrap_or(0) == 0,
        IpAddr::V6(a) => prefix <= 128 && u128::from(a).checked_shl(prefix).unwrap_or(0) == 0,
    }
}

/// Whether an address answers a query of `qtype` (ANY is answered as A).
fn family_wanted(qtype: RecordType, ip: IpAddr) -> bool {
    match qtype {
        RecordType::A | RecordType::ANY => ip.is_ipv4(),
        RecordType::AAAA => ip.is_ipv6(),
        _ => false,
    }
}

fn address_record(name: Name, ttl: u32, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(a) => Record::from_rdata(name, ttl, RData::A(A(a))),
        IpAddr::V6(a) => Record::from_rdata(name, ttl, RData::AAAA(AAAA(a))),
    }
}

/// A stream named by labels: its directory entry, looked up as spelled and then in lower case
/// (resolvers may change the case of a name).
fn stream_entry<'d>(dir: &'d Directory, s: &StreamName<'_>) -> (String, Option<&'d StreamEntry>) {
    let (app, stream) = (String::from_utf8_lossy(s.app), String::from_utf8_lossy(s.stream));
    let key = stream_key(DEFAULT_VHOST, &app, &stream);
    if let Some(e) = dir.streams.get(key.as_str()) {
        return (key, Some(e));
    }
    let lower = key.to_ascii_lowercase();
    let entry = dir.streams.get(lower.as_str());
    (lower, entry)
}

/// The key that spreads viewers of no particular stream: their client network (/24, /48), so one
/// network's answers stay put while different networks spread over the region's edges.
fn network_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(a) => format!("dns:{}", u32::from(a) >> 8),
        IpAddr::V6(a) => format!("dns:{}", u128::from(a) >> 80),
    }
}

/// The answer records for edges or origins: the ranking's nodes with an address of the wanted
/// family, best first, at most `max` — all of the best one's region and role, because resolvers
/// rotate the records of an answer and a client may take any of them; or one CNAME when the best
/// node is known by name.
fn node_records(
    cx: &Context<'_>,
    target: Target<'_>,
    qname: &Name,
    qtype: RecordType,
    client: IpAddr,
    note: &mut Note,
) -> Vec<Record> {
    let dir = cx.dir;
    // A publisher gets one origin: the stream's primary, not a rotation of backups.
    let max = if matches!(target, Target::Origins(_)) { 1 } else { cx.zone.max_records };
    // A CNAME cannot live at the apex beside SOA and NS.
    let cname_ok = target != Target::Apex;
    let pick = |ranked: &[usize]| -> (Vec<Record>, Option<usize>) {
        let mut out = Vec::new();
        let mut first: Option<usize> = None;
        for &i in ranked {
            let node = &dir.nodes[i];
            if let Some(f) = first.map(|f| &dir.nodes[f])
                && (f.region != node.region || f.spec.role != node.spec.role)
            {
                continue;
            }
            match &node.targets.dns {
                // A node known by name: a CNAME when it is the best one, else passed over.
                Some(NodeAddress::Name(name)) if out.is_empty() && cname_ok => {
                    out.push(Record::from_rdata(qname.clone(), cx.zone.ttl, RData::CNAME(CNAME(name.clone()))));
                    first = Some(i);
                    break;
                }
                Some(NodeAddress::Ip(ip)) if family_wanted(qtype, *ip) => {
                    // An RRset holds each address once (nodes may share a host).
                    if out.iter().any(|r: &Record| r.data.ip_addr() == Some(*ip)) {
                        continue;
                    }
                    out.push(address_record(qname.clone(), cx.zone.ttl, *ip));
                    first.get_or_insert(i);
                    if out.len() >= max {
                        break;
                    }
                }
                _ => {}
            }
            if qtype == RecordType::CNAME && node.targets.dns.is_some() {
                // Only the best node can be a CNAME's target.
                break;
            }
        }
        (out, first)
    };
    match target {
        Target::Origins(stream) => {
            let (key, entry) = match stream.as_ref() {
                Some(s) => stream_entry(dir, s),
                None => (String::new(), None),
            };
            let (region, _) = cx.resolver.resolve(None, client);
            let fallback = cx.resolver.fallback_order(&region);
            let now = crate::clock::now_ms();
            let recent = if key.is_empty() { None } else { cx.placements.recent(&key, now) };
            let pending = cx.placements.pending_by_node(dir);
            let place =
                |want| scheduler::place_publisher(dir, entry, recent.as_deref(), &region, fallback, &pending, want);
            let ranked = place(PUBLISH_CANDIDATES);
            let (mut records, mut first) = pick(&ranked);
            if records.is_empty() && ranked.len() == PUBLISH_CANDIDATES {
                // None of the best has an address of this family: look further.
                (records, first) = pick(&place(usize::MAX));
            }
            if let (Some(i), false) = (first, key.is_empty()) {
                cx.placements.placed(dir, i, &key, now);
            }
            records
        }
        Target::Apex | Target::Edges(_) => {
            let (key, entry) = match &target {
                Target::Edges(Some(s)) => stream_entry(dir, s),
                _ => (network_key(client), None),
            };
            let (region, _) = cx.resolver.resolve(None, client);
            let fallback = cx.resolver.fallback_order(&region);
            let ranked = scheduler::top_edges(dir, cx.scheduler, &key, entry, &region, fallback, max);
            let (mut records, mut first) = pick(&ranked);
            let region_full = |first: Option<usize>| {
                let Some(f) = first.map(|f| &dir.nodes[f]) else { return true };
                ranked.iter().all(|&i| dir.nodes[i].region == f.region && dir.nodes[i].spec.role == f.spec.role)
            };
            if records.len() < max && ranked.len() == max && region_full(first) {
                // The best region filled the ranking but some had no address of this family:
                // the region may have more.
                let all = scheduler::rank_edges(dir, cx.scheduler, &key, entry, &region, fallback);
                (records, first) = pick(&all);
            }
            if let Some(i) = first {
                scheduler::assign(dir, i);
                cx.metrics.answer(&region);
                note.assigned = Some((i, region));
            }
            records
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;

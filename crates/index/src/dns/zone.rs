//! The zone the index answers for, as configured, and what each name in it means.
//!
//! Names, relative to the zone (`live.example.com`):
//! - the apex and every name the operator maps (`edge`): the best edges of the client's region;
//! - `{stream}.{app}`: the best edges for that stream (the edge carrying it first);
//! - `origin` and `{stream}.{app}.origin`: the healthy origin to publish to;
//! - the name servers inside the zone (`ns1`): their addresses.
//!
//! Since every `{stream}.{app}` exists, every single label is an empty non-terminal (NODATA, not
//! NXDOMAIN, RFC 8020); longer names that fit no pattern do not exist (NXDOMAIN).

use std::net::IpAddr;

use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{Name, RData, Record};

use super::DnsConfig;

/// TTL of the zone's SOA, NS and name-server address records, in seconds.
pub const INFRA_TTL: u32 = 3600;

/// One name server of the zone.
#[derive(Clone, Debug)]
pub struct NameServer {
    pub name: Name,
    /// Its address, served when the name is inside the zone.
    pub address: Option<IpAddr>,
}

/// The zone, built from `[dns]` once per (re)load.
#[derive(Debug)]
pub struct Zone {
    /// Distinct for every zone built in this process: what cached answers were made under.
    pub id: u64,
    /// Lower case, fully qualified.
    pub apex: Name,
    apex_labels: usize,
    /// Names answering like the apex, as labels relative to the apex, leftmost first, lower case.
    aliases: Vec<Vec<Vec<u8>>>,
    pub nameservers: Vec<NameServer>,
    /// Name servers inside the zone, as relative labels (index into `nameservers`).
    in_zone_ns: Vec<(Vec<Vec<u8>>, usize)>,
    hostmaster: Name,
    /// TTL of edge and origin answers and of negative answers.
    pub ttl: u32,
    pub max_records: usize,
}

/// What a query name means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'q> {
    /// Not in the zone: REFUSED.
    OutOfZone,
    /// The apex: SOA, NS, and the edges of the client's region.
    Apex,
    /// Edges, for a stream (`app`, `stream` as the query spelled them) or for any.
    Edges(Option<StreamName<'q>>),
    /// The origin to publish to, for a stream or for any.
    Origins(Option<StreamName<'q>>),
    /// A name server inside the zone (index into `Zone::nameservers`).
    NameServer(usize),
    /// A name that exists with no records (an empty non-terminal): NODATA.
    Empty,
    /// NXDOMAIN.
    NoSuchName,
}

/// A stream named by a query: its app and stream labels, as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamName<'q> {
    pub app: &'q [u8],
    pub stream: &'q [u8],
}

/// `name` (relative to `apex`, or ending in it) as lower-case labels relative to the apex.
fn relative_labels(name: &str, apex: &Name) -> Result<Vec<Vec<u8>>, String> {
    let parsed = Name::from_ascii(name).map_err(|e| format!("{name:?} is not a DNS name: {e}"))?;
    let full = if parsed.is_fqdn() || apex.zone_of(&parsed) {
        parsed
    } else {
        parsed.append_domain(apex).map_err(|e| format!("{name:?} is too long a name in {apex}: {e}"))?
    };
    if !apex.zone_of(&full) {
        return Err(format!("{name:?} is not inside the zone {apex}"));
    }
    let keep = usize::from(full.num_labels()) - usize::from(apex.num_labels());
    Ok(full.iter().take(keep).map(|l| l.to_ascii_lowercase()).collect())
}

impl Zone {
    /// The zone of `config` (which names one). Errors say which setting to change.
    pub fn new(config: &DnsConfig) -> Result<Zone, String> {
        let zone = config.zone.as_deref().ok_or("dns.zone is not set")?;
        let mut apex =
            Name::from_ascii(zone).map_err(|e| format!("dns.zone {zone:?} is not a DNS name: {e}"))?.to_lowercase();
        apex.set_fqdn(true);
        if apex.is_root() {
            return Err("dns.zone must be a delegated subdomain such as live.example.com, not the root".into());
        }
        let mut aliases = Vec::new();
        for n in &config.names {
            let labels = relative_labels(n, &apex).map_err(|e| format!("dns.names: {e}"))?;
            if labels.is_empty() {
                continue;
            }
            aliases.push(labels);
        }
        let mut nameservers = Vec::new();
        for ns in &config.nameservers {
            let (host, address) = match ns.split_once('=') {
                Some((h, a)) => {
                    let ip = a
                        .trim()
                        .parse::<IpAddr>()
                        .map_err(|_| format!("dns.nameservers {ns:?}: {a:?} is not an IP address"))?;
                    (h.trim(), Some(ip.to_canonical()))
                }
                None => (ns.trim(), None),
            };
            let mut name = Name::from_ascii(host)
                .map_err(|e| format!("dns.nameservers {ns:?}: {host:?} is not a host name: {e}"))?
                .to_lowercase();
            name.set_fqdn(true);
            nameservers.push(NameServer { name, address });
        }
        if nameservers.is_empty() {
            let name = Name::from_ascii("ns").and_then(|n| n.append_domain(&apex)).map_err(|e| e.to_string())?;
            let address = config.listen.map(|a| a.ip()).filter(|ip| !ip.is_unspecified());
            nameservers.push(NameServer { name, address });
        }
        let in_zone_ns = nameservers
            .iter()
            .enumerate()
            .filter(|(_, ns)| apex.zone_of(&ns.name) && ns.name != apex)
            .filter_map(|(i, ns)| relative_labels(&ns.name.to_ascii(), &apex).ok().map(|l| (l, i)))
            .collect();
        let hostmaster = match &config.hostmaster {
            Some(h) => {
                let mut n = Name::from_ascii(h)
                    .map_err(|e| format!("dns.hostmaster {h:?} is not a DNS name: {e}"))?
                    .to_lowercase();
                n.set_fqdn(true);
                n
            }
            None => Name::from_ascii("hostmaster").and_then(|n| n.append_domain(&apex)).map_err(|e| e.to_string())?,
        };
        static BUILT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Zone {
            id: BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            apex_labels: usize::from(apex.num_labels()),
            apex,
            aliases,
            nameservers,
            in_zone_ns,
            hostmaster,
            ttl: config.ttl_s,
            max_records: config.max_records,
        })
    }

    /// What `qname` means in this zone.
    pub fn classify<'q>(&self, qname: &'q Name) -> Target<'q> {
        let n = usize::from(qname.num_labels());
        if n < self.apex_labels || !self.apex.zone_of(qname) {
            return Target::OutOfZone;
        }
        let mut rel = [&[][..]; 4];
        let depth = n - self.apex_labels;
        if depth == 0 {
            return Target::Apex;
        }
        let same = |labels: &[Vec<u8>]| {
            labels.len() == depth && labels.iter().zip(qname.iter()).all(|(a, b)| a.eq_ignore_ascii_case(b))
        };
        if let Some((_, i)) = self.in_zone_ns.iter().find(|(l, _)| same(l)) {
            return Target::NameServer(*i);
        }
        if self.aliases.iter().any(|l| same(l)) {
            return Target::Edges(None);
        }
        if depth > rel.len() {
            return Target::NoSuchName;
        }
        for (slot, label) in rel.iter_mut().zip(qname.iter()) {
            *slot = label;
        }
        let is_origin = |l: &[u8]| l.eq_ignore_ascii_case(b"origin");
        match depth {
            1 if is_origin(rel[0]) => Target::Origins(None),
            1 => Target::Empty,
            2 => Target::Edges(Some(StreamName { stream: rel[0], app: rel[1] })),
            3 if is_origin(rel[2]) => Target::Origins(Some(StreamName { stream: rel[0], app: rel[1] })),
            _ => Target::NoSuchName,
        }
    }

    /// The SOA record; `serial` changes with the directory.
    pub fn soa(&self, serial: u32) -> Record {
        let mname = self.nameservers.first().map_or_else(|| self.apex.clone(), |ns| ns.name.clone());
        let soa = SOA::new(mname, self.hostmaster.clone(), serial, 3600, 600, 86_400, self.ttl);
        Record::from_rdata(self.apex.clone(), INFRA_TTL, RData::SOA(soa))
    }

    /// The SOA for the authority section of a negative answer: its TTL is the negative TTL.
    pub fn negative_soa(&self, serial: u32) -> Record {
        let mut r = self.soa(serial);
        r.ttl = self.ttl.min(INFRA_TTL);
        r
    }

    /// The NS records of the apex.
    pub fn ns_records(&self) -> impl Iterator<Item = Record> + '_ {
        self.nameservers
            .iter()
            .map(|ns| Record::from_rdata(self.apex.clone(), INFRA_TTL, RData::NS(NS(ns.name.clone()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        Zone::new(&DnsConfig {
            zone: Some("Live.Example.com".into()),
            names: vec!["edge".into(), "tv.live.example.com".into()],
            nameservers: vec!["ns1.live.example.com=192.0.2.1".into(), "ns.other.net".into()],
            ..DnsConfig::default()
        })
        .unwrap()
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn names_mean_what_the_zone_says() {
        let z = zone();
        let stream = |app: &'static str, stream: &'static str| {
            Some(StreamName { app: app.as_bytes(), stream: stream.as_bytes() })
        };
        let cases: Vec<(&str, Target<'_>)> = vec![
            ("live.example.com.", Target::Apex),
            ("LIVE.example.COM.", Target::Apex),
            ("edge.live.example.com.", Target::Edges(None)),
            ("tv.live.example.com.", Target::Edges(None)),
            ("cam1.live.live.example.com.", Target::Edges(stream("live", "cam1"))),
            ("origin.live.example.com.", Target::Origins(None)),
            ("cam1.live.origin.live.example.com.", Target::Origins(stream("live", "cam1"))),
            ("ns1.live.example.com.", Target::NameServer(0)),
            ("live.live.example.com.", Target::Empty),
            ("a.b.c.live.example.com.", Target::NoSuchName),
            ("a.b.c.d.e.live.example.com.", Target::NoSuchName),
            ("example.com.", Target::OutOfZone),
            ("live.example.org.", Target::OutOfZone),
            ("xlive.example.com.", Target::OutOfZone),
        ];
        for (q, want) in &cases {
            let q = name(q);
            let got = z.classify(&q);
            // StreamName borrows the query: compare what it says.
            assert_eq!(format!("{got:?}").to_lowercase(), format!("{want:?}").to_lowercase(), "{q}");
        }
    }

    #[test]
    fn configuration_errors_name_the_setting() {
        let bad = |c: DnsConfig| Zone::new(&c).unwrap_err();
        assert!(bad(DnsConfig { zone: Some("a..b".into()), ..DnsConfig::default() }).contains("dns.zone"));
        assert!(bad(DnsConfig { zone: Some(".".into()), ..DnsConfig::default() }).contains("root"));
        let e = bad(DnsConfig {
            zone: Some("live.example.com".into()),
            nameservers: vec!["ns1=not-an-ip".into()],
            ..DnsConfig::default()
        });
        assert!(e.contains("dns.nameservers"), "{e}");
        let e = bad(DnsConfig {
            zone: Some("live.example.com".into()),
            names: vec!["edge.example.org.".into()],
            ..DnsConfig::default()
        });
        assert!(e.contains("not inside the zone"), "{e}");
    }

    #[test]
    fn without_name_servers_the_zone_names_its_own() {
        let z = Zone::new(&DnsConfig {
            zone: Some("live.example.com".into()),
            listen: Some("127.0.0.1:5353".parse().unwrap()),
            ..DnsConfig::default()
        })
        .unwrap();
        assert_eq!(z.nameservers[0].name, name("ns.live.example.com."));
        assert_eq!(z.nameservers[0].address, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(z.classify(&name("ns.live.example.com.")), Target::NameServer(0));
    }
}

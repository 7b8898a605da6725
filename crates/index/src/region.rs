//! Which region a viewer is in, so the scheduler can send them to an edge nearby.
//!
//! The index server answers this on every play request, from what it knows locally: an explicit
//! `region` parameter, the config's CIDR table (private and test ranges, known networks), then an
//! optional GeoIP database whose country is mapped to a region by config, else the default region.
//! Everything is precomputed in [`RegionResolver::new`] so a lookup takes no lock and allocates
//! nothing but a parameter the viewer chose. Viewers behind a trusted reverse proxy are placed by
//! the first hop of X-Forwarded-For.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The `[regions]` part of the index config (TOML); every field has a serde default.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RegionsConfig {
    /// Region of viewers nothing else places [default: "default"].
    pub default: String,
    /// CIDR → region; the longest matching prefix wins.
    /// TOML: `cidrs = [{ cidr = "10.1.0.0/16", region = "eu" }]`
    pub cidrs: Vec<CidrRegion>,
    /// Proxies whose X-Forwarded-For is believed (e.g. ["127.0.0.1/32", "10.0.0.0/8"]); empty = none.
    pub trusted_proxies: Vec<IpNet>,
    /// Optional GeoIP database (.mmdb with a `country_code` or MaxMind `country.iso_code` record).
    pub geoip: Option<PathBuf>,
    /// Country code (ISO 3166 alpha-2, upper case) → region, used with `geoip`.
    pub countries: BTreeMap<String, String>,
    /// For each region, the other regions in order of nearness, e.g. eu = ["us", "ap"].
    pub nearest: BTreeMap<String, Vec<String>>,
}

impl Default for RegionsConfig {
    fn default() -> Self {
        RegionsConfig {
            default: "default".to_string(),
            cidrs: Vec::new(),
            trusted_proxies: Vec::new(),
            geoip: None,
            countries: BTreeMap::new(),
            nearest: BTreeMap::new(),
        }
    }
}

/// One row of the CIDR table.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CidrRegion {
    pub cidr: IpNet,
    pub region: String,
}

/// Why a [`RegionsConfig`] cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error(
        "cannot use the GeoIP database {path:?} ([regions] geoip): point it at a readable MaxMind DB \
         (.mmdb) file, e.g. geo-whois-asn-country.mmdb from the npm package \
         @ip-location-db/geo-whois-asn-country-mmdb, or remove the setting"
    )]
    GeoIp {
        path: PathBuf,
        #[source]
        cause: maxminddb::MaxMindDbError,
    },
    #[error("[regions] {place} has an empty region name: give it a name such as \"eu\"")]
    EmptyRegion { place: String },
    #[error("[regions] cidrs lists {cidr} twice, for regions {first:?} and {second:?}: keep one")]
    DuplicateCidr { cidr: IpNet, first: String, second: String },
}

/// How a region was found — reported in scheduler answers and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionSource {
    Param,
    Cidr,
    Geoip,
    Default,
}

impl RegionSource {
    /// The name in answers and metric labels (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            RegionSource::Param => "param",
            RegionSource::Cidr => "cidr",
            RegionSource::Geoip => "geoip",
            RegionSource::Default => "default",
        }
    }
}

/// Built once per config (re)load; cheap to share (Arc) and lock-free to query.
pub struct RegionResolver {
    default: Arc<str>,
    /// One table per prefix length present, longest first.
    v4: Vec<PrefixTable<u32>>,
    v6: Vec<PrefixTable<u128>>,
    trusted_proxies: Vec<IpNet>,
    geoip: Option<maxminddb::Reader<Vec<u8>>>,
    /// Keys upper case.
    countries: HashMap<String, Arc<str>>,
    /// Every region the config names, sorted.
    known: BTreeSet<Arc<str>>,
    /// The same, as one list: the fallback order of a region the config does not name.
    known_list: Vec<Arc<str>>,
    /// For each known region, the others nearest first.
    fallbacks: HashMap<Arc<str>, Vec<Arc<str>>>,
}

/// The networks of one prefix length, sorted for binary search.
struct PrefixTable<A> {
    /// Mask of the prefix length.
    mask: A,
    networks: Vec<(A, Arc<str>)>,
}

impl<A: Copy + Ord + std::ops::BitAnd<Output = A>> PrefixTable<A> {
    fn find(&self, addr: A) -> Option<&Arc<str>> {
        let key = addr & self.mask;
        self.networks.binary_search_by_key(&key, |(net, _)| *net).ok().map(|i| &self.networks[i].1)
    }
}

/// The record of a GeoIP database: flat `{country_code}` (ip-location-db) or MaxMind's
/// `{country: {iso_code}}`. Borrowed, so decoding does not allocate.
#[derive(Deserialize)]
struct GeoRecord<'a> {
    #[serde(borrow, default)]
    country_code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    country: Option<GeoCountry<'a>>,
}

#[derive(Deserialize)]
struct GeoCountry<'a> {
    #[serde(borrow, default)]
    iso_code: Option<Cow<'a, str>>,
}

impl RegionResolver {
    /// Precomputes the tables; opens the GeoIP database if configured (read fully into memory).
    pub fn new(config: &RegionsConfig) -> Result<RegionResolver, RegionError> {
        let mut known = BTreeSet::new();
        let mut intern = |name: &str, place: &dyn Fn() -> String| -> Result<Arc<str>, RegionError> {
            if name.is_empty() {
                return Err(RegionError::EmptyRegion { place: place() });
            }
            if let Some(existing) = known.get(name) {
                return Ok(Arc::clone(existing));
            }
            let name: Arc<str> = Arc::from(name);
            known.insert(Arc::clone(&name));
            Ok(name)
        };

        let default = intern(&config.default, &|| "default".to_string())?;
        let mut by_net: BTreeMap<IpNet, Arc<str>> = BTreeMap::new();
        for row in &config.cidrs {
            let region = intern(&row.region, &|| format!("cidrs entry {}", row.cidr))?;
            let net = canonical_net(row.cidr);
            match by_net.get(&net) {
                Some(first) if **first != *region => {
                    return Err(RegionError::DuplicateCidr {
                        cidr: net,
                        first: first.to_string(),
                        second: region.to_string(),
                    });
                }
                _ => by_net.insert(net, region),
            };
        }
        let mut countries = HashMap::new();
        for (code, region) in &config.countries {
            let region = intern(region, &|| format!("countries entry {code}"))?;
            countries.insert(code.trim().to_ascii_uppercase(), region);
        }
        let mut nearest: Vec<(Arc<str>, Vec<Arc<str>>)> = Vec::new();
        for (region, list) in &config.nearest {
            let key = intern(region, &|| "nearest (a key)".to_string())?;
            let list =
                list.iter().map(|r| intern(r, &|| format!("nearest.{region}"))).collect::<Result<Vec<_>, _>>()?;
            nearest.push((key, list));
        }

        let mut fallbacks: HashMap<Arc<str>, Vec<Arc<str>>> =
            known.iter().map(|r| (Arc::clone(r), fallback_list(r, &[], &known))).collect();
        for (region, list) in nearest {
            let order = fallback_list(&region, &list, &known);
            fallbacks.insert(region, order);
        }

        let geoip = match &config.geoip {
            None => None,
            Some(path) => Some(open_geoip(path)?),
        };

        Ok(RegionResolver {
            default,
            v4: prefix_tables(by_net.iter().filter_map(|(net, region)| match net {
                IpNet::V4(n) => Some((n.prefix_len(), u32::from(n.network()), region)),
                IpNet::V6(_) => None,
            })),
            v6: prefix_tables(by_net.iter().filter_map(|(net, region)| match net {
                IpNet::V6(n) => Some((n.prefix_len(), u128::from(n.network()), region)),
                IpNet::V4(_) => None,
            })),
            trusted_proxies: config.trusted_proxies.iter().copied().map(canonical_net).collect(),
            geoip,
            countries,
            known_list: known.iter().cloned().collect(),
            known,
            fallbacks,
        })
    }

    /// The viewer's address: `peer` unless peer is a trusted proxy and `forwarded_for` (the raw
    /// X-Forwarded-For header value) is present, then its rightmost hop that no trusted proxy
    /// wrote (spaces trimmed; `ip:port` is accepted; an unparsable hop ends the walk at the last
    /// good one; hops left of the first untrusted one are the client's own words and are ignored).
    /// IPv4-mapped IPv6 comes back as IPv4.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let Some(header) = forwarded_for else { return peer.to_canonical() };
        ferrocast_cluster::rightmost_untrusted_hop(peer, header.split(','), |ip| {
            self.trusted_proxies.iter().any(|net| net.contains(&ip))
        })
    }

    /// A non-empty `region` parameter → Param; else the client's address in the CIDR table
    /// (longest prefix) → Cidr; else its GeoIP country mapped through `countries` → Geoip; else
    /// the default region. IPv4-mapped IPv6 addresses are treated as IPv4. The region is shared
    /// (`Arc<str>`): only a parameter naming a region the config does not know allocates.
    pub fn resolve(&self, param: Option<&str>, client: IpAddr) -> (Arc<str>, RegionSource) {
        if let Some(p) = param.map(str::trim).filter(|p| !p.is_empty()) {
            let region = self.known.get(p).cloned().unwrap_or_else(|| Arc::from(p));
            return (region, RegionSource::Param);
        }
        let client = client.to_canonical();
        let by_cidr = match client {
            IpAddr::V4(a) => self.v4.iter().find_map(|t| t.find(u32::from(a))),
            IpAddr::V6(a) => self.v6.iter().find_map(|t| t.find(u128::from(a))),
        };
        if let Some(region) = by_cidr {
            return (Arc::clone(region), RegionSource::Cidr);
        }
        if let Some(region) = self.geoip_region(client) {
            return (Arc::clone(region), RegionSource::Geoip);
        }
        (Arc::clone(&self.default), RegionSource::Default)
    }

    /// Whether a client's address can change its region (a CIDR table or a GeoIP database is
    /// set): else every client without a `region` parameter is in the default region.
    pub fn places_by_address(&self) -> bool {
        !self.v4.is_empty() || !self.v6.is_empty() || self.geoip.is_some()
    }

    /// The regions to try after `region`, nearest first: `nearest[region]`, then every other
    /// region the config knows, sorted. Never contains `region` itself.
    /// The lists are precomputed (no allocation on the request path).
    pub fn fallback_order(&self, region: &str) -> &[Arc<str>] {
        // Every known region has its list; a region the config does not name falls back to all.
        self.fallbacks.get(region).unwrap_or(&self.known_list)
    }

    /// The country of `ip` in the GeoIP database, mapped to a region.
    fn geoip_region(&self, ip: IpAddr) -> Option<&Arc<str>> {
        let reader = self.geoip.as_ref()?;
        let record = match reader.lookup(ip).and_then(|found| found.decode::<GeoRecord<'_>>()) {
            Ok(record) => record?,
            Err(e) => {
                tracing::debug!(%ip, error = %e, "GeoIP lookup failed");
                return None;
            }
        };
        let code = record.country_code.or_else(|| record.country.and_then(|c| c.iso_code))?;
        if code.bytes().all(|b| !b.is_ascii_lowercase()) {
            self.countries.get(code.as_ref())
        } else {
            self.countries.get(&code.to_ascii_uppercase())
        }
    }
}

/// `net` without host bits, and as IPv4 when it lies within ::ffff:0:0/96 (IPv4-mapped), because
/// addresses are looked up in their canonical form.
fn canonical_net(net: IpNet) -> IpNet {
    let net = net.trunc();
    if let IpNet::V6(n) = net
        && n.prefix_len() >= 96
        && let Some(a) = n.network().to_ipv4_mapped()
        && let Ok(v4) = ipnet::Ipv4Net::new(a, n.prefix_len() - 96)
    {
        return IpNet::V4(v4);
    }
    net
}

/// `nearest` (without `region` or repeats), then every other known region in sorted order.
fn fallback_list(region: &str, nearest: &[Arc<str>], known: &BTreeSet<Arc<str>>) -> Vec<Arc<str>> {
    let mut order: Vec<Arc<str>> = Vec::with_capacity(known.len());
    for r in nearest.iter().chain(known.iter()) {
        if **r != *region && !order.contains(r) {
            order.push(Arc::clone(r));
        }
    }
    order
}

/// Groups `(prefix length, network, region)` rows into one sorted table per length, longest first.
fn prefix_tables<'a, A>(rows: impl Iterator<Item = (u8, A, &'a Arc<str>)>) -> Vec<PrefixTable<A>>
where
    A: Copy + Ord + std::ops::Not<Output = A> + std::ops::Shr<u32, Output = A> + From<u8>,
{
    let mut by_len: BTreeMap<u8, Vec<(A, Arc<str>)>> = BTreeMap::new();
    for (len, net, region) in rows {
        by_len.entry(len).or_default().push((net, Arc::clone(region)));
    }
    let bits = u32::try_from(std::mem::size_of::<A>() * 8).unwrap_or(u32::MAX);
    by_len
        .into_iter()
        .rev()
        .map(|(len, mut networks)| {
            networks.sort_by_key(|(net, _)| *net);
            let (zero, len) = (A::from(0u8), u32::from(len));
            // `>>` by the full width would overflow, so both ends are spelled out.
            let mask = match len {
                0 => zero,
                l if l >= bits => !zero,
                l => !(!zero >> l),
            };
            PrefixTable { mask, networks }
        })
        .collect()
}

fn open_geoip(path: &std::path::Path) -> Result<maxminddb::Reader<Vec<u8>>, RegionError> {
    let reader = maxminddb::Reader::open_readfile(path)
        .map_err(|cause| RegionError::GeoIp { path: path.to_path_buf(), cause })?;
    let meta = reader.metadata();
    tracing::info!(
        path = %path.display(),
        database_type = %meta.database_type,
        build_epoch = meta.build_epoch,
        "GeoIP database loaded"
    );
    Ok(reader)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn config(toml_text: &str) -> RegionsConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn resolver(toml_text: &str) -> RegionResolver {
        RegionResolver::new(&config(toml_text)).unwrap()
    }

    fn resolve(r: &RegionResolver, param: Option<&str>, client: &str) -> (String, RegionSource) {
        let (region, source) = r.resolve(param, ip(client));
        (region.to_string(), source)
    }

    const TABLE: &str = r#"
        default = "home"
        cidrs = [
            { cidr = "10.0.0.0/8", region = "us" },
            { cidr = "10.1.0.0/16", region = "eu" },
            { cidr = "10.1.2.3/32", region = "lab" },
            { cidr = "2001:db8::/32", region = "ap" },
            { cidr = "2001:db8:1:2::5/48", region = "eu" },
        ]
        trusted_proxies = ["127.0.0.1/32", "192.168.0.0/16"]
        [nearest]
        eu = ["us", "eu", "us"]
    "#;

    #[test]
    fn region_empty_table_gives_defaults() {
        let c = config("");
        assert_eq!(c, RegionsConfig::default());
        assert_eq!(c.default, "default");
        let r = RegionResolver::new(&c).unwrap();
        assert_eq!(resolve(&r, None, "8.8.8.8"), ("default".into(), RegionSource::Default));
        assert!(r.fallback_order("default").iter().map(|r| &**r).collect::<Vec<_>>().is_empty());
        assert!(toml::from_str::<RegionsConfig>("defualt = \"x\"").is_err(), "typos are reported");
    }

    #[test]
    fn region_param_wins() {
        let r = resolver(TABLE);
        assert_eq!(resolve(&r, Some("ap"), "10.1.2.4"), ("ap".into(), RegionSource::Param));
        assert_eq!(resolve(&r, Some("mars"), "10.1.2.4"), ("mars".into(), RegionSource::Param));
        assert_eq!(resolve(&r, Some(""), "10.1.2.4"), ("eu".into(), RegionSource::Cidr));
        assert_eq!(resolve(&r, Some("  "), "10.1.2.4"), ("eu".into(), RegionSource::Cidr));
    }

    #[test]
    fn region_cidr_longest_prefix_wins() {
        let r = resolver(TABLE);
        assert_eq!(resolve(&r, None, "10.1.2.4"), ("eu".into(), RegionSource::Cidr));
        assert_eq!(resolve(&r, None, "10.1.2.3"), ("lab".into(), RegionSource::Cidr));
        assert_eq!(resolve(&r, None, "10.2.0.1"), ("us".into(), RegionSource::Cidr));
        assert_eq!(resolve(&r, None, "10.255.255.255"), ("us".into(), RegionSource::Cidr));
        assert_eq!(resolve(&r, None, "11.0.0.1"), ("home".into(), RegionSource::Default));
        assert_eq!(resolve(&r, None, "9.255.255.255"), ("home".into(), RegionSource::Default));
    }

    #[test]
    fn region_cidr_ipv6_and_v4_mapped() {
        let r = resolver(TABLE);
        assert_eq!(resolve(&r, None, "2001:db8:5::1"), ("ap".into(), RegionSource::Cidr));
        // The config's host bits (…:2::5/48) are ignored: the network is 2001:db8:1::/48.
        assert_eq!(resolve(&r, None, "2001:db8:1:ffff::9"), ("eu".into(), RegionSource::Cidr));
        assert_eq!(resolve(&r, None, "2001:db9::1"), ("home".into(), RegionSource::Default));
        assert_eq!(resolve(&r, None, "::ffff:10.1.2.4"), ("eu".into(), RegionSource::Cidr));
        assert_eq!(resolve(&r, None, "::ffff:10.9.9.9"), ("us".into(), RegionSource::Cidr));
        let mapped = resolver(r#"cidrs = [{ cidr = "::ffff:172.16.0.0/108", region = "dc" }]"#);
        assert_eq!(resolve(&mapped, None, "172.16.9.9"), ("dc".into(), RegionSource::Cidr));
        assert_eq!(resolve(&mapped, None, "::ffff:172.16.9.9"), ("dc".into(), RegionSource::Cidr));
    }

    #[test]
    fn region_catch_all_prefix() {
        let r = resolver(r#"cidrs = [{ cidr = "0.0.0.0/0", region = "v4" }, { cidr = "::/0", region = "v6" }]"#);
        assert_eq!(resolve(&r, None, "1.2.3.4"), ("v4".into(), RegionSource::Cidr));
        assert_eq!(resolve(&r, None, "::ffff:1.2.3.4"), ("v4".into(), RegionSource::Cidr));
        assert_eq!(resolve(&r, None, "fe80::1"), ("v6".into(), RegionSource::Cidr));
    }

    #[test]
    fn region_forwarded_for_only_from_trusted_proxies() {
        let r = resolver(TABLE);
        let xff = Some("203.0.113.7, 192.168.1.1");
        assert_eq!(r.client_ip(ip("127.0.0.1"), xff), ip("203.0.113.7"), "through two trusted proxies");
        let spoofed = Some("203.0.113.7, 198.51.100.9");
        assert_eq!(r.client_ip(ip("127.0.0.1"), spoofed), ip("198.51.100.9"), "the rightmost untrusted hop");
        assert_eq!(r.client_ip(ip("192.168.4.4"), Some(" 2001:db8::7 ")), ip("2001:db8::7"));
        assert_eq!(r.client_ip(ip("::ffff:127.0.0.1"), xff), ip("203.0.113.7"), "mapped proxy");
        assert_eq!(r.client_ip(ip("127.0.0.1"), Some("203.0.113.7:5000")), ip("203.0.113.7"));
        assert_eq!(r.client_ip(ip("127.0.0.1"), Some("::ffff:10.1.0.1")), ip("10.1.0.1"));
        assert_eq!(r.client_ip(ip("127.0.0.2"), xff), ip("127.0.0.2"), "untrusted peer");
        assert_eq!(r.client_ip(ip("127.0.0.1"), None), ip("127.0.0.1"));
        assert_eq!(r.client_ip(ip("127.0.0.1"), Some("garbage, 1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(r.client_ip(ip("127.0.0.1"), Some("1.2.3.4, garbage")), ip("127.0.0.1"), "garbage ends the walk");
        assert_eq!(r.client_ip(ip("127.0.0.1"), Some("192.168.0.9")), ip("192.168.0.9"), "only proxies: the leftmost");
        assert_eq!(r.client_ip(ip("127.0.0.1"), Some("")), ip("127.0.0.1"));
        assert_eq!(r.client_ip(ip("::ffff:8.8.8.8"), None), ip("8.8.8.8"));
        let nobody = resolver("");
        assert_eq!(nobody.client_ip(ip("127.0.0.1"), xff), ip("127.0.0.1"), "no proxy trusted");
    }

    #[test]
    fn region_fallback_order() {
        let r = resolver(
            r#"
            default = "eu"
            cidrs = [{ cidr = "10.0.0.0/8", region = "sa" }]
            countries = { US = "us", JP = "ap", DE = "eu" }
            [nearest]
            eu = ["us", "eu", "us"]
            ap = ["oc"]
            "#,
        );
        assert_eq!(r.fallback_order("eu").iter().map(|r| &**r).collect::<Vec<_>>(), ["us", "ap", "oc", "sa"]);
        assert_eq!(r.fallback_order("ap").iter().map(|r| &**r).collect::<Vec<_>>(), ["oc", "eu", "sa", "us"]);
        assert_eq!(r.fallback_order("us").iter().map(|r| &**r).collect::<Vec<_>>(), ["ap", "eu", "oc", "sa"]);
        assert_eq!(r.fallback_order("mars").iter().map(|r| &**r).collect::<Vec<_>>(), ["ap", "eu", "oc", "sa", "us"]);
    }

    #[test]
    fn region_config_errors_say_what_to_fix() {
        let empty = RegionResolver::new(&config(r#"cidrs = [{ cidr = "10.0.0.0/8", region = "" }]"#));
        let msg = empty.err().unwrap().to_string();
        assert!(msg.contains("10.0.0.0/8") && msg.contains("empty region"), "{msg}");
        let twice = r#"cidrs = [{ cidr = "10.0.0.0/8", region = "a" }, { cidr = "10.9.0.0/8", region = "b" }]"#;
        let msg = RegionResolver::new(&config(twice)).err().unwrap().to_string();
        assert!(msg.contains("10.0.0.0/8 twice"), "{msg}");
    }

    #[test]
    fn region_geoip_missing_or_corrupt_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.mmdb");
        let corrupt = dir.path().join("corrupt.mmdb");
        std::fs::write(&corrupt, b"this is not a MaxMind DB").unwrap();
        for path in [missing, corrupt] {
            let c = RegionsConfig { geoip: Some(path.clone()), ..RegionsConfig::default() };
            let err = RegionResolver::new(&c).err().expect("an unusable database is an error");
            assert!(matches!(&err, RegionError::GeoIp { path: p, .. } if *p == path));
            assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        }
    }

    /// The CC0 database from the npm package `@ip-location-db/geo-whois-asn-country-mmdb`,
    /// installed into tests/browser/node_modules by scripts/test.
    fn real_mmdb() -> PathBuf {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
            "../../tests/browser/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb",
        );
        assert!(
            path.is_file(),
            "{} is missing: run scripts/test (it installs the npm packages of tests/browser, \
             among them @ip-location-db/geo-whois-asn-country-mmdb)",
            path.display()
        );
        path
    }

    #[test]
    fn region_geoip_real_database() {
        let c = RegionsConfig {
            geoip: Some(real_mmdb()),
            countries: [("us".to_string(), "americas".to_string())].into(),
            cidrs: vec![CidrRegion { cidr: "8.8.4.0/24".parse().unwrap(), region: "lab".into() }],
            ..RegionsConfig::default()
        };
        let r = RegionResolver::new(&c).unwrap();
        assert_eq!(resolve(&r, None, "8.8.8.8"), ("americas".into(), RegionSource::Geoip));
        assert_eq!(resolve(&r, None, "::ffff:8.8.8.8"), ("americas".into(), RegionSource::Geoip));
        assert_eq!(resolve(&r, None, "8.8.4.4"), ("lab".into(), RegionSource::Cidr), "CIDR first");
        assert_eq!(resolve(&r, None, "127.0.0.1"), ("default".into(), RegionSource::Default));
        assert_eq!(resolve(&r, Some("eu"), "8.8.8.8"), ("eu".into(), RegionSource::Param));
    }
}

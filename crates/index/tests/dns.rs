//! Scheduling by DNS against real resolvers: `dig` (Debian bind9-dnsutils) asks the index
//! directly, over UDP and TCP, with and without an EDNS client subnet; `unbound` (a real
//! recursive resolver, started here on free ports with a stub zone pointing at the index and
//! client-subnet forwarding on) resolves names for a client. The nodes are fake SRS nodes with the
//! captures of a real cluster; their player addresses are distinct loopback addresses.
//!
//! Regions: eu = 10.1.0.0/16 with e1 (127.0.0.2) and e2 (127.0.0.3, carries live/cam1);
//! us = 10.2.0.0/16 with u1 (127.0.0.4, carries live/cam1) and u2 (127.0.0.5); origin o1
//! (127.0.0.9).

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Api, DEADLINE, Docs, FakeNode, Mode, check, config, eventually};
use ferrocast_index::dns::DnsConfig;
use ferrocast_index::region::CidrRegion;
use ferrocast_index::{IndexConfig, NodeSpec, Role, RunningIndex};

const ZONE: &str = "live.example.com";

/// A program the tests need, or a panic that says how to get it.
fn tool(name: &str, package: &str) -> String {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output();
    match found {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => panic!("{name} is not installed: `apt-get install {package}` (scripts/test installs it)"),
    }
}

/// `dig` against `server`, `+short` answers one per line (the first is the best).
fn dig(server: SocketAddr, args: &[&str]) -> Vec<String> {
    let out = dig_full(server, &[&["+short"], args].concat());
    out.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with(';')).map(String::from).collect()
}

/// `dig`'s whole output.
fn dig_full(server: SocketAddr, args: &[&str]) -> String {
    let dig = tool("dig", "bind9-dnsutils");
    let out = Command::new(dig)
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+time=2", "+tries=2"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `status:` of a full dig answer.
fn status(full: &str) -> &str {
    full.split("status: ").nth(1).and_then(|s| s.split(',').next()).unwrap_or("no answer")
}

fn spec(node: &FakeNode, name: &str, role: Role, ip: &str, region: &str) -> NodeSpec {
    NodeSpec {
        rtmp: Some(format!("rtmp://{ip}:1935")),
        http: Some(format!("http://{ip}:8080")),
        region: Some(region.into()),
        ..node.spec(name, role)
    }
}

struct Cluster {
    index: RunningIndex,
    dns: SocketAddr,
    e2: FakeNode,
    _nodes: Vec<FakeNode>,
    _db: tempfile::TempDir,
}

async fn cluster(ttl_s: u32) -> Cluster {
    let db = tempfile::tempdir().unwrap();
    let o1 = FakeNode::start(Docs::captured("origin")).await;
    let e1 = FakeNode::start(Docs::generated("none", 0)).await;
    let e2 = FakeNode::start(Docs::captured("edge1")).await;
    let u1 = FakeNode::start(Docs::captured("edge2")).await;
    let u2 = FakeNode::start(Docs::generated("none", 0)).await;
    let nodes = vec![
        spec(&o1, "o1", Role::Origin, "127.0.0.9", "us"),
        spec(&e1, "e1", Role::Edge, "127.0.0.2", "eu"),
        spec(&e2, "e2", Role::Edge, "127.0.0.3", "eu"),
        spec(&u1, "u1", Role::Edge, "127.0.0.4", "us"),
        spec(&u2, "u2", Role::Edge, "127.0.0.5", "us"),
    ];
    let mut cfg: IndexConfig = config(&db.path().join("index.db"), nodes);
    cfg.poll.down_after = 1;
    cfg.regions.default = "eu".into();
    cfg.regions.cidrs = vec![
        CidrRegion { cidr: "10.1.0.0/16".parse().unwrap(), region: "eu".into() },
        CidrRegion { cidr: "10.2.0.0/16".parse().unwrap(), region: "us".into() },
    ];
    cfg.dns = DnsConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        zone: Some(ZONE.into()),
        ttl_s,
        names: vec!["edge".into()],
        rate_limit_qps: 0,
        ..DnsConfig::default()
    };
    let index = RunningIndex::start(cfg, None).await.expect("start the index");
    let dns = index.dns_addr.expect("the DNS address");
    let api = Api::new(&index);
    eventually(DEADLINE, "cam1 on both of its edges, every node up", async || {
        let v = api.get_ok("/api/v1/streams").await?;
        check(v["streams"][0]["edges"].as_array().is_some_and(|e| e.len() == 2), || v.to_string())?;
        let n = api.get_ok("/api/v1/nodes").await?;
        let up = n["nodes"].as_array().into_iter().flatten().filter(|n| n["health"] == "up").count();
        check(up == 5, || n.to_string())
    })
    .await;
    Cluster { index, dns, e2, _nodes: vec![o1, e1, u1, u2], _db: db }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_gets_the_edges_of_its_region_and_of_its_stream() {
    let c = cluster(10).await;
    let dns = c.dns;
    tokio::task::spawn_blocking(move || {
        // The apex and a mapped name: the region's two edges first, by the client subnet.
        // Resolvers rotate the records of an answer: every one is an edge of the client's region.
        let eu = dig(dns, &["+subnet=10.1.7.0/24", ZONE, "A"]);
        assert_eq!(sorted(eu), ["127.0.0.2", "127.0.0.3"]);
        let us = dig(dns, &["+subnet=10.2.7.0/24", &format!("edge.{ZONE}"), "A"]);
        assert_eq!(sorted(us), ["127.0.0.4", "127.0.0.5"]);
        // A stream's name: the edge of the region that carries it, first.
        let cam1 = format!("cam1.live.{ZONE}");
        assert_eq!(dig(dns, &["+subnet=10.1.7.0/24", &cam1, "A"])[0], "127.0.0.3");
        assert_eq!(dig(dns, &["+subnet=10.2.7.0/24", &cam1, "A"])[0], "127.0.0.4");
        // The origin to publish to.
        assert_eq!(dig(dns, &[&format!("origin.{ZONE}"), "A"]), ["127.0.0.9"]);
        assert_eq!(dig(dns, &[&format!("cam1.live.origin.{ZONE}"), "A"]), ["127.0.0.9"]);
        // The subnet comes back with its scope; the answer is authoritative with the TTL.
        let full = dig_full(dns, &["+subnet=10.2.7.0/24", "+norecurse", &cam1, "A"]);
        assert!(full.contains("CLIENT-SUBNET: 10.2.7.0/24/24"), "{full}");
        assert!(
            full.contains("flags: qr aa;") || full.contains("flags: qr aa "),
            "authoritative, no recursion: {full}"
        );
        let first = full.lines().find(|l| l.starts_with(&format!("{cam1}."))).unwrap_or_default();
        assert_eq!(
            first.split_whitespace().collect::<Vec<_>>(),
            [&format!("{cam1}.")[..], "10", "IN", "A", "127.0.0.4"]
        );
        // TCP works the same.
        assert_eq!(dig(dns, &["+tcp", "+subnet=10.2.7.0/24", &cam1, "A"])[0], "127.0.0.4");
        // SOA and NS.
        let soa = dig(dns, &[ZONE, "SOA"]);
        assert!(soa[0].starts_with(&format!("ns.{ZONE}. hostmaster.{ZONE}. ")), "{soa:?}");
        assert_eq!(dig(dns, &[ZONE, "NS"]), [format!("ns.{ZONE}.")]);
        assert_eq!(dig(dns, &[&format!("ns.{ZONE}"), "A"]), ["127.0.0.1"]);
        // Names outside the zone: REFUSED; no such name: NXDOMAIN; no such type: NODATA.
        assert_eq!(status(&dig_full(dns, &["example.org", "A"])), "REFUSED");
        assert_eq!(status(&dig_full(dns, &[&format!("a.b.c.{ZONE}"), "A"])), "NXDOMAIN");
        let nodata = dig_full(dns, &[ZONE, "MX"]);
        assert_eq!(status(&nodata), "NOERROR");
        assert!(nodata.contains("ANSWER: 0") && nodata.contains("AUTHORITY: 1"), "{nodata}");
    })
    .await
    .unwrap();
    let metrics = Api::new(&c.index).get_text("/metrics").await.unwrap().1;
    assert!(metrics.contains("ferrocast_index_dns_queries_total{type=\"A\",rcode=\"NOERROR\"}"), "{metrics}");
    assert!(metrics.contains("ferrocast_index_dns_queries_total{type=\"A\",rcode=\"REFUSED\"} 1"), "{metrics}");
    assert!(metrics.contains("ferrocast_index_dns_answers_total{region=\"us\"}"), "{metrics}");
    c.index.shutdown().await;
}

/// The value of the metrics line that starts with `series`, 0 when absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_udp_threads_ask_for_a_short_scheduler_slice() {
    // Without it a query waited behind a poll's parse for the rest of the poll's slice (the p99 of
    // bench/dns.sh, 2 ms). Threads of other tests' clusters are here too: all must have it.
    let _c = cluster(10).await;
    // (name, slice) of each UDP thread of this process.
    let udp_threads = || -> Vec<(String, Option<u64>)> {
        let tasks = std::fs::read_dir("/proc/self/task").unwrap().flatten();
        tasks
            .filter_map(|task| {
                let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
                let tid = task.file_name().to_string_lossy().to_string();
                comm.starts_with("dns-udp").then(|| {
                    (comm.trim().to_string(), ferrocast_index::short_slice::reported_slice(&format!("self/task/{tid}")))
                })
            })
            .collect()
    };
    let want =
        ferrocast_index::short_slice::kernel_has_short_slices().then_some(ferrocast_index::short_slice::SLICE_NS);
    // A thread asks as it starts: give the newest a moment.
    let deadline = Instant::now() + DEADLINE;
    let mut threads = udp_threads();
    while Instant::now() < deadline && (threads.is_empty() || want.is_some() && threads.iter().any(|t| t.1 != want)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        threads = udp_threads();
    }
    assert!(!threads.is_empty(), "no DNS UDP thread found");
    if want.is_some() {
        assert!(threads.iter().all(|t| t.1 == want), "{threads:?}");
    }
}

fn metric(metrics: &str, series: &str) -> u64 {
    metrics.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_given_again_from_the_cache_counts_again() {
    let c = cluster(10).await;
    let dns = c.dns;
    let api = Api::new(&c.index);
    let queries = "ferrocast_index_dns_queries_total{type=\"A\",rcode=\"NOERROR\"}";
    let answers = "ferrocast_index_dns_answers_total{region=\"eu\"}";
    let before = api.get_text("/metrics").await.unwrap().1;
    // One dig, three identical queries (no cookie: the same bytes but the ID), milliseconds apart:
    // the second and third are the answer cache's.
    let got = tokio::task::spawn_blocking(move || {
        dig(dns, &["+nocookie", "+subnet=10.1.7.0/24", ZONE, "A", ZONE, "A", ZONE, "A"])
    })
    .await
    .unwrap();
    assert_eq!(got.len(), 6, "two edges in each of three answers: {got:?}");
    assert!(got.iter().all(|ip| ip == "127.0.0.2" || ip == "127.0.0.3"), "eu's edges: {got:?}");
    let after = api.get_text("/metrics").await.unwrap().1;
    assert_eq!(metric(&after, queries) - metric(&before, queries), 3, "every query counted: {after}");
    assert_eq!(metric(&after, answers) - metric(&before, answers), 3, "every answer counted: {after}");
    c.index.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_edge_leaves_the_answers_within_poll_and_ttl() {
    let c = cluster(1).await;
    let dns = c.dns;
    let cam1 = format!("cam1.live.{ZONE}");
    let ask = move || dig(dns, &["+subnet=10.1.7.0/24", &cam1, "A"]);
    let before = tokio::task::spawn_blocking(ask.clone()).await.unwrap();
    assert_eq!(before[0], "127.0.0.3", "e2 carries cam1: {before:?}");
    c.e2.set(Mode::Refuse).await;
    let killed = Instant::now();
    let after = eventually(DEADLINE, "e2 out of the answers", async || {
        let a = tokio::task::spawn_blocking(ask.clone()).await.unwrap();
        check(!a.is_empty() && !a.contains(&"127.0.0.3".to_string()), || format!("{a:?}"))?;
        Ok(a)
    })
    .await;
    assert_eq!(after[0], "127.0.0.2", "the other eu edge takes over: {after:?}");
    println!("e2 left the DNS answers {:?} after its API stopped answering (poll 300 ms, TTL 1 s)", killed.elapsed());
    c.index.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_packets_cost_nothing_and_http_keeps_answering() {
    let c = cluster(10).await;
    let dns = c.dns;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut packets: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 3],
        // 65535 questions claimed, none sent.
        vec![0, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0],
        // A compression pointer to itself.
        vec![0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1],
        // A response: never answered.
        vec![0, 3, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ];
    // An OPT record with a 60 KB option: larger than any datagram we read (cut, then FORMERR).
    let mut huge = vec![0, 4, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0xea, 0x64];
    huge.extend_from_slice(&[0, 8, 0xea, 0x60]);
    huge.resize(huge.len() + 60_000, 7);
    packets.push(huge);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let len = (seed % 300) as usize;
        packets.push(
            (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect(),
        );
    }
    for p in &packets {
        let _ = socket.send_to(p, dns).await;
    }
    // A TCP client that sends half a query and stalls holds one connection, not the server.
    let mut stalled = tokio::net::TcpStream::connect(dns).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stalled, &[0, 40, 0, 1]).await.unwrap();
    let cam1 = format!("cam1.live.{ZONE}");
    let answers = tokio::task::spawn_blocking(move || {
        (dig(dns, &["+subnet=10.2.7.0/24", &cam1, "A"]), dig(dns, &["+tcp", "+subnet=10.2.7.0/24", &cam1, "A"]))
    })
    .await
    .unwrap();
    assert_eq!((answers.0[0].as_str(), answers.1[0].as_str()), ("127.0.0.4", "127.0.0.4"));
    let api = Api::new(&c.index);
    let play = api.get_ok("/api/v1/play/live/cam1?region=us").await.unwrap();
    assert_eq!(play["node"], "u1");
    let metrics = api.get_text("/metrics").await.unwrap().1;
    let formerr = metrics
        .lines()
        .filter(|l| l.starts_with("ferrocast_index_dns_queries_total") && l.contains("FORMERR"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum::<u64>();
    let dns_lines: Vec<&str> = metrics.lines().filter(|l| l.starts_with("ferrocast_index_dns")).collect();
    assert!(formerr >= 3, "malformed queries answered FORMERR: {dns_lines:#?}");
    assert!(!metrics.contains("ferrocast_index_dns_dropped_total{reason=\"panic\"} 1"), "{metrics}");
    c.index.shutdown().await;
}

/// unbound's config for a stub zone at the index, forwarding client subnets to it.
fn unbound_conf(dir: &std::path::Path, port: u16, index: SocketAddr) -> String {
    format!(
        "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  \
         directory: \"{dir}\"\n  pidfile: \"{dir}/unbound.pid\"\n  use-syslog: no\n  \
         logfile: \"{dir}/unbound.log\"\n  verbosity: 2\n  do-ip6: no\n  do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n  \
         module-config: \"subnetcache iterator\"\n  send-client-subnet: 127.0.0.1\n  \
         max-client-subnet-ipv4: 24\n  harden-referral-path: no\n  qname-minimisation: no\n\
         remote-control:\n  control-enable: no\nstub-zone:\n  name: \"{ZONE}\"\n  stub-addr: {}@{}\n",
        index.ip(),
        index.port(),
        dir = dir.display(),
    )
}

/// A free UDP+TCP port on 127.0.0.1 for unbound.
fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port for both UDP and TCP");
}

/// unbound, killed when dropped.
struct Unbound(std::process::Child);

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_recursive_resolver_resolves_names_for_its_clients() {
    let c = cluster(10).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("unbound.conf");
    std::fs::write(&conf, unbound_conf(dir.path(), port, c.dns)).unwrap();
    let unbound = tool("unbound", "unbound");
    let checkconf = Command::new("unbound-checkconf").arg(&conf).output().expect("run unbound-checkconf");
    assert!(checkconf.status.success(), "{}", String::from_utf8_lossy(&checkconf.stdout));
    let _resolver = Unbound(
        Command::new(unbound)
            .args(["-d", "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start unbound"),
    );
    let resolver: SocketAddr = ([127, 0, 0, 1], port).into();
    let cam1 = format!("cam1.live.{ZONE}");
    let started = Instant::now();
    let (us, eu, origin) = tokio::task::spawn_blocking(move || {
        loop {
            // A client of the resolver in us (its subnet forwarded by unbound), one in eu, and a
            // publisher's name.
            let us = dig(resolver, &["+subnet=10.2.7.0/24", &cam1, "A"]);
            if us.is_empty() && started.elapsed() < DEADLINE {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            let eu = dig(resolver, &["+subnet=10.1.7.0/24", &cam1, "A"]);
            let origin = dig(resolver, &[&format!("origin.{ZONE}"), "A"]);
            break (us, eu, origin);
        }
    })
    .await
    .unwrap();
    // unbound rotates the records: each client gets its region's edges, in some order.
    let log = || std::fs::read_to_string(dir.path().join("unbound.log")).unwrap_or_default();
    assert_eq!(sorted(us.clone()), ["127.0.0.4", "127.0.0.5"], "us client through unbound: {us:?}\n{}", log());
    assert_eq!(sorted(eu.clone()), ["127.0.0.2", "127.0.0.3"], "eu client through unbound: {eu:?}");
    assert_eq!(origin, ["127.0.0.9"]);
    c.index.shutdown().await;
}

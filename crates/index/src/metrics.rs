//! Prometheus metrics of the index server, rendered by hand in the text exposition format (the one
//! renderer: the shared-mode lines are written here too): the
//! cluster and per-node numbers come straight from the current directory (no second copy to keep
//! in sync), and the few counters of its own work are atomics.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ferrocast_cluster::prometheus::{escape, help};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::directory::{Directory, FastHash, saturating_sum};
use crate::index_replicas::{Replicas, Role};
use crate::nodes::{Health, NodeCounters};

/// Counters by region name.
type ByRegion = HashMap<Arc<str>, AtomicU64, FastHash>;

/// Upper bounds of the poll latency histogram, in seconds.
const POLL_BUCKETS: [f64; 8] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
pub struct Metrics {
    poll_buckets: [AtomicU64; POLL_BUCKETS.len()],
    poll_count: AtomicU64,
    poll_sum_us: AtomicU64,
    poll_errors: AtomicU64,
    merges: AtomicU64,
    merge_us: AtomicU64,
    /// Scheduler decisions by how the viewer's region was found, then by region.
    decisions: RwLock<HashMap<&'static str, ByRegion, FastHash>>,
    /// Play requests nothing could serve.
    unserved: AtomicU64,
    /// Poll timeouts not counted against their node: the index itself lagged.
    polls_inconclusive: AtomicU64,
    /// Background tasks restarted after a panic.
    pub task_restarts: Arc<crate::supervisor::Restarts>,
    /// The DNS server's counters.
    pub dns: DnsMetrics,
}

/// Query types counted by name; the rest count as "other".
const DNS_TYPES: [RecordType; 6] =
    [RecordType::A, RecordType::AAAA, RecordType::CNAME, RecordType::NS, RecordType::SOA, RecordType::ANY];
/// Answer codes counted by name (as dig prints them); the rest count as "other".
const DNS_RCODES: [(ResponseCode, &str); 7] = [
    (ResponseCode::NoError, "NOERROR"),
    (ResponseCode::FormErr, "FORMERR"),
    (ResponseCode::ServFail, "SERVFAIL"),
    (ResponseCode::NXDomain, "NXDOMAIN"),
    (ResponseCode::NotImp, "NOTIMP"),
    (ResponseCode::Refused, "REFUSED"),
    (ResponseCode::BADVERS, "BADVERS"),
];
/// Why a DNS packet got no answer (or a cut one).
const DNS_DROPS: [&str; 7] =
    ["malformed", "response", "rate_limit", "tcp_connections", "truncated_size", "encode", "panic"];

/// Counters of the DNS server (`crate::dns`): fixed label sets, so a flood of odd queries cannot
/// grow them.
#[derive(Default)]
pub struct DnsMetrics {
    /// By query type (DNS_TYPES, then other) and answer code (DNS_RCODES, then other).
    queries: [[AtomicU64; DNS_RCODES.len() + 1]; DNS_TYPES.len() + 1],
    dropped: [AtomicU64; DNS_DROPS.len()],
    /// UDP answers cut to TC by the rate limit.
    rate_limited: AtomicU64,
    /// Answers naming edges, by client region.
    answers: RwLock<ByRegion>,
}

impl DnsMetrics {
    pub fn query(&self, qtype: RecordType, rcode: ResponseCode) {
        let t = DNS_TYPES.iter().position(|t| *t == qtype).unwrap_or(DNS_TYPES.len());
        let r = DNS_RCODES.iter().position(|r| r.0 == rcode).unwrap_or(DNS_RCODES.len());
        self.queries[t][r].fetch_add(1, Ordering::Relaxed);
    }

    /// A packet that got no answer (or one cut for size), by reason (one of DNS_DROPS).
    pub fn dropped(&self, reason: &'static str) {
        if let Some(i) = DNS_DROPS.iter().position(|r| *r == reason) {
            self.dropped[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// An answer naming edges for a client of `region` (regions come from the config).
    pub fn answer(&self, region: &Arc<str>) {
        if let Some(c) = self.answers.read().unwrap_or_else(|p| p.into_inner()).get(region) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut map = self.answers.write().unwrap_or_else(|p| p.into_inner());
        let key = if map.len() < 256 { region.clone() } else { Arc::from("other") };
        map.entry(key).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// Queries answered so far with `rcode`, all types.
    pub fn answered(&self, rcode: ResponseCode) -> u64 {
        let r = DNS_RCODES.iter().position(|r| r.0 == rcode).unwrap_or(DNS_RCODES.len());
        self.queries.iter().map(|row| row[r].load(Ordering::Relaxed)).sum()
    }

    fn render(&self, o: &mut String) {
        help(o, "ferrocast_index_dns_queries_total", "counter", "DNS queries answered, by query type and answer code.");
        for (t, row) in self.queries.iter().enumerate() {
            let qtype = DNS_TYPES.get(t).map_or("other".to_string(), |t| t.to_string());
            for (r, c) in row.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let rcode = DNS_RCODES.get(r).map_or("other", |r| r.1);
                let _ = writeln!(o, "ferrocast_index_dns_queries_total{{type=\"{qtype}\",rcode=\"{rcode}\"}} {n}");
            }
        }
        help(
            o,
            "ferrocast_index_dns_dropped_total",
            "counter",
            "DNS packets given no answer (or a cut one), by reason.",
        );
        for (reason, c) in DNS_DROPS.iter().zip(&self.dropped) {
            let _ =
                writeln!(o, "ferrocast_index_dns_dropped_total{{reason=\"{reason}\"}} {}", c.load(Ordering::Relaxed));
        }
        help(
            o,
            "ferrocast_index_dns_rate_limited_total",
            "counter",
            "UDP answers truncated (TC) by the per-network rate limit.",
        );
        let _ = writeln!(o, "ferrocast_index_dns_rate_limited_total {}", self.rate_limited.load(Ordering::Relaxed));
        help(o, "ferrocast_index_dns_answers_total", "counter", "DNS answers naming edges, by client region.");
        for (region, c) in self.answers.read().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                o,
                "ferrocast_index_dns_answers_total{{region=\"{}\"}} {}",
                escape(region),
                c.load(Ordering::Relaxed)
            );
        }
    }
}

impl Metrics {
    pub fn observe_poll(&self, took: Duration, ok: bool) {
        let s = took.as_secs_f64();
        for (i, b) in POLL_BUCKETS.iter().enumerate() {
            if s <= *b {
                self.poll_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.poll_count.fetch_add(1, Ordering::Relaxed);
        self.poll_sum_us.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        if !ok {
            self.poll_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn observe_merge(&self, took: Duration) {
        self.merges.fetch_add(1, Ordering::Relaxed);
        self.merge_us.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// One play request answered for a viewer of `region`.
    pub fn decision(&self, region: &Arc<str>, source: &'static str) {
        if let Some(c) =
            self.decisions.read().unwrap_or_else(|p| p.into_inner()).get(source).and_then(|m| m.get(region))
        {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut map = self.decisions.write().unwrap_or_else(|p| p.into_inner());
        let by_region = map.entry(source).or_default();
        // Bounded: regions come from the config, but a `region=` parameter is user input.
        let key = if by_region.len() < 256 { region.clone() } else { Arc::from("other") };
        by_region.entry(key).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// A poll timed out while the index was starved of CPU (see `poller`).
    pub fn poll_inconclusive(&self) {
        self.polls_inconclusive.fetch_add(1, Ordering::Relaxed);
    }

    pub fn unserved(&self) {
        self.unserved.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, dir: &Directory) -> String {
        let mut out = String::with_capacity(4096 + dir.nodes.len() * 512);
        let o = &mut out;
        help(o, "ferrocast_index_streams", "gauge", "Live streams in the cluster.");
        let _ = writeln!(o, "ferrocast_index_streams {}", dir.streams.len());
        help(o, "ferrocast_index_viewers", "gauge", "Viewers in the cluster (not publishers, not edge pulls).");
        let _ = writeln!(o, "ferrocast_index_viewers {}", dir.viewers());
        help(o, "ferrocast_index_kbps_in", "gauge", "Ingest bitrate at the origins, kbit/s (30 s window).");
        let _ = writeln!(o, "ferrocast_index_kbps_in {}", saturating_sum(dir.streams.values().map(|s| s.kbps_in)));
        help(o, "ferrocast_index_kbps_out", "gauge", "Outgoing bitrate of all nodes, kbit/s (30 s window).");
        let _ = writeln!(o, "ferrocast_index_kbps_out {}", saturating_sum(dir.nodes.iter().map(|n| n.kbps_out)));
        help(o, "ferrocast_index_nodes", "gauge", "Nodes by health.");
        for h in [Health::Unknown, Health::Up, Health::Degraded, Health::Down] {
            let n = dir.nodes.iter().filter(|n| n.health == h).count();
            let _ = writeln!(o, "ferrocast_index_nodes{{health=\"{}\"}} {n}", h.as_str());
        }
        help(o, "ferrocast_index_node_up", "gauge", "1 when the node is schedulable (up or degraded).");
        node_lines(o, dir, "ferrocast_index_node_up", |n| u64::from(n.health.schedulable()));
        help(o, "ferrocast_index_node_viewers", "gauge", "Clients of the node that are not publishers.");
        node_lines(o, dir, "ferrocast_index_node_viewers", |n| n.viewers);
        help(o, "ferrocast_index_node_streams", "gauge", "Live streams on the node.");
        node_lines(o, dir, "ferrocast_index_node_streams", |n| n.streams as u64);
        help(o, "ferrocast_index_node_kbps_out", "gauge", "Outgoing bitrate of the node, kbit/s.");
        node_lines(o, dir, "ferrocast_index_node_kbps_out", |n| n.kbps_out);
        help(o, "ferrocast_index_node_scheduled_total", "counter", "Viewers the scheduler sent to the node.");
        node_lines(o, dir, "ferrocast_index_node_scheduled_total", |n| NodeCounters::get(&n.counters.scheduled_total));
        help(o, "ferrocast_index_node_poll_errors_total", "counter", "Failed polls of the node.");
        node_lines(o, dir, "ferrocast_index_node_poll_errors_total", |n| {
            NodeCounters::get(&n.counters.poll_errors_total)
        });
        help(o, "ferrocast_index_node_poll_seconds", "gauge", "Duration of the node's last poll.");
        for n in &dir.nodes {
            if let Some(d) = n.last_poll {
                let _ = writeln!(o, "ferrocast_index_node_poll_seconds{{{}}} {:.6}", labels(n), d.as_secs_f64());
            }
        }
        help(o, "ferrocast_index_scheduler_decisions_total", "counter", "Play requests answered, by viewer region.");
        let decisions = self.decisions.read().unwrap_or_else(|p| p.into_inner());
        for ((source, region), c) in decisions.iter().flat_map(|(s, m)| m.iter().map(move |(r, c)| ((s, r), c))) {
            let _ = writeln!(
                o,
                "ferrocast_index_scheduler_decisions_total{{region=\"{}\",region_source=\"{source}\"}} {}",
                escape(region),
                c.load(Ordering::Relaxed)
            );
        }
        help(
            o,
            "ferrocast_index_poll_inconclusive_total",
            "counter",
            "Poll timeouts not held against their node because the index itself lagged (its timer fired far too late).",
        );
        let _ =
            writeln!(o, "ferrocast_index_poll_inconclusive_total {}", self.polls_inconclusive.load(Ordering::Relaxed));
        help(o, "ferrocast_index_scheduler_unserved_total", "counter", "Play or publish requests with no node.");
        let _ = writeln!(o, "ferrocast_index_scheduler_unserved_total {}", self.unserved.load(Ordering::Relaxed));
        help(o, "ferrocast_index_poll_duration_seconds", "histogram", "Duration of node polls.");
        for (i, b) in POLL_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "ferrocast_index_poll_duration_seconds_bucket{{le=\"{b}\"}} {}",
                self.poll_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.poll_count.load(Ordering::Relaxed);
        let _ = writeln!(o, "ferrocast_index_poll_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.poll_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(o, "ferrocast_index_poll_duration_seconds_sum {sum:.6}");
        let _ = writeln!(o, "ferrocast_index_poll_duration_seconds_count {count}");
        help(o, "ferrocast_index_poll_errors_total", "counter", "Failed polls of all nodes.");
        let _ = writeln!(o, "ferrocast_index_poll_errors_total {}", self.poll_errors.load(Ordering::Relaxed));
        help(o, "ferrocast_index_task_restarts_total", "counter", "Background tasks restarted after a panic, by task.");
        for (task, n) in self.task_restarts.counts() {
            let _ = writeln!(o, "ferrocast_index_task_restarts_total{{task=\"{task}\"}} {n}");
        }
        self.dns.render(o);
        help(o, "ferrocast_index_merges_total", "counter", "Directory rebuilds.");
        let _ = writeln!(o, "ferrocast_index_merges_total {}", self.merges.load(Ordering::Relaxed));
        help(o, "ferrocast_index_merge_seconds_total", "counter", "Time spent rebuilding the directory.");
        let _ = writeln!(
            o,
            "ferrocast_index_merge_seconds_total {:.6}",
            self.merge_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        out
    }
}

/// The shared-mode lines (`replicas` None: a single index, which always leads).
pub fn render_replicas(o: &mut String, replicas: Option<&Replicas>) {
    let Some(r) = replicas else {
        help(o, "ferrocast_index_leader", "gauge", "1 while this replica holds the leader lease and polls.");
        let _ = writeln!(o, "ferrocast_index_leader 1");
        return;
    };
    let s = &r.stats;
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let secs = |c: &AtomicU64| format!("{:.6}", g(c) as f64 / 1e6);
    let lines: [(&str, &str, &str, String); 11] = [
        (
            "ferrocast_index_redis_up",
            "gauge",
            "1 when this replica reaches Redis (shared mode).",
            u8::from(r.is_up()).to_string(),
        ),
        (
            "ferrocast_index_leader",
            "gauge",
            "1 while this replica holds the leader lease and polls.",
            u8::from(r.role() == Role::Leader).to_string(),
        ),
        (
            "ferrocast_index_polling",
            "gauge",
            "1 while this replica polls (leader, or standalone with Redis down).",
            u8::from(r.polling()).to_string(),
        ),
        (
            "ferrocast_index_fencing_token",
            "gauge",
            "Fencing token of this replica's last term as leader.",
            r.token().to_string(),
        ),
        (
            "ferrocast_index_shared_publishes_total",
            "counter",
            "Node record writes to Redis (leader).",
            g(&s.publishes).to_string(),
        ),
        (
            "ferrocast_index_shared_publish_bytes_total",
            "counter",
            "Bytes of node records written to Redis (leader).",
            g(&s.publish_bytes).to_string(),
        ),
        (
            "ferrocast_index_shared_publish_seconds_total",
            "counter",
            "Time spent encoding and writing node records (leader).",
            secs(&s.publish_us),
        ),
        (
            "ferrocast_index_shared_fenced_total",
            "counter",
            "Writes Redis refused because a newer leader exists.",
            g(&s.fenced).to_string(),
        ),
        (
            "ferrocast_index_shared_applied_bytes_total",
            "counter",
            "Bytes of node records read from Redis (follower).",
            g(&s.apply_bytes).to_string(),
        ),
        (
            "ferrocast_index_shared_events_out_total",
            "counter",
            "Events sent to the other replicas.",
            g(&s.events_out).to_string(),
        ),
        (
            "ferrocast_index_shared_events_in_total",
            "counter",
            "Events received from the other replicas.",
            g(&s.events_in).to_string(),
        ),
    ];
    for (name, kind, text, value) in lines {
        help(o, name, kind, text);
        let _ = writeln!(o, "{name} {value}");
    }
}

/// The history store's lines.
pub fn render_store(o: &mut String, store: &crate::store::Store) {
    use std::sync::atomic::Ordering::Relaxed;
    let h = store.health();
    let lines: [(&str, &str, &str, u64); 4] = [
        (
            "ferrocast_index_history_dropped_total",
            "counter",
            "History writes dropped because the store's queue was full.",
            h.dropped.load(Relaxed),
        ),
        (
            "ferrocast_index_store_up",
            "gauge",
            "1 while the index's database (SQLite or PostgreSQL) answers, 0 while writes queue for it.",
            u64::from(!h.down.load(Relaxed)),
        ),
        (
            "ferrocast_index_store_pending_writes",
            "gauge",
            "History writes waiting for the database.",
            h.pending.load(Relaxed),
        ),
        (
            "ferrocast_index_store_retries_total",
            "counter",
            "Batches of writes the database did not take, kept and retried.",
            h.retries.load(Relaxed),
        ),
    ];
    for (name, kind, text, value) in lines {
        help(o, name, kind, text);
        let _ = writeln!(o, "{name}{{backend=\"{}\"}} {value}", store.kind());
    }
}

fn labels(n: &crate::directory::NodeView) -> String {
    format!("node=\"{}\",role=\"{}\",region=\"{}\"", escape(&n.spec.name), n.spec.role, escape(&n.region))
}

fn node_lines(o: &mut String, dir: &Directory, name: &str, value: impl Fn(&crate::directory::NodeView) -> u64) {
    for n in &dir.nodes {
        let _ = writeln!(o, "{name}{{{}}} {}", labels(n), value(n));
    }
}

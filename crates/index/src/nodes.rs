//! The node table: every node the index knows (from the config or self-registered), its health
//! and the latest report of its streams. Pollers write it; the directory merge reads it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The last poll sequence number handed out.
static POLL_SEQ: AtomicU64 = AtomicU64::new(0);

/// A new poll sequence number: increasing over the process, across nodes, never reused.
pub fn next_poll_seq() -> u64 {
    POLL_SEQ.fetch_add(1, Ordering::Relaxed) + 1
}
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::NodeSpec;
use crate::srs::{Audio, Kbps, Video};

/// Where a node stands, as the scheduler sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not polled yet: not scheduled.
    Unknown,
    /// Answers in time.
    Up,
    /// Answers, but slower than `poll.slow_ms`: scheduled with half its weight.
    Degraded,
    /// Failed `poll.down_after` polls in a row: not scheduled, its streams leave the directory.
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }

    /// May viewers or publishers be sent here?
    pub fn schedulable(self) -> bool {
        matches!(self, Health::Up | Health::Degraded)
    }
}

/// Counters shared between the node table, the scheduler and /metrics; lock-free.
#[derive(Debug, Default)]
pub struct NodeCounters {
    /// Viewers sent here in total.
    pub scheduled_total: AtomicU64,
    pub polls_total: AtomicU64,
    pub poll_errors_total: AtomicU64,
}

impl NodeCounters {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One live stream as one node reported it.
#[derive(Debug)]
pub struct NodeStream {
    /// `vhost/app/stream` with the vhost's name (never SRS's vhost id) and no player extension.
    pub key: Arc<str>,
    pub active: bool,
    /// All clients including the publisher (SRS's `clients`).
    pub clients: u64,
    pub kbps: Kbps,
    pub video: Option<Arc<Video>>,
    pub audio: Option<Arc<Audio>>,
}

/// What one successful poll read from a node.
#[derive(Debug, Default)]
pub struct NodeReport {
    pub server: Option<String>,
    /// New on every process start: a change means the node restarted.
    pub service: Option<String>,
    pub version: Option<String>,
    pub cpu_percent: Option<f64>,
    pub mem_kbyte: Option<u64>,
    pub uptime_s: Option<u64>,
    /// Play protocols beyond SRS's (HTTP-FLV, HLS, RTMP) that the node says it serves.
    pub extras: Extras,
    pub streams: Vec<NodeStream>,
}

/// What a Ferrocast node serves that an SRS node does not; SRS nodes (and nodes that do not say)
/// have neither, so the scheduler never sends an LL-HLS or WebRTC viewer to them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    pub llhls: bool,
    pub whep: bool,
}

impl Extras {
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Extras {
        let mut e = Extras::default();
        for name in names {
            match crate::targets::Proto::parse(name) {
                Some(crate::targets::Proto::LlHls) => e.llhls = true,
                Some(crate::targets::Proto::Whep) => e.whep = true,
                _ => {}
            }
        }
        e
    }

    /// The names `from_names` reads.
    pub fn names(self) -> Vec<&'static str> {
        use crate::targets::Proto;
        [(Proto::LlHls, self.llhls), (Proto::Whep, self.whep)]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(p, _)| p.as_str())
            .collect()
    }
}

/// A node and what the index knows about it.
#[derive(Debug)]
pub struct NodeEntry {
    pub spec: Arc<NodeSpec>,
    /// Position in the config (primary origins first); registered nodes come after.
    pub order: usize,
    /// Last heartbeat of a self-registered node; `None` for configured nodes.
    pub registered: Option<Instant>,
    pub health: Health,
    pub fails: u32,
    pub last_error: Option<Arc<str>>,
    /// Wall-clock ms of the last successful poll.
    pub last_ok_ms: Option<u64>,
    pub last_poll: Option<Duration>,
    pub report: Option<Arc<NodeReport>>,
    /// The poll that read `report` (see [`next_poll_seq`]): a node "polled again" has a new one.
    pub poll_seq: u64,
    pub counters: Arc<NodeCounters>,
    /// Set when a poller runs for this entry; cancelled when the node is removed.
    pub stop: tokio_util::sync::CancellationToken,
}

impl NodeEntry {
    pub fn new(spec: NodeSpec, order: usize, registered: Option<Instant>) -> NodeEntry {
        NodeEntry {
            spec: Arc::new(spec),
            order,
            registered,
            health: Health::Unknown,
            fails: 0,
            last_error: None,
            last_ok_ms: None,
            last_poll: None,
            report: None,
            poll_seq: 0,
            counters: Arc::default(),
            stop: tokio_util::sync::CancellationToken::new(),
        }
    }
}

impl NodeEntry {
    /// What starts and stops this entry's poller.
    pub fn poller_handle(&self, name: &str) -> PollerHandle {
        PollerHandle { name: name.to_string(), stop: self.stop.clone() }
    }
}

/// A node's poller as the node table knows it: the node's name and the token that stops it.
/// `poller::start` starts one, `poller::stop` stops it.
#[derive(Clone, Debug)]
pub struct PollerHandle {
    pub name: String,
    pub stop: tokio_util::sync::CancellationToken,
}

/// All nodes by name.
pub type NodeTable = BTreeMap<String, NodeEntry>;

/// A state change worth recording: the node, from, to, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthChange {
    pub node: String,
    pub from: Health,
    pub to: Health,
    pub reason: String,
}

/// The outcome of one poll, applied to the entry. Returns the health change, if any.
pub fn apply_poll(
    entry: &mut NodeEntry,
    result: Result<NodeReport, String>,
    took: Duration,
    slow: Duration,
    down_after: u32,
    now_ms: u64,
) -> Option<HealthChange> {
    let before = entry.health;
    entry.counters.polls_total.fetch_add(1, Ordering::Relaxed);
    entry.last_poll = Some(took);
    let reason = match result {
        Ok(report) => {
            let restarted = match (&entry.report, &report.service) {
                (Some(old), Some(new)) => old.service.as_ref().is_some_and(|o| o != new),
                _ => false,
            };
            if restarted {
                tracing::info!(node = %entry.spec.name, service = ?report.service, "node restarted (new service id): reading it afresh");
            }
            entry.fails = 0;
            entry.last_error = None;
            entry.last_ok_ms = Some(now_ms);
            entry.report = Some(Arc::new(report));
            entry.poll_seq = next_poll_seq();
            entry.health = if took > slow { Health::Degraded } else { Health::Up };
            match entry.health {
                Health::Degraded => format!("answered in {} ms", took.as_millis()),
                _ => "answered".to_string(),
            }
        }
        Err(reason) => {
            entry.counters.poll_errors_total.fetch_add(1, Ordering::Relaxed);
            entry.fails = entry.fails.saturating_add(1);
            tracing::warn!(node = %entry.spec.name, fails = entry.fails, "poll failed: {reason}");
            entry.last_error = Some(reason.as_str().into());
            if entry.fails >= down_after {
                entry.health = Health::Down;
                entry.report = None;
            }
            format!("{} poll(s) failed: {reason}", entry.fails)
        }
    };
    (entry.health != before).then(|| HealthChange {
        node: entry.spec.name.clone(),
        from: before,
        to: entry.health,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> NodeEntry {
        NodeEntry::new("name=e1,api=http://127.0.0.1:1".parse().unwrap(), 0, None)
    }
    const SLOW: Duration = Duration::from_millis(500);
    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    fn snap(service: &str) -> NodeReport {
        NodeReport { service: Some(service.into()), ..Default::default() }
    }

    #[test]
    fn up_degraded_down_and_back() {
        let mut e = entry();
        let c = apply_poll(&mut e, Ok(snap("a")), ms(10), SLOW, 2, 1).unwrap();
        assert_eq!((c.from, c.to), (Health::Unknown, Health::Up));
        let c = apply_poll(&mut e, Ok(snap("a")), ms(900), SLOW, 2, 2).unwrap();
        assert_eq!(c.to, Health::Degraded);
        assert!(apply_poll(&mut e, Err("refused".into()), ms(1), SLOW, 2, 3).is_none(), "one failure is not down");
        assert!(e.report.is_some(), "one failure keeps the last view");
        let c = apply_poll(&mut e, Err("refused".into()), ms(1), SLOW, 2, 4).unwrap();
        assert_eq!(c.to, Health::Down);
        assert!(c.reason.contains("2 poll(s) failed: refused"), "{}", c.reason);
        assert!(e.report.is_none(), "a down node's streams leave the directory");
        assert_eq!(apply_poll(&mut e, Ok(snap("b")), ms(5), SLOW, 2, 5).unwrap().to, Health::Up);
        assert_eq!(NodeCounters::get(&e.counters.poll_errors_total), 2);
    }
}

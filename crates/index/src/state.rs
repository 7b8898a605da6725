//! The index server's shared state: config, node table, the current directory and the handles
//! (store, HTTP client) every part uses. Pollers and the register handler write the node table;
//! the merge task turns it into a new directory; request handlers only read the directory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::clock::now_ms;

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::config::{IndexConfig, NodeSpec};
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::nodes::{self, HealthChange, NodeEntry, NodeReport, NodeTable, PollerHandle};
use crate::region::RegionResolver;
use crate::store::Store;

/// Events kept for listeners that reconnect (SSE `Last-Event-ID`, WebSocket `?since=`).
const EVENT_BUFFER: usize = 4096;

/// Re-reads the configuration (file + flags) for a reload.
pub type ConfigLoader = Box<dyn Fn() -> Result<IndexConfig, String> + Send + Sync>;

pub struct IndexState {
    pub config: ArcSwap<IndexConfig>,
    pub resolver: ArcSwap<RegionResolver>,
    /// The DNS zone (`[dns]`), rebuilt on reload; None when the config names none.
    pub dns_zone: arc_swap::ArcSwapOption<crate::dns::Zone>,
    pub directory: ArcSwap<Directory>,
    /// Access control (keys, rules, hook callers), rebuilt on reload.
    pub auth: ArcSwap<Auth>,
    pub store: Store,
    pub metrics: Metrics,
    /// Stream and node events for WebSocket and SSE listeners.
    pub events: crate::events::Bus,
    /// Each replicated stream's primary origin (from `on_forward` hooks).
    pub primaries: crate::origin_replicas::Primaries,
    /// The origin of each stream that ended within the last minute (publisher stickiness).
    pub placements: crate::placements::Placements,
    /// The last 15 minutes of load, for the dashboard's charts.
    pub stats_history: crate::stats_history::StatsHistory,
    /// Shared mode (several replicas through Redis); None for a single index.
    pub replicas: Option<Arc<crate::index_replicas::Replicas>>,
    /// Token signatures an admin revoked, checked by the hook receiver.
    pub revoked: crate::auth::revoked::Revoked,
    /// Client for polls (no redirect but SRS's slash 302 on the same node, short timeouts).
    pub http: reqwest::Client,
    /// Bounds the polls in flight (`poll.max_concurrent`).
    pub poll_permits: tokio::sync::Semaphore,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    /// The runtime of polls and merges ([`crate::background`]), once the index's tasks started.
    pub background: std::sync::OnceLock<tokio::runtime::Handle>,
    pub started: Instant,
    nodes: Mutex<NodeTable>,
    dirty: Notify,
    /// A change that must reach the directory without the rebuild pacing (a node up or down).
    urgent: Notify,
    next_order: AtomicUsize,
    loader: Option<ConfigLoader>,
}

impl IndexState {
    /// Whether this process records in the history what its directory shows (sessions, node
    /// changes) and prunes it: always, unless its database is shared with other index replicas
    /// (PostgreSQL) — then only the leader does, so each event is one row for the cluster. While
    /// Redis is down every replica polls on its own and records (rows may then repeat).
    pub fn records_history(&self) -> bool {
        match self.replicas.as_deref() {
            Some(r) if self.store.is_shared() => r.role() != crate::index_replicas::Role::Follower,
            _ => true,
        }
    }

    pub fn new(config: IndexConfig, store: Store, loader: Option<ConfigLoader>) -> Result<Arc<IndexState>, String> {
        let resolver = RegionResolver::new(&config.regions).map_err(|e| e.to_string())?;
        let zone = dns_zone(&config)?;
        let auth = Auth::new(&config.auth)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.poll.timeout_ms))
            .redirect(crate::srs::redirect_policy())
            .pool_max_idle_per_host(4)
            // A poll reuses one connection for its requests; between polls it is closed. An idle
            // keep-alive connection pins hyper's read buffer (up to ~400 KB): 140 MB for 1,000 nodes.
            .pool_idle_timeout(Duration::from_millis(500))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut table = NodeTable::new();
        for (order, spec) in config.nodes.iter().enumerate() {
            table.insert(spec.name.clone(), NodeEntry::new(spec.clone(), order, None));
        }
        let next_order = AtomicUsize::new(config.nodes.len());
        let poll_permits = tokio::sync::Semaphore::new(config.poll.max_concurrent);
        let replicas = crate::index_replicas::Replicas::new(&config)?;
        Ok(Arc::new(IndexState {
            replicas,
            revoked: crate::auth::revoked::Revoked::default(),
            config: ArcSwap::from_pointee(config),
            resolver: ArcSwap::from_pointee(resolver),
            dns_zone: arc_swap::ArcSwapOption::new(zone),
            directory: ArcSwap::from_pointee(Directory::default()),
            auth: ArcSwap::from_pointee(auth),
            store,
            metrics: Metrics::default(),
            events: crate::events::Bus::new(EVENT_BUFFER),
            primaries: crate::origin_replicas::Primaries::default(),
            placements: crate::placements::Placements::default(),
            stats_history: crate::stats_history::StatsHistory::default(),
            http,
            poll_permits,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            background: std::sync::OnceLock::new(),
            started: Instant::now(),
            nodes: Mutex::new(table),
            dirty: Notify::new(),
            urgent: Notify::new(),
            next_order,
            loader,
        }))
    }

    pub(crate) fn table(&self) -> MutexGuard<'_, NodeTable> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pollers for every node in the table (at start-up).
    pub fn all_nodes(&self) -> Vec<PollerHandle> {
        self.table().iter().map(|(n, e)| e.poller_handle(n)).collect()
    }

    /// The node table changed: rebuild the directory soon (rebuilds are paced).
    pub fn mark_dirty(&self) {
        self.dirty.notify_one();
    }

    /// The node table changed in a way scheduling must see at once.
    pub fn mark_urgent(&self) {
        self.dirty.notify_one();
        self.urgent.notify_one();
    }

    /// Waits until the node table changed (the merge task's trigger).
    pub async fn changed(&self) {
        self.dirty.notified().await
    }

    /// Waits until a change scheduling must see at once (cuts the merge task's pacing short).
    pub async fn changed_urgently(&self) {
        self.urgent.notified().await
    }

    /// What a poller needs: the node's spec and its last report.
    pub fn node_for_poll(&self, name: &str) -> Option<(Arc<NodeSpec>, Option<Arc<NodeReport>>)> {
        self.table().get(name).map(|e| (e.spec.clone(), e.report.clone()))
    }

    /// Records a poll outcome in the node table; None if the node was removed meanwhile. The
    /// caller records the health change and marks the table changed (`PollApplied::urgent`).
    pub fn apply_poll(&self, name: &str, result: Result<NodeReport, String>, took: Duration) -> Option<PollApplied> {
        let cfg = self.config.load();
        let now = now_ms();
        let (change, fails) = {
            let mut table = self.table();
            let entry = table.get_mut(name)?;
            let change = nodes::apply_poll(
                entry,
                result,
                took,
                Duration::from_millis(cfg.poll.slow_ms),
                cfg.poll.down_after,
                now,
            );
            (change, entry.fails)
        };
        self.metrics.observe_poll(took, fails == 0);
        Some(PollApplied { fails, change, at_ms: now })
    }

    /// A heartbeat from a self-registering node: adds it or refreshes it. A configured node of the
    /// same name keeps its configured addresses; a registered one moves to another address only
    /// when `may_move` (the heartbeat carried the credential). An added node needs a poller
    /// (`poller::start`).
    pub fn register(&self, spec: NodeSpec, may_move: bool) -> RegisterOutcome {
        let max = self.config.load().register.max_nodes;
        let outcome = register_in(&mut self.table(), spec, &self.next_order, Instant::now(), max, may_move);
        if matches!(outcome, RegisterOutcome::Added(_) | RegisterOutcome::Updated) {
            self.mark_dirty();
        }
        outcome
    }

    /// Removes self-registered nodes whose heartbeats stopped; returns their pollers to stop.
    pub fn forget_silent(&self) -> Vec<PollerHandle> {
        let ttl = Duration::from_millis(self.config.load().poll.forget_registered_ms);
        let gone = forget_silent_in(&mut self.table(), ttl, Instant::now());
        for handle in &gone {
            tracing::info!(node = %handle.name, "registered node sent no heartbeat for {ttl:?}: forgotten");
        }
        if !gone.is_empty() {
            self.mark_urgent();
        }
        gone
    }

    /// Re-reads the configuration and applies it without dropping state: node health, history and
    /// directory stay. Returns the node table's diff: added nodes need pollers, removed ones' stop.
    pub fn reload(&self) -> Result<Reloaded, String> {
        let Some(loader) = &self.loader else { return Err("this index was started without a config source".into()) };
        let new = loader()?;
        new.validate()?;
        let resolver = RegionResolver::new(&new.regions).map_err(|e| e.to_string())?;
        let auth = Auth::new(&new.auth)?;
        let zone = dns_zone(&new)?;
        let old = self.config.load_full();
        if new.listen != old.listen || new.db != old.db || new.redis != old.redis || new.shared != old.shared {
            tracing::warn!("listen, db, redis and shared take effect at the next restart, not on reload");
        }
        if new.dns.listen != old.dns.listen
            || new.dns.rate_limit_qps != old.dns.rate_limit_qps
            || new.dns.max_tcp_connections != old.dns.max_tcp_connections
        {
            tracing::warn!(
                "dns.listen, dns.rate_limit_qps and dns.max_tcp_connections take effect at the next restart, not on reload"
            );
        }
        let diff = reload_nodes(&mut self.table(), &new.nodes);
        self.resolver.store(Arc::new(resolver));
        self.auth.store(Arc::new(auth));
        self.dns_zone.store(zone);
        self.config.store(Arc::new(new));
        self.mark_urgent();
        Ok(diff)
    }
}

/// The DNS zone of `config`, if it names one.
fn dns_zone(config: &IndexConfig) -> Result<Option<Arc<crate::dns::Zone>>, String> {
    config.dns.zone.as_ref().map(|_| crate::dns::Zone::new(&config.dns).map(Arc::new)).transpose()
}

/// What one applied poll did.
#[derive(Debug)]
pub struct PollApplied {
    /// The node's consecutive failures.
    pub fails: u32,
    pub change: Option<HealthChange>,
    /// Wall-clock ms the poll was applied at.
    pub at_ms: u64,
}

impl PollApplied {
    /// Whether the node left scheduling: the directory must see it at once. Joining or up <->
    /// degraded waits for the next paced rebuild.
    pub fn urgent(&self) -> bool {
        self.change.as_ref().is_some_and(|c| c.from.schedulable() && !c.to.schedulable())
    }
}

/// What a reload did to the node table.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// New nodes: each needs a poller.
    pub added: Vec<PollerHandle>,
    /// Removed nodes: their pollers stop.
    pub removed: Vec<PollerHandle>,
    /// Nodes whose addresses or settings changed (polled anew by their pollers).
    pub changed: usize,
}

impl Reloaded {
    pub fn message(&self) -> String {
        format!(
            "configuration reloaded: {} node(s) added, {} removed, {} changed",
            self.added.len(),
            self.removed.len(),
            self.changed
        )
    }
}

/// Applies the configured node list to the table: configured nodes that left are removed, new ones
/// added, changed ones updated; a registered node that is now configured becomes configured.
pub fn reload_nodes(table: &mut NodeTable, nodes: &[NodeSpec]) -> Reloaded {
    let mut out = Reloaded::default();
    let configured: Vec<String> =
        table.iter().filter(|(_, e)| e.registered.is_none()).map(|(n, _)| n.clone()).collect();
    for name in configured {
        if !nodes.iter().any(|n| n.name == name)
            && let Some(e) = table.remove(&name)
        {
            out.removed.push(e.poller_handle(&name));
        }
    }
    for (order, spec) in nodes.iter().enumerate() {
        match table.get_mut(&spec.name) {
            Some(e) => {
                e.order = order;
                e.registered = None;
                if *e.spec != *spec {
                    e.spec = Arc::new(spec.clone());
                    out.changed += 1;
                }
            }
            None => {
                let entry = NodeEntry::new(spec.clone(), order, None);
                out.added.push(entry.poller_handle(&spec.name));
                table.insert(spec.name.clone(), entry);
            }
        }
    }
    out
}

/// A heartbeat applied to the table (see `IndexState::register`): at most `max_registered`
/// self-registered nodes; a name moves to another host only when `may_move`.
pub fn register_in(
    table: &mut NodeTable,
    spec: NodeSpec,
    next_order: &AtomicUsize,
    now: Instant,
    max_registered: usize,
    may_move: bool,
) -> RegisterOutcome {
    if let Some(entry) = table.get_mut(&spec.name) {
        if entry.registered.is_none() {
            return RegisterOutcome::Configured;
        }
        if !may_move && entry.spec.api_host() != spec.api_host() {
            return RegisterOutcome::Moved;
        }
        entry.registered = Some(now);
        if *entry.spec != spec {
            tracing::info!(node = %spec.name, api = %spec.api, "registered node changed its addresses");
            entry.spec = Arc::new(spec);
            return RegisterOutcome::Updated;
        }
        return RegisterOutcome::Refreshed;
    }
    if table.values().filter(|e| e.registered.is_some()).count() >= max_registered {
        return RegisterOutcome::Full;
    }
    let order = next_order.fetch_add(1, Ordering::Relaxed);
    tracing::info!(node = %spec.name, role = %spec.role, api = %spec.api, "node registered");
    let entry = NodeEntry::new(spec, order, Some(now));
    let handle = entry.poller_handle(&entry.spec.name);
    table.insert(handle.name.clone(), entry);
    RegisterOutcome::Added(handle)
}

/// Removes the self-registered nodes last heard of more than `ttl` before `now`.
fn forget_silent_in(table: &mut NodeTable, ttl: Duration, now: Instant) -> Vec<PollerHandle> {
    let gone: Vec<String> = table
        .iter()
        .filter(|(_, e)| e.registered.is_some_and(|t| now.saturating_duration_since(t) > ttl))
        .map(|(n, _)| n.clone())
        .collect();
    gone.into_iter().filter_map(|name| table.remove(&name).map(|e| e.poller_handle(&name))).collect()
}

/// What a heartbeat did.
#[derive(Debug)]
pub enum RegisterOutcome {
    /// A new node: it needs a poller.
    Added(PollerHandle),
    Updated,
    Refreshed,
    /// The name belongs to a configured node; its configured addresses win.
    Configured,
    /// Refused: the name is registered at another address, and the heartbeat did not carry the
    /// credential that may move it.
    Moved,
    /// Refused: `register.max_nodes` self-registered nodes already.
    Full,
}

#[cfg(test)]
mod tests;

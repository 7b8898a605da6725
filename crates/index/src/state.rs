//! The index server's shared state: config, node table, the current directory and the handles
//! (store, HTTP client) every part uses. Pollers and the register handler write the node table;
//! the merge task turns it into a new directory; request handlers only read the directory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::config::{IndexConfig, NodeSpec};
use crate::directory::Directory;
use crate::history::Sessions;
use crate::metrics::Metrics;
use crate::nodes::{self, HealthChange, NodeEntry, NodeSnapshot, NodeTable};
use crate::region::RegionResolver;
use crate::store::Store;

/// Events kept for listeners that reconnect (SSE `Last-Event-ID`, WebSocket `?since=`).
const EVENT_BUFFER: usize = 4096;

/// Re-reads the configuration (file + flags) for a reload.
pub type ConfigLoader = Box<dyn Fn() -> Result<IndexConfig, String> + Send + Sync>;

pub struct IndexState {
    pub config: ArcSwap<IndexConfig>,
    pub resolver: ArcSwap<RegionResolver>,
    pub directory: ArcSwap<Directory>,
    /// Access control (keys, rules, hook callers), rebuilt on reload.
    pub auth: ArcSwap<Auth>,
    pub store: Store,
    pub metrics: Metrics,
    /// Stream and node events for WebSocket and SSE listeners.
    pub events: crate::events::Bus,
    /// Each replicated stream's primary origin (from `on_forward` hooks).
    pub primaries: crate::replication::Primaries,
    /// Shared mode (several replicas through Redis); None for a single index.
    pub shared: Option<Arc<crate::shared::Shared>>,
    /// Token signatures an admin revoked, checked by the hook receiver.
    pub revoked: crate::auth::revoked::Revoked,
    /// Client for polls (no redirects beyond SRS's slash 302, short timeouts).
    pub http: reqwest::Client,
    /// Bounds the polls in flight (`poll.max_concurrent`).
    pub poll_permits: tokio::sync::Semaphore,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    pub started: Instant,
    nodes: Mutex<NodeTable>,
    dirty: Notify,
    /// A change that must reach the directory without the rebuild pacing (a node up or down).
    urgent: Notify,
    next_order: AtomicUsize,
    loader: Option<ConfigLoader>,
}

/// Wall-clock ms since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl IndexState {
    pub fn new(config: IndexConfig, store: Store, loader: Option<ConfigLoader>) -> Result<Arc<IndexState>, String> {
        let resolver = RegionResolver::new(&config.regions).map_err(|e| e.to_string())?;
        let auth = Auth::new(&config.auth)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.poll.timeout_ms))
            .redirect(reqwest::redirect::Policy::limited(3))
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
        let shared = crate::shared::Shared::new(&config)?;
        Ok(Arc::new(IndexState {
            shared,
            revoked: crate::auth::revoked::Revoked::default(),
            config: ArcSwap::from_pointee(config),
            resolver: ArcSwap::from_pointee(resolver),
            directory: ArcSwap::from_pointee(Directory::default()),
            auth: ArcSwap::from_pointee(auth),
            store,
            metrics: Metrics::default(),
            events: crate::events::Bus::new(EVENT_BUFFER),
            primaries: crate::replication::Primaries::default(),
            http,
            poll_permits,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
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

    /// Starts a poller for every node in the table, the merge task and the janitor.
    pub fn start_tasks(self: &Arc<Self>, sessions: Sessions) {
        let names: Vec<(String, CancellationToken)> =
            self.table().iter().map(|(n, e)| (n.clone(), e.stop.clone())).collect();
        for (name, stop) in names {
            self.tasks.spawn(crate::poller::run(self.clone(), name, stop));
        }
        self.tasks.spawn(merge_loop(self.clone(), sessions));
        self.tasks.spawn(crate::events::producer::flush_loop(self.clone()));
        self.tasks.spawn(janitor(self.clone()));
        if let Some(shared) = &self.shared {
            shared.start(self);
        }
        self.mark_dirty();
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

    /// What a poller needs: the node's spec and its last snapshot.
    pub fn node_for_poll(&self, name: &str) -> Option<(Arc<NodeSpec>, Option<Arc<NodeSnapshot>>)> {
        self.table().get(name).map(|e| (e.spec.clone(), e.snapshot.clone()))
    }

    /// Records a poll outcome; returns the node's consecutive failures, or None if it was removed.
    pub fn apply_poll(&self, name: &str, result: Result<NodeSnapshot, String>, took: Duration) -> Option<u32> {
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
        match change {
            // Out of scheduling: the directory must see it at once. Joining or up <-> degraded
            // waits for the next paced rebuild.
            Some(change) if change.from.schedulable() && !change.to.schedulable() => {
                self.record_change(change, now);
                self.mark_urgent();
            }
            Some(change) => {
                self.record_change(change, now);
                self.mark_dirty();
            }
            None => self.mark_dirty(),
        }
        Some(fails)
    }

    fn record_change(&self, c: HealthChange, at_ms: u64) {
        if c.to == crate::nodes::Health::Down {
            tracing::warn!(node = %c.node, from = c.from.as_str(), "node down: {}", c.reason);
        } else {
            tracing::info!(node = %c.node, from = c.from.as_str(), to = c.to.as_str(), "node {}", c.to.as_str());
        }
        self.store.node_changed(&c.node, c.from.as_str(), c.to.as_str(), at_ms as i64, &c.reason);
        crate::events::producer::health_changed(self, &c);
    }

    /// A heartbeat from a self-registering node: adds it (and its poller) or refreshes it.
    /// A configured node of the same name keeps its configured addresses.
    pub fn register(self: &Arc<Self>, spec: NodeSpec) -> RegisterOutcome {
        let mut table = self.table();
        if let Some(entry) = table.get_mut(&spec.name) {
            match entry.registered {
                None => return RegisterOutcome::Configured,
                Some(_) => {
                    entry.registered = Some(Instant::now());
                    if *entry.spec != spec {
                        tracing::info!(node = %spec.name, api = %spec.api, "registered node changed its addresses");
                        entry.spec = Arc::new(spec);
                        drop(table);
                        self.mark_dirty();
                        return RegisterOutcome::Updated;
                    }
                    return RegisterOutcome::Refreshed;
                }
            }
        }
        let order = self.next_order.fetch_add(1, Ordering::Relaxed);
        tracing::info!(node = %spec.name, role = %spec.role, api = %spec.api, "node registered");
        let entry = NodeEntry::new(spec, order, Some(Instant::now()));
        let (name, stop) = (entry.spec.name.clone(), entry.stop.clone());
        table.insert(name.clone(), entry);
        drop(table);
        self.tasks.spawn(crate::poller::run(self.clone(), name, stop));
        self.mark_dirty();
        RegisterOutcome::Added
    }

    /// Forgets self-registered nodes whose heartbeats stopped.
    fn forget_silent(&self) {
        let ttl = Duration::from_millis(self.config.load().poll.forget_registered_ms);
        let mut table = self.table();
        let gone: Vec<String> = table
            .iter()
            .filter(|(_, e)| e.registered.is_some_and(|t| t.elapsed() > ttl))
            .map(|(n, _)| n.clone())
            .collect();
        for name in &gone {
            if let Some(e) = table.remove(name) {
                e.stop.cancel();
                tracing::info!(node = %name, "registered node sent no heartbeat for {ttl:?}: forgotten");
            }
        }
        drop(table);
        if !gone.is_empty() {
            self.mark_urgent();
        }
    }

    /// Re-reads the configuration and applies it without dropping state: node health, history and
    /// directory stay; added nodes get pollers, removed ones stop, changed ones are polled anew.
    pub fn reload(self: &Arc<Self>) -> Result<String, String> {
        let Some(loader) = &self.loader else { return Err("this index was started without a config source".into()) };
        let new = loader()?;
        new.validate()?;
        let resolver = RegionResolver::new(&new.regions).map_err(|e| e.to_string())?;
        let auth = Auth::new(&new.auth)?;
        let old = self.config.load_full();
        if new.listen != old.listen || new.db != old.db || new.redis != old.redis || new.shared != old.shared {
            tracing::warn!("listen, db, redis and shared take effect at the next restart, not on reload");
        }
        let mut spawn = Vec::new();
        let (mut added, mut removed, mut changed) = (0, 0, 0);
        {
            let mut table = self.table();
            let configured: Vec<String> =
                table.iter().filter(|(_, e)| e.registered.is_none()).map(|(n, _)| n.clone()).collect();
            for name in configured {
                if !new.nodes.iter().any(|n| n.name == name)
                    && let Some(e) = table.remove(&name)
                {
                    e.stop.cancel();
                    removed += 1;
                }
            }
            for (order, spec) in new.nodes.iter().enumerate() {
                match table.get_mut(&spec.name) {
                    Some(e) => {
                        e.order = order;
                        e.registered = None;
                        if *e.spec != *spec {
                            e.spec = Arc::new(spec.clone());
                            changed += 1;
                        }
                    }
                    None => {
                        let entry = NodeEntry::new(spec.clone(), order, None);
                        spawn.push((spec.name.clone(), entry.stop.clone()));
                        table.insert(spec.name.clone(), entry);
                        added += 1;
                    }
                }
            }
        }
        self.resolver.store(Arc::new(resolver));
        self.auth.store(Arc::new(auth));
        self.config.store(Arc::new(new));
        for (name, stop) in spawn {
            self.tasks.spawn(crate::poller::run(self.clone(), name, stop));
        }
        self.mark_urgent();
        let msg = format!("configuration reloaded: {added} node(s) added, {removed} removed, {changed} changed");
        tracing::info!("{msg}");
        Ok(msg)
    }

    /// Rebuilds the directory from the node table (the merge task's one step).
    fn rebuild(&self, sessions: &mut Sessions) {
        let cfg = self.config.load();
        let now = now_ms();
        let mut dir = {
            let table = self.table();
            Directory::build(&table, &cfg, now)
        };
        self.primaries.order(&mut dir, now);
        let prev = self.directory.load_full();
        dir.carry_assignments(&prev);
        sessions.observe(&mut dir, &self.store, now);
        self.directory.store(Arc::new(dir));
        match self.shared.as_deref().map(|sh| sh.role()) {
            // A follower's directory is the leader's: its changes are the leader's events.
            Some(crate::shared::Role::Follower) => {
                let poll = &cfg.poll;
                self.events.forget_ended(poll.interval() + poll.timeout() + Duration::from_secs(1));
            }
            role => {
                if let Some(sh) = &self.shared
                    && sh.take_started_polling()
                {
                    let poll = &cfg.poll;
                    self.events.adopt(&prev, poll.interval() + poll.timeout() + Duration::from_secs(1));
                }
                crate::events::producer::publish_changes(self, &prev, &self.directory.load());
                if role == Some(crate::shared::Role::Leader)
                    && let Some(sh) = &self.shared
                {
                    sh.publish.notify_one();
                }
            }
        }
    }
}

/// What a heartbeat did.
#[derive(Debug, PartialEq, Eq)]
pub enum RegisterOutcome {
    Added,
    Updated,
    Refreshed,
    /// The name belongs to a configured node; its configured addresses win.
    Configured,
}

/// Rebuilds the directory whenever the node table changed. Rebuilds are paced to 20 times their
/// own duration (20 ms to 1 s), so they cost at most ~5% of a core however many nodes report:
/// polls that land together make one rebuild. A node leaving scheduling (down, forgotten) cuts
/// the wait to twice the rebuild time.
async fn merge_loop(state: Arc<IndexState>, mut sessions: Sessions) {
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = state.dirty.notified() => {}
        }
        let started = Instant::now();
        state.rebuild(&mut sessions);
        let took = started.elapsed();
        state.metrics.observe_merge(took);
        let pace = (took * 20).clamp(Duration::from_millis(20), Duration::from_secs(1));
        let urgent_pace = took * 2;
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = state.urgent.notified() => tokio::time::sleep(urgent_pace).await,
            _ = tokio::time::sleep(pace) => {}
        }
    }
}

async fn janitor(state: Arc<IndexState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {
                state.forget_silent();
                state.revoked.prune(crate::auth::now_secs());
            }
        }
    }
}

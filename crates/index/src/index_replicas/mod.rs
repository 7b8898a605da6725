//! Index replicas ("shared mode"; origin replicas are another thing: `crate::origin_replicas`):
//! several index servers behind a load balancer, sharing their state through Redis
//! (`--redis redis://host:6379/0`). Without it the index is a single replica and this module does
//! nothing.
//!
//! - **Leader** ([`lease`]): one replica holds a lease key in Redis and runs the pollers. Each
//!   acquisition increments a fencing token; every write the leader makes to shared state carries
//!   its token and Redis refuses it (in a Lua script) once a newer token exists, so a leader that
//!   was paused past its lease cannot overwrite its successor. A follower that finds no lease takes
//!   it: polling resumes within 2 x `shared.lease_ms` after the leader dies.
//! - **Node records** ([`node_records`]): after each merge the leader writes every node whose state
//!   changed (health, errors, and its streams; a node's stream list is sent only when it changed)
//!   and announces the names; followers fetch those and rebuild their directory from them, so
//!   every replica schedules from the same view.
//! - **Events** ([`relay`]): every replica publishes the events it originates (hooks reach any
//!   replica; poll-driven events come from the leader) on a pub/sub channel and feeds those of the
//!   others into its own bus, so a WebSocket or SSE client of any replica sees them all. Ids are
//!   per replica: a client resumes (`Last-Event-ID`, `?since=`) on the replica it was connected to;
//!   on another it gets a `resync` and a snapshot, as after an index restart.
//! - **Assignments** ([`assign`]): viewers each replica sent to a node since its last poll, shared
//!   every 50 ms, so a burst spread over replicas still spreads over edges.
//! - **Heartbeats** (`heartbeats`): a node's registration reaches one replica through the load
//!   balancer; it is passed on so every replica (and whichever becomes leader) knows the node.
//! - **Token revocations** (`revocations`, [`crate::auth::revoked`]): kept in each replica's
//!   database and in a Redis hash, announced on a channel.
//! - **Origins** ([`origins`]): the primary origins learnt from `on_forward` and the origins
//!   publishers were sent to, so every replica answers a publisher the same way.
//! - **History and admin keys** are not in Redis: with `--db postgres://...` every replica uses the
//!   same database; the leader records the history (`IndexState::records_history`), and keys
//!   created or revoked on any replica hold on all within a second ([`crate::store`]).
//!
//! Redis down: nothing on the request path waits on Redis, so replicas keep answering from the
//! directory they have. A replica that cannot reach Redis for a lease polls the nodes itself
//! ("standalone": polls only read, and its writes to Redis would be refused anyway), so its view
//! does not go stale; when Redis returns one replica takes the lease and the others follow again.
//! `/readyz` and `/metrics` tell (`redis`, `role`; `ferrocast_index_redis_up`,
//! `ferrocast_index_leader`).

pub mod assign;
mod heartbeats;
pub mod lease;
mod link;
pub mod node_records;
pub mod origins;
pub mod relay;
mod revocations;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{Notify, mpsc, watch};

use crate::config::{IndexConfig, NodeSpec, redact_url};
use crate::events::Relayed;
use crate::state::IndexState;

/// What this replica does right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Another replica holds the lease (or none was seen yet): this one reads the leader's records.
    Follower = 0,
    /// Holds the lease: polls and writes the records.
    Leader = 1,
    /// Cannot reach Redis for longer than a lease: polls on its own, shares nothing.
    Standalone = 2,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Leader => "leader",
            Role::Standalone => "standalone",
        }
    }

    fn from_u8(v: u8) -> Role {
        match v {
            1 => Role::Leader,
            2 => Role::Standalone,
            _ => Role::Follower,
        }
    }
}

/// The Redis keys and channels of one cluster (all under `shared.key_prefix`).
#[derive(Clone, Debug)]
pub struct Keys {
    /// The lease: `<replica id>:<token>`, with a TTL.
    pub leader: String,
    /// The newest fencing token (INCR on each acquisition).
    pub fence: String,
    /// Hash: node name → its record (health, errors, which stream list).
    pub nodes: String,
    /// Hash: node name → its stream list.
    pub bodies: String,
    /// Hash: revoked token signature → expiry (unix s).
    pub revoked: String,
    /// Hash: stream key → its primary origin and since when (`node<TAB>ms`).
    pub primaries: String,
    /// Channel: names of node records the leader just wrote.
    pub ch_nodes: String,
    pub ch_events: String,
    pub ch_assign: String,
    pub ch_register: String,
    pub ch_revoke: String,
    pub ch_origins: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        let k = |s: &str| format!("{prefix}:{s}");
        Keys {
            leader: k("leader"),
            fence: k("fence"),
            nodes: k("nodes"),
            bodies: k("bodies"),
            revoked: k("revoked"),
            primaries: k("primaries"),
            ch_nodes: k("ch:nodes"),
            ch_events: k("ch:events"),
            ch_assign: k("ch:assign"),
            ch_register: k("ch:register"),
            ch_revoke: k("ch:revoke"),
            ch_origins: k("ch:origins"),
        }
    }
}

/// Events waiting to go to the other replicas; beyond this they stay local.
const RELAY_QUEUE: usize = 4096;

/// Counters of the shared-mode work, for `/metrics` and the benchmark.
#[derive(Default)]
pub struct Stats {
    pub publishes: AtomicU64,
    pub publish_bytes: AtomicU64,
    pub publish_us: AtomicU64,
    pub fenced: AtomicU64,
    pub applied: AtomicU64,
    pub apply_bytes: AtomicU64,
    pub events_out: AtomicU64,
    pub events_in: AtomicU64,
}

/// This replica's link to the others; `IndexState::shared` holds it in shared mode.
pub struct Replicas {
    /// Random per process: tells this replica's messages from the others'.
    pub id: String,
    pub keys: Keys,
    pub lease: Duration,
    /// For logs: the URL without its password.
    pub url: String,
    pub(crate) client: redis::Client,
    pub(crate) conn: ConnectionManager,
    up: AtomicBool,
    role: AtomicU8,
    /// The fencing token of the current (or last) term as leader.
    token: AtomicU64,
    /// The newest token seen in any leader's message: a term this replica starts gets a larger one.
    pub(crate) seen_token: AtomicU64,
    /// Whether pollers may poll: leader or standalone.
    polling: watch::Sender<bool>,
    /// The role the last merge ran as (see `after_merge`): only the merge reads and writes it.
    merged_as: AtomicU8,
    /// The leader's node table changed: write the records.
    pub(crate) publish: Notify,
    /// A follower should fetch everything (after a reconnect, or on becoming follower).
    pub(crate) resync: Notify,
    pub(crate) pending: Mutex<node_records::reader::Pending>,
    pub(crate) fetch: Notify,
    relay_rx: Mutex<Option<mpsc::Receiver<Relayed>>>,
    relay_tx: mpsc::Sender<Relayed>,
    origins_rx: Mutex<Option<mpsc::Receiver<origins::Note>>>,
    origins_tx: mpsc::Sender<origins::Note>,
    /// Heartbeats passed on, by node: the spec and when (passed on again when it changed or after
    /// a quarter of `poll.forget_registered_ms`).
    heartbeats: Mutex<HashMap<String, (NodeSpec, Instant)>>,
    heartbeat_tx: mpsc::UnboundedSender<NodeSpec>,
    heartbeat_rx: Mutex<Option<mpsc::UnboundedReceiver<NodeSpec>>>,
    pub assign: assign::Tracker,
    pub stats: Stats,
}

impl Replicas {
    /// The shared-mode handle for `config`, or None without `redis`. Connects lazily: a Redis that
    /// is down at start-up is retried in the background.
    pub fn new(config: &IndexConfig) -> Result<Option<Arc<Replicas>>, String> {
        let Some(url) = &config.redis else { return Ok(None) };
        let client = redis::Client::open(url.as_str()).map_err(|e| format!("redis {}: {e}", redact_url(url)))?;
        let lease = config.shared.lease();
        let conn = connection(&client, lease).map_err(|e| format!("redis {}: {e}", redact_url(url)))?;
        let (relay_tx, relay_rx) = mpsc::channel(RELAY_QUEUE);
        let (origins_tx, origins_rx) = mpsc::channel(origins::QUEUE);
        let (heartbeat_tx, heartbeat_rx) = mpsc::unbounded_channel();
        let id = format!("{:016x}", rand::random::<u64>());
        Ok(Some(Arc::new(Replicas {
            id,
            keys: Keys::new(&config.shared.key_prefix),
            lease,
            url: redact_url(url),
            client,
            conn,
            up: AtomicBool::new(false),
            role: AtomicU8::new(Role::Follower as u8),
            token: AtomicU64::new(0),
            seen_token: AtomicU64::new(0),
            polling: watch::Sender::new(false),
            merged_as: AtomicU8::new(Role::Follower as u8),
            publish: Notify::new(),
            resync: Notify::new(),
            pending: Mutex::new(node_records::reader::Pending::default()),
            fetch: Notify::new(),
            relay_rx: Mutex::new(Some(relay_rx)),
            relay_tx,
            origins_rx: Mutex::new(Some(origins_rx)),
            origins_tx,
            heartbeats: Mutex::new(HashMap::new()),
            heartbeat_tx,
            heartbeat_rx: Mutex::new(Some(heartbeat_rx)),
            assign: assign::Tracker::default(),
            stats: Stats::default(),
        })))
    }

    /// Starts the lease loop, the subscriber, the record writer/reader, the event relay and the
    /// assignment exchange.
    pub fn start(self: &Arc<Self>, state: &Arc<IndexState>) {
        state.events.relay_to(self.relay_tx.clone());
        tracing::info!(redis = %self.url, replica = %self.id, lease_ms = self.lease.as_millis() as u64, "shared mode");
        let tasks = &state.tasks;
        // The lease loop runs on a thread of its own, with its own connection: a runtime busy with
        // requests (or a slow task) must not keep it from renewing the lease in time.
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let (st, sh) = (state.clone(), self.clone());
        let thread = std::thread::Builder::new().name("index-lease".into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(lease::run(st, sh)),
                Err(e) => tracing::error!("cannot start the lease loop's runtime: {e}; this replica never leads"),
            }
            let _ = done.send(());
        });
        match thread {
            Ok(_) => drop(tasks.spawn(async move { drop(finished.await) })),
            Err(e) => {
                tracing::warn!("cannot start the lease thread ({e}): the lease loop shares the runtime");
                tasks.spawn(lease::run(state.clone(), self.clone()));
            }
        }
        let (st, sh) = (state.clone(), self.clone());
        crate::supervise(state, "redis_subscriber", move || link::run(st.clone(), sh.clone()));
        let (st, sh) = (state.clone(), self.clone());
        crate::supervise(state, "node_records_writer", move || node_records::writer::publisher(st.clone(), sh.clone()));
        let (st, sh) = (state.clone(), self.clone());
        crate::supervise(state, "node_records_reader", move || node_records::reader::fetcher(st.clone(), sh.clone()));
        if let Some(rx) = lock(&self.relay_rx).take() {
            tasks.spawn(relay::sender(state.clone(), self.clone(), rx));
        }
        if let Some(rx) = lock(&self.origins_rx).take() {
            state.primaries.outbox.connect(self.origins_tx.clone());
            state.placements.outbox.connect(self.origins_tx.clone());
            tasks.spawn(origins::sender(state.clone(), self.clone(), rx));
        }
        if let Some(rx) = lock(&self.heartbeat_rx).take() {
            tasks.spawn(heartbeats::sender(state.clone(), self.clone(), rx));
        }
        let (st, sh) = (state.clone(), self.clone());
        crate::supervise(state, "assignments", move || assign::flusher(st.clone(), sh.clone()));
    }

    /// After each merge (`prev`: the directory just replaced): a follower's directory is the
    /// leader's, so its changes are the leader's events and it only forgets ended streams; a
    /// replica that polls announces what changed (after adopting what the cluster already
    /// announced, when it just stopped following), and a leader writes its node records.
    ///
    /// "Just stopped following" is this merge running as leader or standalone after one that ran
    /// as follower, so `prev` is the leader's view: the merge keeps that role itself. A flag set by
    /// `set_role` would race the merge: the pollers start when `polling` changes, and their first
    /// poll can be merged before the flag is set, announcing every known stream again.
    pub fn after_merge(&self, state: &IndexState, prev: &crate::directory::Directory) {
        let poll = &state.config.load().poll;
        let grace = poll.interval() + poll.timeout() + Duration::from_secs(1);
        let role = self.role();
        let was = Role::from_u8(self.merged_as.swap(role as u8, Ordering::AcqRel));
        if role == Role::Follower {
            state.events.forget_ended(grace);
            return;
        }
        if was == Role::Follower {
            state.events.adopt(prev, grace);
        }
        crate::events::producer::publish_changes(&state.events, poll, prev, &state.directory.load());
        if role == Role::Leader {
            self.publish.notify_one();
        }
    }

    pub fn role(&self) -> Role {
        Role::from_u8(self.role.load(Ordering::Acquire))
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// The fencing token of this replica's current term (0 before its first).
    pub fn token(&self) -> u64 {
        self.token.load(Ordering::Acquire)
    }

    /// The newest fencing token this replica knows of (its own or another leader's).
    pub fn seen(&self) -> u64 {
        self.seen_token.load(Ordering::Acquire).max(self.token())
    }

    /// Whether this replica's pollers may poll now.
    pub fn polling(&self) -> bool {
        *self.polling.borrow()
    }

    /// Waits until pollers may poll.
    pub async fn polling_allowed(&self) {
        let mut rx = self.polling.subscribe();
        let _ = rx.wait_for(|p| *p).await;
    }

    /// Redis answered or failed: logs the change, once.
    pub(crate) fn set_up(&self, up: bool, why: impl FnOnce() -> String) {
        if self.up.swap(up, Ordering::AcqRel) != up {
            if up {
                tracing::info!(redis = %self.url, "redis up");
                self.resync.notify_one();
            } else {
                tracing::warn!(redis = %self.url, "redis down: {}", why());
            }
        }
    }

    /// Moves to `role`; logs the change with the fencing token.
    pub(crate) fn set_role(&self, role: Role, token: u64, why: &str) {
        let old = Role::from_u8(self.role.swap(role as u8, Ordering::AcqRel));
        if role == Role::Leader {
            self.token.store(token, Ordering::Release);
            self.seen_token.fetch_max(token, Ordering::AcqRel);
        }
        self.polling.send_replace(matches!(role, Role::Leader | Role::Standalone));
        if old == role {
            return;
        }
        match (old, role) {
            (_, Role::Leader) => {
                tracing::info!(token, replica = %self.id, "leader acquired: polling the nodes ({why})")
            }
            (Role::Leader, _) => tracing::warn!(
                token = self.token(),
                replica = %self.id,
                now = role.as_str(),
                "leader lost: {why}"
            ),
            (_, Role::Standalone) => tracing::warn!(replica = %self.id, "standalone: {why}; polling the nodes myself"),
            (_, Role::Follower) => tracing::info!(replica = %self.id, "follower: {why}"),
        }
        if role == Role::Leader {
            self.publish.notify_one();
        }
        if role == Role::Follower {
            self.resync.notify_one();
        }
    }
}

/// A Redis connection that reconnects by itself, driven by the current runtime. Commands give up
/// within a third of the lease: the lease loop decides what a failure means.
pub(crate) fn connection(client: &redis::Client, lease: Duration) -> redis::RedisResult<ConnectionManager> {
    let timeout = (lease / 3).clamp(Duration::from_millis(50), Duration::from_secs(2));
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_lazy_with_config(client.clone(), config)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

//! The Ferrocast index server: the one place that knows the whole cluster.
//!
//! The way through the crate:
//! - **Nodes in**: [`poller`] (one task per node, the one place pollers start and stop) reads each
//!   node's SRS HTTP API v1 into a [`nodes::NodeReport`]; [`state`] holds the node table and
//!   applies poll outcomes, heartbeats (`http::register`) and reloads, returning what happened.
//! - **Merge**: [`merge`] turns the node table into an immutable [`directory::Directory`] keyed by
//!   vhost name + app + stream, and passes what changed on to [`history`] and [`events`].
//! - **Requests**: [`http`] answers from the directory with no network I/O on the request path:
//!   [`scheduler`] picks the edge for a viewer and the origin for a publisher, [`auth`] checks
//!   keys and play tokens, [`region`] places callers, `http::events` streams the [`events`] bus;
//!   [`dns`] answers the same scheduling questions by DNS for a delegated zone.
//! - **Around**: [`store`] (SQLite: history, keys, revocations), [`metrics`] (the one Prometheus
//!   renderer), [`origin_replicas`] (`on_forward`: each replicated stream's primary origin),
//!   [`index_replicas`] (several index servers sharing state through Redis), [`supervisor`]
//!   (background tasks restarted after a panic), [`background`] (the lower-priority thread polls
//!   and merges run on), [`short_slice`] (request threads run at once when woken), [`clock`].
//!
//! [`RunningIndex::start`] wires the tasks together; [`reload`] applies a new configuration.

pub mod auth;
pub mod background;
pub mod clock;
pub mod config;
pub mod directory;
pub mod dns;
pub mod events;
#[cfg(feature = "test-support")]
pub mod fuzzing;
pub mod history;
pub mod http;
pub mod index_replicas;
pub mod merge;
pub mod metrics;
pub mod nodes;
pub mod origin_replicas;
pub mod placements;
pub mod poller;
pub mod region;
pub mod scheduler;
pub mod short_slice;
pub mod srs;
pub mod state;
pub mod stats_history;
pub mod store;
pub mod supervisor;
pub mod targets;
#[cfg(feature = "test-support")]
pub mod testing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use config::{IndexConfig, NodeSpec, Role};
pub use state::{ConfigLoader, IndexState};

/// Failure to start the index server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(
        "cannot listen on {addr}: {cause} (is another server using that port? pass --listen with another address, or port 0 for any free port)"
    )]
    Bind { addr: SocketAddr, cause: std::io::Error },
}

/// Starts the index's background work: a poller for every node in the table, the merge task,
/// the viewer-count flush, the janitor and, in shared mode, the replica tasks.
fn start_tasks(state: &Arc<IndexState>, sessions: history::Sessions) {
    match background::start(state.shutdown.clone()) {
        Ok(rt) => drop(state.background.set(rt)),
        Err(e) => tracing::warn!(error = %e, "no background thread: polls and merges run beside requests"),
    }
    poller::start(state, state.all_nodes());
    // The sessions restored at start-up; a merge task restarted after a panic reads them again.
    let first = Arc::new(std::sync::Mutex::new(Some(sessions)));
    let st = state.clone();
    supervise_background(state, "merge", move || {
        let (st, first) = (st.clone(), first.clone());
        async move {
            let taken = first.lock().unwrap_or_else(|p| p.into_inner()).take();
            let sessions = match taken {
                Some(s) => s,
                None => history::Sessions::restore(&st.store).await,
            };
            merge::run(st, sessions).await
        }
    });
    let st = state.clone();
    supervise(state, "viewer_flush", move || {
        let st = st.clone();
        async move { events::producer::flush_loop(&st.events, &st.directory, &st.shutdown).await }
    });
    let st = state.clone();
    supervise(state, "janitor", move || janitor(st.clone()));
    if let Some(shared) = &state.replicas {
        shared.start(state);
    }
    state.mark_dirty();
}

/// Runs a background task of the index under supervision (see [`supervisor`]).
pub(crate) fn supervise<F, Fut>(state: &IndexState, task: &'static str, make: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    supervisor::spawn(&state.tasks, &state.shutdown, &state.metrics.task_restarts, task, None, make);
}

/// [`supervise`] on the background runtime ([`background`]) when it runs.
pub(crate) fn supervise_background<F, Fut>(state: &IndexState, task: &'static str, make: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let on = state.background.get().cloned();
    supervisor::spawn(&state.tasks, &state.shutdown, &state.metrics.task_restarts, task, on, make);
}

/// Adds the store's unexpired revoked tokens to the index's list.
async fn load_revoked(state: &IndexState) -> Result<(), store::StoreError> {
    for (sig, expires) in state.store.revoked_tokens(auth::now_secs()).await? {
        state.revoked.insert(&sig, expires);
    }
    Ok(())
}

/// Once a second: forgets self-registered nodes whose heartbeats stopped, and revocations that
/// expired; every 10 s, a sample for the dashboard's charts; once an hour, history older than
/// `history_days`.
async fn janitor(state: Arc<IndexState>) {
    const PRUNE_EVERY: Duration = Duration::from_secs(3600);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut pruned: Option<std::time::Instant> = None;
    // The charts' samples: every 10 s, and at once when the first full view of the cluster is in.
    let (mut sampled, mut warm_sampled): (Option<std::time::Instant>, bool) = (None, false);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {
                let dir = state.directory.load();
                if sampled.is_none_or(|t| t.elapsed() >= stats_history::EVERY) || (dir.warm && !warm_sampled) {
                    state.stats_history.record(&dir, clock::now_ms());
                    sampled = Some(std::time::Instant::now());
                    warm_sampled |= dir.warm;
                }
                poller::stop(state.forget_silent());
                state.revoked.prune(auth::now_secs());
                let days = u64::from(state.config.load().history_days);
                // With a database shared by replicas, the one recording history prunes it.
                if days > 0 && state.records_history() && pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                    let before = clock::now_ms().saturating_sub(days.saturating_mul(86_400_000));
                    state.store.prune(i64::try_from(before).unwrap_or(i64::MAX));
                    pruned = Some(std::time::Instant::now());
                }
            }
        }
    }
}

/// Re-reads the configuration (SIGHUP or `POST /api/v1/reload`) and applies it: added nodes get
/// pollers, removed ones stop, changed ones are polled anew. Returns what changed, for the log.
pub fn reload(state: &Arc<IndexState>) -> Result<String, String> {
    let diff = state.reload()?;
    let msg = diff.message();
    poller::stop(diff.removed);
    poller::start(state, diff.added);
    tracing::info!("{msg}");
    Ok(msg)
}

/// A started index server.
pub struct RunningIndex {
    pub addr: SocketAddr,
    /// Where the DNS server listens (UDP and TCP), when `dns.listen` is set.
    pub dns_addr: Option<SocketAddr>,
    pub state: Arc<IndexState>,
}

impl RunningIndex {
    /// Opens the history, binds the listener, and starts the pollers, the merge task and the API.
    /// `loader` re-reads the configuration on reload (SIGHUP or `POST /api/v1/reload`).
    pub async fn start(config: IndexConfig, loader: Option<ConfigLoader>) -> Result<RunningIndex, StartError> {
        config.validate().map_err(StartError::Config)?;
        let store = store::Store::open(&config.db)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|cause| StartError::Bind { addr: config.listen, cause })?;
        let addr = listener.local_addr().unwrap_or(config.listen);
        let dns = match config.dns.listen {
            Some(at) => Some(dns::bind(at).await.map_err(|cause| StartError::Bind { addr: at, cause })?),
            None => None,
        };
        let dns_addr = dns.as_ref().map(|d| d.addr);
        let sessions = history::Sessions::restore(&store).await;
        let nodes = config.nodes.len();
        let state = IndexState::new(config, store, loader).map_err(StartError::Config)?;
        // The revoked tokens; should the database not answer yet, read again every second until
        // it does (a revoked token must not play again because the index restarted meanwhile).
        if let Err(e) = load_revoked(&state).await {
            tracing::warn!("cannot read the revoked tokens yet ({e}); retrying every second");
            let st = state.clone();
            state.tasks.spawn(async move {
                while !st.shutdown.is_cancelled() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if load_revoked(&st).await.is_ok() {
                        return;
                    }
                }
            });
        }
        start_tasks(&state, sessions);
        let limits = state.config.load().http.clone();
        state.tasks.spawn(http::serve(listener, http::router(state.clone()), state.shutdown.clone(), limits));
        if let Some(listeners) = dns {
            let zone = state.config.load().dns.zone.clone().unwrap_or_default();
            tracing::info!(listen = %listeners.addr, zone, "DNS server answering for its zone over UDP and TCP");
            dns::start(&state, listeners);
        }
        tracing::info!(listen = %addr, nodes, "ferrocast index listening");
        Ok(RunningIndex { addr, dns_addr, state })
    }

    /// Stops polling and serving; waits for the history to be written.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        self.state.tasks.close();
        if tokio::time::timeout(Duration::from_secs(5), self.state.tasks.wait()).await.is_err() {
            tracing::warn!("some index tasks did not stop within 5 s");
        }
        if let Err(e) = self.state.store.flush().await {
            tracing::warn!("history not fully written at exit: {e}");
        }
        tracing::info!("index stopped");
    }
}

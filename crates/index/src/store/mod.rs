//! The index server's memory across restarts: stream sessions (what was published, on which
//! origin, from when to when, with how many viewers at peak), node state changes and the admin
//! API keys ([`keys`]) and revoked tokens — in one SQLite file ([`sqlite`], one index) or in a
//! PostgreSQL database ([`postgres`], shared by several index replicas). `--db` chooses: a path,
//! or a `postgres://` URL.
//!
//! Database calls block, and nothing on the index's request path may wait on I/O, so one
//! dedicated thread ("index-store", [`worker`]) owns the connections. Writes are queued to it and
//! forgotten: a write the database rejects is logged, never returned; a database that cannot be
//! reached keeps them queued and retried. Reads and [`Store::flush`] are answered over a oneshot.
//! The thread commits whatever writes are queued together in one transaction, so a burst of
//! peak-viewer updates costs one commit. The thread exits once the last [`Store`] clone is dropped
//! and the queue is drained.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use keys::KeyCache;
use worker::{Ask, Cmd, Write};

#[cfg(test)]
mod key_tests;
pub mod keys;
pub mod postgres;
mod sqlite;
#[cfg(test)]
mod test_db;
#[cfg(test)]
mod tests;
mod worker;

pub use keys::{KeyInfo, parse_key};
pub use worker::{CHECK_EVERY as REVOCATION_CHECK, Health};

/// Writes and requests waiting for the index-store thread, at most; beyond it writes are dropped
/// (counted) rather than held in memory without bound.
const QUEUE: usize = 65_536;

/// How long a statement waits for a lock held by another process on the same file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Handle to the history database; cheap to clone. All writes are fire-and-forget (queued to a
/// dedicated thread "index-store" owning the one rusqlite `Connection`); reads are async and
/// answered over a oneshot.
#[derive(Clone, Debug)]
pub struct Store {
    queue: mpsc::SyncSender<Cmd>,
    /// Whether the database is reachable, writes waiting and dropped.
    health: Arc<Health>,
    /// API keys verified lately, shared by every clone.
    keys: Arc<KeyCache>,
    /// "sqlite" or "postgres".
    kind: &'static str,
}

/// Why the history database could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the history database {path}: {source} \
         (check the directory exists and is writable, or pass --db)"
    )]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error(
        "cannot set up the history database {path}: {source} \
         (is it a Ferrocast history file? move it aside or pass another --db)"
    )]
    Schema { path: PathBuf, source: rusqlite::Error },
    #[error(
        "the history database {path} has schema version {found}, newer than this Ferrocast \
         understands ({known}); upgrade Ferrocast or pass another --db"
    )]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error("cannot start the index-store thread: {0} (the system is short of threads or memory)")]
    Spawn(std::io::Error),
    #[error("the index database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the index database (PostgreSQL) failed: {0}")]
    Postgres(String),
    #[error("cannot use the PostgreSQL database {url}: {reason}")]
    PostgresOpen { url: String, reason: String },
    #[error("the index database is unavailable: {0}")]
    Unavailable(String),
    #[error(
        "an API key name must be 1 to {max} characters without control characters, got {0:?}",
        max = keys::MAX_NAME_LEN
    )]
    BadKeyName(String),
    #[error("cannot hash an API key: {0}")]
    Hash(String),
    #[error(
        "the index-store thread has stopped, so history is unavailable \
         (see the earlier log lines for why; restart the index server)"
    )]
    Closed,
    #[error("the history database is far behind (its write queue is full): try again in a moment")]
    Busy,
}

/// A filter over [`Store::history`]; every field is optional (query-string friendly).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct HistoryQuery {
    /// An exact key ("__defaultVhost__/live/cam1") or a prefix of whole segments
    /// ("__defaultVhost__/live/" or "__defaultVhost__/live"): "live/cam1" never matches
    /// "live/cam10". Narrows sessions only; node events have no stream.
    pub stream: Option<String>,
    /// Sessions on this node and this node's events.
    pub node: Option<String>,
    /// Sessions published at or after this time, events at or after it.
    pub since_ms: Option<i64>,
    /// Most rows of each kind: default 100, at most 1000.
    pub limit: Option<u32>,
}

/// One publish of one stream, from `session_started` to `session_ended`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Session {
    pub id: i64,
    /// "vhost/app/stream".
    pub stream: String,
    /// The origin node ("" when unknown); the latest one after a failover.
    pub node: String,
    pub published_ms: i64,
    /// `None` while the session is open.
    pub unpublished_ms: Option<i64>,
    pub peak_viewers: u64,
}

/// A node's state change, e.g. "up" to "down", with a human reason.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NodeEvent {
    pub id: i64,
    pub node: String,
    pub from: String,
    pub to: String,
    pub at_ms: i64,
    pub reason: String,
}

/// The answer of [`Store::history`]: both lists newest first.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct History {
    pub sessions: Vec<Session>,
    pub node_events: Vec<NodeEvent>,
}

impl Store {
    /// Opens the database `--db` names: a `postgres://` (or `postgresql://`) URL, else a SQLite
    /// file at that path, created if needed. Its schema is brought up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(url) = path.to_str().filter(|p| postgres::is_url(p)) {
            let url = url.to_string();
            return Store::start_thread(move || postgres::Postgres::connect(&url), "postgres");
        }
        Store::open_sqlite(path)
    }

    /// Opens (creating if needed) the SQLite file at `path`, in WAL mode.
    fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open { path: path.to_owned(), source };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0)).map_err(open_err)?;
        Store::start(conn, path)
    }

    /// A history that lives as long as the store: for tests and for running without `--db`.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open { path: path.to_owned(), source })?;
        Store::start(conn, path)
    }

    fn start(mut conn: Connection, path: &Path) -> Result<Store, StoreError> {
        sqlite::migrate(&mut conn, path)?;
        // 5 write statements + 1 open-sessions query + up to 12 history shapes + 6 key
        // statements + the revocation mark, all kept prepared.
        conn.set_prepared_statement_cache_capacity(40);
        Store::start_thread(move || Ok(sqlite::Sqlite(conn)), "sqlite")
    }

    /// Starts the "index-store" thread, which opens the database with `open` (connections are
    /// made on the thread that uses them) and reports how that went before it serves.
    fn start_thread<B: worker::Backend>(
        open: impl FnOnce() -> Result<B, StoreError> + Send + 'static,
        kind: &'static str,
    ) -> Result<Store, StoreError> {
        let (queue, commands) = mpsc::sync_channel(QUEUE);
        let health = Arc::new(Health::default());
        let keys = Arc::new(KeyCache::new());
        let (h, k) = (health.clone(), keys.clone());
        let (opened_tx, opened) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("index-store".into())
            .spawn(move || match open() {
                Ok(db) => {
                    let _ = opened_tx.send(Ok(()));
                    worker::run(db, commands, h, k);
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            })
            .map_err(StoreError::Spawn)?;
        opened.recv().map_err(|_| StoreError::Closed)??;
        Ok(Store { queue, health, keys, kind })
    }

    /// "sqlite" or "postgres".
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Whether several index processes may share this database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.kind == "postgres"
    }

    /// Whether the database is reachable, and the writes waiting for it.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// A stream session began: key is "vhost/app/stream" (e.g. "__defaultVhost__/live/cam1"),
    /// node = origin node name (may be "" when unknown). An open session of the same key is
    /// closed first, at `at_ms`.
    pub fn session_started(&self, key: &str, node: &str, at_ms: i64) {
        self.write(Write::SessionStarted { key: key.into(), node: node.into(), at_ms });
    }

    /// Raise the peak viewers of the open session of `key` (no-op when none open or peak is lower).
    pub fn session_peak(&self, key: &str, viewers: u64) {
        self.write(Write::SessionPeak { key: key.into(), viewers });
    }

    /// Change the node of the open session (origin failover).
    pub fn session_node(&self, key: &str, node: &str) {
        self.write(Write::SessionNode { key: key.into(), node: node.into() });
    }

    /// The open session of `key` ended.
    pub fn session_ended(&self, key: &str, at_ms: i64) {
        self.write(Write::SessionEnded { key: key.into(), at_ms });
    }

    /// A node changed state, e.g. from "up" to "down", with a human reason
    /// ("2 polls failed: connection refused").
    pub fn node_changed(&self, node: &str, from: &str, to: &str, at_ms: i64, reason: &str) {
        self.write(Write::NodeChanged {
            node: node.into(),
            from: from.into(),
            to: to.into(),
            at_ms,
            reason: reason.into(),
        });
    }

    /// A token (by its signature) is revoked until it expires (unix s). False when the write could
    /// not be queued (then `flush` does not mean it is on disk).
    pub fn token_revoked(&self, signature: &str, expires: u64, at_ms: i64) -> bool {
        self.write(Write::TokenRevoked { signature: signature.into(), expires, at_ms })
    }

    /// Writes dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.health.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets ended sessions and node events from before `before_ms` (history retention).
    pub fn prune(&self, before_ms: i64) {
        self.write(Write::Prune { before_ms });
    }

    /// Revoked token signatures still unexpired at `now` (unix s), with their expiry.
    pub async fn revoked_tokens(&self, now: u64) -> Result<Vec<(String, u64)>, StoreError> {
        self.ask(|reply| Ask::RevokedTokens(now, reply)).await?
    }

    /// Sessions still open (unpublished_ms NULL), e.g. after a restart of the index; oldest first.
    pub async fn open_sessions(&self) -> Result<Vec<Session>, StoreError> {
        self.ask(Ask::OpenSessions).await?
    }

    /// Newest first.
    pub async fn history(&self, q: HistoryQuery) -> Result<History, StoreError> {
        self.ask(|reply| Ask::History(q, reply)).await?
    }

    /// Waits until every write queued before this call is in the database (used by tests and at
    /// shutdown); an error while the database cannot be reached.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.ask(Ask::Flush).await?
    }

    /// Queues a write; never waits. A full queue (the disk is far behind) drops it, counted.
    fn write(&self, write: Write) -> bool {
        match self.queue.try_send(Cmd::Write(write)) {
            Ok(()) => true,
            Err(mpsc::TrySendError::Full(_)) => {
                self.health.drop_one("the index-store queue is full");
                false
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                tracing::warn!("history write dropped: the index-store thread has stopped");
                false
            }
        }
    }

    /// Queues a request and waits for its answer; while the queue is full it waits for room
    /// (without blocking the runtime).
    async fn ask<T>(
        &self,
        ask: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Ask,
    ) -> Result<Result<T, StoreError>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let mut cmd = Cmd::Ask(ask(reply));
        loop {
            match self.queue.try_send(cmd) {
                Ok(()) => break,
                Err(mpsc::TrySendError::Full(back)) => {
                    cmd = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
            }
        }
        answer.await.map_err(|_| StoreError::Closed)
    }
}

//! The "index-store" thread: the one owner of the database connection(s). It applies queued
//! writes in batched transactions, answers reads, and notices keys revoked by other processes.
//! What SQL it speaks is its [`Backend`]'s: SQLite ([`super::sqlite`]) or PostgreSQL
//! ([`super::postgres`]), so the [`Store`](super::Store) handle stays a thin, non-blocking queue.
//!
//! A database that cannot be reached (PostgreSQL stopped, a network cut) loses nothing: the batch
//! that failed is kept and retried with a growing pause (0.25 s to 5 s), writes keep queueing
//! behind it up to the store's bound (beyond it they are dropped, counted), and reads are refused
//! at once with [`StoreError::Unavailable`] instead of hanging. [`Health`] tells `/readyz` and the
//! metrics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::keys::KeyCache;
use super::{History, HistoryQuery, KeyInfo, Session, StoreError};

/// Writes committed together at most while the database keeps up.
const MAX_BATCH: usize = 1024;
/// How often the thread asks the database whether API keys were revoked (by another replica or
/// `ferrocast index keys revoke`): a revoked key is refused everywhere within about this.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// What a [`Store`](super::Store) sends the thread.
pub(super) enum Cmd {
    Write(Write),
    Ask(Ask),
}

/// A fire-and-forget change; applied in queue order.
#[derive(Debug)]
pub(super) enum Write {
    SessionStarted {
        key: String,
        node: String,
        at_ms: i64,
    },
    SessionPeak {
        key: String,
        viewers: u64,
    },
    SessionNode {
        key: String,
        node: String,
    },
    SessionEnded {
        key: String,
        at_ms: i64,
    },
    NodeChanged {
        node: String,
        from: String,
        to: String,
        at_ms: i64,
        reason: String,
    },
    KeyUsed {
        id: String,
        at_ms: i64,
    },
    TokenRevoked {
        signature: String,
        expires: u64,
        at_ms: i64,
    },
    /// Forgets ended sessions and node events older than `before_ms` (history retention).
    Prune {
        before_ms: i64,
    },
}

/// A new API key's row: its hash, never the key.
pub(super) struct NewKeyRow {
    pub id: String,
    pub name: String,
    pub hash: String,
    pub created_ms: i64,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A request with an answer; queued writes before it are committed first.
pub(super) enum Ask {
    OpenSessions(Reply<Vec<Session>>),
    History(HistoryQuery, Reply<History>),
    /// Answered once every write queued before it is in the database.
    Flush(Reply<()>),
    CreateKey(NewKeyRow, Reply<()>),
    Keys(Reply<Vec<KeyInfo>>),
    /// A key's record and hash, by id.
    KeyHash(String, Reply<Option<(KeyInfo, String)>>),
    /// Revokes the key with this id at this time (unless revoked before); its record after.
    RevokeKey(String, i64, Reply<Option<KeyInfo>>),
    /// Revoked token signatures that expire after this time (unix s), with their expiry.
    RevokedTokens(u64, Reply<Vec<(String, u64)>>),
}

impl Ask {
    /// Answers with an error (the database is unreachable). A caller that stopped waiting is
    /// no error.
    pub(super) fn refuse(self, e: StoreError) {
        let _ = match self {
            Ask::OpenSessions(r) => r.send(Err(e)).is_ok(),
            Ask::History(_, r) => r.send(Err(e)).is_ok(),
            Ask::Flush(r) => r.send(Err(e)).is_ok(),
            Ask::CreateKey(_, r) => r.send(Err(e)).is_ok(),
            Ask::Keys(r) => r.send(Err(e)).is_ok(),
            Ask::KeyHash(_, r) => r.send(Err(e)).is_ok(),
            Ask::RevokeKey(_, _, r) => r.send(Err(e)).is_ok(),
            Ask::RevokedTokens(_, r) => r.send(Err(e)).is_ok(),
        };
    }
}

/// One database: what the thread needs of it.
pub(super) trait Backend {
    /// Applies `batch` in order, in one transaction; a write the database rejects is logged and
    /// skipped. `Err` when the database could not be reached or the transaction failed: the same
    /// batch is retried later with the same `id`, which a backend whose COMMIT can go unanswered
    /// (PostgreSQL) records in the transaction, so a batch applied already is not applied again.
    fn commit(&mut self, batch: &[Write], id: u64) -> Result<(), StoreError>;
    /// Answers `ask` (its reply carries any error).
    fn answer(&mut self, ask: Ask);
    /// A value that changes whenever an API key is revoked, by any process sharing the database.
    fn revocation_mark(&mut self) -> Result<(i64, i64), StoreError>;
}

/// What the thread tells the rest of the index.
#[derive(Debug, Default)]
pub struct Health {
    /// False while the database cannot be reached.
    pub down: AtomicBool,
    /// Writes waiting for the database (queued on the thread, not yet committed).
    pub pending: AtomicU64,
    /// Writes dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Batches that failed and were kept for a retry.
    pub retries: AtomicU64,
}

impl Health {
    pub(super) fn drop_one(&self, why: &str) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed);
        if n.is_power_of_two() {
            tracing::warn!(dropped = n + 1, "history write dropped: {why}");
        }
    }
}

/// The body of the "index-store" thread: ends when every `Store` is gone and the queue is empty
/// (or, with the database down then, after one last attempt).
pub(super) fn run(mut db: impl Backend, commands: mpsc::Receiver<Cmd>, health: Arc<Health>, keys: Arc<KeyCache>) {
    let mut w =
        Worker { batch: Vec::new(), head: None, retry_at: None, backoff: FIRST_RETRY, health, bound: super::QUEUE };
    let mut mark = match db.revocation_mark() {
        Ok(m) => Some(m),
        Err(e) => {
            w.failed(&e);
            None
        }
    };
    let mut next_check = Instant::now() + CHECK_EVERY;
    loop {
        let now = Instant::now();
        let until = w.retry_at.map_or(next_check, |t| t.min(next_check));
        let mut next = match commands.recv_timeout(until.saturating_duration_since(now)) {
            Ok(cmd) => Some(cmd),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        while let Some(cmd) = next {
            match cmd {
                Cmd::Write(write) => w.push(write),
                Cmd::Ask(ask) => {
                    if w.retry_at.is_none() {
                        w.commit(&mut db);
                    }
                    match w.retry_at {
                        None => db.answer(ask),
                        Some(_) => ask.refuse(StoreError::Unavailable(
                            "the database cannot be reached; writes are queued and retried".into(),
                        )),
                    }
                }
            }
            next = if w.batch.len() < MAX_BATCH { commands.try_recv().ok() } else { None };
        }
        let now = Instant::now();
        if w.retry_at.is_none_or(|t| now >= t) {
            w.commit(&mut db);
        }
        if now >= next_check {
            next_check = now + CHECK_EVERY;
            match db.revocation_mark() {
                Ok(m) => {
                    if mark.is_some_and(|old| old != m) {
                        tracing::info!("an API key was revoked elsewhere: verified keys are checked again");
                        keys.clear();
                    }
                    mark = Some(m);
                    // Reachable again: retry the kept batch now.
                    if w.batch.is_empty() {
                        w.reachable();
                    } else if w.retry_at.is_some() {
                        w.commit(&mut db);
                    }
                }
                Err(e) => w.failed(&e),
            }
        }
    }
    w.commit(&mut db);
    if !w.batch.is_empty() {
        tracing::warn!(lost = w.batch.len(), "history writes lost at shutdown: the database cannot be reached");
    }
    tracing::debug!("index-store thread exiting: every Store handle is gone");
}

struct Worker {
    /// Writes not yet in the database, oldest first.
    batch: Vec<Write>,
    /// The id and length of the first chunk of `batch`, once a commit of it failed: retried as
    /// it was.
    head: Option<(u64, usize)>,
    /// Set while the database is unreachable: when to try again.
    retry_at: Option<Instant>,
    backoff: Duration,
    health: Arc<Health>,
    /// Writes kept at most while the database is unreachable.
    bound: usize,
}

impl Worker {
    fn push(&mut self, write: Write) {
        if self.batch.len() >= self.bound {
            self.health.drop_one("the database has been unreachable for too long and the queue is full");
            return;
        }
        self.batch.push(write);
        self.health.pending.store(self.batch.len() as u64, Ordering::Relaxed);
    }

    /// Commits `batch` in chunks of at most [`MAX_BATCH`] (each within the database's deadline,
    /// however many writes queued during an outage), stopping at the first that fails.
    fn commit(&mut self, db: &mut impl Backend) {
        if self.batch.is_empty() {
            return;
        }
        while !self.batch.is_empty() {
            let (id, n) = self.head.unwrap_or_else(|| (rand::random::<u64>() >> 1, self.batch.len().min(MAX_BATCH)));
            match db.commit(&self.batch[..n], id) {
                Ok(()) => {
                    self.batch.drain(..n);
                    self.head = None;
                    self.health.pending.store(self.batch.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    self.head = Some((id, n));
                    self.health.retries.fetch_add(1, Ordering::Relaxed);
                    self.failed(&e);
                    return;
                }
            }
        }
        self.reachable();
    }

    fn reachable(&mut self) {
        if self.retry_at.take().is_some() {
            tracing::info!("the history database is reachable again; queued writes are in");
        }
        self.health.down.store(false, Ordering::Relaxed);
        self.backoff = FIRST_RETRY;
    }

    fn failed(&mut self, e: &StoreError) {
        if !self.health.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %e, queued = self.batch.len(), "the history database cannot be reached; writes queue and are retried");
        }
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(LAST_RETRY);
    }
}

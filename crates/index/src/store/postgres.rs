//! The PostgreSQL backend of the store: one database shared by every index replica, so history,
//! admin keys and token revocations are the same whichever replica answers.
//!
//! The driver is tokio-postgres with a deadpool connection pool, run on a small runtime of the
//! "index-store" thread: the request path never waits on it (writes are queued, key checks
//! cached, as with SQLite). Each call has a deadline ([`CALL_TIMEOUT`]); a database that does not
//! answer in time counts as unreachable and the thread keeps the writes for later. The schema has
//! its own version table, migrated under an advisory lock so replicas starting together migrate
//! once. Stream keys sort bytewise (`COLLATE "C"`), as in SQLite, for the history's prefix
//! filter. Connections are plain TCP or a Unix socket (`host=/run/postgresql`); TLS is not
//! offered yet.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::sqlite::{DEFAULT_LIMIT, MAX_LIMIT};
use super::worker::{Ask, Backend, Write};
use super::{History, HistoryQuery, KeyInfo, NodeEvent, Session, StoreError};

/// How long one database call may take before the database counts as unreachable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections the store keeps at most.
const POOL_SIZE: usize = 4;
/// Key of the advisory lock migrations hold (any constant shared by every replica).
const MIGRATION_LOCK: i64 = 0x6665_7272_6f63;

/// `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`; a new version is a new entry.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE sessions (
        id             BIGSERIAL PRIMARY KEY,
        stream         TEXT COLLATE \"C\" NOT NULL,
        node           TEXT   NOT NULL,
        published_ms   BIGINT NOT NULL,
        unpublished_ms BIGINT,
        peak_viewers   BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_stream_published ON sessions (stream, published_ms);
    CREATE UNIQUE INDEX sessions_open ON sessions (stream) WHERE unpublished_ms IS NULL;
    CREATE TABLE node_events (
        id         BIGSERIAL PRIMARY KEY,
        node       TEXT   NOT NULL,
        from_state TEXT   NOT NULL,
        to_state   TEXT   NOT NULL,
        at_ms      BIGINT NOT NULL,
        reason     TEXT   NOT NULL
    );
    CREATE INDEX node_events_node_at ON node_events (node, at_ms);
    CREATE TABLE api_keys (
        id           TEXT   PRIMARY KEY,
        name         TEXT   NOT NULL,
        hash         TEXT   NOT NULL,
        created_ms   BIGINT NOT NULL,
        revoked_ms   BIGINT,
        last_used_ms BIGINT
    );
    CREATE TABLE revoked_tokens (
        signature  TEXT   PRIMARY KEY,
        expires    BIGINT NOT NULL,
        revoked_ms BIGINT NOT NULL
    );
",
    "
    -- Batches committed, by id: a batch whose COMMIT had no answer is retried with its id, and
    -- found here if it was in fact applied, so nothing is written twice.
    CREATE TABLE applied_batches (
        id    BIGINT PRIMARY KEY,
        at_ms BIGINT NOT NULL
    );
",
];

const SESSION_COLUMNS: &str = "id, stream, node, published_ms, unpublished_ms, peak_viewers";
const EVENT_COLUMNS: &str = "id, node, from_state, to_state, at_ms, reason";
const KEY_COLUMNS: &str = "id, name, created_ms, revoked_ms, last_used_ms";
const CLOSE_OPEN: &str = "UPDATE sessions SET unpublished_ms = $2 WHERE stream = $1 AND unpublished_ms IS NULL";

/// Whether `--db` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

pub use crate::config::redact_url as redact;

/// `db` (a `--db` value) as messages may show it: a path as it is, a URL without its password.
pub fn shown(db: &str) -> String {
    if is_url(db) { redact(db) } else { db.to_string() }
}

/// A pool of connections and the runtime its calls run on.
pub struct Postgres {
    rt: tokio::runtime::Runtime,
    pool: Pool,
    /// Whether the schema is known to be up to date (false while the database was unreachable
    /// since the start).
    migrated: bool,
}

fn unreachable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// An error the database answered (its SQLSTATE and message) or of the connection.
fn classify(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Postgres(format!("{}: {}", db.code().code(), db.message())),
        None => {
            unreachable(format!("{e}{}", std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default()))
        }
    }
}

/// Whether the write itself is at fault (data it carries, a constraint it breaks: SQLSTATE classes
/// 22 and 23), so it is skipped; anything else (a read-only standby, a full disk, a deadlock) is
/// the database's state, and the batch is retried.
fn write_fault(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| matches!(&db.code().code()[..2], "22" | "23"))
}

impl Postgres {
    /// Connects to `url` and brings the schema up to date. A bad URL, refused credentials, a
    /// missing database or a schema this version does not know are errors at start (a typo must not start an index that
    /// never keeps history); a database that cannot be reached is not: the index starts, says so
    /// (`/readyz`, metrics, a warning) and migrates once it answers, as a replica restarted during
    /// a database outage must still schedule.
    pub fn connect(url: &str) -> Result<Postgres, StoreError> {
        let open_err = |reason: String| StoreError::PostgresOpen { url: redact(url), reason };
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| open_err(format!("{e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(3));
        }
        config.application_name("ferrocast-index");
        // A statement the deadline gave up on must not keep running on a pooled connection.
        let timeout = format!("-c statement_timeout={}", CALL_TIMEOUT.as_millis());
        let options = config.get_options().map_or(timeout.clone(), |o| format!("{o} {timeout}"));
        config.options(options);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| open_err(format!("cannot start its runtime: {e}")))?;
        let pool = {
            let _guard = rt.enter();
            Pool::builder(manager)
                .max_size(POOL_SIZE)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(CALL_TIMEOUT))
                .create_timeout(Some(CALL_TIMEOUT))
                .build()
                .map_err(|e| open_err(e.to_string()))?
        };
        let mut db = Postgres { rt, pool, migrated: false };
        match db.ensure_schema() {
            Ok(()) => Ok(db),
            Err(StoreError::Unavailable(e)) => {
                tracing::warn!(db = %redact(url), error = %e, "the history database cannot be reached; starting without it, writes queue until it answers");
                Ok(db)
            }
            Err(e) => Err(open_err(e.to_string())),
        }
    }

    /// Migrates the schema once, on the first call that reaches the database.
    fn ensure_schema(&mut self) -> Result<(), StoreError> {
        if !self.migrated {
            self.migrate()?;
            self.migrated = true;
        }
        Ok(())
    }

    /// Runs `f` with a pooled client, within [`CALL_TIMEOUT`].
    fn call<T>(
        &self,
        f: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.rt.block_on(async {
            let work = async {
                let mut client = self.pool.get().await.map_err(|e| match e {
                    // The server answered: wrong password, no such role or database.
                    deadpool_postgres::PoolError::Backend(e) if e.as_db_error().is_some() => classify(e),
                    e => unreachable(e),
                })?;
                f(&mut client).await
            };
            tokio::time::timeout(CALL_TIMEOUT, work).await.map_err(|_| unreachable("no answer within 5 s"))?
        })
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.call(async |client| {
            let tx = client.transaction().await.map_err(classify)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(classify)?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS ferrocast_schema (version BIGINT NOT NULL)")
                .await
                .map_err(classify)?;
            let found: i64 = tx
                .query_opt("SELECT version FROM ferrocast_schema", &[])
                .await
                .map_err(classify)?
                .map_or(0, |row| row.get(0));
            let known = MIGRATIONS.len() as i64;
            if found > known {
                return Err(StoreError::Postgres(format!(
                    "its schema version is {found}, newer than this Ferrocast understands ({known}); upgrade Ferrocast"
                )));
            }
            for (version, sql) in (1..).zip(MIGRATIONS).skip(usize::try_from(found).unwrap_or(0)) {
                tx.batch_execute(sql).await.map_err(classify)?;
                tx.execute("DELETE FROM ferrocast_schema", &[]).await.map_err(classify)?;
                tx.execute("INSERT INTO ferrocast_schema (version) VALUES ($1)", &[&(version as i64)])
                    .await
                    .map_err(classify)?;
                tracing::info!(version, "history database (PostgreSQL) schema migrated");
            }
            tx.commit().await.map_err(classify)
        })
    }
}

impl Backend for Postgres {
    /// The batch in one transaction, its statements pipelined (sent together, in order, without
    /// waiting for each answer: one round trip for the batch instead of one per write). Should
    /// the database reject a write, the transaction is rolled back and the batch applied again
    /// write by write, each in a savepoint, so that write alone is skipped.
    fn commit(&mut self, batch: &[Write], id: u64) -> Result<(), StoreError> {
        self.ensure_schema()?;
        let id = id as i64;
        let now = i64::try_from(crate::clock::now_ms()).unwrap_or(i64::MAX);
        self.call(async |client| {
            let tx = client.transaction().await.map_err(classify)?;
            if !claim(&tx, id, now).await? {
                tracing::info!(batch = id, "a batch retried after an unanswered COMMIT was applied already");
                return Ok(());
            }
            let calls: Vec<_> = batch.iter().flat_map(statements).collect();
            let mut prepared = std::collections::HashMap::new();
            for (sql, _) in &calls {
                if !prepared.contains_key(sql) {
                    prepared.insert(*sql, tx.prepare_cached(sql).await.map_err(classify)?);
                }
            }
            let sent = calls.iter().map(|(sql, params)| tx.execute_raw(&prepared[sql], refs(params)));
            match futures_util::future::try_join_all(sent).await {
                Ok(_) => return tx.commit().await.map_err(classify),
                Err(e) if write_fault(&e) => {
                    tracing::debug!(error = %classify(e), "a history write was refused; applying the batch write by write");
                }
                Err(e) => return Err(unavailable_or(e)),
            }
            tx.rollback().await.map_err(classify)?;
            let mut tx = client.transaction().await.map_err(classify)?;
            claim(&tx, id, now).await?;
            for write in batch {
                let savepoint = tx.savepoint("one_write").await.map_err(classify)?;
                let mut failed = None;
                for (sql, params) in statements(write) {
                    if let Err(e) = savepoint.execute_raw(sql, refs(&params)).await {
                        failed = Some(e);
                        break;
                    }
                }
                match failed {
                    None => savepoint.commit().await.map_err(classify)?,
                    Some(e) if write_fault(&e) => {
                        tracing::warn!(error = %classify(e), ?write, "history write refused by the database; skipped");
                        savepoint.rollback().await.map_err(classify)?;
                    }
                    Some(e) => return Err(unavailable_or(e)),
                }
            }
            tx.commit().await.map_err(classify)
        })
    }

    fn answer(&mut self, ask: Ask) {
        if let Err(e) = self.ensure_schema() {
            return ask.refuse(e);
        }
        match ask {
            Ask::OpenSessions(reply) => {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE unpublished_ms IS NULL ORDER BY published_ms, id"
                );
                let _ = reply.send(self.call(async |c| rows(c, &sql, &[], session_row).await));
            }
            Ask::History(q, reply) => {
                let _ = reply.send(self.call(async |c| history(c, &q).await));
            }
            Ask::Flush(reply) => {
                let _ = reply.send(Ok(()));
            }
            Ask::CreateKey(row, reply) => {
                let done = self.call(async |c| {
                    c.execute(
                        "INSERT INTO api_keys (id, name, hash, created_ms) VALUES ($1, $2, $3, $4)",
                        &[&row.id, &row.name, &row.hash, &row.created_ms],
                    )
                    .await
                    .map(drop)
                    .map_err(classify)
                });
                let _ = reply.send(done);
            }
            Ask::Keys(reply) => {
                let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_ms, id");
                let _ = reply.send(self.call(async |c| rows(c, &sql, &[], key_row).await));
            }
            Ask::KeyHash(id, reply) => {
                let _ = reply.send(self.call(async |c| key_with_hash(c, &id).await));
            }
            Ask::RevokeKey(id, at_ms, reply) => {
                let done = self.call(async |c| {
                    c.execute(
                        "UPDATE api_keys SET revoked_ms = COALESCE(revoked_ms, $2) WHERE id = $1",
                        &[&id, &at_ms],
                    )
                    .await
                    .map_err(classify)?;
                    Ok(key_with_hash(c, &id).await?.map(|(info, _)| info))
                });
                let _ = reply.send(done);
            }
            Ask::RevokedTokens(after, reply) => {
                let after = i64::try_from(after).unwrap_or(i64::MAX);
                let done = self.call(async |c| {
                    let found = c
                        .query("SELECT signature, expires FROM revoked_tokens WHERE expires > $1", &[&after])
                        .await
                        .map_err(classify)?;
                    Ok(found.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64)).collect())
                });
                let _ = reply.send(done);
            }
        }
    }

    fn revocation_mark(&mut self) -> Result<(i64, i64), StoreError> {
        self.ensure_schema()?;
        self.call(async |c| {
            let row = c
                .query_one("SELECT COUNT(revoked_ms), COALESCE(MAX(revoked_ms), 0)::BIGINT FROM api_keys", &[])
                .await
                .map_err(classify)?;
            Ok((row.get(0), row.get(1)))
        })
    }
}

/// An error that is not the write's fault: the batch is to be retried.
fn unavailable_or(e: tokio_postgres::Error) -> StoreError {
    match classify(e) {
        StoreError::Postgres(m) => StoreError::Unavailable(m),
        other => other,
    }
}

/// Records batch `id` in this transaction; false when it is there already (applied before).
/// Ids older than a day are forgotten on the way.
async fn claim(tx: &deadpool_postgres::Transaction<'_>, id: i64, now: i64) -> Result<bool, StoreError> {
    let fresh = tx
        .execute("INSERT INTO applied_batches (id, at_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&id, &now])
        .await
        .map_err(classify)?;
    if fresh == 1 && id % 1024 == 0 {
        tx.execute("DELETE FROM applied_batches WHERE at_ms < $1", &[&(now - 86_400_000)]).await.map_err(classify)?;
    }
    Ok(fresh == 1)
}

/// A statement's parameter: borrowed from the write, or a number computed from it.
type Param<'a> = Box<dyn ToSql + Sync + Send + 'a>;

fn refs<'a>(params: &'a [Param<'_>]) -> impl ExactSizeIterator<Item = &'a (dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync))
}

/// The statements that apply `write`, in order, with their parameters.
fn statements(write: &Write) -> Vec<(&'static str, Vec<Param<'_>>)> {
    fn p<'a, T: ToSql + Sync + Send + 'a>(v: T) -> Param<'a> {
        Box::new(v)
    }
    match write {
        Write::SessionStarted { key, node, at_ms } => vec![
            (CLOSE_OPEN, vec![p(key), p(at_ms)]),
            ("INSERT INTO sessions (stream, node, published_ms) VALUES ($1, $2, $3)", vec![p(key), p(node), p(at_ms)]),
        ],
        Write::SessionPeak { key, viewers } => vec![(
            "UPDATE sessions SET peak_viewers = $2 WHERE stream = $1 AND unpublished_ms IS NULL AND peak_viewers < $2",
            vec![p(key), p(i64::try_from(*viewers).unwrap_or(i64::MAX))],
        )],
        Write::SessionNode { key, node } => {
            vec![("UPDATE sessions SET node = $2 WHERE stream = $1 AND unpublished_ms IS NULL", vec![p(key), p(node)])]
        }
        Write::SessionEnded { key, at_ms } => vec![(CLOSE_OPEN, vec![p(key), p(at_ms)])],
        Write::NodeChanged { node, from, to, at_ms, reason } => vec![(
            "INSERT INTO node_events (node, from_state, to_state, at_ms, reason) VALUES ($1, $2, $3, $4, $5)",
            vec![p(node), p(from), p(to), p(at_ms), p(reason)],
        )],
        Write::KeyUsed { id, at_ms } => {
            vec![("UPDATE api_keys SET last_used_ms = $2 WHERE id = $1", vec![p(id), p(at_ms)])]
        }
        Write::TokenRevoked { signature, expires, at_ms } => vec![
            (
                "INSERT INTO revoked_tokens (signature, expires, revoked_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (signature) DO UPDATE SET expires = GREATEST(revoked_tokens.expires, excluded.expires)",
                vec![p(signature), p(i64::try_from(*expires).unwrap_or(i64::MAX)), p(at_ms)],
            ),
            // Expired revocations protect nothing.
            ("DELETE FROM revoked_tokens WHERE expires < $1", vec![p(at_ms / 1000)]),
        ],
        Write::Prune { before_ms } => vec![
            ("DELETE FROM sessions WHERE unpublished_ms IS NOT NULL AND unpublished_ms < $1", vec![p(before_ms)]),
            ("DELETE FROM node_events WHERE at_ms < $1", vec![p(before_ms)]),
        ],
    }
}

async fn rows<T>(
    c: &impl GenericClient,
    sql: &str,
    args: &[&(dyn ToSql + Sync)],
    row: fn(&Row) -> T,
) -> Result<Vec<T>, StoreError> {
    Ok(c.query(sql, args).await.map_err(classify)?.iter().map(row).collect())
}

async fn key_with_hash(c: &impl GenericClient, id: &str) -> Result<Option<(KeyInfo, String)>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS}, hash FROM api_keys WHERE id = $1");
    let found = c.query_opt(&sql, &[&id]).await.map_err(classify)?;
    Ok(found.map(|r| (key_row(&r), r.get(5))))
}

/// The same filters as SQLite's history, with numbered parameters.
async fn history(c: &impl GenericClient, q: &HistoryQuery) -> Result<History, StoreError> {
    let limit = i64::from(q.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT));
    let stream = q.stream.as_deref().map(|s| s.trim_end_matches('/')).filter(|s| !s.is_empty());
    // Everything under "a/b" sorts in ["a/b/", "a/b0"): '0' is the byte after '/'.
    let (under, past) = stream.map(|s| (format!("{s}/"), format!("{s}0"))).unzip();

    let mut where_s = String::new();
    let mut where_e = String::new();
    let mut args_s: Vec<&(dyn ToSql + Sync)> = vec![&limit];
    let mut args_e: Vec<&(dyn ToSql + Sync)> = vec![&limit];
    if let (Some(stream), Some(under), Some(past)) = (&stream, &under, &past) {
        let n = args_s.len();
        where_s.push_str(&format!(" AND (stream = ${} OR (stream >= ${} AND stream < ${}))", n + 1, n + 2, n + 3));
        args_s.extend([stream as &(dyn ToSql + Sync), under, past]);
    }
    if let Some(node) = &q.node {
        where_s.push_str(&format!(" AND node = ${}", args_s.len() + 1));
        where_e.push_str(&format!(" AND node = ${}", args_e.len() + 1));
        args_s.push(node);
        args_e.push(node);
    }
    if let Some(since) = &q.since_ms {
        where_s.push_str(&format!(" AND published_ms >= ${}", args_s.len() + 1));
        where_e.push_str(&format!(" AND at_ms >= ${}", args_e.len() + 1));
        args_s.push(since);
        args_e.push(since);
    }
    let sessions = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE TRUE{where_s} ORDER BY published_ms DESC, id DESC LIMIT $1"
    );
    let events =
        format!("SELECT {EVENT_COLUMNS} FROM node_events WHERE TRUE{where_e} ORDER BY at_ms DESC, id DESC LIMIT $1");
    Ok(History {
        sessions: rows(c, &sessions, &args_s, session_row).await?,
        node_events: rows(c, &events, &args_e, event_row).await?,
    })
}

fn session_row(row: &Row) -> Session {
    Session {
        id: row.get(0),
        stream: row.get(1),
        node: row.get(2),
        published_ms: row.get(3),
        unpublished_ms: row.get(4),
        peak_viewers: u64::try_from(row.get::<_, i64>(5)).unwrap_or(0),
    }
}

fn event_row(row: &Row) -> NodeEvent {
    NodeEvent {
        id: row.get(0),
        node: row.get(1),
        from: row.get(2),
        to: row.get(3),
        at_ms: row.get(4),
        reason: row.get(5),
    }
}

fn key_row(row: &Row) -> KeyInfo {
    KeyInfo {
        id: row.get(0),
        name: row.get(1),
        created_ms: row.get(2),
        revoked_ms: row.get(3),
        last_used_ms: row.get(4),
    }
}

#[cfg(test)]
mod tests {
    use super::super::worker::{Ask, Backend, Write};

    /// A batch retried after a COMMIT whose answer was lost (its id is in the database) is not
    /// applied twice; a batch with another id is.
    #[test]
    fn a_batch_is_applied_once_by_its_id() {
        let url = crate::testing::PostgresServer::shared().new_database();
        let mut db = super::Postgres::connect(&url).unwrap();
        let batch = [Write::NodeChanged {
            node: "e1".into(),
            from: "up".into(),
            to: "down".into(),
            at_ms: 1,
            reason: "test".into(),
        }];
        db.commit(&batch, 7).unwrap();
        db.commit(&batch, 7).unwrap();
        db.commit(&batch, 8).unwrap();
        let (reply, answer) = tokio::sync::oneshot::channel();
        db.answer(Ask::History(super::HistoryQuery::default(), reply));
        let history = answer.blocking_recv().unwrap().unwrap();
        assert_eq!(history.node_events.len(), 2, "{history:?}");
    }

    #[test]
    fn a_missing_database_or_a_bad_url_is_an_error_at_start() {
        let server = crate::testing::PostgresServer::shared();
        let missing = server.url("no_such_database");
        let e = super::Postgres::connect(&missing).err().expect("an error").to_string();
        assert!(e.contains("no_such_database") && e.contains("3D000"), "{e}");
        let e = super::Postgres::connect("postgres://u:secret@h:notaport/db").err().expect("an error").to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn urls_are_told_from_paths_and_lose_their_password_in_logs() {
        assert!(super::is_url("postgres://u@h/db") && super::is_url("postgresql://h/db"));
        assert!(!super::is_url("/var/lib/ferrocast/index.db") && !super::is_url("postgres.db"));
        let cases = [
            ("postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:***@h:5432/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgresql://h", "postgresql://h"),
            ("postgres://u:secret@h?password=x", "postgres://u:***@h"),
            ("postgres://h?password=secret", "postgres://h"),
            ("postgres://h/db?user=u&password=secret", "postgres://h/db"),
            ("postgres://u:pa/ss:secret@h/db", "postgres://u:***@h/db"),
            ("postgres:///db?host=/run/postgresql&password=secret", "postgres:///db"),
            ("postgres://h/db?password=sec@ret", "postgres://h/db"),
        ];
        for (url, shown) in cases {
            assert_eq!(super::redact(url), shown, "{url}");
            assert!(!["secret", "sec", "ss"].iter().any(|p| super::redact(url).contains(p)), "{url}");
        }
    }
}

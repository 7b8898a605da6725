//! The SQLite backend of the store: one file, one connection owned by the "index-store" thread.
//! The default, for one index (and `ferrocast up`).

use std::path::Path;

use rusqlite::types::ToSql;
use rusqlite::{Connection, Row, params};

use super::worker::{Ask, Backend, Write};
use super::{History, HistoryQuery, KeyInfo, NodeEvent, Session, StoreError};

/// `MIGRATIONS[i]` takes a database from `PRAGMA user_version` `i` to `i + 1`; a new schema
/// version is a new entry, never an edit of an old one.
pub(super) const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE sessions (
        id             INTEGER PRIMARY KEY,
        stream         TEXT    NOT NULL,
        node           TEXT    NOT NULL,
        published_ms   INTEGER NOT NULL,
        unpublished_ms INTEGER,
        peak_viewers   INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_stream_published ON sessions (stream, published_ms);
    -- One open session per stream key, enforced by the database itself.
    CREATE UNIQUE INDEX sessions_open ON sessions (stream) WHERE unpublished_ms IS NULL;
    CREATE TABLE node_events (
        id         INTEGER PRIMARY KEY,
        node       TEXT    NOT NULL,
        from_state TEXT    NOT NULL,
        to_state   TEXT    NOT NULL,
        at_ms      INTEGER NOT NULL,
        reason     TEXT    NOT NULL
    );
    CREATE INDEX node_events_node_at ON node_events (node, at_ms);
",
    "
    CREATE TABLE api_keys (
        id           TEXT    PRIMARY KEY,
        name         TEXT    NOT NULL,
        hash         TEXT    NOT NULL, -- argon2id PHC string of the key's secret
        created_ms   INTEGER NOT NULL,
        revoked_ms   INTEGER NULL,
        last_used_ms INTEGER NULL
    );
",
    "
    CREATE TABLE revoked_tokens (
        signature  TEXT    PRIMARY KEY, -- the token's last part
        expires    INTEGER NOT NULL,    -- unix s; the row is useless after it
        revoked_ms INTEGER NOT NULL
    );
",
];

pub(super) const DEFAULT_LIMIT: u32 = 100;
pub(super) const MAX_LIMIT: u32 = 1000;

const SESSION_COLUMNS: &str = "id, stream, node, published_ms, unpublished_ms, peak_viewers";
const EVENT_COLUMNS: &str = "id, node, from_state, to_state, at_ms, reason";
const KEY_COLUMNS: &str = "id, name, created_ms, revoked_ms, last_used_ms";
const CLOSE_OPEN: &str = "UPDATE sessions SET unpublished_ms = ?2 WHERE stream = ?1 AND unpublished_ms IS NULL";

/// Runs every migration the file has not seen yet, each in its own transaction.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let schema_err = |source| StoreError::Schema { path: path.to_owned(), source };
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(schema_err)?;
    if found > known {
        return Err(StoreError::TooNew { path: path.to_owned(), found, known });
    }
    for (version, sql) in (1..).zip(MIGRATIONS).skip(usize::try_from(found).unwrap_or(0)) {
        let tx = conn.transaction().map_err(schema_err)?;
        tx.execute_batch(sql).map_err(schema_err)?;
        tx.pragma_update(None, "user_version", version).map_err(schema_err)?;
        tx.commit().map_err(schema_err)?;
        tracing::info!(path = %path.display(), version, "history database schema migrated");
    }
    Ok(())
}

/// The connection, as the thread's [`Backend`].
pub(super) struct Sqlite(pub Connection);

impl Backend for Sqlite {
    /// Each write in its own savepoint, so one bad write spoils nothing else. (A local COMMIT
    /// always answers: the batch id is not needed.)
    fn commit(&mut self, batch: &[Write], _id: u64) -> Result<(), StoreError> {
        let mut tx = self.0.transaction()?;
        for write in batch {
            let savepoint = tx.savepoint()?;
            match apply(&savepoint, write) {
                Ok(()) => savepoint.commit()?,
                Err(error) => tracing::warn!(%error, ?write, "history write failed; skipped"),
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn answer(&mut self, ask: Ask) {
        answer(&self.0, ask);
    }

    fn revocation_mark(&mut self) -> Result<(i64, i64), StoreError> {
        Ok(self.0.prepare_cached(REVOCATION_MARK)?.query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?)
    }
}

/// How many keys are revoked and the latest revocation: changes with every revocation.
const REVOCATION_MARK: &str = "SELECT COUNT(revoked_ms), COALESCE(MAX(revoked_ms), 0) FROM api_keys";

fn apply(db: &Connection, write: &Write) -> rusqlite::Result<()> {
    match write {
        Write::SessionStarted { key, node, at_ms } => {
            db.prepare_cached(CLOSE_OPEN)?.execute(params![key, at_ms])?;
            db.prepare_cached("INSERT INTO sessions (stream, node, published_ms) VALUES (?1, ?2, ?3)")?
                .execute(params![key, node, at_ms])?;
        }
        Write::SessionPeak { key, viewers } => {
            let viewers = i64::try_from(*viewers).unwrap_or(i64::MAX);
            db.prepare_cached(
                "UPDATE sessions SET peak_viewers = ?2 \
                 WHERE stream = ?1 AND unpublished_ms IS NULL AND peak_viewers < ?2",
            )?
            .execute(params![key, viewers])?;
        }
        Write::SessionNode { key, node } => {
            db.prepare_cached("UPDATE sessions SET node = ?2 WHERE stream = ?1 AND unpublished_ms IS NULL")?
                .execute(params![key, node])?;
        }
        Write::SessionEnded { key, at_ms } => {
            db.prepare_cached(CLOSE_OPEN)?.execute(params![key, at_ms])?;
        }
        Write::NodeChanged { node, from, to, at_ms, reason } => {
            db.prepare_cached(
                "INSERT INTO node_events (node, from_state, to_state, at_ms, reason) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![node, from, to, at_ms, reason])?;
        }
        Write::KeyUsed { id, at_ms } => {
            db.prepare_cached("UPDATE api_keys SET last_used_ms = ?2 WHERE id = ?1")?.execute(params![id, at_ms])?;
        }
        Write::TokenRevoked { signature, expires, at_ms } => {
            let expires = i64::try_from(*expires).unwrap_or(i64::MAX);
            db.prepare_cached(
                "INSERT INTO revoked_tokens (signature, expires, revoked_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (signature) DO UPDATE SET expires = max(expires, excluded.expires)",
            )?
            .execute(params![signature, expires, at_ms])?;
            // Expired revocations protect nothing.
            db.prepare_cached("DELETE FROM revoked_tokens WHERE expires < ?1")?.execute(params![at_ms / 1000])?;
        }
        Write::Prune { before_ms } => {
            db.prepare_cached("DELETE FROM sessions WHERE unpublished_ms IS NOT NULL AND unpublished_ms < ?1")?
                .execute(params![before_ms])?;
            db.prepare_cached("DELETE FROM node_events WHERE at_ms < ?1")?.execute(params![before_ms])?;
        }
    }
    Ok(())
}

fn answer(db: &Connection, ask: Ask) {
    // A caller that stopped waiting (dropped its future) is no error.
    let e = StoreError::from;
    match ask {
        Ask::OpenSessions(reply) => {
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM sessions \
                 WHERE unpublished_ms IS NULL ORDER BY published_ms, id"
            );
            let _ = reply.send(select(db, &sql, &[], session_row).map_err(e));
        }
        Ask::History(q, reply) => {
            let _ = reply.send(history(db, &q).map_err(e));
        }
        Ask::Flush(reply) => {
            let _ = reply.send(Ok(()));
        }
        Ask::CreateKey(row, reply) => {
            let insert = db
                .prepare_cached("INSERT INTO api_keys (id, name, hash, created_ms) VALUES (?1, ?2, ?3, ?4)")
                .and_then(|mut s| s.execute(params![row.id, row.name, row.hash, row.created_ms]));
            let _ = reply.send(insert.map(drop).map_err(e));
        }
        Ask::Keys(reply) => {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_ms, id");
            let _ = reply.send(select(db, &sql, &[], key_row).map_err(e));
        }
        Ask::KeyHash(id, reply) => {
            let _ = reply.send(key_with_hash(db, &id).map_err(e));
        }
        Ask::RevokeKey(id, at_ms, reply) => {
            let revoked = db
                .prepare_cached("UPDATE api_keys SET revoked_ms = COALESCE(revoked_ms, ?2) WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, at_ms]))
                .and_then(|_| key_with_hash(db, &id))
                .map(|found| found.map(|(info, _)| info));
            let _ = reply.send(revoked.map_err(e));
        }
        Ask::RevokedTokens(after, reply) => {
            let after = i64::try_from(after).unwrap_or(i64::MAX);
            let rows = db.prepare_cached("SELECT signature, expires FROM revoked_tokens WHERE expires > ?1").and_then(
                |mut s| {
                    s.query_map([after], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?.max(0) as u64)))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                },
            );
            let _ = reply.send(rows.map_err(e));
        }
    }
}

fn key_with_hash(db: &Connection, id: &str) -> rusqlite::Result<Option<(KeyInfo, String)>> {
    let sql = format!("SELECT {KEY_COLUMNS}, hash FROM api_keys WHERE id = ?1");
    let mut statement = db.prepare_cached(&sql)?;
    let mut rows = statement.query_map([id], |row| Ok((key_row(row)?, row.get(5)?)))?;
    rows.next().transpose()
}

/// Builds the SQL from the filters present, so each shape is its own cached statement and can
/// use the (stream, published_ms) and (node, at_ms) indexes.
fn history(db: &Connection, q: &HistoryQuery) -> rusqlite::Result<History> {
    let limit = i64::from(q.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT));
    let stream = q.stream.as_deref().map(|s| s.trim_end_matches('/')).filter(|s| !s.is_empty());
    // Everything under "a/b" sorts in ["a/b/", "a/b0"): '0' is the byte after '/'.
    let (under, past) = stream.map(|s| (format!("{s}/"), format!("{s}0"))).unzip();

    let mut where_s = String::new();
    let mut where_e = String::new();
    let mut args_s: Vec<(&str, &dyn ToSql)> = vec![(":limit", &limit)];
    let mut args_e: Vec<(&str, &dyn ToSql)> = vec![(":limit", &limit)];
    if let (Some(stream), Some(under), Some(past)) = (&stream, &under, &past) {
        where_s.push_str(" AND (stream = :stream OR (stream >= :under AND stream < :past))");
        args_s.push((":stream", stream));
        args_s.push((":under", under));
        args_s.push((":past", past));
    }
    if let Some(node) = &q.node {
        where_s.push_str(" AND node = :node");
        where_e.push_str(" AND node = :node");
        args_s.push((":node", node));
        args_e.push((":node", node));
    }
    if let Some(since) = &q.since_ms {
        where_s.push_str(" AND published_ms >= :since");
        where_e.push_str(" AND at_ms >= :since");
        args_s.push((":since", since));
        args_e.push((":since", since));
    }
    let sessions = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE 1{where_s} \
         ORDER BY published_ms DESC, id DESC LIMIT :limit"
    );
    let events = format!(
        "SELECT {EVENT_COLUMNS} FROM node_events WHERE 1{where_e} \
         ORDER BY at_ms DESC, id DESC LIMIT :limit"
    );
    Ok(History {
        sessions: select(db, &sessions, &args_s, session_row)?,
        node_events: select(db, &events, &args_e, event_row)?,
    })
}

fn select<T>(
    db: &Connection,
    sql: &str,
    args: &[(&str, &dyn ToSql)],
    row: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = db.prepare_cached(sql)?;
    let rows = statement.query_map(args, row)?;
    rows.collect()
}

fn session_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: row.get(0)?,
        stream: row.get(1)?,
        node: row.get(2)?,
        published_ms: row.get(3)?,
        unpublished_ms: row.get(4)?,
        peak_viewers: u64::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
    })
}

fn event_row(row: &Row<'_>) -> rusqlite::Result<NodeEvent> {
    Ok(NodeEvent {
        id: row.get(0)?,
        node: row.get(1)?,
        from: row.get(2)?,
        to: row.get(3)?,
        at_ms: row.get(4)?,
        reason: row.get(5)?,
    })
}

fn key_row(row: &Row<'_>) -> rusqlite::Result<KeyInfo> {
    Ok(KeyInfo {
        id: row.get(0)?,
        name: row.get(1)?,
        created_ms: row.get(2)?,
        revoked_ms: row.get(3)?,
        last_used_ms: row.get(4)?,
    })
}

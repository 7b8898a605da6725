//! Leader election: a lease key in Redis and a fencing token.
//!
//! A replica without the lease tries to take it every third of `shared.lease_ms`: the Lua script
//! [`ACQUIRE`] sets the key only if it is absent (SET NX PX) and increments the fencing token in
//! the same step, so each term has a larger token than every earlier one. The holder renews the key
//! every third of the lease with a compare-and-set ([`RENEW`]: only if it still holds its own
//! `<replica>:<token>`). A holder that finds someone else's value stops at once; one that cannot
//! reach Redis keeps polling until its lease would have run out and then goes standalone (see the
//! module doc of `crate::index_replicas`). A follower that cannot reach Redis for a whole lease goes
//! standalone too. On shutdown the holder deletes its own key ([`RELEASE`]) so a follower takes
//! over within a third of the lease rather than a whole one.
//!
//! Fencing: every write of the leader to shared state is a script that first compares the token
//! it carries with the newest one ([`fenced`]) and refuses when a newer one exists. A leader that
//! was paused (GC, swap, a stopped VM) past its lease and wakes up still believing it leads gets
//! its writes refused and learns it lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionLike;

use super::{Keys, Replicas, Role};
use crate::state::IndexState;

/// KEYS: lease, fence. ARGV: replica id, lease ms, the newest token the replica has seen.
/// Returns the new token, or 0 when the lease is held. A Redis that lost its data (restarted
/// without persistence) would count tokens from 1 again; the replicas' memory keeps them rising.
pub const ACQUIRE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
if token <= tonumber(ARGV[3]) then
  token = tonumber(ARGV[3]) + 1
  redis.call('SET', KEYS[2], token)
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"#;

/// KEYS: lease. ARGV: `<replica>:<token>`, lease ms. 1 when renewed, 0 when held by another term.
pub const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// KEYS: lease. ARGV: `<replica>:<token>`. Deletes the lease if it is still this term's.
pub const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// The fencing check every leader write script starts with: KEYS[1] is the fence key, ARGV[1] the
/// writer's token. Refuses with a `FENCED` error when a newer token exists.
pub const FENCE_CHECK: &str = r#"
local newest = tonumber(redis.call('GET', KEYS[1]) or '0')
if newest > tonumber(ARGV[1]) then
  return redis.error_reply('FENCED token ' .. ARGV[1] .. ' is older than ' .. newest)
end
"#;

/// A write refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A newer leader exists: this replica must stop writing.
    #[error("refused: a newer leader holds token {newest} (this write carried {token})")]
    Fenced { token: u64, newest: String },
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Runs `body` (a script over KEYS[2..] and ARGV[2..]) only if `token` is still the newest.
pub fn fenced(body: &str) -> String {
    format!("{FENCE_CHECK}\n{body}")
}

/// Evaluates `script` with `keys` and `args` (EVAL; scripts are small).
pub async fn eval<T: redis::FromRedisValue>(
    conn: &mut impl ConnectionLike,
    script: &str,
    keys: &[&str],
    args: &[&[u8]],
) -> redis::RedisResult<T> {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len()).arg(keys);
    for a in args {
        cmd.arg(*a);
    }
    cmd.query_async(conn).await
}

/// Maps a script's `FENCED` error to [`WriteError::Fenced`].
pub fn classify(token: u64, e: redis::RedisError) -> WriteError {
    let text = e.to_string();
    match text.find("FENCED") {
        Some(at) => {
            let newest = text[at..].rsplit(' ').next().unwrap_or("?").trim().to_string();
            WriteError::Fenced { token, newest }
        }
        None => WriteError::Redis(e),
    }
}

/// Tries to take the lease for `replica`: its new fencing token (above `seen`, the newest token the
/// replica knows of), or None when another holds it.
pub async fn try_acquire(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    replica: &str,
    lease: Duration,
    seen: u64,
) -> redis::RedisResult<Option<u64>> {
    let ms = lease.as_millis().to_string();
    let seen = seen.to_string();
    let args: [&[u8]; 3] = [replica.as_bytes(), ms.as_bytes(), seen.as_bytes()];
    let token: u64 = eval(conn, ACQUIRE, &[&keys.leader, &keys.fence], &args).await?;
    Ok((token > 0).then_some(token))
}

/// Renews the lease of term `token`: false when the lease is no longer this term's.
pub async fn renew(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    replica: &str,
    token: u64,
    lease: Duration,
) -> redis::RedisResult<bool> {
    let me = format!("{replica}:{token}");
    let ms = lease.as_millis().to_string();
    let n: i64 = eval(conn, RENEW, &[&keys.leader], &[me.as_bytes(), ms.as_bytes()]).await?;
    Ok(n == 1)
}

/// Gives the lease of term `token` up, if it is still held.
pub async fn release(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    replica: &str,
    token: u64,
) -> redis::RedisResult<bool> {
    let me = format!("{replica}:{token}");
    let n: i64 = eval(conn, RELEASE, &[&keys.leader], &[me.as_bytes()]).await?;
    Ok(n == 1)
}

/// The lease loop of one replica: acquires, renews, steps down, goes standalone and back.
pub async fn run(state: Arc<IndexState>, sh: Arc<Replicas>) {
    let period = sh.lease / 3;
    // Its own connection, driven by the runtime this loop runs on (see `Shared::start`).
    let own = match super::connection(&sh.client, sh.lease) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("redis: {e}; this replica never leads");
            return;
        }
    };
    // When Redis stopped answering (for followers: when to go standalone).
    let mut down_since: Option<Instant> = None;
    // The leader's lease runs out at this instant unless renewed.
    let mut valid_until = Instant::now();
    loop {
        let started = Instant::now();
        let mut conn = own.clone();
        match sh.role() {
            Role::Leader => {
                let token = sh.token();
                match tokio::time::timeout(period, renew(&mut conn, &sh.keys, &sh.id, token, sh.lease)).await {
                    Ok(Ok(true)) => {
                        valid_until = started + sh.lease;
                        down_since = None;
                        sh.set_up(true, String::new);
                    }
                    Ok(Ok(false)) => {
                        sh.set_up(true, String::new);
                        sh.set_role(Role::Follower, 0, "the lease expired and another replica holds it");
                    }
                    failed => {
                        let why = describe(failed.map(|r| r.map(|_| ())));
                        sh.set_up(false, || why.clone());
                        down_since.get_or_insert(started);
                        if Instant::now() >= valid_until {
                            sh.set_role(Role::Standalone, 0, &format!("cannot renew the lease ({why})"));
                        }
                    }
                }
            }
            role => match tokio::time::timeout(period, try_acquire(&mut conn, &sh.keys, &sh.id, sh.lease, sh.seen()))
                .await
            {
                Ok(Ok(Some(token))) => {
                    valid_until = started + sh.lease;
                    down_since = None;
                    sh.set_up(true, String::new);
                    let why = if role == Role::Standalone {
                        "redis is back and no replica held the lease"
                    } else {
                        "no replica held the lease"
                    };
                    sh.set_role(Role::Leader, token, why);
                }
                Ok(Ok(None)) => {
                    down_since = None;
                    sh.set_up(true, String::new);
                    if role == Role::Standalone {
                        sh.set_role(Role::Follower, 0, "redis is back and another replica holds the lease");
                    }
                }
                failed => {
                    let why = describe(failed.map(|r| r.map(|_| ())));
                    sh.set_up(false, || why.clone());
                    let since = *down_since.get_or_insert(started);
                    if role == Role::Follower && since.elapsed() >= sh.lease {
                        sh.set_role(
                            Role::Standalone,
                            0,
                            &format!("no answer from redis for {} ms ({why})", sh.lease.as_millis()),
                        );
                    }
                }
            },
        }
        let wait = period.saturating_sub(started.elapsed());
        tokio::select! {
            _ = state.shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    if sh.role() == Role::Leader {
        let mut conn = own.clone();
        let token = sh.token();
        match tokio::time::timeout(Duration::from_millis(500), release(&mut conn, &sh.keys, &sh.id, token)).await {
            Ok(Ok(true)) => tracing::info!(token, "leader lease released at shutdown"),
            _ => tracing::info!(token, "leader lease left to expire at shutdown"),
        }
    }
}

fn describe(r: Result<redis::RedisResult<()>, tokio::time::error::Elapsed>) -> String {
    match r {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer in time".into(),
    }
}

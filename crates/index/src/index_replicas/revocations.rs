//! Token revocations across replicas: kept in each replica's SQLite and in a Redis hash,
//! announced on a channel; after a reconnect each replica sends its own and reads the others'.

use std::sync::Arc;

use super::{Replicas, lease};
use crate::state::IndexState;

#[derive(serde::Serialize, serde::Deserialize)]
struct RevokeMsg {
    r: String,
    /// Signature → expiry (unix s).
    s: Vec<(String, u64)>,
}

/// KEYS: the revocations hash. ARGV: channel, message, now (unix s), then signature/expiry pairs.
/// Keeps the longer expiry of a signature and drops expired ones.
const REVOKE: &str = r#"
for i = 4, #ARGV, 2 do
  local old = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > old then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) < tonumber(ARGV[3]) then redis.call('HDEL', KEYS[1], all[i]) end
end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return 1
"#;

impl Replicas {
    /// Shares revocations: stores them in Redis and announces them (in the background).
    pub fn revoke(self: &Arc<Self>, list: Vec<(String, u64)>) {
        let sh = self.clone();
        tokio::spawn(async move {
            if let Err(e) = sh.push_revocations(&list, true).await {
                tracing::warn!(
                    "revocation kept here but not shared yet (redis: {e}); it is shared when redis answers again"
                );
            }
        });
    }

    async fn push_revocations(&self, list: &[(String, u64)], announce: bool) -> redis::RedisResult<()> {
        let msg = if announce {
            serde_json::to_string(&RevokeMsg { r: self.id.clone(), s: list.to_vec() }).unwrap_or_default()
        } else {
            String::new()
        };
        let now = crate::auth::now_secs().to_string();
        let expiries: Vec<String> = list.iter().map(|(_, e)| e.to_string()).collect();
        let mut args: Vec<&[u8]> = vec![self.keys.ch_revoke.as_bytes(), msg.as_bytes(), now.as_bytes()];
        for ((sig, _), e) in list.iter().zip(&expiries) {
            args.push(sig.as_bytes());
            args.push(e.as_bytes());
        }
        let mut conn = self.conn.clone();
        lease::eval::<i64>(&mut conn, REVOKE, &[&self.keys.revoked], &args).await.map(drop)
    }
}

/// Adds revocations to this replica's list and its own database.
fn revoke_local(state: &IndexState, list: Vec<(String, u64)>) {
    let now = crate::clock::now_ms() as i64;
    for (sig, expires) in list {
        // A shared database (PostgreSQL) has it already from the replica that revoked it.
        if crate::auth::revoked::signature(&format!(".{sig}")).is_some()
            && state.revoked.insert(&sig, expires)
            && !state.store.is_shared()
        {
            state.store.token_revoked(&sig, expires, now);
        }
    }
}

/// After a (re)connect: this replica's revocations go to Redis, and Redis's come here.
pub(crate) fn revoke_sync(state: &Arc<IndexState>, sh: &Arc<Replicas>) {
    let (state, sh) = (state.clone(), sh.clone());
    tokio::spawn(async move {
        let now = crate::auth::now_secs();
        let mine = match state.store.revoked_tokens(now).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!("cannot read the revoked tokens: {e}");
                Vec::new()
            }
        };
        if let Err(e) = sh.push_revocations(&mine, false).await {
            tracing::debug!("revocations not synchronised (redis: {e})");
            return;
        }
        let mut conn = sh.conn.clone();
        let all: redis::RedisResult<Vec<(String, u64)>> =
            redis::cmd("HGETALL").arg(&sh.keys.revoked).query_async(&mut conn).await;
        match all {
            Ok(all) => revoke_local(&state, all.into_iter().filter(|(_, e)| *e >= now).collect()),
            Err(e) => tracing::debug!("revocations not read (redis: {e})"),
        }
    });
}

/// Revocations another replica announced.
pub(crate) fn revoke_in(state: &Arc<IndexState>, sh: &Replicas, payload: &[u8]) {
    match serde_json::from_slice::<RevokeMsg>(payload) {
        Ok(m) if m.r == sh.id => {}
        Ok(m) => revoke_local(state, m.s),
        Err(e) => tracing::debug!("unreadable revocation message: {e}"),
    }
}

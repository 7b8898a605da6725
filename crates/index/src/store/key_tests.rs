//! Tests of the admin API keys, each against a real SQLite file and a real PostgreSQL database:
//! what `ferrocast index keys` and the admin routes rely on.

use super::test_db::{Db, on_both};
use super::*;

/// The stored hash of key `id`, as the database has it.
async fn stored_hash(store: &Store, id: &str) -> String {
    store.ask(|reply| Ask::KeyHash(id.to_string(), reply)).await.unwrap().unwrap().expect("the key's row").1
}

async fn a_created_key_verifies_and_only_its_hash_is_stored(db: Db) {
    let store = db.open();
    let (id, key) = store.create_key("ci deploy").await.unwrap();
    assert!(key.starts_with(&format!("fc_{id}_")), "{key}");
    assert_eq!(parse_key(&key).map(|(i, _)| i), Some(id.as_str()));
    assert!(!key.contains('.'), "keys never look like signed tokens: {key}");

    let info = store.verify_key(&key).await.unwrap().expect("the key verifies");
    assert_eq!((info.id.as_str(), info.name.as_str(), info.revoked_ms), (id.as_str(), "ci deploy", None));
    assert!(info.last_used_ms.is_some());

    store.flush().await.unwrap();
    let hash = stored_hash(&store, &id).await;
    let secret = parse_key(&key).unwrap().1;
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(hash != key && !hash.contains(secret), "the hash gives the key away: {hash}");
}

async fn wrong_and_malformed_keys_are_refused(db: Db) {
    let store = db.open();
    let (id, key) = store.create_key("admin").await.unwrap();
    let secret = parse_key(&key).unwrap().1;
    // Same id, another secret of the right shape.
    let flipped = if secret.starts_with('A') { "B" } else { "A" };
    let wrong = format!("fc_{id}_{flipped}{}", &secret[1..]);
    assert!(parse_key(&wrong).is_some());
    assert_eq!(store.verify_key(&wrong).await.unwrap(), None);
    // Unknown id, and shapes that never reach the database.
    let (other, _) = store.create_key("other").await.unwrap();
    assert_eq!(store.verify_key(&format!("fc_{other}_{secret}")).await.unwrap(), None, "a secret is bound to its id");
    for bad in ["", "fc_", &key[..key.len() - 1], &format!("{key}x"), &key.replace("fc_", "fx_"), "k1.abc.def"] {
        assert_eq!(store.verify_key(bad).await.unwrap(), None, "{bad:?}");
    }
    assert_eq!(store.keys.len(), 0, "failures are not remembered");
    assert!(store.verify_key(&key).await.unwrap().is_some());
}

async fn revoking_refuses_the_key_and_empties_the_cache(db: Db) {
    let store = db.open();
    let (id, key) = store.create_key("admin").await.unwrap();
    let (_, other) = store.create_key("other").await.unwrap();
    assert!(store.verify_key(&key).await.unwrap().is_some());
    assert!(store.verify_key(&other).await.unwrap().is_some());
    assert_eq!(store.keys.len(), 2, "successes are remembered");

    let revoked = store.revoke_key(&id).await.unwrap().expect("the key exists");
    assert!(revoked.revoked_ms.is_some());
    assert_eq!(store.keys.len(), 0, "revocation forgets every verified key");
    assert_eq!(store.verify_key(&key).await.unwrap(), None);
    assert!(store.verify_key(&other).await.unwrap().is_some(), "other keys still work");

    // Revoking again keeps the first time; an unknown id is no key.
    let again = store.revoke_key(&id).await.unwrap().unwrap();
    assert_eq!(again.revoked_ms, revoked.revoked_ms);
    assert_eq!(store.revoke_key("000000000000").await.unwrap(), None);
}

async fn keys_are_listed_without_secrets_and_survive_a_reopen(db: Db) {
    let store = db.open();
    let (a, key_a) = store.create_key("first").await.unwrap();
    let (b, key_b) = store.create_key("second").await.unwrap();
    store.revoke_key(&b).await.unwrap();
    let list = store.list_keys().await.unwrap();
    assert_eq!(
        list.iter().map(|k| (k.id.as_str(), k.name.as_str())).collect::<Vec<_>>(),
        [(a.as_str(), "first"), (b.as_str(), "second")]
    );
    assert_eq!((list[0].revoked_ms.is_some(), list[1].revoked_ms.is_some()), (false, true));
    let shown = format!("{list:?} {}", serde_json::to_string(&list).unwrap());
    for key in [&key_a, &key_b] {
        let secret = parse_key(key).unwrap().1;
        assert!(!shown.contains(secret) && !shown.contains("argon2"), "{shown}");
    }
    drop(store);

    let store = db.open();
    assert_eq!(store.list_keys().await.unwrap().len(), 2);
    assert_eq!(store.verify_key(&key_a).await.unwrap().map(|k| k.id), Some(a));
    assert_eq!(store.verify_key(&key_b).await.unwrap(), None, "still revoked");
}

async fn names_are_checked(db: Db) {
    let store = db.open();
    for bad in ["", "   ", "a\nb", &"x".repeat(65)] {
        assert!(matches!(store.create_key(bad).await, Err(StoreError::BadKeyName(_))), "{bad:?}");
    }
    let (id, _) = store.create_key(&"é".repeat(64)).await.unwrap();
    assert_eq!(store.list_keys().await.unwrap()[0].id, id);
}

#[test]
fn a_version_1_file_gains_the_key_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE sessions (id INTEGER PRIMARY KEY); PRAGMA user_version = 1;").unwrap();
    }
    drop(Store::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    let keys: i64 = conn.query_row("SELECT count(*) FROM api_keys", [], |r| r.get(0)).unwrap();
    assert_eq!((version, keys), (super::sqlite::MIGRATIONS.len() as i64, 0));
}

async fn a_key_in_use_does_not_queue_behind_guesses(db: Db) {
    let store = db.open();
    let (id, key) = store.create_key("ops").await.unwrap();
    store.verify_key(&key).await.unwrap().expect("the key verifies");
    // Its minute of trust is over: it is hashed again, while guesses hold every place of theirs.
    store.keys.expire_verified();
    let busy = store.keys.hold_unknown_lane();
    let again = tokio::time::timeout(Duration::from_secs(60), store.verify_key(&key)).await;
    assert!(again.is_ok_and(|r| r.unwrap().is_some()), "a key that verified today hashes in its own lane");
    drop(busy);
    let guess = format!("fc_{id}_{}", "A".repeat(43));
    assert!(parse_key(&guess).is_some(), "a well-formed guess");
    assert!(store.verify_key(&guess).await.unwrap().is_none(), "a guess of the same id is still refused");
}

on_both!(
    a_created_key_verifies_and_only_its_hash_is_stored,
    wrong_and_malformed_keys_are_refused,
    revoking_refuses_the_key_and_empties_the_cache,
    keys_are_listed_without_secrets_and_survive_a_reopen,
    names_are_checked,
    a_key_in_use_does_not_queue_behind_guesses
);

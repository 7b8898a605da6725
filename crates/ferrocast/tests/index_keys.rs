//! `ferrocast index keys` as an operator runs it: a key is created and printed once, listed
//! without its secret, opens the admin routes of an index process on the same database, and is
//! refused once revoked.

mod common;

use common::*;
use ferrocast_index::store::{Store, parse_key};

/// Runs `ferrocast args…`: (success, stdout, stderr).
async fn run(args: &[&str]) -> (bool, String, String) {
    let out = ferrocast().args(args).output().await.unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test]
async fn help_shows_the_keys_subcommand_and_its_flags() {
    let (ok, help, _) = run(&["index", "--help"]).await;
    assert!(ok && help.contains("keys") && help.contains("--listen"), "{help}");
    let (ok, help, _) = run(&["index", "keys", "create", "--help"]).await;
    assert!(ok && ["--name", "--db", "--config"].iter().all(|f| help.contains(f)), "{help}");
    let (ok, _, err) = run(&["index", "--listen", "127.0.0.1:0", "keys", "list"]).await;
    assert!(!ok && err.contains("cannot be used with"), "server flags and keys do not mix: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_created_listed_used_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("index.db");
    let db_arg = db.to_str().unwrap();
    let config = dir.path().join("index.toml");
    std::fs::write(&config, format!("db = {db_arg:?}\n")).unwrap();

    let (ok, out, err) = run(&["index", "keys", "create", "--name", "ci deploy", "--db", db_arg]).await;
    assert!(ok, "{err}");
    let key = out.trim().to_string();
    let (id, secret) = parse_key(&key).unwrap_or_else(|| panic!("stdout is the key alone: {out:?}"));
    assert!(err.contains("cannot be shown again") && err.contains(id), "{err}");

    // --config finds the same database.
    let (ok, list, err) = run(&["index", "keys", "list", "--config", config.to_str().unwrap()]).await;
    assert!(ok, "{err}");
    let row = list.lines().find(|l| l.starts_with(id)).unwrap_or_else(|| panic!("{id} not listed: {list}"));
    assert!(row.contains("ci deploy") && row.contains("never") && row.trim_end().ends_with('-'), "{list}");
    assert!(!list.contains(secret) && !list.contains(&key), "the secret is never shown again: {list}");

    // An index on that database takes the key on its admin routes; auth is on, so nothing else does.
    let index =
        IndexProcess::start(&db, &["--auth", "--auth-key", "k1=a secret of the cli test", "--hooks-open"]).await;
    let history = format!("http://{}/api/v1/history", index.addr);
    let client = reqwest::Client::new();
    let status = |req: reqwest::RequestBuilder| async move { req.send().await.unwrap().status().as_u16() };
    assert_eq!(status(client.get(&history)).await, 401);
    assert_eq!(status(client.get(&history).bearer_auth(&key)).await, 200);
    assert_eq!(status(client.get(&history).header("X-Api-Key", &key)).await, 200);

    // A second key, revoked before any use, is refused by the running index at once.
    let (_, other, _) = run(&["index", "keys", "create", "--name", "temp", "--db", db_arg]).await;
    let other = other.trim().to_string();
    let other_id = parse_key(&other).unwrap().0.to_string();
    let (ok, out, err) = run(&["index", "keys", "revoke", &other_id, "--db", db_arg]).await;
    assert!(ok && out.contains("Revoked"), "{out}{err}");
    assert_eq!(status(client.get(&history).bearer_auth(&other)).await, 401);

    let (ok, out, err) = run(&["index", "keys", "revoke", id, "--db", db_arg]).await;
    assert!(ok && out.contains(id) && out.contains("within 1000 ms"), "{out}{err}");
    let (_, list, _) = run(&["index", "keys", "list", "--db", db_arg]).await;
    let row = list.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(!row.trim_end().ends_with('-'), "listed as revoked, used once: {list}");
    assert!(!row.contains("never"), "its last use is recorded: {list}");
    let (ok, out, _) = run(&["index", "keys", "revoke", id, "--db", db_arg]).await;
    assert!(ok && out.contains("already revoked"), "{out}");
    let (ok, _, err) = run(&["index", "keys", "revoke", "0123456789ab", "--db", db_arg]).await;
    assert!(!ok && err.contains("keys list"), "{err}");
    drop(index);

    // What the store says, read as an index at its next start would.
    let store = Store::open(&db).unwrap();
    assert_eq!(store.verify_key(&key).await.unwrap(), None);
}

#[tokio::test]
async fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let (ok, _, err) = run(&["index", "keys", "list", "--db", missing.to_str().unwrap()]).await;
    assert!(!ok && err.contains("no index database") && err.contains("--db"), "{err}");
    assert!(!missing.exists(), "listing creates no database");
    let db = dir.path().join("index.db");
    let (ok, _, err) = run(&["index", "keys", "create", "--name", "", "--db", db.to_str().unwrap()]).await;
    assert!(!ok && err.contains("name"), "{err}");
}

/// Two index processes on one PostgreSQL database (as replicas behind a load balancer would be):
/// a key the CLI creates there opens both; revoked with the CLI, both refuse it within a second,
/// although each had just verified it. A database that cannot be reached is a clear error that
/// does not show the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_key_created_and_revoked_with_the_cli_holds_on_every_index() {
    let pg = ferrocast_index::testing::PostgresServer::start();
    let url = pg.new_database();
    let (ok, out, err) = run(&["index", "keys", "create", "--name", "ops", "--db", &url]).await;
    assert!(ok, "{err}");
    let key = out.trim().to_string();
    let id = parse_key(&key).expect("the key").0.to_string();

    let auth = ["--auth", "--auth-key", "k1=a secret of the cli test", "--hooks-open"];
    let a = IndexProcess::start(std::path::Path::new(&url), &auth).await;
    let b = IndexProcess::start(std::path::Path::new(&url), &auth).await;
    let client = reqwest::Client::new();
    let status = |addr: &str| {
        let req = client.get(format!("http://{addr}/api/v1/history")).bearer_auth(&key);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!((status(&a.addr).await, status(&b.addr).await), (200, 200), "both indexes admit the key");

    let (ok, out, err) = run(&["index", "keys", "revoke", &id, "--db", &url]).await;
    assert!(ok && out.contains("Revoked"), "{out}{err}");
    let revoked = std::time::Instant::now();
    loop {
        let now = (status(&a.addr).await, status(&b.addr).await);
        if now == (401, 401) {
            break;
        }
        assert!(revoked.elapsed() < std::time::Duration::from_secs(3), "still admitted: {now:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop((a, b));

    let nowhere = format!("postgres://ops:hunter2@127.0.0.1:{}/nope", pg.port);
    let (ok, _, err) = run(&["index", "keys", "list", "--db", &nowhere]).await;
    assert!(!ok && err.contains("PostgreSQL") && err.contains("nope"), "{err}");
    assert!(!err.contains("hunter2"), "the password is shown: {err}");
}

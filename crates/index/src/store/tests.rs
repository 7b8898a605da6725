//! Tests of the history store, each against a real SQLite file and a real PostgreSQL database.

use super::test_db::{Db, on_both};
use super::*;

const CAM1: &str = "__defaultVhost__/live/cam1";
const CAM10: &str = "__defaultVhost__/live/cam10";
const OTHER: &str = "__defaultVhost__/other/x";

async fn all(store: &Store) -> History {
    store.flush().await.expect("flush");
    store.history(HistoryQuery::default()).await.expect("history")
}

fn query(f: impl FnOnce(&mut HistoryQuery)) -> HistoryQuery {
    let mut q = HistoryQuery::default();
    f(&mut q);
    q
}

fn streams(h: &History) -> Vec<&str> {
    h.sessions.iter().map(|s| s.stream.as_str()).collect()
}

async fn sessions_round_trip(db: Db) {
    let store = db.open();
    store.session_started(CAM1, "o1", 1_000);
    store.session_node(CAM1, "o2");
    let h = all(&store).await;
    assert_eq!(
        h.sessions,
        vec![Session {
            id: h.sessions[0].id,
            stream: CAM1.into(),
            node: "o2".into(),
            published_ms: 1_000,
            unpublished_ms: None,
            peak_viewers: 0,
        }]
    );
    assert_eq!(store.open_sessions().await.unwrap(), h.sessions);
}

async fn peak_only_rises(db: Db) {
    let store = db.open();
    store.session_peak(CAM1, 50); // no open session: nothing to raise
    store.session_started(CAM1, "o1", 1_000);
    store.session_peak(CAM1, 10);
    store.session_peak(CAM1, 4);
    assert_eq!(all(&store).await.sessions[0].peak_viewers, 10);
    store.session_peak(CAM1, 12);
    store.session_peak(CAM1, u64::MAX); // out of SQLite's range: clamped, not lost
    assert_eq!(all(&store).await.sessions[0].peak_viewers, i64::MAX as u64);

    store.session_ended(CAM1, 2_000);
    store.session_started(CAM1, "o1", 3_000);
    store.session_peak(CAM1, 3); // only the open session rises
    let peaks: Vec<u64> = all(&store).await.sessions.iter().map(|s| s.peak_viewers).collect();
    assert_eq!(peaks, vec![3, i64::MAX as u64]);
}

async fn ended_closes_the_open_session(db: Db) {
    let store = db.open();
    store.session_started(CAM1, "o1", 1_000);
    store.session_started(OTHER, "o1", 1_500);
    store.session_ended(CAM1, 2_000);
    store.session_ended(CAM1, 9_000); // nothing open any more: no-op
    store.session_node(CAM1, "o9"); // likewise
    let h = all(&store).await;
    let cam1 = h.sessions.iter().find(|s| s.stream == CAM1).unwrap();
    assert_eq!((cam1.unpublished_ms, cam1.node.as_str()), (Some(2_000), "o1"));
    let open = store.open_sessions().await.unwrap();
    assert_eq!(open.iter().map(|s| s.stream.as_str()).collect::<Vec<_>>(), vec![OTHER]);
}

async fn a_second_start_closes_the_first(db: Db) {
    let store = db.open();
    store.session_started(CAM1, "o1", 1_000);
    store.session_started(CAM1, "o2", 5_000);
    let h = all(&store).await;
    assert_eq!(h.sessions.len(), 2);
    assert_eq!((h.sessions[0].node.as_str(), h.sessions[0].unpublished_ms), ("o2", None));
    assert_eq!((h.sessions[1].node.as_str(), h.sessions[1].unpublished_ms), ("o1", Some(5_000)));
    let open = store.open_sessions().await.unwrap();
    assert_eq!(open, vec![h.sessions[0].clone()]);
}

async fn history_survives_a_restart(db: Db) {
    let store = db.open();
    store.session_started(CAM1, "o1", 1_000);
    store.session_peak(CAM1, 7);
    store.session_started(OTHER, "o2", 2_000);
    store.session_ended(OTHER, 3_000);
    store.node_changed("e1", "up", "down", 4_000, "2 polls failed: connection refused");
    let before = all(&store).await;
    let open_before = store.open_sessions().await.unwrap();
    let clone = store.clone();
    drop(store);
    drop(clone);

    let store = db.open();
    assert_eq!(store.history(HistoryQuery::default()).await.unwrap(), before);
    assert_eq!(store.open_sessions().await.unwrap(), open_before);
    assert_eq!(open_before.len(), 1);
    assert_eq!(before.node_events.len(), 1);
    assert_eq!(before.node_events[0].reason, "2 polls failed: connection refused");
    // The schema is not re-created: writing after a reopen still keeps one open session per key.
    store.session_started(CAM1, "o1", 5_000);
    assert_eq!(store.open_sessions().await.unwrap().len(), 1);
}

async fn history_filters_by_stream_node_since_and_limit(db: Db) {
    let store = db.open();
    store.session_started(CAM1, "o1", 1_000);
    store.session_started(CAM10, "o2", 2_000);
    store.session_started(OTHER, "o1", 3_000);
    store.node_changed("o1", "up", "down", 1_500, "timeout");
    store.node_changed("o2", "up", "down", 2_500, "refused");
    store.node_changed("o1", "down", "up", 3_500, "answered");

    let h = all(&store).await;
    assert_eq!(streams(&h), vec![OTHER, CAM10, CAM1], "newest first");
    let ats: Vec<i64> = h.node_events.iter().map(|e| e.at_ms).collect();
    assert_eq!(ats, vec![3_500, 2_500, 1_500]);

    for prefix in ["__defaultVhost__/live/", "__defaultVhost__/live"] {
        let h = store.history(query(|q| q.stream = Some(prefix.into()))).await.unwrap();
        assert_eq!(streams(&h), vec![CAM10, CAM1], "prefix {prefix}");
        assert_eq!(h.node_events.len(), 3, "stream narrows sessions only");
    }
    let h = store.history(query(|q| q.stream = Some(CAM1.into()))).await.unwrap();
    assert_eq!(streams(&h), vec![CAM1], "an exact key is not a prefix of cam10");

    let h = store.history(query(|q| q.node = Some("o1".into()))).await.unwrap();
    assert_eq!(streams(&h), vec![OTHER, CAM1]);
    assert!(h.node_events.iter().all(|e| e.node == "o1") && h.node_events.len() == 2);

    let h = store.history(query(|q| q.since_ms = Some(2_000))).await.unwrap();
    assert_eq!(streams(&h), vec![OTHER, CAM10]);
    assert_eq!(h.node_events.len(), 2);

    let h = store
        .history(query(|q| {
            q.stream = Some("__defaultVhost__/live/".into());
            q.node = Some("o2".into());
            q.since_ms = Some(1_000);
        }))
        .await
        .unwrap();
    assert_eq!(streams(&h), vec![CAM10]);

    let h = store.history(query(|q| q.limit = Some(1))).await.unwrap();
    assert_eq!((streams(&h), h.node_events.len()), (vec![OTHER], 1));
}

async fn limit_defaults_to_100_and_caps_at_1000(db: Db) {
    let store = db.open();
    for i in 0..1_001 {
        store.node_changed("o1", "up", "down", i, "flap");
    }
    store.flush().await.unwrap();
    assert_eq!(store.history(HistoryQuery::default()).await.unwrap().node_events.len(), 100);
    let h = store.history(query(|q| q.limit = Some(5_000))).await.unwrap();
    assert_eq!(h.node_events.len(), 1_000);
    assert_eq!(h.node_events[0].at_ms, 1_000);
}

#[test]
fn a_missing_directory_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("history.db");
    let err = Store::open(&path).expect_err("open must fail");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("--db"), "{message}");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let err = Store::open(&path).expect_err("open must fail");
    let known = super::sqlite::MIGRATIONS.len() as i64;
    assert!(matches!(err, StoreError::TooNew { found: 99, known: k, .. } if k == known), "{err:?}");
}

async fn history_serializes_as_json(db: Db) {
    let store = db.open();
    store.session_started(CAM1, "", 1_000);
    store.node_changed("o1", "up", "down", 2_000, "timeout");
    let json = serde_json::to_value(all(&store).await).unwrap();
    assert_eq!(json["sessions"][0]["stream"], CAM1);
    assert_eq!(json["sessions"][0]["unpublished_ms"], serde_json::Value::Null);
    assert_eq!(json["node_events"][0]["from"], "up");
    assert_eq!(json["node_events"][0]["to"], "down");
}

async fn retention_forgets_old_ended_sessions_and_node_events_only(db: Db) {
    let store = db.open();
    store.session_started(CAM1, "o1", 1_000);
    store.session_ended(CAM1, 2_000);
    store.session_started(CAM10, "o1", 1_500);
    store.session_started(OTHER, "o1", 5_000);
    store.session_ended(OTHER, 9_000);
    store.node_changed("e1", "up", "down", 1_000, "old");
    store.node_changed("e1", "down", "up", 9_000, "new");
    store.prune(5_000);
    let h = all(&store).await;
    let mut kept = streams(&h);
    kept.sort_unstable();
    assert_eq!(kept, [CAM10, OTHER], "an open session stays however old; an ended one after the cut stays");
    assert_eq!(h.node_events.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(), ["new"]);
}

/// A write the database refuses (PostgreSQL takes no NUL in text; SQLite does) costs only itself:
/// the writes queued with it in the same transaction land.
async fn a_refused_write_spoils_no_other(db: Db) {
    let store = db.open();
    store.node_changed("a", "up", "down", 1, "fine");
    store.node_changed("b", "up", "down", 2, "nul \0 inside");
    store.node_changed("c", "up", "down", 3, "fine");
    let nodes: Vec<String> = all(&store).await.node_events.into_iter().map(|e| e.node).collect();
    assert!(nodes.contains(&"a".to_string()) && nodes.contains(&"c".to_string()), "{nodes:?}");
    assert!(!store.health().down.load(std::sync::atomic::Ordering::Relaxed), "a refused write is no outage");
}

on_both!(
    a_refused_write_spoils_no_other,
    sessions_round_trip,
    peak_only_rises,
    ended_closes_the_open_session,
    a_second_start_closes_the_first,
    history_survives_a_restart,
    history_filters_by_stream_node_since_and_limit,
    limit_defaults_to_100_and_caps_at_1000,
    history_serializes_as_json,
    retention_forgets_old_ended_sessions_and_node_events_only
);

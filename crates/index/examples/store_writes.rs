//! History write throughput of the index's store, for `bench/store.sh`: queues node changes and
//! stream sessions as the merge and pollers do (fire-and-forget), in chunks the store's queue
//! takes whole, waits for each chunk to be in the database, and prints the events per second.
//!
//! cargo run --release -p ferrocast-index --example store_writes -- --db /tmp/x.db --events 200000
//! cargo run --release -p ferrocast-index --example store_writes -- --db postgres://u@h/db

use std::path::PathBuf;
use std::time::Instant;

use ferrocast_index::store::Store;

/// Events queued before waiting for them (below the store's queue bound, so none is dropped).
const CHUNK: usize = 20_000;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut db = None;
    let mut events = 200_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--db" => db = args.next().map(PathBuf::from),
            "--events" => events = args.next().and_then(|n| n.parse().ok()).expect("--events N"),
            other => panic!("unknown argument {other:?}: --db FILE|URL [--events N]"),
        }
    }
    let db = db.expect("--db FILE|URL");
    let store = Store::open(&db).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let mut written = 0;
    while written < events {
        let n = CHUNK.min(events - written);
        for i in written..written + n {
            // A mix like a busy cluster's: a session start, a peak update, a node change.
            let key = format!("__defaultVhost__/live/s{}", i % 5000);
            match i % 3 {
                0 => store.session_started(&key, "o1", i as i64),
                1 => store.session_peak(&key, i as u64),
                _ => store.node_changed(&format!("e{}", i % 200), "up", "degraded", i as i64, "slow answers"),
            }
        }
        store.flush().await.unwrap_or_else(|e| panic!("{e}"));
        written += n;
    }
    let took = started.elapsed().as_secs_f64();
    assert_eq!(store.dropped(), 0, "writes were dropped: the chunk is larger than the queue");
    println!("{} {events} events in {took:.2} s: {:.0} events/s", store.kind(), events as f64 / took);
}

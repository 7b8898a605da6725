//! Cross-region origin replication with real processes: origins a (eu) and b (us) ask the index
//! where to forward each published stream (`--forward-backend`); an edge pulls from a, with b as
//! its backup; the publisher (`ferrocast push`, asking the index where to publish) publishes to a
//! only. a is killed: the edge's players keep receiving, the index names b as the stream's origin,
//! and the push moves to b.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

/// An HTTP-FLV player that records when each chunk arrived.
fn flv_player(url: String, run_for: Duration) -> tokio::task::JoinHandle<Vec<(tokio::time::Instant, usize)>> {
    tokio::spawn(async move {
        let mut arrivals = Vec::new();
        let Ok(mut r) = reqwest::get(url).await else { return arrivals };
        let _ = tokio::time::timeout(run_for, async {
            while let Ok(Some(c)) = r.chunk().await {
                arrivals.push((tokio::time::Instant::now(), c.len()));
            }
        })
        .await;
        arrivals
    })
}

async fn origin(name: &str, region: &str, idx: &str) -> NodeProcess {
    let backend = format!("{idx}/api/v1/hooks");
    NodeProcess::start(&[
        "--name",
        name,
        "--region",
        region,
        "--index",
        idx,
        "--index-interval-ms",
        "300",
        "--forward-backend",
        &backend,
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_forwarded_to_a_backup_region_survives_the_death_of_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let index = IndexProcess::start(&dir.path().join("index.db"), &["--nearest", "eu=us", "--nearest", "us=eu"]).await;
    let idx = format!("http://{}", index.addr);
    let a = origin("a", "eu", &idx).await;
    let b = origin("b", "us", &idx).await;
    eventually(Duration::from_secs(15), || async {
        let v = get_json(&format!("{idx}/api/v1/nodes")).await;
        (v["nodes"].as_array()?.iter().filter(|n| n["health"] == "up").count() == 2).then_some(())
    })
    .await
    .expect("both origins registered and up");

    // One publisher, sent to a (the first origin to register) by the index.
    let mut push = ferrocast()
        .args(["push", fixture(), "--loop", "--index", &idx, "--stream", "live/demo"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ferrocast push starts");
    eventually(Duration::from_secs(20), || active_stream(&b.api, "/live/demo"))
        .await
        .expect("a forwards the stream to b, as the index answered its on_forward");
    // The index learns of b's copy at its next poll of b, so wait for the directory to name both.
    let origin_is = |name: &'static str, holders: usize| {
        let idx = idx.clone();
        move || {
            let idx = idx.clone();
            async move {
                let s = get_json(&format!("{idx}/api/v1/streams/live/demo")).await["stream"].clone();
                (s["origin"] == name && s["origins"].as_array().map(Vec::len) == Some(holders)).then_some(s)
            }
        }
    };
    eventually(Duration::from_secs(10), origin_is("a", 2)).await.expect("a is the stream's origin, b holds a replica");
    assert!(active_stream(&a.api, "/live/demo").await.is_some());

    let edge =
        NodeProcess::start(&["--role", "edge", "--origin", &a.rtmp, "--origin", &b.rtmp, "--merge-window-ms", "100"])
            .await;
    let url = format!("http://{}/live/demo.flv", edge.http);
    let players: Vec<_> = (0..20).map(|_| flv_player(url.clone(), Duration::from_secs(20))).collect();
    eventually(Duration::from_secs(10), || async {
        let s = active_stream(&edge.api, "/live/demo").await?;
        (s["clients"] == 20).then_some(())
    })
    .await
    .expect("20 players on the edge");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let killed_at = tokio::time::Instant::now();
    a.signal("-KILL");

    eventually(Duration::from_secs(15), origin_is("b", 1)).await.expect("the index names b the only origin");
    let publish = get_json(&format!("{idx}/api/v1/publish/live/demo")).await;
    assert_eq!(publish["node"], "b", "publishers are sent to b: {publish}");

    let mut gaps = Vec::new();
    for p in players {
        let arrivals = p.await.unwrap();
        assert!(arrivals.iter().any(|(t, _)| *t < killed_at), "the player got media before the kill");
        let after: Vec<_> = arrivals.iter().filter(|(t, _)| *t > killed_at).collect();
        assert!(after.iter().map(|(_, n)| n).sum::<usize>() > 100_000, "the player keeps receiving after the kill");
        let last = after.last().unwrap().0;
        assert!(last.duration_since(killed_at) > Duration::from_secs(8), "still receiving well after the kill");
        // The longest silence after the kill is what a viewer saw of the failover.
        let mut prev = killed_at;
        let mut gap = Duration::ZERO;
        for (t, _) in after {
            gap = gap.max(t.duration_since(prev));
            prev = *t;
        }
        gaps.push(gap);
    }
    gaps.sort();
    eprintln!(
        "replication failover: longest silence per player after the kill, median {:?}, max {:?}",
        gaps[gaps.len() / 2],
        gaps.last().unwrap()
    );
    push.kill().await.ok();
    drop(b);
}

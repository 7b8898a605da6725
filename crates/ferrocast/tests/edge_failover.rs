//! A real cluster of processes: two origins, one edge. Players on the edge keep playing when the
//! origin they are fed from is killed with SIGKILL; the edge holds exactly one upstream per stream.

mod common;

use std::time::Duration;

use common::*;
use tokio::process::Command;

/// An HTTP-FLV player on the edge that records when each chunk arrived.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_on_an_edge_survive_the_death_of_their_origin() {
    let o1 = NodeProcess::start(&["--name", "o1"]).await;
    let o2 = NodeProcess::start(&["--name", "o2"]).await;
    let _p1 = publish(&format!("rtmp://{}/live/demo", o1.rtmp));
    let _p2 = publish(&format!("rtmp://{}/live/demo", o2.rtmp));
    for o in [&o1, &o2] {
        eventually(Duration::from_secs(15), || active_stream(&o.api, "/live/demo")).await.expect("origin live");
    }
    let edge =
        NodeProcess::start(&["--role", "edge", "--origin", &o1.rtmp, "--origin", &o2.rtmp, "--merge-window-ms", "100"])
            .await;

    let url = format!("http://{}/live/demo.flv", edge.http);
    let flv: Vec<_> = (0..20).map(|_| flv_player(url.clone(), Duration::from_secs(16))).collect();
    let rtmp: Vec<_> = (0..5)
        .map(|_| {
            let u = format!("rtmp://{}/live/demo", edge.rtmp);
            tokio::spawn(async move {
                let mut c = Command::new("ffmpeg");
                c.args([
                    "-hide_banner",
                    "-v",
                    "error",
                    "-rw_timeout",
                    "5000000",
                    "-i",
                    &u,
                    "-t",
                    "14",
                    "-f",
                    "null",
                    "-",
                ]);
                c.kill_on_drop(true).stdin(std::process::Stdio::null());
                tokio::time::timeout(Duration::from_secs(40), c.output())
                    .await
                    .expect("ffmpeg player finishes")
                    .unwrap()
            })
        })
        .collect();

    // Exactly one upstream from the edge on O1, however many players.
    let o1_clients = eventually(Duration::from_secs(10), || async {
        let v = get_json(&format!("http://{}/api/v1/clients/?count=100", o1.api)).await;
        let players: Vec<_> = v["clients"].as_array()?.iter().filter(|c| c["publish"] == false).cloned().collect();
        (!players.is_empty()).then_some(players)
    })
    .await
    .expect("the edge pulls from o1");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = get_json(&format!("http://{}/api/v1/clients/?count=100", o1.api)).await;
    let from_edge = v["clients"].as_array().unwrap().iter().filter(|c| c["publish"] == false).count();
    assert_eq!((o1_clients.len(), from_edge), (1, 1), "one upstream pull for 25 players");
    let edge_rec = active_stream(&edge.api, "/live/demo").await.expect("edge shows the stream active");
    assert_eq!(edge_rec["clients"], 25, "the upstream pull is not a client, as on SRS's edge: {edge_rec}");
    let cid = edge_rec["publish"]["cid"].as_str().expect("publish.cid: the player that started the pull").to_string();
    let edge_clients = get_json(&format!("http://{}/api/v1/clients/{cid}", edge.api)).await;
    assert_eq!(edge_clients["client"]["publish"], false, "publish.cid names a player: {edge_clients}");

    let killed_at = tokio::time::Instant::now();
    o1.signal("-KILL");

    let mut gaps = Vec::new();
    for p in flv {
        let arrivals = p.await.unwrap();
        let before = arrivals.iter().filter(|(t, _)| *t < killed_at).count();
        let after: Vec<_> = arrivals.iter().filter(|(t, _)| *t > killed_at).collect();
        assert!(before > 0, "player got media before the kill");
        assert!(after.iter().map(|(_, n)| n).sum::<usize>() > 100_000, "player keeps receiving after the kill");
        // The edge keeps the connection: media arrived until the end of the play.
        let last = after.last().unwrap().0;
        assert!(last.duration_since(killed_at) > Duration::from_secs(5), "still receiving well after the kill");
        gaps.push(after.first().unwrap().0.duration_since(killed_at));
    }
    for p in rtmp {
        let out = p.await.unwrap();
        assert!(
            out.status.success(),
            "ffmpeg over RTMP decoded through the failover: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    gaps.sort();
    eprintln!(
        "failover: first media after the kill, median {:?}, max {:?}",
        gaps[gaps.len() / 2],
        gaps.last().unwrap()
    );
    let rec = active_stream(&edge.api, "/live/demo").await.expect("still live on the edge");
    assert_eq!(rec["video"]["width"], 640);
    drop(o2);
}

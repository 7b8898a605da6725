//! Mass churn: many players arrive and leave at once; afterwards the node has no leftovers and
//! serves a new player at once. (The benchmark runs the full 2,000; the suite runs 300.)

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_mass_churn_new_players_are_served_and_nothing_leaks() {
    let node = start_node().await;
    let _p = publish_fixture(&format!("rtmp://{}/live/churn", node.rtmp_addr));
    wait_published(node.api_addr, "/live/churn").await;

    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..300 {
        if i % 2 == 0 {
            tasks.push(tokio::spawn(rtmp_play(node.rtmp_addr, "live/churn", Duration::from_millis(1500)).then_count()));
        } else {
            let url = format!("http://{}/live/churn.flv", node.http_addr);
            let http = http.clone();
            tasks.push(tokio::spawn(async move {
                let Ok(mut r) = http.get(url).send().await else { return 0 };
                let mut got = 0;
                let _ = tokio::time::timeout(Duration::from_millis(1500), async {
                    while let Ok(Some(c)) = r.chunk().await {
                        got += c.len();
                    }
                })
                .await;
                got
            }));
        }
    }
    let got: Vec<usize> = futures_util::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let served = got.iter().filter(|&&n| n > 0).count();
    assert_eq!(served, 300, "every churn player got media");

    // Everyone left: only the publisher remains.
    let left = eventually(Duration::from_secs(10), || async {
        let v = get_json(&format!("http://{}/api/v1/clients/?count=1000", node.api_addr)).await;
        (v["clients"].as_array().map(Vec::len) == Some(1)).then_some(())
    })
    .await;
    assert!(left.is_some(), "departed players are removed from the registry");

    let stats = rtmp_play(node.rtmp_addr, "live/churn", Duration::from_secs(2)).await;
    assert!(stats.video_keyframes >= 1 && stats.media > 20, "a new player is served: {stats:?}");
    node.shutdown().await;
}

trait ThenCount {
    fn then_count(self) -> impl std::future::Future<Output = usize> + Send;
}

impl<F: std::future::Future<Output = PlayStats> + Send> ThenCount for F {
    async fn then_count(self) -> usize {
        self.await.media
    }
}

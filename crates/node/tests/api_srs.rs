//! The SRS HTTP API v1 as a poller written for SRS sees it: shapes, paging, redirects, error
//! codes, and kicking a client.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_listed_in_srs_shape_and_go_inactive_when_the_publisher_leaves() {
    let node = start_node().await;
    let api = node.api_addr;
    let publisher = publish_fixture(&format!("rtmp://{}/live/demo", node.rtmp_addr));
    let rec = wait_published(api, "/live/demo").await;
    let player = tokio::spawn(rtmp_play(node.rtmp_addr, "live/demo", Duration::from_secs(60)));

    let rec = eventually(Duration::from_secs(10), || async {
        stream_record(api, "/live/demo").await.filter(|s| s["clients"] == 2 && s["kbps"]["recv_30s"].as_u64() > Some(0))
    })
    .await
    .unwrap_or(rec);
    assert_eq!(rec["clients"], 2, "publisher + player: {rec}");
    assert_eq!(rec["name"], "demo");
    assert_eq!(rec["app"], "live");
    assert!(rec["id"].as_str().unwrap().starts_with("vid-"));
    assert!(rec["vhost"].as_str().unwrap().starts_with("vid-"), "vhost is an id, as SRS");
    assert_eq!(rec["publish"]["active"], true);
    assert_eq!(rec["publish"]["cid"].as_str().unwrap().len(), 8);
    assert_eq!(rec["video"]["codec"], "H264");
    assert_eq!(rec["video"]["width"], 640);
    assert_eq!(rec["video"]["height"], 360);
    assert_eq!(rec["audio"]["codec"], "AAC");
    assert_eq!(rec["audio"]["channel"], 2);
    assert!(rec["kbps"]["recv_30s"].as_u64().unwrap() > 100, "a rate shows before 30 s: {rec}");

    let v = get_json(&format!("http://{api}/api/v1/streams/")).await;
    for key in ["code", "server", "service", "pid"] {
        assert!(v.get(key).is_some(), "envelope has {key}");
    }
    assert!(v["pid"].is_string(), "pid is a string, as SRS");
    let vhosts = get_json(&format!("http://{api}/api/v1/vhosts/")).await;
    assert_eq!(vhosts["vhosts"][0]["name"], "__defaultVhost__");
    assert_eq!(vhosts["vhosts"][0]["id"], rec["vhost"]);

    drop(publisher);
    let gone = eventually(Duration::from_secs(10), || async {
        stream_record(api, "/live/demo").await.filter(|s| s["publish"]["active"] == false)
    })
    .await
    .expect("the player keeps the entry, inactive");
    assert!(gone["video"].is_null());
    player.abort();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slashless_paths_redirect_and_unknown_ids_answer_with_codes() {
    let node = start_node().await;
    let api = node.api_addr;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client.get(format!("http://{api}/api/v1/streams?count=5")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/api/v1/streams/?count=5");
    assert_eq!(get_json(&format!("http://{api}/api/v1/streams/vid-nothere")).await["code"], 2048);
    assert_eq!(get_json(&format!("http://{api}/api/v1/clients/nothere1")).await["code"], 2049);
    let r = client.delete(format!("http://{api}/api/v1/clients/nothere1")).send().await.unwrap();
    assert_eq!(r.status(), 403, "a node without an API token kicks nobody");
    let v = get_json(&format!("http://{api}/api/v1/versions")).await;
    assert_eq!(v["code"], 0);
    assert!(v["data"]["version"].is_string());
    let s = get_json(&format!("http://{api}/api/v1/summaries")).await;
    assert!(s["data"]["self"]["mem_kbyte"].as_u64().unwrap() > 0);
    assert_eq!(client.get(format!("http://{api}/api/v1/nope")).send().await.unwrap().status(), 404);
    let jsonp =
        client.get(format!("http://{api}/api/v1/versions?callback=cb")).send().await.unwrap().text().await.unwrap();
    assert!(jsonp.starts_with("cb({") && jsonp.ends_with("})"), "{jsonp}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_page_and_a_kicked_player_leaves_within_a_second_while_others_play_on() {
    let node = start_with(ferrocast_node::NodeConfig { api_token: Some(API_TOKEN.into()), ..loopback_config() }).await;
    let api = node.api_addr;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/kick", node.rtmp_addr));
    wait_published(api, "/live/kick").await;
    let players: Vec<_> =
        (0..3).map(|_| tokio::spawn(rtmp_play(node.rtmp_addr, "live/kick", Duration::from_secs(8)))).collect();
    let mut flv = reqwest::get(format!("http://{}/live/kick.flv", node.http_addr)).await.unwrap();

    let clients = eventually(Duration::from_secs(10), || async {
        let v = get_json(&format!("http://{api}/api/v1/clients/?count=100")).await;
        let list = v["clients"].as_array().cloned().unwrap_or_default();
        (list.len() == 5).then_some(list)
    })
    .await
    .expect("publisher + 3 rtmp + 1 flv clients");
    let page = get_json(&format!("http://{api}/api/v1/clients/?start=1&count=2")).await;
    assert_eq!(page["clients"].as_array().unwrap().len(), 2);
    assert_eq!(page["clients"][0]["id"], clients[1]["id"]);

    let flv_client = clients.iter().find(|c| c["type"] == "flv-play").expect("flv client listed");
    assert_eq!(flv_client["name"], "kick.flv");
    let rtmp_victim = clients.iter().find(|c| c["type"] == "rtmp-play").unwrap();
    let http = authed();
    for victim in [flv_client, rtmp_victim] {
        let r: serde_json::Value = http
            .delete(format!("http://{api}/api/v1/clients/{}", victim["id"].as_str().unwrap()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["code"], 0);
    }
    // The HTTP-FLV body ends within a second.
    let kicked_at = Instant::now();
    let ended =
        tokio::time::timeout(Duration::from_secs(1), async { while let Ok(Some(_)) = flv.chunk().await {} }).await;
    assert!(ended.is_ok(), "kicked HTTP-FLV player still connected after {:?}", kicked_at.elapsed());

    let results: Vec<PlayStats> =
        futures_util::future::join_all(players).await.into_iter().map(Result::unwrap).collect();
    let full = results.iter().filter(|s| s.elapsed >= Duration::from_secs(7) && s.media > 300).count();
    let cut = results.iter().filter(|s| s.elapsed < Duration::from_secs(7)).count();
    assert_eq!((full, cut), (2, 1), "the kicked player left, the two others played on: {results:?}");
    let gone = get_json(&format!("http://{api}/api/v1/clients/{}", rtmp_victim["id"].as_str().unwrap())).await;
    assert_eq!(gone["code"], 2049, "kicked client is gone from the list");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vhost_named_in_the_stream_query_keys_the_stream() {
    let node = start_node().await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/vh?vhost=v2&token=x", node.rtmp_addr));
    let rec = wait_published(node.api_addr, "v2/live/vh").await;
    let vhosts = get_json(&format!("http://{}/api/v1/vhosts/", node.api_addr)).await;
    let v2 = vhosts["vhosts"].as_array().unwrap().iter().find(|v| v["name"] == "v2").expect("vhost v2 listed");
    assert_eq!(v2["id"], rec["vhost"]);
    // A player of the default vhost does not see it.
    let stats = rtmp_play(node.rtmp_addr, "live/vh", Duration::from_millis(1500)).await;
    assert_eq!(stats.media, 0, "{stats:?}");
    node.shutdown().await;
}

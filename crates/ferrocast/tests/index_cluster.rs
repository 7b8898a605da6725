//! A real cluster of processes under one index server: an origin the index is configured with,
//! two edges in two regions that register themselves with `--index` (SRS's heartbeat body), FFmpeg
//! publishing, and players sent to the edges by the index. The directory must list the stream
//! once, with its origin, both edges, their viewers, codecs and resolution. And a browser sent by
//! the index plays WebRTC (WHEP) from a cold edge.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::process::{Child, Command};

/// An HTTP-FLV player that reads until dropped; it counts the bytes it got.
fn flv_player(url: String) -> (tokio::task::JoinHandle<()>, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let got = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let g = got.clone();
    let task = tokio::spawn(async move {
        let Ok(mut r) = reqwest::get(url).await else { return };
        while let Ok(Some(c)) = r.chunk().await {
            g.fetch_add(c.len(), std::sync::atomic::Ordering::Relaxed);
        }
    });
    (task, got)
}

fn rtmp_player(url: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i", url, "-t", "60", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg is installed (scripts/test installs it)")
}

/// An edge in `region` that pulls from `origin`, registers with the index `idx` and plays WebRTC.
async fn start_edge(name: &str, region: &str, origin: &NodeProcess, idx: &str) -> NodeProcess {
    NodeProcess::start(&[
        "--name",
        name,
        "--role",
        "edge",
        "--region",
        region,
        "--origin",
        &origin.rtmp,
        "--index",
        idx,
        "--index-interval-ms",
        "300",
        "--webrtc-udp",
        "127.0.0.1:0",
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_lists_a_live_stream_once_with_its_origin_edges_viewers_and_codecs() {
    let dir = tempfile::tempdir().unwrap();
    let origin = NodeProcess::start(&["--name", "o1"]).await;
    let spec = format!(
        "name=o1,role=origin,api=http://{},rtmp=rtmp://{},http=http://{},region=eu",
        origin.api, origin.rtmp, origin.http
    );
    let index = IndexProcess::start(&dir.path().join("index.db"), &["--node", &spec, "--nearest", "eu=us"]).await;
    let idx = format!("http://{}", index.addr);
    let mut edges = Vec::new();
    for (name, region) in [("e1", "eu"), ("e2", "us")] {
        edges.push(start_edge(name, region, &origin, &idx).await);
    }
    // The edges registered themselves and are polled.
    let nodes = eventually(Duration::from_secs(15), || async {
        let v = get_json(&format!("{idx}/api/v1/nodes")).await;
        let up = v["nodes"].as_array()?.iter().filter(|n| n["health"] == "up").count();
        (up == 3).then_some(v)
    })
    .await
    .expect("origin and both edges up in the index");
    let e1 = nodes["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "e1").unwrap().clone();
    assert_eq!(
        (e1["role"].as_str(), e1["region"].as_str(), e1["registered"].as_bool()),
        (Some("edge"), Some("eu"), Some(true))
    );
    assert_eq!(e1["http"], format!("http://{}", edges[0].http), "the heartbeat's ports are the edge's bound ports");

    let _publisher = publish(&format!("rtmp://{}/live/demo", origin.rtmp));
    eventually(Duration::from_secs(15), || async {
        let v = get_json(&format!("{idx}/api/v1/streams/live/demo")).await;
        (v["code"] == 0).then_some(())
    })
    .await
    .expect("the index sees the published stream");

    // Viewers ask the index: two HTTP-FLV players in eu (through the 302), one RTMP player in us.
    let answer = get_json(&format!("{idx}/api/v1/play/live/demo?proto=flv&region=eu")).await;
    assert_eq!(answer["node"], "e1", "{answer}");
    assert_eq!(answer["url"], format!("http://{}/live/demo.flv", edges[0].http));
    let players: Vec<_> = (0..2).map(|_| flv_player(format!("{idx}/play/live/demo.flv?region=eu"))).collect();
    let rtmp = get_json(&format!("{idx}/play/live/demo?region=us")).await;
    assert_eq!(rtmp["node"], "e2", "{rtmp}");
    assert_eq!(rtmp["url"], format!("rtmp://{}/live/demo", edges[1].rtmp));
    let _rtmp_player = rtmp_player(rtmp["url"].as_str().unwrap());

    let last = std::sync::Mutex::new(Value::Null);
    let stream = eventually(Duration::from_secs(20), || async {
        let s = get_json(&format!("{idx}/api/v1/streams/live/demo")).await["stream"].clone();
        *last.lock().unwrap() = s.clone();
        (s["viewers"] == 3 && s["edges"].as_array()?.len() == 2).then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("3 viewers on 2 edges; last answer: {}", last.lock().unwrap()));
    // Counted as viewers when they connect; their first bytes follow within the merge window.
    let got_media =
        || async { players.iter().all(|(_, got)| got.load(std::sync::atomic::Ordering::Relaxed) > 0).then_some(()) };
    eventually(Duration::from_secs(10), got_media).await.expect("FLV players sent by the index get media");
    assert_eq!(stream["key"], "__defaultVhost__/live/demo");
    assert_eq!(stream["origin"], "o1");
    let edge_viewers = |name: &str| {
        stream["edges"].as_array().unwrap().iter().find(|e| e["node"] == name).map(|e| e["viewers"].clone())
    };
    assert_eq!(edge_viewers("e1"), Some(Value::from(2)), "{stream}");
    assert_eq!(edge_viewers("e2"), Some(Value::from(1)), "{stream}");
    assert_eq!(stream["origin_viewers"], 0, "edge pulls are not viewers: {stream}");
    assert_eq!(stream["video"]["codec"], "H264");
    assert_eq!((stream["video"]["width"].as_u64(), stream["video"]["height"].as_u64()), (Some(640), Some(360)));
    assert_eq!(stream["audio"]["codec"], "AAC");
    assert_eq!(stream["audio"]["sample_rate"], 44100);
    let list = get_json(&format!("{idx}/api/v1/streams")).await;
    assert_eq!(list["total"], 1, "one entry for the stream on three nodes: {list}");

    // ffprobe follows the index's redirect to an edge and finds both tracks.
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(format!("{idx}/play/live/demo.flv?region=us"))
        .output()
        .await
        .expect("ffprobe runs");
    let codecs = String::from_utf8_lossy(&probe.stdout);
    assert!(codecs.contains("h264") && codecs.contains("aac"), "ffprobe through the index: {codecs:?}");

    // Low-Latency HLS is scheduled the same way: the answer names the edge's LL-HLS playlist,
    // and ffprobe follows the redirect to it (the edge cuts the parts from the frames it pulls).
    let ll = get_json(&format!("{idx}/api/v1/play/live/demo?proto=llhls&region=eu")).await;
    assert_eq!((ll["node"].as_str(), ll["proto"].as_str()), (Some("e1"), Some("llhls")), "{ll}");
    assert_eq!(ll["url"], format!("http://{}/live/demo/index.m3u8", edges[0].http));
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(format!("{idx}/play/live/demo/index.m3u8?region=eu"))
        .output()
        .await
        .expect("ffprobe runs");
    let codecs = String::from_utf8_lossy(&probe.stdout);
    assert!(codecs.contains("h264") && codecs.contains("aac"), "LL-HLS through the index: {codecs:?}");

    // WebRTC too: the answer names the edge's WHEP endpoint, and a player's offer POSTed to the
    // index is sent on with a 307, which keeps the method and the body.
    let whep = get_json(&format!("{idx}/api/v1/play/live/demo?proto=whep&region=eu")).await;
    assert_eq!(whep["url"], format!("http://{}/live/demo/whep", edges[0].http), "{whep}");
    let no_follow = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = no_follow.post(format!("{idx}/play/live/demo/whep?region=eu")).body("v=0").send().await.unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], format!("http://{}/live/demo/whep", edges[0].http).as_str());
    for (task, _) in players {
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sent_by_the_index_plays_webrtc_with_audio_from_a_cold_edge() {
    let dir = tempfile::tempdir().unwrap();
    let origin = NodeProcess::start(&["--name", "o1"]).await;
    let spec = format!(
        "name=o1,role=origin,api=http://{},rtmp=rtmp://{},http=http://{}",
        origin.api, origin.rtmp, origin.http
    );
    let index = IndexProcess::start(&dir.path().join("index.db"), &["--node", &spec]).await;
    let idx = format!("http://{}", index.addr);
    let edge = start_edge("e1", "eu", &origin, &idx).await;
    let _publisher = publish_file(webrtc_fixture(), &format!("rtmp://{}/live/demo", origin.rtmp));
    eventually(Duration::from_secs(15), || async {
        let v = get_json(&format!("{idx}/api/v1/streams/live/demo")).await;
        let up = get_json(&format!("{idx}/api/v1/nodes")).await["nodes"]
            .as_array()?
            .iter()
            .filter(|n| n["health"] == "up")
            .count();
        (v["code"] == 0 && up == 2).then_some(())
    })
    .await
    .expect("the index sees the stream and both nodes");
    let carried = get_json(&format!("http://{}/api/v1/streams/", edge.api)).await;
    assert_eq!(carried["streams"], serde_json::json!([]), "the edge is cold: {carried}");

    let whep = get_json(&format!("{idx}/api/v1/play/live/demo?proto=whep")).await;
    assert_eq!((whep["node"].as_str(), whep["proto"].as_str()), (Some("e1"), Some("whep")), "{whep}");
    let url = whep["url"].as_str().unwrap();
    // The index counts the WebRTC viewer on the edge while it plays.
    let counted = tokio::spawn({
        let idx = idx.clone();
        async move {
            eventually(Duration::from_secs(30), || async {
                let s = get_json(&format!("{idx}/api/v1/streams/live/demo")).await["stream"].clone();
                (s["edges"].as_array()?.iter().any(|e| e["node"] == "e1" && e["viewers"] == 1)).then_some(())
            })
            .await
        }
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/whep_play.mjs");
    let out = tokio::time::timeout(Duration::from_secs(90), Command::new("node").args([script, url, "9"]).output())
        .await
        .expect("the browser run ends")
        .expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let last = report["samples"].as_array().and_then(|s| s.last()).cloned().unwrap_or_default();
    assert_eq!((report["status"].as_str(), report["errors"].clone()), (Some("201"), serde_json::json!([])), "{report}");
    assert!(last["framesDecoded"].as_u64().unwrap_or(0) >= 150, "{report}");
    assert_eq!(last["freezes"], 0, "{report}");
    assert!(last["audioPackets"].as_u64().unwrap_or(0) >= 200, "{report}");
    assert!(last["audioRms"].as_f64().unwrap_or(0.0) > 0.01, "the audio is silent: {report}");
    assert!(counted.await.unwrap().is_some(), "the index counted one viewer on e1");
}

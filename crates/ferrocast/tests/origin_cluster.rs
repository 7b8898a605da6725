//! An origin cluster of real processes: three origins that register with one index (`--index`,
//! which also makes the index their coworker), twelve streams published with `ferrocast push
//! --index`, and edges that find each stream's origin — by asking the index, or by following an
//! origin's RTMP 302 — checked with real FFmpeg/ffprobe.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use tokio::process::Child;

/// `ferrocast push` of the fixture, looping, placed by the index; killed on drop.
fn push(index: &str, stream: &str) -> Child {
    ferrocast()
        .args(["push", fixture(), "--loop", "--index", index, "--stream", stream])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ferrocast push starts")
}

/// The origin each live stream is on, by the index's directory.
async fn origins_of_streams(index: &str) -> HashMap<String, String> {
    let v = get_json(&format!("{index}/api/v1/streams?count=100")).await;
    v["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["stream"].as_str()?.to_string(), s["origin"].as_str()?.to_string())))
        .collect()
}

/// Probes every URL, four at a time; returns those that did not play h264+aac.
async fn unplayable(urls: Vec<String>) -> Vec<String> {
    let mut bad = Vec::new();
    for batch in urls.chunks(4) {
        let mut probes = tokio::task::JoinSet::new();
        for u in batch {
            let u = u.clone();
            probes.spawn(async move {
                let codecs = probe(&u).await;
                (u, codecs)
            });
        }
        while let Some(Ok((url, codecs))) = probes.join_next().await {
            if !(codecs.contains("h264") && codecs.contains("aac")) {
                bad.push(format!("{url}: {codecs:?}"));
            }
        }
    }
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_spread_over_origins_and_edges_find_each_one() {
    let dir = tempfile::tempdir().unwrap();
    let index = IndexProcess::start(&dir.path().join("index.db"), &[]).await;
    let idx = format!("http://{}", index.addr);
    let mut origins = Vec::new();
    for name in ["o1", "o2", "o3"] {
        origins.push(NodeProcess::start(&["--name", name, "--index", &idx, "--index-interval-ms", "500"]).await);
    }
    eventually(Duration::from_secs(20), || async {
        let v = get_json(&format!("{idx}/api/v1/nodes")).await;
        (v["nodes"].as_array()?.iter().filter(|n| n["health"] == "up" && n["role"] == "origin").count() == 3)
            .then_some(())
    })
    .await
    .expect("three origins registered and up");

    let names: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
    let mut pushes = Vec::new();
    for n in &names {
        pushes.push(push(&idx, &format!("live/{n}")));
        // One at a time, as publishers arrive: each placement sees the ones before it.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let placed = eventually(Duration::from_secs(40), || async {
        let m = origins_of_streams(&idx).await;
        (names.iter().all(|n| m.contains_key(n))).then_some(m)
    })
    .await
    .expect("all 12 streams live");
    let mut per_origin: HashMap<&str, usize> = HashMap::new();
    for origin in placed.values() {
        *per_origin.entry(origin.as_str()).or_default() += 1;
    }
    println!("streams per origin: {per_origin:?}");
    for o in ["o1", "o2", "o3"] {
        let n = per_origin.get(o).copied().unwrap_or(0);
        assert!((3..=5).contains(&n), "4 (±1) streams on {o}: {per_origin:?}");
    }

    // An edge with --index and no --origin plays every stream, over RTMP and HTTP-FLV.
    let edge = NodeProcess::start(&["--role", "edge", "--name", "e1", "--index", &idx]).await;
    let mut urls: Vec<String> = names.iter().map(|n| format!("rtmp://{}/live/{n}", edge.rtmp)).collect();
    urls.extend(names.iter().map(|n| format!("http://{}/live/{n}.flv", edge.http)));
    let bad = unplayable(urls).await;
    assert!(bad.is_empty(), "the edge played every stream: {bad:?}");

    // An edge that knows only o1 plays a stream that lives elsewhere, through o1's RTMP 302.
    let (elsewhere, holder) = placed.iter().find(|(_, o)| o.as_str() != "o1").expect("a stream not on o1");
    let only_o1 = NodeProcess::start(&["--role", "edge", "--name", "e2", "--origin", &origins[0].rtmp]).await;
    let codecs = probe(&format!("rtmp://{}/live/{elsewhere}", only_o1.rtmp)).await;
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "{elsewhere} (on {holder}) through o1's redirect: {codecs:?}"
    );
    // And an HTTP-FLV player asking o1 directly is sent to the holder with a 302.
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://{}/live/{elsewhere}.flv", origins[0].http))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let holder_http = &origins[["o1", "o2", "o3"].iter().position(|o| o == holder).unwrap()].http;
    assert_eq!(location, format!("http://{holder_http}/live/{elsewhere}.flv"));
    let codecs = probe(&format!("http://{}/live/{elsewhere}.flv", origins[0].http)).await;
    assert!(codecs.contains("h264") && codecs.contains("aac"), "ffprobe follows the 302: {codecs:?}");
    // A WHEP offer to o1 goes there too, with a 307 (a POST's method and body are kept).
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("http://{}/live/{elsewhere}/whep?token=t1", origins[0].http))
        .header("content-type", "application/sdp")
        .header("authorization", "Bearer secret-bearer")
        .body("v=0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 307);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("http://{holder_http}/live/{elsewhere}/whep?token=t1"),
        "the header's token is not echoed"
    );

    // An encoder publishing to the edge (which has no --origin at all) is pushed up to where the
    // index places the stream.
    let _encoder = publish(&format!("rtmp://{}/live/via-edge", edge.rtmp));
    let on = eventually(Duration::from_secs(20), || async { origins_of_streams(&idx).await.remove("via-edge") })
        .await
        .expect("live/via-edge reaches an origin");
    let placement = get_json(&format!("{idx}/api/v1/publish/live/via-edge")).await;
    assert_eq!(placement["node"], on.as_str(), "the index keeps it where it placed it: {placement}");
    drop(pushes);
}

/// An FFmpeg player of `url` reporting its progress; the longest wall-clock stretch without
/// media progress is its worst gap.
struct Player {
    child: Child,
    progress: std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, u64)>>>,
}

impl Player {
    fn start(url: &str) -> Player {
        let mut child = tokio::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-rw_timeout", "15000000", "-i", url, "-c", "copy", "-f", "null", "-"])
            .args(["-progress", "pipe:1", "-stats_period", "0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("ffmpeg is installed");
        let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = progress.clone();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(us) = line.strip_prefix("out_time_us=").and_then(|v| v.parse::<u64>().ok()) {
                    sink.lock().unwrap().push((std::time::Instant::now(), us));
                }
            }
        });
        Player { child, progress }
    }

    /// Media time played so far, in ms.
    fn played_ms(&self) -> u64 {
        self.progress.lock().unwrap().last().map_or(0, |p| p.1 / 1000)
    }

    /// The longest wall-clock time between two reports that advanced the media time, after `from`.
    fn worst_gap_after(&self, from: std::time::Instant) -> Duration {
        let p = self.progress.lock().unwrap();
        let mut worst = Duration::ZERO;
        let mut last: Option<(std::time::Instant, u64)> = None;
        for &(at, us) in p.iter() {
            match last {
                Some((t, prev)) if us > prev => {
                    if at > from {
                        worst = worst.max(at - t);
                    }
                    last = Some((at, us));
                }
                None => last = Some((at, us)),
                _ => {}
            }
        }
        worst
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_of_an_edge_survive_the_death_of_their_streams_origin() {
    let dir = tempfile::tempdir().unwrap();
    let index = IndexProcess::start(&dir.path().join("index.db"), &["--down-after", "1"]).await;
    let idx = format!("http://{}", index.addr);
    let mut origins = HashMap::new();
    for name in ["o1", "o2"] {
        origins
            .insert(name, NodeProcess::start(&["--name", name, "--index", &idx, "--index-interval-ms", "500"]).await);
    }
    eventually(Duration::from_secs(20), || async {
        let v = get_json(&format!("{idx}/api/v1/nodes")).await;
        (v["nodes"].as_array()?.iter().filter(|n| n["health"] == "up").count() == 2).then_some(())
    })
    .await
    .expect("both origins up");
    let _push = push(&idx, "live/x");
    let first = eventually(Duration::from_secs(20), || async { origins_of_streams(&idx).await.remove("x") })
        .await
        .expect("live/x is live");
    let edge = NodeProcess::start(&["--role", "edge", "--name", "e1", "--index", &idx]).await;
    let mut player = Player::start(&format!("rtmp://{}/live/x", edge.rtmp));
    eventually(Duration::from_secs(20), || async { (player.played_ms() > 2000).then_some(()) })
        .await
        .expect("the player plays");

    origins[first.as_str()].signal("-KILL");
    let killed = std::time::Instant::now();
    let other = if first == "o1" { "o2" } else { "o1" };
    let before = player.played_ms();
    eventually(Duration::from_secs(30), || async {
        (origins_of_streams(&idx).await.get("x").map(String::as_str) == Some(other)).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("live/x moved to {other}"));
    eventually(Duration::from_secs(30), || async { (player.played_ms() > before + 5000).then_some(()) })
        .await
        .expect("the player plays on through the edge");
    let gap = player.worst_gap_after(killed);
    println!("{first} killed: live/x on {other} after the push moved; edge player's worst gap {} ms", gap.as_millis());
    assert!(player.child.try_wait().unwrap().is_none(), "the player's connection stayed up");

    // New streams avoid the dead origin.
    for i in 0..3 {
        let v = get_json(&format!("{idx}/api/v1/publish/live/new{i}")).await;
        assert_eq!(v["node"], other, "{v}");
    }
}

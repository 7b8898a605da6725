//! Attacks on a node's trust boundaries, each performed against a real node and shown refused,
//! while a viewer of another stream keeps playing (issue 16).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;

/// A GET's status and body.
async fn get(client: &reqwest::Client, url: &str) -> (u16, bytes::Bytes) {
    let r = client.get(url).send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap_or_default())
}

async fn playlist(http: SocketAddr, path: &str) -> Option<String> {
    let r = reqwest::get(format!("http://{http}/{path}")).await.ok()?;
    (r.status() == 200).then_some(())?;
    r.text().await.ok()
}

/// The newest segment line of a playlist (`name-N.ts?...hls_ctx=X`) and its `hls_ctx`.
fn newest_segment(playlist: &str) -> (String, String) {
    let line = playlist.lines().rfind(|l| l.contains(".ts")).expect("a segment line").to_string();
    let ctx = line.split("hls_ctx=").nth(1).expect("hls_ctx in segment URLs").to_string();
    (line, ctx)
}

/// A client whose connections come from another loopback address (127.0.0.2).
fn from_other_address() -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, 2])).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_segments_are_served_only_to_the_session_admitted_for_that_stream_from_that_address() {
    let (hook, _) = hook_service().await;
    let node = start_with(with_hooks(&hook)).await;
    let http = node.http_addr;
    let _cam = publish_fixture(&format!("rtmp://{}/live/cam?token=good", node.rtmp_addr));
    let _other = publish_fixture(&format!("rtmp://{}/live/other?token=good", node.rtmp_addr));
    let other = eventually(Duration::from_secs(20), || playlist(http, "live/other.m3u8?token=good"))
        .await
        .expect("the other stream's playlist");
    let cam = eventually(Duration::from_secs(20), || playlist(http, "live/cam.m3u8?token=good"))
        .await
        .expect("the protected stream's playlist, with the token");
    let (cam_segment, cam_ctx) = newest_segment(&cam);
    let (other_segment, other_ctx) = newest_segment(&other);
    let seq_file = cam_segment.split('?').next().unwrap();
    let plain = reqwest::Client::new();

    // The playlist without the token is refused, even from the address of an admitted viewer.
    assert_eq!(flv_status(http, "live/cam.m3u8").await, 403);
    // Fetching segments in order without a session: refused, the existing one included.
    let seq: u64 = seq_file.trim_start_matches("cam-").trim_end_matches(".ts").parse().unwrap();
    for n in 0..=seq {
        assert_eq!(get(&plain, &format!("http://{http}/live/cam-{n}.ts")).await.0, 403, "segment {n}");
    }
    // Another stream's session does not open this one.
    let url = format!("http://{http}/live/{seq_file}?token=good&hls_ctx={other_ctx}");
    assert_eq!(get(&plain, &url).await.0, 403, "another stream's hls_ctx");
    // The client ids the API lists are not session ids.
    let clients = get_json(&format!("http://{}/api/v1/clients/?count=100", node.api_addr)).await;
    for c in clients["clients"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let url = format!("http://{http}/live/{seq_file}?token=good&hls_ctx={id}");
        assert_eq!(get(&plain, &url).await.0, 403, "a public client id ({}) as hls_ctx", c["type"]);
    }
    // The admitted session, replayed from another address.
    let stolen = format!("http://{http}/live/{cam_segment}");
    assert_eq!(get(&from_other_address(), &stolen).await.0, 403, "a session taken to another address");

    // The admitted viewer gets its segment, and the other stream's viewer is untouched.
    let (status, body) = get(&plain, &stolen).await;
    assert_eq!(status, 200);
    assert!(!body.is_empty() && body[0] == 0x47, "a TS segment");
    let (status, body) = get(&plain, &format!("http://{http}/live/{other_segment}")).await;
    assert_eq!((status, body[0]), (200, 0x47), "the other stream's viewer plays on");
    assert_eq!(cam_ctx.len(), 24, "an unguessable token");
    node.shutdown().await;
}

/// A hook that lets `token=good` in from anywhere, and `token=ipbound` only from 10.1.2.3.
fn ip_bound_token(body: &serde_json::Value) -> bool {
    let param = body["param"].as_str().unwrap_or_default();
    param.contains("token=good") || (param.contains("token=ipbound") && body["ip"] == "10.1.2.3")
}

/// The status of an HTTP-FLV play with extra headers, and whether media came.
async fn flv_play_with(http: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, bool) {
    let mut req = reqwest::Client::new().get(format!("http://{http}/{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req.send().await.expect("GET");
    let status = r.status().as_u16();
    let media = status == 200 && r.chunk().await.ok().flatten().is_some_and(|c| !c.is_empty());
    (status, media)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_name_the_client_only_from_a_trusted_proxy() {
    let (hook, _) = hook_service_allowing(ip_bound_token).await;
    // One node that trusts no proxy, one behind a proxy on loopback (127.0.0.1 only).
    let open = start_with(with_hooks(&hook)).await;
    let proxied = start_with(ferrocast_node::NodeConfig {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..with_hooks(&hook)
    })
    .await;
    let _pubs: Vec<_> = [&open, &proxied]
        .iter()
        .flat_map(|n| ["cam", "other"].map(|s| publish_fixture(&format!("rtmp://{}/live/{s}?token=good", n.rtmp_addr))))
        .collect();
    wait_published(open.api_addr, "/live/cam").await;
    wait_published(proxied.api_addr, "/live/cam").await;
    let mut other = reqwest::get(format!("http://{}/live/other.flv?token=good", open.http_addr)).await.unwrap();
    assert_eq!(other.status(), 200);

    // The IP-bound token replayed from elsewhere with a forged header: refused.
    for h in ["x-forwarded-for", "x-real-ip"] {
        let (status, _) = flv_play_with(open.http_addr, "live/cam.flv?token=ipbound", &[(h, "10.1.2.3")]).await;
        assert_eq!(status, 403, "{h} from an untrusted peer");
    }
    // Through the trusted proxy the header counts...
    let fwd = [("x-forwarded-for", "10.1.2.3")];
    assert_eq!(flv_play_with(proxied.http_addr, "live/cam.flv?token=ipbound", &fwd).await, (200, true));
    // ...but only its rightmost untrusted hop: a client that prepends the address gains nothing.
    let prepended = [("x-forwarded-for", "10.1.2.3, 198.51.100.7")];
    assert_eq!(flv_play_with(proxied.http_addr, "live/cam.flv?token=ipbound", &prepended).await.0, 403);
    // A peer outside the trusted block (127.0.0.2) is not a proxy.
    let r = from_other_address()
        .get(format!("http://{}/live/cam.flv?token=ipbound", proxied.http_addr))
        .header("x-forwarded-for", "10.1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "headers from a peer that is not a trusted proxy");

    assert!(other.chunk().await.unwrap().is_some_and(|c| !c.is_empty()), "the other stream's player plays on");
    open.shutdown().await;
    proxied.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_leaks_no_command_line_and_kicks_only_with_its_token() {
    // No token: reads are open, kicks refused.
    let open = start_node().await;
    let _p = publish_fixture(&format!("rtmp://{}/live/cam", open.rtmp_addr));
    wait_published(open.api_addr, "/live/cam").await;
    let summaries = reqwest::get(format!("http://{}/api/v1/summaries", open.api_addr)).await.unwrap();
    let text = summaries.text().await.unwrap();
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(s["data"]["self"]["pid"].is_u64(), "{text}");
    assert!(s["data"]["self"].get("argv").is_none() && s["data"]["self"].get("cwd").is_none(), "{text}");
    let record = stream_record(open.api_addr, "/live/cam").await.unwrap();
    let publisher = record["publish"]["cid"].as_str().unwrap().to_string();
    let plain = reqwest::Client::new();
    let r = plain.delete(format!("http://{}/api/v1/clients/{publisher}", open.api_addr)).send().await.unwrap();
    assert_eq!(r.status(), 403, "no kicks without a configured token");
    let r = authed().delete(format!("http://{}/api/v1/clients/{publisher}", open.api_addr)).send().await.unwrap();
    assert_eq!(r.status(), 403, "not even with a token the node does not have");
    assert_eq!(stream_record(open.api_addr, "/live/cam").await.unwrap()["publish"]["active"], true);

    // With a token: reads and kicks need it.
    let locked =
        start_with(ferrocast_node::NodeConfig { api_token: Some(API_TOKEN.into()), ..loopback_config() }).await;
    let api = locked.api_addr;
    let _victim = publish_fixture(&format!("rtmp://{}/live/victim", locked.rtmp_addr));
    let _other = publish_fixture(&format!("rtmp://{}/live/other", locked.rtmp_addr));
    wait_published(api, "/live/victim").await;
    wait_published(api, "/live/other").await;
    let mut player = reqwest::get(format!("http://{}/live/other.flv", locked.http_addr)).await.unwrap();
    assert_eq!(plain.get(format!("http://{api}/api/v1/clients/")).send().await.unwrap().status(), 401);
    assert_eq!(plain.get(format!("http://{api}/api/v1/summaries")).send().await.unwrap().status(), 401);
    assert_eq!(plain.get(format!("http://{api}/api/v1/versions")).send().await.unwrap().status(), 200, "health");
    let wrong = format!("http://{api}/api/v1/clients/?api_token=guess");
    assert_eq!(plain.get(wrong).send().await.unwrap().status(), 401);
    let by_query = format!("http://{api}/api/v1/clients/?api_token={API_TOKEN}");
    assert_eq!(plain.get(by_query).send().await.unwrap().status(), 200);
    let victim = stream_record(api, "/live/victim").await.unwrap()["publish"]["cid"].as_str().unwrap().to_string();
    let kick = format!("http://{api}/api/v1/clients/{victim}");
    let r = plain.delete(&kick).header("authorization", "Bearer guess").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = authed().delete(&kick).send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], 0);
    wait_unpublished(api, "/live/victim").await;
    assert!(player.chunk().await.unwrap().is_some_and(|c| !c.is_empty()), "the other stream's player plays on");
    open.shutdown().await;
    locked.shutdown().await;
}

async fn vhost_names(api: SocketAddr) -> Vec<String> {
    let v = get_json(&format!("http://{api}/api/v1/vhosts/")).await;
    v["vhosts"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_vhosts_create_nothing_before_admission_and_leave_with_their_clients() {
    let (hook, _) = hook_service().await;
    let guarded = start_with(with_hooks(&hook)).await;
    let _p = publish_fixture(&format!("rtmp://{}/live/other?token=good", guarded.rtmp_addr));
    wait_published(guarded.api_addr, "/live/other").await;
    let mut player = reqwest::get(format!("http://{}/live/other.flv?token=good", guarded.http_addr)).await.unwrap();
    // Refused players name a few hundred vhosts: none is created.
    for i in 0..300 {
        assert_eq!(flv_status(guarded.http_addr, &format!("live/cam.flv?vhost=rnd{i}")).await, 403);
    }
    assert_eq!(vhost_names(guarded.api_addr).await, ["__defaultVhost__"]);
    assert!(player.chunk().await.unwrap().is_some_and(|c| !c.is_empty()), "the other stream's player plays on");

    // On an open node, admitted players naming vhosts are capped, and their vhosts leave with them.
    let mut config = loopback_config();
    config.media.play_wait_ms = 2_000;
    let open = start_with(config).await;
    let http = open.http_addr;
    let plays: Vec<_> = (0..100)
        .map(|i| tokio::spawn(async move { flv_status(http, &format!("live/none.flv?vhost=many{i}")).await }))
        .collect();
    let most = eventually(Duration::from_secs(10), || async {
        let n = vhost_names(open.api_addr).await.len();
        (n >= ferrocast_node::stats::registry::MAX_VHOSTS).then_some(n)
    })
    .await
    .expect("the vhost table fills up to its cap");
    assert_eq!(most, ferrocast_node::stats::registry::MAX_VHOSTS);
    let statuses: Vec<u16> = futures_util::future::join_all(plays).await.into_iter().map(Result::unwrap).collect();
    let refused = statuses.iter().filter(|s| **s == 403).count();
    assert_eq!(refused, 100 - ferrocast_node::stats::registry::MAX_VHOSTS, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 403 || *s == 404), "{statuses:?}");
    assert!(vhost_names(open.api_addr).await.is_empty(), "named vhosts leave with their last client");
    guarded.shutdown().await;
    open.shutdown().await;
}

/// A hook that protects app `live` (token needed) and leaves every other app open.
fn protects_live(body: &serde_json::Value) -> bool {
    body["app"] != "live" || body["param"].as_str().unwrap_or_default().contains("token=good")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_outside_the_grammar_are_refused_before_any_check_or_pull() {
    let (hook, seen) = hook_service_allowing(protects_live).await;
    let origin = start_node().await;
    let _cam = publish_fixture(&format!("rtmp://{}/live/cam", origin.rtmp_addr));
    let _other = publish_fixture(&format!("rtmp://{}/live/other", origin.rtmp_addr));
    wait_published(origin.api_addr, "/live/cam").await;
    wait_published(origin.api_addr, "/live/other").await;
    let edge = start_with(ferrocast_node::NodeConfig {
        role: ferrocast_node::Role::Edge,
        origins: vec![origin.rtmp_addr.to_string()],
        ..with_hooks(&hook)
    })
    .await;
    let mut player = reqwest::get(format!("http://{}/live/other.flv?token=good", edge.http_addr)).await.unwrap();
    assert_eq!(player.status(), 200);
    assert_eq!(flv_status(edge.http_addr, "live/cam.flv").await, 403, "the protected app needs its token");

    // The app is checked as `live?vhost=…` (an open app) but would be pulled as live/cam.
    for path in [
        "live%3Fvhost=__defaultVhost__/cam.flv",
        "live%3Fvhost=__defaultVhost__/cam.m3u8",
        "live%23x/cam.flv",
        "live/cam%3Fx.flv",
        "live/a%0Ab.m3u8",
        "live/a%0D%0A%23EXT-X-ENDLIST.m3u8",
        "live/..%2F..%2Fx.flv",
    ] {
        assert_eq!(flv_status(edge.http_addr, path).await, 400, "{path}");
    }
    let long = format!("live/{}.flv", "x".repeat(200));
    assert_eq!(flv_status(edge.http_addr, &long).await, 400, "an over-long name");
    let play = rtmp_play(edge.rtmp_addr, "live/a\u{1}b", Duration::from_millis(500)).await;
    assert!(!play.started, "RTMP names are held to the same grammar: {play:?}");
    let checked: Vec<String> =
        seen.lock().unwrap().iter().filter_map(|b| b["app"].as_str().map(str::to_string)).collect();
    assert!(checked.iter().all(|app| app == "live"), "no hook saw a malformed app: {checked:?}");
    // Nothing was pulled for the refused names: the edge pulls only the stream being watched.
    let streams = get_json(&format!("http://{}/api/v1/streams/?count=100", edge.api_addr)).await;
    let urls: Vec<&str> = streams["streams"].as_array().unwrap().iter().filter_map(|s| s["url"].as_str()).collect();
    assert_eq!(urls, ["/live/other"], "{streams}");
    assert!(player.chunk().await.unwrap().is_some_and(|c| !c.is_empty()), "the other stream's player plays on");
    edge.shutdown().await;
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_nobody_publishes_is_never_listed_as_live_on_an_edge_and_leaves_no_state() {
    let origin = start_node().await;
    let _other = publish_fixture(&format!("rtmp://{}/live/other", origin.rtmp_addr));
    wait_published(origin.api_addr, "/live/other").await;
    let mut config = edge_config(&[origin.rtmp_addr.to_string()]);
    config.hls.idle_ms = 1_000;
    config.hls.viewer_timeout_ms = 1_000;
    let edge = start_with(config).await;
    let mut player = reqwest::get(format!("http://{}/live/other.flv", edge.http_addr)).await.unwrap();
    assert_eq!(player.status(), 200);
    wait_published(edge.api_addr, "/live/other").await;

    // A player asks for a name nobody publishes: the edge pulls it (the origin accepts the play
    // and waits), but the stream is not reported published.
    let http = edge.http_addr;
    let ghost = tokio::spawn(async move { flv_status(http, "live/ghost.flv").await });
    eventually(Duration::from_secs(10), || stream_record(origin.api_addr, "/live/ghost")).await.expect("the pull");
    tokio::time::sleep(Duration::from_millis(500)).await; // the origin's play answer reaches the edge
    let record = stream_record(edge.api_addr, "/live/ghost").await.expect("the waiting player's stream");
    assert_eq!(record["publish"]["active"], false, "a pull without media is not a live stream: {record}");
    assert_eq!(ghost.await.unwrap(), 404, "the player learns there is no such stream");

    // HLS of a name nobody publishes: the segmenter's entry goes away.
    assert_eq!(flv_status(edge.http_addr, "live/ghost2.m3u8").await, 404);
    eventually(Duration::from_secs(20), || async { edge.ctx.hls.is_empty().then_some(()) })
        .await
        .expect("no HLS state left for the name");
    assert!(player.chunk().await.unwrap().is_some_and(|c| !c.is_empty()), "the other stream's player plays on");
    edge.shutdown().await;
    origin.shutdown().await;
}

/// The segment sizes and durations of a playlist's segments.
async fn segments_of(http: SocketAddr, path: &str) -> Option<Vec<(usize, f64)>> {
    let text = playlist(http, path).await?;
    let mut out = Vec::new();
    let mut duration = 0.0;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = d.trim_end_matches(',').parse().unwrap();
        } else if !line.starts_with('#') && !line.is_empty() {
            let (status, body) = get(&reqwest::Client::new(), &format!("http://{http}/live/{line}")).await;
            assert_eq!(status, 200);
            out.push((body.len(), duration));
        }
    }
    (!out.is_empty()).then_some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_cannot_blow_up_hls_memory() {
    let node = start_node().await;
    let (rtmp, http) = (node.rtmp_addr, node.http_addr);
    let _other = publish_fixture(&format!("rtmp://{rtmp}/live/other"));
    wait_published(node.api_addr, "/live/other").await;
    let mut player = reqwest::get(format!("http://{http}/live/other.flv")).await.unwrap();
    let (headers, media) = fixture_frames();

    // An AVC record with 30 extra SPS and 200 extra PPS of 60 kB each, which the TS muxer would
    // write before every keyframe (~14 MB per keyframe), then the fixture's frames.
    let mut bloated = Vec::new();
    for f in &headers {
        let p = &f.payload;
        if f.kind == ferrocast_media::FrameKind::Video && f.sequence_header && p[1] == 0 {
            let record = &p[5..];
            let config = ferrocast_media::avc::AvcConfig::parse(record).unwrap();
            let mut out = p[..10].to_vec(); // FLV header + record header
            out.push(0xe0 | 31);
            let junk = vec![0x67u8; 60_000];
            for sps in std::iter::once(&config.sps[0][..]).chain(std::iter::repeat_n(&junk[..], 30)) {
                out.extend_from_slice(&(sps.len() as u16).to_be_bytes());
                out.extend_from_slice(sps);
            }
            out.push(201);
            for pps in std::iter::once(&config.pps[0][..]).chain(std::iter::repeat_n(&junk[..], 200)) {
                out.extend_from_slice(&(pps.len() as u16).to_be_bytes());
                out.extend_from_slice(pps);
            }
            bloated.push(ferrocast_media::Frame::new(f.kind, f.timestamp, out.into()));
        } else {
            bloated.push(f.clone());
        }
    }
    bloated.extend(media.iter().take(400).cloned());
    publish_frames(rtmp, "live/bloat", &bloated).await;
    let segments = eventually(Duration::from_secs(20), || segments_of(http, "live/bloat.m3u8"))
        .await
        .expect("segments of the bloated stream");
    for (bytes, _) in &segments {
        assert!(*bytes < 2 << 20, "one parameter set per keyframe, not every one of the record: {segments:?}");
    }

    // A keyframe, then inter frames for 120 s of stream time: no cut point ever comes.
    let key = media.iter().position(|f| f.is_video_keyframe()).unwrap();
    let inter: Vec<_> = media.iter().filter(|f| f.kind == ferrocast_media::FrameKind::Video && !f.keyframe).collect();
    let mut endless = headers.clone();
    endless.push(media[key].clone());
    let start = media[key].timestamp;
    for i in 0..600u32 {
        let f = inter[i as usize % inter.len()];
        endless.push(ferrocast_media::Frame::new(f.kind, start + 200 * (i + 1), f.payload.clone()));
    }
    publish_frames(rtmp, "live/endless", &endless).await;
    let segments = eventually(Duration::from_secs(20), || segments_of(http, "live/endless.m3u8"))
        .await
        .expect("a stream that never cuts still yields a closed, bounded segment");
    let cap = 10.0 * 2.0; // MAX_SEGMENT_TARGETS x the 2 s target
    assert!(segments.iter().all(|(_, d)| *d <= cap + 0.5), "{segments:?}");

    assert!(player.chunk().await.unwrap().is_some_and(|c| !c.is_empty()), "the other stream's player plays on");
    node.shutdown().await;
}

/// Whether the node closed `socket` (EOF or reset) within `limit`.
async fn closed_by_node(socket: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_trickled_a_byte_at_a_time_is_cut_at_the_setup_deadline() {
    use tokio::io::AsyncWriteExt;
    let mut config = loopback_config();
    config.media.setup_timeout_ms = 1_500;
    let node = start_with(config).await;
    let _other = publish_fixture(&format!("rtmp://{}/live/other", node.rtmp_addr));
    wait_published(node.api_addr, "/live/other").await;
    let mut slow = tokio::net::TcpStream::connect(node.rtmp_addr).await.unwrap();
    // C0 and then C1 one byte every 200 ms: each read is quick, the whole never completes. The
    // node must close the connection while the bytes still come (40 of them: 8 s).
    let mut closed = false;
    for b in std::iter::once(3u8).chain(std::iter::repeat_n(0u8, 39)) {
        if slow.write_all(&[b]).await.is_err() || closed_by_node(&mut slow, Duration::from_millis(200)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickled setup kept its connection past the setup deadline");
    let play = rtmp_play(node.rtmp_addr, "live/other", Duration::from_secs(2)).await;
    assert!(play.started && play.media > 10, "the other stream's player plays: {play:?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let mut config = loopback_config();
    config.media.max_connections_per_ip = 4;
    let node = start_with(config).await;
    let _other = publish_fixture(&format!("rtmp://{}/live/other", node.rtmp_addr)); // 1 of 4 (RTMP)
    wait_published(node.api_addr, "/live/other").await;
    for addr in [node.rtmp_addr, node.http_addr] {
        let idle = if addr == node.rtmp_addr { 3 } else { 4 };
        let mut held = Vec::new();
        for _ in 0..idle {
            held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(closed_by_node(&mut extra, Duration::from_secs(5)).await, "connection over the cap on {addr}");
        // Another address still gets in, and plays.
        let r = from_other_address().get(format!("http://{}/live/other.flv", node.http_addr)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        drop(held);
    }
    node.shutdown().await;
}

/// Publishes `live/{name}`, then sends ping requests (each answered with a pong) and never reads
/// again, until the node stops reading (its answers fill the socket) or closes the connection.
async fn publish_and_ping_without_reading(rtmp: SocketAddr, name: &str) -> tokio::net::TcpStream {
    use ferrocast_rtmp::{ClientConfig, ClientEvent, ClientMode, ClientSession};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = format!("rtmp://{rtmp}/live/{name}");
    let (_, cfg) = ClientConfig::from_url(&url, ClientMode::Publish).unwrap();
    let mut session = ClientSession::new(cfg);
    let mut socket = tokio::net::TcpStream::connect(rtmp).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    'setup: loop {
        let out = session.take_output();
        socket.write_all(&out).await.unwrap();
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "the node answers the setup");
        for e in session.feed(&buf[..n]).unwrap() {
            if matches!(e, ClientEvent::PublishStarted) {
                break 'setup;
            }
        }
    }
    let ping = [0x02u8, 0, 0, 0, 0, 0, 6, 0x04, 0, 0, 0, 0, 0x00, 0x06, 0, 0, 0, 1];
    let burst: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 4096).collect();
    while let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(3), socket.write_all(&burst)).await {}
    socket
}

/// The publisher client of `live/{name}`, if listed.
async fn publisher_client(api: SocketAddr, name: &str) -> Option<serde_json::Value> {
    let v = get_json(&format!("http://{api}/api/v1/clients/?count=100")).await;
    v["clients"].as_array()?.iter().find(|c| c["type"] == "fmle-publish" && c["name"] == name).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_makes_the_node_answer_but_never_reads_is_cut_at_the_write_deadline() {
    let mut config = loopback_config();
    config.media.slow_player_drop_ms = 1_000;
    let node = start_with(config).await;
    let _other = publish_fixture(&format!("rtmp://{}/live/other", node.rtmp_addr));
    wait_published(node.api_addr, "/live/other").await;
    let mut player = reqwest::get(format!("http://{}/live/other.flv", node.http_addr)).await.unwrap();
    let _socket = publish_and_ping_without_reading(node.rtmp_addr, "pinger").await;
    let gone = eventually(Duration::from_secs(20), || async {
        publisher_client(node.api_addr, "pinger").await.is_none().then_some(())
    })
    .await;
    assert!(gone.is_some(), "the node ends a connection whose answers nobody reads");
    assert!(player.chunk().await.unwrap().is_some_and(|c| !c.is_empty()), "the other stream's player plays on");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_kick_ends_a_connection_whose_answers_nobody_reads() {
    let mut config = loopback_config();
    config.media.slow_player_drop_ms = 600_000; // the write deadline is not what ends it here
    config.api_token = Some(API_TOKEN.into());
    let node = start_with(config).await;
    let _other = publish_fixture(&format!("rtmp://{}/live/other", node.rtmp_addr));
    wait_published(node.api_addr, "/live/other").await;
    let mut player = reqwest::get(format!("http://{}/live/other.flv", node.http_addr)).await.unwrap();
    let _socket = publish_and_ping_without_reading(node.rtmp_addr, "pinger").await;
    let id = publisher_client(node.api_addr, "pinger").await.expect("the publisher is listed")["id"].clone();
    let kick = format!("http://{}/api/v1/clients/{}", node.api_addr, id.as_str().unwrap());
    let r: serde_json::Value = authed().delete(kick).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["code"], 0);
    let gone = eventually(Duration::from_secs(20), || async {
        publisher_client(node.api_addr, "pinger").await.is_none().then_some(())
    })
    .await;
    assert!(gone.is_some(), "a kick ends the connection while its writes are stuck");
    assert!(player.chunk().await.unwrap().is_some_and(|c| !c.is_empty()), "the other stream's player plays on");
    node.shutdown().await;
}

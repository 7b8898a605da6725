//! WebRTC playback (WHEP): headless Chromium plays a stream from an origin and from a cold edge
//! (getStats: frames decoded at 640 wide without a freeze, the AAC heard as Opus); the viewer is an `rtc-play` client; a refused token is
//! a 403; malformed offers, wrong content types, trickle and UDP garbage get clear answers and
//! leave the node serving, and a playing viewer (a str0m client here) survives bogus DTLS and RTCP
//! garbage from its own address; a viewer whose network blocks UDP plays over ICE-TCP.
//! (tests/browser/whep_play.mjs drives the browser.)

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use tokio::process::Command;

const OFFER: &str = include_str!("../src/whep/testdata/chromium_offer.sdp");

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// The fixture as WebRTC publishers encode it: no B-frames (fixtures/README.md).
fn webrtc_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo-webrtc.flv")
}

fn with_webrtc(mut config: ferrocast_node::NodeConfig) -> ferrocast_node::NodeConfig {
    config.webrtc_udp = Some("127.0.0.1:0".parse().unwrap());
    config
}

/// Plays `url` over WHEP in Chromium for `secs`: the script's JSON report.
async fn play(url: &str, secs: u32) -> serde_json::Value {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "tests/browser/node_modules is missing: run scripts/test"
    );
    let (ok, stdout, stderr) = run(
        Command::new("node").arg(dir.join("whep_play.mjs")).arg(url).arg(secs.to_string()),
        Duration::from_secs(90),
    )
    .await;
    assert!(ok, "the browser run failed: {stderr}");
    serde_json::from_str(stdout.trim()).expect("a JSON report")
}

fn assert_played(report: &serde_json::Value, what: &str) {
    assert_eq!(report["status"], "201", "{what}: {report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{what}: {report}");
    let last = report["samples"].as_array().and_then(|s| s.last()).cloned().unwrap_or_default();
    let frames = last["framesDecoded"].as_u64().unwrap_or(0);
    eprintln!("{what}: {last}");
    assert!(frames >= 150, "{what}: Chromium decoded {frames} frames, not 150: {report}");
    assert_eq!(last["width"], 640, "{what}: {report}");
    assert_eq!(last["freezes"], 0, "{what}: the picture froze: {report}");
    // The AAC is heard as Opus: about 50 packets a second, decoded to samples that are mostly
    // not concealment, with energy (the fixture's sine, not silence).
    let packets = last["audioPackets"].as_u64().unwrap_or(0);
    assert!(packets >= 200, "{what}: {packets} audio packets: {report}");
    let samples = last["audioSamples"].as_f64().unwrap_or(0.0);
    let concealed = last["audioConcealed"].as_f64().unwrap_or(0.0);
    assert!(samples > 0.0 && concealed / samples < 0.2, "{what}: {concealed} of {samples} audio samples concealed");
    // The fixture's 440 Hz sine at -18 dBFS or so: an RMS well above silence.
    let rms = last["audioRms"].as_f64().unwrap_or(0.0);
    assert!(rms > 0.01, "{what}: the audio is silent (RMS {rms}): {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_whep_from_an_origin_and_from_a_cold_edge() {
    let origin = start_with(with_webrtc(loopback_config())).await;
    let _publisher = publish_file(&webrtc_fixture(), &format!("rtmp://{}/live/demo", origin.rtmp_addr));
    wait_published(origin.api_addr, "/live/demo").await;

    let report = play(&format!("http://{}/live/demo/whep", origin.http_addr), 9).await;
    assert_played(&report, "origin");
    assert!(report["location"].as_str().is_some_and(|l| l.starts_with("/live/demo/whep/")), "{report}");

    let edge = start_with(with_webrtc(edge_config(&[origin.rtmp_addr.to_string()]))).await;
    let url = format!("http://{}/live/demo/whep", edge.http_addr);
    // The viewer is listed while it plays, as SRS lists WebRTC players.
    let listed = tokio::spawn({
        let api = edge.api_addr;
        async move {
            eventually(Duration::from_secs(20), || async {
                let v = get_json(&format!("http://{api}/api/v1/clients/?count=100")).await;
                v["clients"].as_array()?.iter().any(|c| c["type"] == "rtc-play").then_some(())
            })
            .await
        }
    });
    let report = play(&url, 9).await;
    assert_played(&report, "cold edge");
    assert!(listed.await.unwrap().is_some(), "an rtc-play client on the edge");
    edge.shutdown().await;
    origin.shutdown().await;
}

async fn post(url: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
    let r = reqwest::Client::new().post(url).header("content-type", content_type).body(body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_and_refused_tokens_get_clear_answers_and_the_node_keeps_serving() {
    let (hooks, _calls) =
        hook_service_allowing(|body| body["param"].as_str().is_some_and(|p| p.contains("token=good"))).await;
    let mut config = with_webrtc(with_hooks(&hooks));
    config.webrtc_engines = 2;
    let node = start_with(config).await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/demo?token=good", node.rtmp_addr));
    wait_published(node.api_addr, "/live/demo").await;
    let url = format!("http://{}/live/demo/whep", node.http_addr);
    // The node tells the index it plays WebRTC (a node without --webrtc-udp does not).
    let summaries = get_json(&format!("http://{}/api/v1/summaries", node.api_addr)).await;
    let protocols = summaries["data"]["self"]["protocols"].clone();
    assert_eq!(protocols, serde_json::json!(["rtmp", "flv", "hls", "llhls", "whep"]), "{summaries}");
    let plain = start_with(loopback_config()).await;
    let summaries = get_json(&format!("http://{}/api/v1/summaries", plain.api_addr)).await;
    assert_eq!(summaries["data"]["self"]["protocols"], serde_json::json!(["rtmp", "flv", "hls", "llhls"]));
    plain.shutdown().await;

    let (status, text) = post(&url, "application/sdp", OFFER).await;
    assert_eq!(status, 403, "no token: {text}");
    let (status, _) = post(&format!("{url}?token=bad"), "application/sdp", OFFER).await;
    assert_eq!(status, 403);
    // The WHEP way: a bearer token.
    let r = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/sdp")
        .header("authorization", "Bearer good")
        .body(OFFER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let answer = r.text().await.unwrap();
    assert!(answer.contains("a=ice-lite"), "{answer}");
    // The node's one candidate: its UDP port.
    let candidate = answer.lines().find(|l| l.starts_with("a=candidate:")).expect("a candidate");
    let webrtc: u16 = candidate.split(' ').nth(5).and_then(|p| p.parse().ok()).expect("a port");
    let deleted = reqwest::Client::new().delete(format!("http://{}{location}", node.http_addr)).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    // Two engines (the node's WebRTC on two cores) share the one port: two viewers land on the
    // two engines (their ids start with its number), and each DELETE finds its session's engine.
    let mut ports = Vec::new();
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let r = reqwest::Client::new()
            .post(format!("{url}?token=good"))
            .header("content-type", "application/sdp")
            .body(OFFER)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        sessions.push(r.headers()["location"].to_str().unwrap().to_string());
        let answer = r.text().await.unwrap();
        let line = answer.lines().find(|l| l.starts_with("a=candidate:") && l.contains(" udp ")).unwrap().to_string();
        ports.push(line.split(' ').nth(5).unwrap().to_string());
    }
    for location in &sessions {
        let gone = reqwest::Client::new().delete(format!("http://{}{location}", node.http_addr)).send().await.unwrap();
        assert_eq!(gone.status(), 200);
    }
    // Both sessions leave the API at once: each DELETE found its session's engine.
    let left = eventually(Duration::from_secs(5), || async {
        let v = get_json(&format!("http://{}/api/v1/clients/?count=100", node.api_addr)).await;
        (!v["clients"].as_array()?.iter().any(|c| c["type"] == "rtc-play")).then_some(())
    });
    assert!(left.await.is_some(), "the DELETEd viewers left");
    assert_eq!(ports[0], ports[1], "two engines, one port: {ports:?}");
    assert_eq!(ports[0], webrtc.to_string());
    let engine = |location: &str| location.rsplit('/').next().unwrap().split('-').next().unwrap().to_string();
    assert_ne!(engine(&sessions[0]), engine(&sessions[1]), "{sessions:?}");

    let good = format!("{url}?token=good");
    let (status, text) = post(&good, "application/sdp", "v=0\r\nthis is not sdp").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("malformed SDP offer"), "{text}");
    let (status, text) = post(&good, "application/sdp", OFFER.replace("H264/90000", "X264/90000")).await;
    assert_eq!((status, text.contains("no H.264 video")), (400, true), "{text}");
    assert_eq!(post(&good, "text/plain", OFFER).await.0, 415);
    assert_eq!(post(&good, "application/sdp", vec![b'a'; 100_000]).await.0, 413);
    let patch = reqwest::Client::new().patch(&url).body("a=candidate").send().await.unwrap();
    assert_eq!(patch.status(), 405);
    let preflight = reqwest::Client::new().request(reqwest::Method::OPTIONS, &url).send().await.unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));

    // Garbage on the UDP port: dropped, and a viewer still plays.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..2000u32 {
        let junk: Vec<u8> = (0..(i % 300) as u8).map(|b| b.wrapping_mul(31).wrapping_add(i as u8)).collect();
        let _ = udp.send_to(&junk, ("127.0.0.1", webrtc));
    }
    // A STUN flood: binding requests for usernames no session has.
    for i in 0..2000u32 {
        let user = format!("x{i:07}:y");
        let mut stun = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&i.to_be_bytes().repeat(3));
        stun.extend_from_slice(&[0x00, 0x06, 0, user.len() as u8]);
        stun.extend_from_slice(user.as_bytes());
        let len = (stun.len() - 20) as u16;
        stun[2..4].copy_from_slice(&len.to_be_bytes());
        let _ = udp.send_to(&stun, ("127.0.0.1", webrtc));
    }
    let (status, _) = post(&good, "application/sdp", OFFER).await;
    assert_eq!(status, 201, "the node still answers after UDP garbage and a STUN flood");
    // The router dropped them before any engine saw them, and counted them (some of the flood
    // may have been lost in the socket buffer first).
    let unrouted =
        scrape_metrics(node.api_addr).await["ferrocast_node_webrtc_dropped_packets_total{reason=\"unrouted\"}"];
    assert!((100.0..=4000.0).contains(&unrouted), "{unrouted} unrouted");

    // Those viewers never complete ICE: each is freed (on_stop) within the connect wait (10 s).
    let rtc_clients = || async {
        let v = get_json(&format!("http://{}/api/v1/clients/?count=100", node.api_addr)).await;
        v["clients"].as_array().unwrap().iter().filter(|c| c["type"] == "rtc-play").count()
    };
    assert!(rtc_clients().await >= 1, "the unconnected viewer is listed at first");
    eventually(Duration::from_secs(20), || async { (rtc_clients().await == 0).then_some(()) })
        .await
        .expect("a viewer that never connects is freed");
    node.shutdown().await;
}

/// A WebRTC viewer in the test (str0m as the browser side, on its own UDP socket, or over ICE-TCP
/// as a viewer whose network blocks UDP): it offers to receive video and audio, and counts the
/// frames of each it gets.
struct TestViewer {
    rtc: str0m::Rtc,
    link: Link,
    local: std::net::SocketAddr,
    /// The node's address, once the viewer has sent to it.
    node: Option<std::net::SocketAddr>,
    video: u64,
    audio: u64,
    /// Video frames with a gap before them that retransmission did not fill.
    broken: u64,
    /// Drop every Nth video RTP datagram the node sends (a lossy network), if set.
    drop_every: Option<u64>,
    rtp_seen: u64,
    /// The SSRC of the first video packet, and how many came on another one (RTX resends).
    video_ssrc: Option<[u8; 4]>,
    resent: u64,
    /// The video m-line (to ask for keyframes on), and the keyframes received.
    video_mid: str0m::media::Mid,
    keyframes: u64,
}

enum Link {
    Udp(tokio::net::UdpSocket),
    /// RFC 4571 frames: the write half, and the frames a reader task got.
    Tcp(tokio::net::tcp::OwnedWriteHalf, tokio::sync::mpsc::Receiver<Vec<u8>>),
}

impl TestViewer {
    async fn connect(url: &str, tcp: bool) -> TestViewer {
        use str0m::media::{Direction, MediaKind};
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut rtc = str0m::Rtc::builder().build(std::time::Instant::now());
        if !tcp {
            rtc.add_local_candidate(str0m::Candidate::host(socket.local_addr().unwrap(), "udp").unwrap());
        }
        let mut change = rtc.sdp_api();
        let video_mid = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let (status, answer) = post(url, "application/sdp", offer.to_sdp_string()).await;
        assert_eq!(status, 201, "{answer}");
        let passive = answer.lines().find(|l| l.contains("tcptype passive")).map(str::to_string);
        let answer = str0m::change::SdpAnswer::from_sdp_string(&answer).unwrap();
        rtc.sdp_api().accept_answer(pending, answer).unwrap();
        let (link, local, node) = if tcp {
            Self::tcp_link(&mut rtc, passive).await
        } else {
            let local = socket.local_addr().unwrap();
            (Link::Udp(socket), local, None)
        };
        TestViewer {
            rtc,
            link,
            local,
            node,
            video: 0,
            audio: 0,
            broken: 0,
            drop_every: None,
            rtp_seen: 0,
            video_ssrc: None,
            resent: 0,
            video_mid,
            keyframes: 0,
        }
    }

    /// Connects to the node's passive TCP candidate (`a=candidate:F 1 tcp PRIO IP PORT typ host
    /// tcptype passive`) and offers the connection as the viewer's active one.
    async fn tcp_link(
        rtc: &mut str0m::Rtc,
        passive: Option<String>,
    ) -> (Link, std::net::SocketAddr, Option<std::net::SocketAddr>) {
        let passive = passive.expect("the answer offers ICE-TCP");
        let fields: Vec<&str> = passive.split_whitespace().collect();
        let node: std::net::SocketAddr = format!("{}:{}", fields[4], fields[5]).parse().unwrap();
        let stream = tokio::net::TcpStream::connect(node).await.expect("the node listens for ICE-TCP");
        let local = stream.local_addr().unwrap();
        let active =
            str0m::Candidate::builder().tcp().host(local).tcptype(str0m::net::TcpType::Active).build().unwrap();
        rtc.add_local_candidate(active);
        let (mut reader, writer) = stream.into_split();
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut len = [0u8; 2];
            while reader.read_exact(&mut len).await.is_ok() {
                let mut frame = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if reader.read_exact(&mut frame).await.is_err() || tx.send(frame).await.is_err() {
                    return;
                }
            }
        });
        (Link::Tcp(writer, rx), local, Some(node))
    }

    /// Sends a PLI, as a browser whose picture broke.
    fn ask_keyframe(&mut self) {
        let mut writer = self.rtc.writer(self.video_mid).expect("the video m-line");
        writer.request_keyframe(None, str0m::media::KeyframeRequestKind::Pli).expect("a PLI can be sent");
    }

    /// Runs the session for `secs`.
    async fn run_for(&mut self, secs: u64) {
        self.run_for_ms(secs * 1000).await
    }

    /// Runs the session for `ms` milliseconds.
    async fn run_for_ms(&mut self, ms: u64) {
        use str0m::net::Protocol;
        use str0m::{Event, Input, Output};
        use tokio::io::AsyncWriteExt;
        let end = tokio::time::Instant::now() + Duration::from_millis(ms);
        let mut buf = vec![0u8; 2048];
        loop {
            let timeout = loop {
                match self.rtc.poll_output().expect("the session stays up") {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        self.node = Some(t.destination);
                        match &mut self.link {
                            Link::Udp(socket) => {
                                let _ = socket.send_to(&t.contents, t.destination).await;
                            }
                            Link::Tcp(writer, _) => {
                                let framed = [&(t.contents.len() as u16).to_be_bytes()[..], &t.contents].concat();
                                let _ = writer.write_all(&framed).await;
                            }
                        }
                    }
                    Output::Event(Event::MediaData(d)) if d.params.spec().codec.is_video() => {
                        self.video += 1;
                        self.broken += u64::from(!d.contiguous);
                        self.keyframes += u64::from(d.is_keyframe());
                    }
                    Output::Event(Event::MediaData(_)) => self.audio += 1,
                    Output::Event(_) => {}
                }
            };
            let received = tokio::select! {
                r = async {
                    match &mut self.link {
                        Link::Udp(socket) => {
                            let (n, source) = socket.recv_from(&mut buf).await.unwrap();
                            // Video SRTP: version 2, a payload type that is not RTCP's (200-206),
                            // and bigger than any 20 ms Opus packet.
                            if n > 400 && buf[0] >> 6 == 2 && !(200..=206).contains(&buf[1]) {
                                let ssrc = [buf[8], buf[9], buf[10], buf[11]];
                                if *self.video_ssrc.get_or_insert(ssrc) != ssrc {
                                    self.resent += 1;
                                    return Some((Protocol::Udp, source, buf[..n].to_vec()));
                                }
                                self.rtp_seen += 1;
                                if self.drop_every.is_some_and(|k| self.rtp_seen.is_multiple_of(k)) {
                                    return None;
                                }
                            }
                            Some((Protocol::Udp, source, buf[..n].to_vec()))
                        }
                        Link::Tcp(_, frames) => {
                            Some((Protocol::Tcp, self.node.unwrap(), frames.recv().await.expect("the node keeps the connection")))
                        }
                    }
                } => r,
                _ = tokio::time::sleep_until(timeout.into()) => {
                    self.rtc.handle_input(Input::Timeout(std::time::Instant::now())).unwrap();
                    continue;
                }
                _ = tokio::time::sleep_until(end) => return,
            };
            let Some((proto, source, data)) = received else { continue };
            let Ok(rx) = str0m::net::Receive::new(proto, source, self.local, &data) else { continue };
            self.rtc
                .handle_input(Input::Receive(std::time::Instant::now(), rx))
                .expect("the viewer takes the node's packets");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_loses_one_video_packet_in_twenty_gets_them_back_by_nack() {
    let node = start_with(with_webrtc(loopback_config())).await;
    let _publisher = publish_file(&webrtc_fixture(), &format!("rtmp://{}/live/demo", node.rtmp_addr));
    wait_published(node.api_addr, "/live/demo").await;
    let mut viewer = TestViewer::connect(&format!("http://{}/live/demo/whep", node.http_addr), false).await;
    viewer.run_for(2).await;
    let (video, broken) = (viewer.video, viewer.broken);
    viewer.drop_every = Some(20);
    viewer.run_for(6).await;
    let dropped = viewer.rtp_seen / 20;
    let (got, gaps) = (viewer.video - video, viewer.broken - broken);
    eprintln!(
        "5% loss: {dropped} video packets dropped, {} resent (RTX), {got} video frames, {gaps} with an unfilled gap",
        viewer.resent
    );
    assert!(dropped >= 10, "the loss was real: {dropped} packets dropped");
    // The viewer NACKs what it lost, and the node resends it (RTX, on its own SSRC).
    assert!(viewer.resent * 2 >= dropped, "{} resends for {dropped} losses", viewer.resent);
    // 25 frames a second keep coming, and the node's retransmissions fill (nearly) every gap.
    assert!(got >= 125, "{got} video frames in 6 s at 5% loss");
    assert!(gaps * 20 <= got, "{gaps} of {got} frames had a gap NACKs did not fill");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewers_keyframe_request_is_answered_from_the_gop_not_the_publishers_next_keyframe() {
    // A publisher with one keyframe every 30 s (the file is 30 s long, looped).
    let dir = tempfile::tempdir().unwrap();
    let long_gop = dir.path().join("long-gop.flv");
    let made = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "30"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-g", "750", "-bf", "0"])
        .args(["-x264-params", "scenecut=0", "-c:a", "aac", "-f", "flv"])
        .arg(&long_gop)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success());
    let node = start_with(with_webrtc(loopback_config())).await;
    let _publisher = publish_file(&long_gop, &format!("rtmp://{}/live/gop", node.rtmp_addr));
    wait_published(node.api_addr, "/live/gop").await;
    let mut viewer = TestViewer::connect(&format!("http://{}/live/gop/whep", node.http_addr), false).await;
    viewer.run_for(3).await;
    assert_eq!(viewer.keyframes, 1, "the viewer started at the GOP's keyframe, and no other came");
    let before = viewer.video;

    // The viewer's picture broke: it sends a PLI. The node sends the GOP again from its
    // keyframe at once; the publisher's next keyframe is more than 20 s away.
    viewer.ask_keyframe();
    viewer.run_for(1).await;
    assert_eq!(viewer.keyframes, 2, "the PLI was answered with the cached keyframe");
    assert!(viewer.video - before > 75, "the GOP came again, then live: {} frames", viewer.video - before);
    assert_eq!(viewer.broken, 0, "every frame whole");

    // A viewer flooding PLIs (one every 50 ms for 3 s) gets no more answers within this GOP (one
    // per GOP: at most twice the stream, whatever it sends), and its live frames keep coming.
    let before = viewer.video;
    for _ in 0..60 {
        viewer.ask_keyframe();
        viewer.run_for_ms(50).await;
    }
    assert_eq!(viewer.keyframes, 2, "60 PLIs in the same GOP were not answered again");
    assert!(viewer.video - before >= 70, "{} frames in 3 s", viewer.video - before);
    // Operators see them: answered from the GOP, or left to the next keyframe.
    let m = scrape_metrics(node.api_addr).await;
    let (resent, waited) = (
        m["ferrocast_node_webrtc_keyframe_requests_total{answer=\"resent\"}"],
        m["ferrocast_node_webrtc_keyframe_requests_total{answer=\"next_keyframe\"}"],
    );
    assert!(resent == 1.0 && waited >= 50.0, "resent {resent}, waited {waited}");
    assert_eq!(m["ferrocast_node_webrtc_sessions{engine=\"0\"}"], 1.0);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_sessions_from_one_address_are_capped_and_a_deleted_one_frees_its_place() {
    let mut config = with_webrtc(loopback_config());
    config.media.max_connections_per_ip = 3;
    let node = start_with(config).await;
    let _publisher = publish_file(&webrtc_fixture(), &format!("rtmp://{}/live/demo", node.rtmp_addr));
    wait_published(node.api_addr, "/live/demo").await;
    let url = format!("http://{}/live/demo/whep", node.http_addr);
    // One client, so one kept-alive HTTP connection (the cap is on HTTP connections too).
    let client = reqwest::Client::new();
    let offer = || async {
        let r = client.post(&url).header("content-type", "application/sdp").body(OFFER).send().await.unwrap();
        let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        (r.status().as_u16(), location, r.text().await.unwrap())
    };
    let mut sessions = Vec::new();
    let opened = std::time::Instant::now();
    for _ in 0..3 {
        let (status, location, text) = offer().await;
        assert_eq!(status, 201, "{text}");
        sessions.push(location.unwrap());
    }
    // A fourth from the same address, before any hook or engine sees it: a clear 503.
    let (status, _, text) = offer().await;
    assert_eq!(status, 503);
    assert!(text.contains("--max-connections-per-ip"), "{text}");
    // Ending one (DELETE) frees its place, well before the unconnected ones would expire (10 s).
    let gone = client.delete(format!("http://{}{}", node.http_addr, sessions[0])).send().await.unwrap();
    assert_eq!(gone.status(), 200);
    let freed = eventually(Duration::from_secs(3), || async { (offer().await.0 == 201).then_some(()) });
    assert!(freed.await.is_some(), "a new session once one ended");
    assert!(opened.elapsed() < Duration::from_secs(9), "the DELETE freed it, not the connect wait");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_whose_network_blocks_udp_plays_over_ice_tcp() {
    // Two engines sharing the port: the UDP viewer takes the first, so the TCP viewer's
    // connection must be routed to the second by its first STUN check.
    let mut config = with_webrtc(loopback_config());
    config.webrtc_engines = 2;
    let node = start_with(config).await;
    let _publisher = publish_file(&webrtc_fixture(), &format!("rtmp://{}/live/demo", node.rtmp_addr));
    wait_published(node.api_addr, "/live/demo").await;
    let url = format!("http://{}/live/demo/whep", node.http_addr);
    let mut udp_viewer = TestViewer::connect(&url, false).await;
    let mut viewer = TestViewer::connect(&url, true).await;
    udp_viewer.run_for(1).await;
    // A connection no session takes: it sends a frame now and then, and is closed anyway.
    let mut idle = tokio::net::TcpStream::connect(viewer.node.unwrap()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut idle, &[0, 4, 1, 2, 3, 4]).await.unwrap();
    let udp_video = udp_viewer.video;
    let (udp_viewer, viewer) = tokio::join!(
        async move {
            udp_viewer.run_for(5).await;
            udp_viewer
        },
        async move {
            viewer.run_for(5).await;
            viewer
        }
    );
    let mut viewer = viewer;
    assert!(udp_viewer.video - udp_video >= 75, "video frames over UDP, on the other engine: {}", udp_viewer.video);
    assert!(viewer.video >= 75, "video frames over TCP: {}", viewer.video);
    assert!(viewer.audio >= 150, "Opus frames over TCP: {}", viewer.audio);
    // Frames of a size no WebRTC packet has close that connection, and the node goes on.
    let mut junk = tokio::net::TcpStream::connect(viewer.node.unwrap()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut junk, &[0xff, 0xff, 1, 2, 3]).await.unwrap();
    let mut rest = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read_to_end(&mut junk, &mut rest));
    assert!(matches!(closed.await, Ok(Ok(0))), "the node closes a connection that sends a 64 KiB frame");
    // One address gets 16 connections at most: of 20 more, the extra ones are closed at once.
    let mut extra = Vec::new();
    for _ in 0..20 {
        extra.push(tokio::net::TcpStream::connect(viewer.node.unwrap()).await.unwrap());
    }
    let mut refused = 0;
    for c in &mut extra {
        let mut b = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(300), tokio::io::AsyncReadExt::read(c, &mut b)).await;
        refused += usize::from(matches!(read, Ok(Ok(0)) | Ok(Err(_))));
    }
    assert!(refused >= 4, "{refused} of 20 extra connections refused");
    drop(extra);
    let before = viewer.video;
    viewer.run_for(2).await;
    assert!(viewer.video >= before + 25, "the TCP viewer still plays: {} then {}", before, viewer.video);
    // The idle connection is closed within the connect wait (10 s) of its opening.
    let mut rest = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(8), tokio::io::AsyncReadExt::read_to_end(&mut idle, &mut rest));
    assert!(matches!(closed.await, Ok(Ok(0))), "a TCP connection no session took is closed");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playing_viewer_survives_bogus_dtls_and_rtcp_garbage_sent_from_its_own_address() {
    let node = start_with(with_webrtc(loopback_config())).await;
    let _publisher = publish_file(&webrtc_fixture(), &format!("rtmp://{}/live/demo", node.rtmp_addr));
    wait_published(node.api_addr, "/live/demo").await;

    let mut viewer = TestViewer::connect(&format!("http://{}/live/demo/whep", node.http_addr), false).await;
    viewer.run_for(4).await;
    assert!(viewer.video >= 50, "video frames before the garbage: {}", viewer.video);
    assert!(viewer.audio >= 100, "Opus frames before the garbage: {}", viewer.audio);
    let node_udp = viewer.node.expect("the viewer reached the node");
    // What the viewer was sent is counted, as for any player: the API (and so the index's load
    // figures) see it.
    let clients = get_json(&format!("http://{}/api/v1/clients/?count=100", node.api_addr)).await;
    let rtc = clients["clients"].as_array().unwrap().iter().find(|c| c["type"] == "rtc-play").cloned();
    let sent = rtc.as_ref().and_then(|c| c["send_bytes"].as_u64()).unwrap_or(0);
    assert!(sent > 100_000, "bytes sent to the WebRTC viewer: {sent} ({clients})");

    // From the viewer's own socket (the address the session knows): DTLS records of every
    // content type with garbage inside, RTCP sender/receiver reports, NACKs and PLIs with bad
    // lengths, and RTP-looking garbage.
    for i in 0..300u32 {
        let b = i as u8;
        let dtls = [&[20 + (b % 4), 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, b, 0, 16][..], &[b.wrapping_mul(7); 16]].concat();
        let rtcp = [0x81, 200 + (b % 7), 0, 0xff, 1, 2, 3, 4, b, b, b, b];
        let rtp = [&[0x80, 96 + (b % 32), 0, b, 0, 0, 0, b, 0xde, 0xad, 0xbe, 0xef][..], &[b; 40]].concat();
        for datagram in [&dtls[..], &rtcp, &rtp] {
            let Link::Udp(socket) = &viewer.link else { unreachable!() };
            let _ = socket.send_to(datagram, node_udp).await;
        }
    }
    let (video, audio) = (viewer.video, viewer.audio);
    viewer.run_for(4).await;
    assert!(viewer.video >= video + 50, "video after the garbage: {} then {}", video, viewer.video);
    assert!(viewer.audio >= audio + 100, "audio after the garbage: {} then {}", audio, viewer.audio);
    node.shutdown().await;
}

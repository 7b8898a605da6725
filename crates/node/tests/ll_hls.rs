//! Low-Latency HLS (fMP4 parts): real FFmpeg publishes; ffprobe and ffmpeg read
//! `/{app}/{stream}/index.m3u8` from an origin and from a cold edge, H.264 and H.265; blocking
//! playlist reloads and preload-hinted parts return when the part is cut, a request too far ahead
//! is a 400 and a part that left the window is a 404.

mod common;

use std::time::{Duration, Instant};

use common::*;

async fn get(http: std::net::SocketAddr, path: &str) -> reqwest::Response {
    reqwest::get(format!("http://{http}/{path}")).await.expect("the node answers")
}

async fn playlist(http: std::net::SocketAddr, path: &str) -> Option<String> {
    let r = get(http, path).await;
    if r.status() != 200 {
        return None;
    }
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    r.text().await.ok()
}

/// The `msn.part` the playlist's preload hint names, and the query its URIs carry.
fn preload_hint(text: &str) -> (u64, u32, String) {
    let line = text.lines().find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"")).expect("a hint");
    let (file, query) = line.trim_end_matches('"').split_once('?').unwrap();
    let (msn, part) = file.trim_end_matches(".m4s").split_once('.').unwrap();
    (msn.parse().unwrap(), part.parse().unwrap(), query.to_string())
}

/// Whether the playlist lists part `msn.part` as cut (not just as the preload hint).
fn lists_part(text: &str, msn: u64, part: u32) -> bool {
    text.lines().any(|l| l.starts_with("#EXT-X-PART:") && l.contains(&format!("URI=\"{msn}.{part}.m4s")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_plays_ll_hls_from_an_origin_and_from_a_cold_edge() {
    let origin = start_node().await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/demo?token=t", origin.rtmp_addr));
    let text = eventually(Duration::from_secs(20), || playlist(origin.http_addr, "live/demo/index.m3u8?token=t"))
        .await
        .expect("a playlist");
    assert!(text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.900"), "{text}");
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.300"), "{text}");
    assert!(text.contains("#EXT-X-MAP:URI=\"init-2.mp4?token=t&hls_ctx="), "{text}");
    assert!(text.contains(",INDEPENDENT=YES"), "the first part starts with a keyframe: {text}");
    let clients = get_json(&format!("http://{}/api/v1/clients/?count=100", origin.api_addr)).await;
    let viewer = clients["clients"].as_array().unwrap().iter().find(|c| c["type"] == "hls-play").cloned();
    assert_eq!(viewer.expect("the LL-HLS viewer is a client")["name"], "demo.m3u8");

    for node in [&origin] {
        let url = format!("http://{}/live/demo/index.m3u8", node.http_addr);
        let probe = ffprobe(&url).await;
        assert!(probe.contains("h264,video,640,360") && probe.contains("aac,audio"), "{probe}");
        let (ok, stderr) = decode(&url, 4).await;
        assert!(ok && stderr.trim().is_empty(), "decoding LL-HLS printed errors: {stderr}");
    }

    // A cold edge: the first playlist request starts the pull, and parts are cut on the edge.
    let edge = start_with(edge_config(&[origin.rtmp_addr.to_string()])).await;
    let url = format!("http://{}/live/demo/index.m3u8", edge.http_addr);
    let probe = ffprobe(&url).await;
    assert!(probe.contains("h264,video,640,360") && probe.contains("aac,audio"), "through the edge: {probe}");
    let (ok, stderr) = decode(&url, 4).await;
    assert!(ok && stderr.trim().is_empty(), "decoding LL-HLS from the edge printed errors: {stderr}");
    edge.shutdown().await;
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reloads_wait_for_the_part_and_old_parts_are_gone() {
    let mut config = loopback_config();
    config.hls.window = 2;
    let node = start_with(config).await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/ll", node.rtmp_addr));
    let text = eventually(Duration::from_secs(20), || playlist(node.http_addr, "live/ll/index.m3u8"))
        .await
        .expect("a playlist");
    let (msn, part, query) = preload_hint(&text);
    assert!(!lists_part(&text, msn, part), "the hinted part is not cut yet: {text}");

    // The hinted part is not cut yet: a blocking reload for it answers once it is.
    let asked = Instant::now();
    let blocked = playlist(node.http_addr, &format!("live/ll/index.m3u8?_HLS_msn={msn}&_HLS_part={part}&{query}"))
        .await
        .expect("the blocking reload answers");
    let waited = asked.elapsed();
    assert!(lists_part(&blocked, msn, part), "the answer lists part {msn}.{part} (asked {waited:?} ago): {blocked}");

    // The preload-hinted part itself: requested before it exists, served when cut.
    let (next_msn, next_part, _) = preload_hint(&blocked);
    let r = get(node.http_addr, &format!("live/ll/{next_msn}.{next_part}.m4s?{query}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    let body = r.bytes().await.unwrap();
    assert_eq!(&body[4..8], b"moof", "a part is one fragment");

    // More than two segments ahead of the playlist: 400, at once.
    let r = get(node.http_addr, &format!("live/ll/index.m3u8?_HLS_msn={}&{query}", next_msn + 3)).await;
    assert_eq!(r.status(), 400);
    let r = get(node.http_addr, &format!("live/ll/index.m3u8?_HLS_part=1&{query}")).await;
    assert_eq!(r.status(), 400, "_HLS_part without _HLS_msn");

    // Without the session, nothing but the playlist is served.
    assert_eq!(get(node.http_addr, &format!("live/ll/{next_msn}.{next_part}.m4s")).await.status(), 403);
    assert_eq!(get(node.http_addr, "live/ll/init-2.mp4").await.status(), 403);
    let init = get(node.http_addr, &format!("live/ll/init-2.mp4?{query}")).await;
    assert_eq!(init.status(), 200);
    assert_eq!(&init.bytes().await.unwrap()[4..8], b"ftyp");

    // Once the window (2 segments) has moved on, segment 0 and its parts are gone.
    eventually(Duration::from_secs(30), || async {
        let t = playlist(node.http_addr, &format!("live/ll/index.m3u8?{query}")).await?;
        (!t.contains("#EXT-X-MEDIA-SEQUENCE:0\n") && !t.contains("#EXT-X-MEDIA-SEQUENCE:1\n")).then_some(())
    })
    .await
    .expect("the window slides");
    assert_eq!(get(node.http_addr, &format!("live/ll/0.0.m4s?{query}")).await.status(), 404);
    assert_eq!(get(node.http_addr, &format!("live/ll/0.m4s?{query}")).await.status(), 404);
    node.shutdown().await;
}

/// A clip FFmpeg encodes as H.265 + AAC (fragmented MP4: FFmpeg 5.1 cannot write HEVC into
/// FLV), turned into the FLV frames an enhanced-RTMP encoder (OBS 30, FFmpeg 6.1+) publishes:
/// the `hvc1` sequence start with the clip's own hvcC, coded frames with their composition
/// offsets, and AAC as usual. Closed GOPs, as live encoders send: a player that joins at an
/// open GOP's CRA keyframe drops its leading pictures, and FFmpeg says so on stderr.
fn hevc_clip(secs: u32) -> Vec<ferrocast_media::Frame> {
    use ferrocast_media::{Frame, FrameKind};
    use mp4_atom::{Any, Atom, Codec, Decode};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hevc.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", &secs.to_string()])
        .args([
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "keyint=25:min-keyint=25:no-open-gop=1:log-level=error",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "frag_keyframe+empty_moov+default_base_moof"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg could not encode the H.265 clip");
    let bytes = std::fs::read(&path).unwrap();
    let mut frames = vec![];
    let mut timescale = std::collections::HashMap::new();
    let mut trex_flags = std::collections::HashMap::new();
    let mut video_track = 0;
    let mut input = &bytes[..];
    let mut moof = None;
    while !input.is_empty() {
        let at = bytes.len() - input.len();
        match Any::decode(&mut input).expect("FFmpeg's MP4 parses") {
            Any::Moov(moov) => {
                for trex in moov.mvex.iter().flat_map(|m| &m.trex) {
                    trex_flags.insert(trex.track_id, trex.default_sample_flags);
                }
                for trak in &moov.trak {
                    timescale.insert(trak.tkhd.track_id, u64::from(trak.mdia.mdhd.timescale));
                    let mut record = vec![];
                    match &trak.mdia.minf.stbl.stsd.codecs[0] {
                        Codec::Hev1(h) => h.hvcc.encode_body(&mut record).unwrap(),
                        Codec::Hvc1(h) => h.hvcc.encode_body(&mut record).unwrap(),
                        Codec::Mp4a(a) => {
                            let asc = a.esds.es_desc.dec_config.dec_specific.as_ref().unwrap().raw.clone();
                            frames.push(Frame::new(FrameKind::Audio, 0, [&[0xaf, 0][..], &asc].concat().into()));
                            continue;
                        }
                        other => panic!("unexpected codec {other:?}"),
                    }
                    video_track = trak.tkhd.track_id;
                    let header = [&[0x90][..], b"hvc1", &record].concat();
                    frames.insert(0, Frame::new(FrameKind::Video, 0, header.into()));
                }
            }
            Any::Moof(m) => moof = Some((at, m)),
            Any::Mdat(_) => {
                let (base, m) = moof.take().expect("a moof before each mdat");
                for traf in &m.traf {
                    let track = traf.tfhd.track_id;
                    let scale = timescale[&track];
                    let mut dts = traf.tfdt.as_ref().unwrap().base_media_decode_time;
                    for trun in &traf.trun {
                        let mut offset = base + trun.data_offset.unwrap() as usize;
                        for s in trun.samples.iter() {
                            let size = s.size.or(traf.tfhd.default_sample_size).unwrap() as usize;
                            let data = &bytes[offset..offset + size];
                            offset += size;
                            let ms = (dts * 1000 / scale) as u32;
                            dts += u64::from(s.duration.or(traf.tfhd.default_sample_duration).unwrap());
                            let frame = if track == video_track {
                                let flags = s.flags.or(traf.tfhd.default_sample_flags).unwrap_or(trex_flags[&track]);
                                let key = flags & 0x0001_0000 == 0; // not sample_is_non_sync_sample
                                let cts = (s.cts.unwrap_or(0) * 1000 / scale as i64) as i32;
                                let head = [if key { 0x91 } else { 0xa1 }];
                                let body = [&head[..], b"hvc1", &cts.to_be_bytes()[1..], data].concat();
                                Frame::new(FrameKind::Video, ms, body.into())
                            } else {
                                Frame::new(FrameKind::Audio, ms, [&[0xaf, 1][..], data].concat().into())
                            };
                            frames.push(frame);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let headers = frames.iter().take_while(|f| f.sequence_header).count();
    frames[headers..].sort_by_key(|f| f.timestamp);
    frames
}

/// Publishes `frames` at their pace (a live encoder), in a task that lives as long as the test.
fn publish_paced(rtmp: std::net::SocketAddr, path: &str, frames: Vec<ferrocast_media::Frame>) {
    use ferrocast_node::rtmp_client::RtmpClientConn;
    let url = format!("rtmp://{rtmp}/{path}");
    tokio::spawn(async move {
        let mode = ferrocast_rtmp::ClientMode::Publish;
        let mut up = RtmpClientConn::open(&url, mode, Duration::from_secs(5)).await.expect("publish starts");
        let start = tokio::time::Instant::now();
        for f in frames {
            tokio::time::sleep_until(start + Duration::from_millis(u64::from(f.timestamp))).await;
            up.send_media(ferrocast_node::hub::rtmp_kind(f.kind), f.timestamp, &f.payload);
            up.flush().await.expect("the node takes the frames");
        }
        std::future::pending::<()>().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_over_enhanced_rtmp_plays_as_ll_hls_from_an_origin_and_a_cold_edge() {
    let origin = start_node().await;
    let frames = hevc_clip(20);
    assert!(frames[2].is_video_keyframe(), "the clip starts with a keyframe");
    publish_paced(origin.rtmp_addr, "live/hevc", frames);
    let text = eventually(Duration::from_secs(20), || playlist(origin.http_addr, "live/hevc/index.m3u8"))
        .await
        .expect("a playlist");
    assert!(text.contains("#EXTINF:"), "{text}");
    let edge = start_with(edge_config(&[origin.rtmp_addr.to_string()])).await;
    for node in [&origin, &edge] {
        let url = format!("http://{}/live/hevc/index.m3u8", node.http_addr);
        let probe = ffprobe(&url).await;
        eprintln!("ffprobe of the H.265 LL-HLS stream: {probe}");
        assert!(probe.contains("hevc,video,320,240") && probe.contains("aac,audio"), "{url}: {probe}");
        let (ok, stderr) = decode(&url, 3).await;
        assert!(ok && stderr.trim().is_empty(), "decoding H.265 LL-HLS from {url} printed errors: {stderr}");
    }
    edge.shutdown().await;
    origin.shutdown().await;
}

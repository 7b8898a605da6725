//! Access control with real processes: an index with tokens on, a node whose hooks point at it
//! (with the shared secret in the hook URL), FFmpeg publishing and ffprobe / HTTP players. Tokens
//! are minted with `ferrocast token`, as an operator would. Publishing without a token, with an
//! expired one or with a play token is refused; a play token for live/a cannot play live/b, over
//! RTMP or HTTP-FLV.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

const KEY: &str = "k1=secret-of-the-e2e-index";
const HOOK_SECRET: &str = "hook-secret-0123456789";

/// `ferrocast token` with the index's key.
async fn token(scope: &str, stream: &str, ttl: &str) -> String {
    let out = ferrocast()
        .args(["token", "--scope", scope, "--stream", stream, "--ttl", ttl, "--key", KEY])
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("ferrocast token runs");
    assert!(out.status.success(), "ferrocast token failed");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(!token.is_empty() && token.len() < 100, "{token:?}");
    token
}

/// Waits for FFmpeg to give up (a refused publish); true when it failed within the limit.
async fn refused(publisher: tokio::process::Child) -> bool {
    match tokio::time::timeout(Duration::from_secs(20), publisher.wait_with_output()).await {
        Ok(Ok(out)) => !out.status.success(),
        _ => false,
    }
}

async fn flv_status(url: &str) -> u16 {
    reqwest::get(url).await.expect("GET").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_decide_who_publishes_and_plays_what() {
    let dir = tempfile::tempdir().unwrap();
    let index = IndexProcess::start(
        &dir.path().join("index.db"),
        &["--auth", "--auth-key", KEY, "--hook-secret", HOOK_SECRET, "--app-rule", "live=play:token"],
    )
    .await;
    let hooks = format!("http://{}/api/v1/hooks?secret={HOOK_SECRET}", index.addr);
    let node = NodeProcess::start(&["--name", "o1", "--hooks", &hooks]).await;
    let rtmp = |path: &str| format!("rtmp://{}/{path}", node.rtmp);

    // Refused: no token, an expired token, a play token.
    assert!(refused(publish(&rtmp("live/a"))).await, "a publish without a token must be refused");
    let expired = token("publish", "live/a", "1s").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(refused(publish(&rtmp(&format!("live/a?token={expired}")))).await, "an expired token must be refused");
    let play_a = token("play", "live/a", "1h").await;
    assert!(refused(publish(&rtmp(&format!("live/a?token={play_a}")))).await, "a play token must not publish");
    assert!(active_stream(&node.api, "/live/a").await.is_none());

    // Accepted: a publish token, for one stream or for the whole app.
    let _a = publish(&rtmp(&format!("live/a?token={}", token("publish", "live/a", "1h").await)));
    let _b = publish(&rtmp(&format!("live/b?token={}", token("publish", "live/*", "1h").await)));
    for url in ["/live/a", "/live/b"] {
        eventually(Duration::from_secs(20), || active_stream(&node.api, url))
            .await
            .unwrap_or_else(|| panic!("{url} is published with a valid token"));
    }

    // A play token for live/a plays live/a, not live/b: RTMP.
    let codecs = probe(&rtmp(&format!("live/a?token={play_a}"))).await;
    assert!(codecs.contains("h264") && codecs.contains("aac"), "RTMP play of live/a: {codecs:?}");
    assert_eq!(probe(&rtmp(&format!("live/b?token={play_a}"))).await, "", "RTMP play of live/b must be refused");
    assert_eq!(probe(&rtmp("live/a")).await, "", "RTMP play without a token must be refused");

    // And HTTP-FLV.
    let flv = |path: &str| format!("http://{}/{path}", node.http);
    assert_eq!(flv_status(&flv(&format!("live/b.flv?token={play_a}"))).await, 403);
    assert_eq!(flv_status(&flv("live/a.flv")).await, 403);
    let mut ok = reqwest::get(flv(&format!("live/a.flv?token={play_a}"))).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.chunk().await.unwrap().is_some_and(|c| c.starts_with(b"FLV")), "live/a plays over HTTP-FLV");
}

//! The `ferrocast node` command as an operator runs it: honest `--help`, clear config errors, the
//! bound addresses in the log, and a clean exit (status 0) on SIGTERM that ends players properly.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn help_lists_every_config_key() {
    let out = ferrocast().args(["node", "--help"]).output().await.unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--name",
        "--role",
        "--rtmp",
        "--http",
        "--api",
        "--region",
        "--log-format",
        "--chunk-size",
        "--merge-window-ms",
        "--play-wait-ms",
        "--slow-player-drop-ms",
        "--fanout-queue",
        "--gop-max-frames",
        "--gop-max-bytes",
        "--max-message-size",
        "--publish-idle-timeout-ms",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = ferrocast()
        .args(["node", "--rtmp", &format!("127.0.0.1:{port}"), "--http", "127.0.0.1:0", "--api", "127.0.0.1:0"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen for RTMP") && err.contains(&port.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_players_cleanly_and_exits_zero() {
    let mut node = NodeProcess::start(&[]).await;
    let _publisher = publish(&format!("rtmp://{}/live/demo", node.rtmp));
    // An HTTP-FLV player that reads until the server ends the body.
    let url = format!("http://{}/live/demo.flv", node.http);
    let player = tokio::spawn(async move {
        let mut r = reqwest::get(url).await.unwrap();
        let mut got = 0usize;
        loop {
            match r.chunk().await {
                Ok(Some(c)) => got += c.len(),
                Ok(None) => return (got, true),
                Err(_) => return (got, false),
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    node.signal("-TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), node.child.wait()).await.expect("node exits").unwrap();
    assert_eq!(status.code(), Some(0), "exit status 0 on SIGTERM");
    let (got, clean) = tokio::time::timeout(Duration::from_secs(5), player).await.unwrap().unwrap();
    assert!(got > 10_000, "the player received media before shutdown ({got} bytes)");
    assert!(clean, "the HTTP-FLV body ended cleanly (complete chunked response), not with a reset");
}

//! The `ferrocast node` command as an operator runs it: honest `--help`, clear config errors, the
//! bound addresses in the log, and a clean exit (status 0) on SIGTERM that ends players properly.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn ferrocast() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferrocast"));
    c.kill_on_drop(true);
    c
}

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
    let mut node = ferrocast()
        .args([
            "node",
            "--rtmp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(node.stderr.take().unwrap()).lines();
    let mut http = None;
    let mut rtmp = None;
    while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
        let v: serde_json::Value = serde_json::from_str(&line).expect("json log lines");
        if v["fields"]["message"] == "ferrocast node listening" {
            http = v["fields"]["http"].as_str().map(str::to_string);
            rtmp = v["fields"]["rtmp"].as_str().map(str::to_string);
            break;
        }
    }
    let (http, rtmp) = (http.expect("http address logged"), rtmp.expect("rtmp address logged"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.flv");
    let _publisher = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-re", "-stream_loop", "-1", "-i", fixture, "-c", "copy", "-f", "flv"])
        .arg(format!("rtmp://{rtmp}/live/demo"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // An HTTP-FLV player that reads until the server ends the body.
    let url = format!("http://{http}/live/demo.flv");
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
    let pid = node.id().unwrap() as i32;
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), node.wait()).await.expect("node exits").unwrap();
    assert_eq!(status.code(), Some(0), "exit status 0 on SIGTERM");
    let (got, clean) = tokio::time::timeout(Duration::from_secs(5), player).await.unwrap().unwrap();
    assert!(got > 10_000, "the player received media before shutdown ({got} bytes)");
    assert!(clean, "the HTTP-FLV body ended cleanly (complete chunked response), not with a reset");
}

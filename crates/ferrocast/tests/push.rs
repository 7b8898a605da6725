//! `ferrocast push` with real processes: two origins under one index server, the push asking the
//! index where to publish, and the primary origin killed — the stream must come back live on the
//! backup origin while the push keeps running and says where it went. Also the two errors a new
//! user meets first: an input that does not exist, and no FFmpeg installed.

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// A running `ferrocast push` and everything it wrote to stderr so far.
struct PushProcess {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl PushProcess {
    fn start(args: &[&str]) -> PushProcess {
        let mut child = ferrocast()
            .arg("push")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ferrocast starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        PushProcess { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

fn origin_spec(name: &str, n: &NodeProcess) -> String {
    format!("name={name},role=origin,api=http://{},rtmp=rtmp://{},http=http://{},region=eu", n.api, n.rtmp, n.http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_moves_to_the_backup_origin_when_the_primary_dies() {
    let dir = tempfile::tempdir().unwrap();
    let o1 = NodeProcess::start(&["--name", "o1"]).await;
    let o2 = NodeProcess::start(&["--name", "o2"]).await;
    let index = IndexProcess::start(
        &dir.path().join("index.db"),
        &["--node", &origin_spec("o1", &o1), "--node", &origin_spec("o2", &o2)],
    )
    .await;
    let idx = format!("http://{}", index.addr);
    eventually(Duration::from_secs(15), || async {
        let v = get_json(&format!("{idx}/api/v1/nodes")).await;
        (v["nodes"].as_array()?.iter().filter(|n| n["health"] == "up").count() == 2).then_some(())
    })
    .await
    .expect("both origins up in the index");

    let mut push = PushProcess::start(&[fixture(), "--loop", "--index", &idx, "--stream", "live/demo"]);
    eventually(Duration::from_secs(20), || active_stream(&o1.api, "/live/demo"))
        .await
        .unwrap_or_else(|| panic!("live on o1, the primary; push said:\n{}", push.stderr()));
    assert!(active_stream(&o2.api, "/live/demo").await.is_none(), "one origin at a time");

    o1.signal("-KILL");
    let killed = Instant::now();
    eventually(Duration::from_secs(20), || active_stream(&o2.api, "/live/demo"))
        .await
        .unwrap_or_else(|| panic!("live on o2 after o1 died; push said:\n{}", push.stderr()));
    let took = killed.elapsed();
    println!("o1 killed -> live on o2 in {} ms", took.as_millis());
    assert!(push.child.try_wait().unwrap().is_none(), "the push runs on: {}", push.stderr());

    // Its progress line (one every 5 s, stderr being a pipe) shows the new origin and the restart.
    eventually(Duration::from_secs(12), || {
        let s = push.stderr();
        async move {
            s.lines().any(|l| l.contains("fps=") && l.contains("origin=o2") && l.contains("restarts=1")).then_some(())
        }
    })
    .await
    .unwrap_or_else(|| panic!("a progress line on o2; push said:\n{}", push.stderr()));
    let said = push.stderr();
    assert!(said.contains("publishing to o2") && said.contains("(moved from o1)"), "{said}");

    // SIGTERM stops FFmpeg and the push cleanly.
    std::process::Command::new("kill").args(["-TERM", &push.child.id().unwrap().to_string()]).status().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), push.child.wait()).await.expect("stops").unwrap();
    assert!(status.success(), "exit 0 on SIGTERM: {status}; push said:\n{}", push.stderr());
    eventually(Duration::from_secs(10), || async {
        active_stream(&o2.api, "/live/demo").await.is_none().then_some(())
    })
    .await
    .expect("FFmpeg stopped publishing");
}

#[tokio::test]
async fn a_missing_input_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-clip.flv");
    let started = Instant::now();
    let mut push = PushProcess::start(&[missing.to_str().unwrap(), "--loop", "--to", "rtmp://127.0.0.1:9/live/none"]);
    let status = tokio::time::timeout(Duration::from_secs(15), push.child.wait()).await.expect("gives up").unwrap();
    assert!(!status.success());
    // Let the stderr reader catch up with the last lines.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let said = push.stderr();
    assert!(said.contains("cannot read the input") && said.contains("no-such-clip.flv"), "{said}");
    println!("missing input: exit after {} ms", started.elapsed().as_millis());
}

#[tokio::test]
async fn a_missing_ffmpeg_says_to_install_it() {
    let empty = tempfile::tempdir().unwrap();
    let out = ferrocast()
        .args(["push", fixture(), "--to", "rtmp://127.0.0.1:9/live/none"])
        .env("PATH", empty.path())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("`ffmpeg` was not found in PATH") && said.contains("apt-get install ffmpeg"), "{said}");
}

#[tokio::test]
async fn help_lists_every_flag() {
    let out = ferrocast().args(["push", "--help"]).output().await.unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--index",
        "--stream",
        "--to",
        "--loop",
        "--video-codec",
        "--preset",
        "--video-bitrate",
        "--audio-codec",
        "--audio-bitrate",
        "--ffmpeg-arg",
        "--input-arg",
        "--stall-timeout",
        "--backoff-min",
        "--backoff-max",
        "--token",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

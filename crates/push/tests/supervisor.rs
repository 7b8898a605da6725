//! The supervisor against a fake FFmpeg: a shell script in a tempdir that counts its runs, notes
//! the URL it was given, and writes progress blocks or fails as each test needs. This checks
//! restarts, backoff, stall detection, input errors and the move to a backup origin without media.

use std::path::Path;
use std::time::Duration;

use ferrocast_push::{
    BackoffConfig, Event, FfmpegCommand, Finished, IndexClient, PushConfig, PushError, Target, supervise,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Prints progress blocks with an advancing position, forever.
const RUN_FOREVER: &str = r#"t=0; while true; do t=$((t+100000)); printf 'fps=25.0\nout_time_us=%s\nspeed=1.0x\nprogress=continue\n' $t; sleep 0.05; done"#;

/// Writes a fake FFmpeg; `body` runs with `$n` = the run number (from 1) and `$last` = the output.
fn fake_ffmpeg(dir: &Path, body: &str) -> String {
    let path = dir.join("ffmpeg");
    let script = format!(
        "#!/bin/sh\ndir=$(dirname \"$0\")\nn=$(( $(cat \"$dir/count\" 2>/dev/null || echo 0) + 1 ))\n\
         echo $n > \"$dir/count\"\nfor a in \"$@\"; do last=$a; done\necho \"$last\" >> \"$dir/urls\"\n{body}\n"
    );
    std::fs::write(&path, script).unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    path.to_str().unwrap().to_string()
}

fn runs(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("urls")).unwrap_or_default().lines().map(str::to_string).collect()
}

fn config(ffmpeg: String, looped: bool, target: Target) -> PushConfig {
    let command = FfmpegCommand { input: "in.flv".into(), looped, ..Default::default() };
    let mut c = PushConfig::new(command, target);
    c.ffmpeg = ffmpeg;
    c.stall_timeout = Duration::from_millis(400);
    c.backoff = BackoffConfig {
        min: Duration::from_millis(50),
        max: Duration::from_millis(200),
        reset_after: Duration::from_secs(30),
    };
    c
}

fn fixed() -> Target {
    Target::Fixed(vec!["rtmp://127.0.0.1:1935/live/a".into()])
}

struct Running {
    task: JoinHandle<Result<Finished, PushError>>,
    events: UnboundedReceiver<Event>,
    stop: CancellationToken,
    seen: Vec<Event>,
}

fn start(c: PushConfig) -> Running {
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let task = tokio::spawn(supervise(c, tx, stop.clone()));
    Running { task, events, stop, seen: Vec::new() }
}

impl Running {
    /// Reads events until one matches, within 10 s.
    async fn until(&mut self, what: &str, f: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => {
                    self.seen.push(e.clone());
                    if f(&e) {
                        return e;
                    }
                }
                _ => panic!("no event {what}; saw {:?}", self.seen),
            }
        }
    }

    async fn stop(self) -> Result<Finished, PushError> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task).await.expect("stops at once").unwrap()
    }

    async fn end(self) -> Result<Finished, PushError> {
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("ends by itself").unwrap()
    }
}

fn is_progress(e: &Event) -> bool {
    matches!(e, Event::Progress(_))
}

#[tokio::test]
async fn an_exit_is_restarted_and_stop_ends_ffmpeg_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "if [ $n -eq 1 ]; then printf 'out_time_us=1000\\nprogress=continue\\n'; echo 'Broken pipe' >&2; exit 1; fi\n\
         trap 'echo stopped > \"$dir/term\"; exit 255' TERM\n{RUN_FOREVER}"
    );
    let mut r = start(config(fake_ffmpeg(dir.path(), &body), true, fixed()));
    let failed = r.until("failed", |e| matches!(e, Event::Failed { .. })).await;
    assert_eq!(failed.message().unwrap(), "FFmpeg exited (exit status: 1): Broken pipe");
    r.until("restart 1", |e| matches!(e, Event::Publishing { restarts: 1, .. })).await;
    r.until("progress after the restart", is_progress).await;
    assert_eq!(r.stop().await.unwrap(), Finished::Stopped);
    assert_eq!(runs(dir.path()).len(), 2);
    // SIGTERM reached the script (FFmpeg would close the stream properly on it).
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !dir.path().join("term").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dir.path().join("term").exists(), "FFmpeg got SIGTERM");
}

#[tokio::test]
async fn a_stalled_ffmpeg_is_killed_and_restarted_with_growing_waits() {
    let dir = tempfile::tempdir().unwrap();
    let body = "printf 'out_time_us=1000\\nprogress=continue\\n'; sleep 30";
    let mut r = start(config(fake_ffmpeg(dir.path(), body), true, fixed()));
    let mut waits = Vec::new();
    for _ in 0..3 {
        let f = r.until("stall", |e| matches!(e, Event::Failed { .. })).await;
        assert!(f.message().unwrap().contains("no progress for 0.4s"), "{f:?}");
        match r.until("wait", |e| matches!(e, Event::Waiting { .. })).await {
            Event::Waiting { delay } => waits.push(delay.as_millis()),
            _ => unreachable!(),
        }
    }
    assert_eq!(waits, [50, 100, 200]);
    assert_eq!(r.stop().await.unwrap(), Finished::Stopped);
    assert!(runs(dir.path()).len() >= 3);
}

#[tokio::test]
async fn an_unreadable_input_is_an_error_at_once_with_ffmpegs_words() {
    let dir = tempfile::tempdir().unwrap();
    let body = "echo 'in.flv: No such file or directory' >&2; exit 1";
    let r = start(config(fake_ffmpeg(dir.path(), body), true, fixed()));
    match r.end().await {
        Err(e @ PushError::Input { .. }) => {
            assert!(e.to_string().contains("in.flv: No such file or directory"), "{e}");
        }
        other => panic!("expected an input error, got {other:?}"),
    }
    assert_eq!(runs(dir.path()).len(), 1, "not retried");
}

#[tokio::test]
async fn an_output_error_at_start_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!("if [ $n -le 2 ]; then echo \"$last: Connection refused\" >&2; exit 1; fi\n{RUN_FOREVER}");
    let mut r = start(config(fake_ffmpeg(dir.path(), &body), true, fixed()));
    r.until("restart 2", |e| matches!(e, Event::Publishing { restarts: 2, .. })).await;
    r.until("progress", is_progress).await;
    assert_eq!(r.stop().await.unwrap(), Finished::Stopped);
}

#[tokio::test]
async fn the_end_of_the_input_ends_the_push_unless_it_loops() {
    let dir = tempfile::tempdir().unwrap();
    let ffmpeg = fake_ffmpeg(dir.path(), "printf 'out_time_us=1000\\nprogress=end\\n'; exit 0");
    assert_eq!(start(config(ffmpeg.clone(), false, fixed())).end().await.unwrap(), Finished::InputEnded);
    let mut r = start(config(ffmpeg, true, fixed()));
    r.until("restart", |e| matches!(e, Event::Publishing { restarts: 1, .. })).await;
    r.stop().await.unwrap();
}

#[tokio::test]
async fn a_missing_ffmpeg_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("ffmpeg").to_str().unwrap().to_string();
    match start(config(missing.clone(), false, fixed())).end().await {
        Err(e @ PushError::FfmpegMissing(_)) => assert!(e.to_string().contains(&missing), "{e}"),
        other => panic!("expected FFmpeg missing, got {other:?}"),
    }
}

/// A stand-in index server that gives the same publish answer to every question.
async fn fake_index(answer: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_failed_primary_moves_the_push_to_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let index = fake_index(
        r#"{"code":0,"url":"rtmp://o1.test/live/a","node":"o1","region":"eu",
            "backups":[{"url":"rtmp://o2.test/live/a","node":"o2","region":"us"}]}"#,
    )
    .await;
    let body = format!("if [ $n -eq 1 ]; then exit 1; fi\n{RUN_FOREVER}");
    let target = Target::Index(IndexClient::new(&index, "live/a").unwrap());
    let mut r = start(config(fake_ffmpeg(dir.path(), &body), true, target));
    let moved = r.until("move", |e| matches!(e, Event::Publishing { restarts: 1, .. })).await;
    assert_eq!(moved.message().unwrap(), "publishing to o2: rtmp://o2.test/live/a (moved from o1) [restart 1]");
    r.until("progress", is_progress).await;
    r.stop().await.unwrap();
    assert_eq!(runs(dir.path()), ["rtmp://o1.test/live/a", "rtmp://o2.test/live/a"]);
}

#[tokio::test]
async fn an_index_that_never_answers_is_given_up_with_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let target = Target::Index(IndexClient::new(&format!("http://127.0.0.1:{port}"), "live/a").unwrap());
    let mut c = config(fake_ffmpeg(dir.path(), RUN_FOREVER), true, target);
    c.index_tries = 3;
    let mut r = start(c);
    r.until("trouble", |e| matches!(e, Event::IndexTrouble { .. })).await;
    match r.end().await {
        Err(e @ PushError::Index { tries: 3, .. }) => {
            let e = e.to_string();
            assert!(e.contains(&format!("http://127.0.0.1:{port}/api/v1/publish/live/a")), "{e}");
        }
        other => panic!("expected an index error, got {other:?}"),
    }
    assert!(runs(dir.path()).is_empty(), "FFmpeg never started");
}

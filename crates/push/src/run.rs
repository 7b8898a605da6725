//! One FFmpeg process from start to end. It runs in its own process group, so a Ctrl-C in the
//! terminal reaches only the supervisor, which then stops FFmpeg itself (SIGTERM, so FFmpeg closes
//! the stream properly; SIGKILL if it does not). Its `-progress` blocks are read from stdout, the
//! last lines of its stderr are kept for error messages, and it is killed when it stops moving.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::progress::{Progress, ProgressParser};

/// Lines of stderr kept.
const TAIL_LINES: usize = 20;
/// How long FFmpeg gets to finish after SIGTERM.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// How a run ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The supervisor was asked to stop, and stopped FFmpeg.
    Stopped,
    /// FFmpeg exited by itself.
    Exited(ExitStatus),
    /// FFmpeg made no progress for the stall timeout and was killed.
    Stalled,
}

/// What the supervisor needs to know about a finished run.
#[derive(Debug)]
pub(crate) struct RunReport {
    pub outcome: Outcome,
    /// From spawn to exit.
    pub ran_for: Duration,
    /// From the first to the last advance of the output position (0 when it never moved).
    pub healthy_for: Duration,
    /// The output position moved at least once.
    pub progressed: bool,
    /// The last lines FFmpeg wrote to stderr.
    pub stderr_tail: Vec<String>,
}

/// The program to run, found like a shell would: a name is looked up in `PATH`, a path is used as is.
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| executable(p))
}

/// Sends `sig` to FFmpeg's process group (FFmpeg and anything it started).
fn signal_group(child: &Child, sig: Signal) {
    let Some(pid) = child.id().and_then(|id| Pid::from_raw(id as i32)) else { return };
    if let Err(e) = kill_process_group(pid, sig) {
        tracing::debug!("signal to FFmpeg's process group {pid:?}: {e}");
    }
}

async fn read_lines(pipe: impl AsyncRead + Unpin, mut each: impl FnMut(String)) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        each(line);
    }
}

/// Runs FFmpeg once with `argv`, calling `on_progress` for each progress block.
pub(crate) async fn run_once(
    program: &Path,
    argv: &[String],
    stall_timeout: Duration,
    stop: &CancellationToken,
    mut on_progress: impl FnMut(Progress),
) -> std::io::Result<RunReport> {
    tracing::debug!(program = %program.display(), argv = ?argv, "starting FFmpeg");
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let (tx, mut blocks) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    let out_task = tokio::spawn(async move {
        let mut parser = ProgressParser::new();
        read_lines(stdout, |line| {
            if let Some(p) = parser.feed(&line) {
                let _ = tx.send(p);
            }
        })
        .await
    });
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let stderr = child.stderr.take().expect("stderr is piped");
    let err_task = tokio::spawn({
        let tail = tail.clone();
        read_lines(stderr, move |line| {
            tracing::debug!(target: "ffmpeg", "{line}");
            let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line);
        })
    });

    let mut last_move = started;
    let mut first_move = None;
    let mut position = None;
    let outcome = loop {
        tokio::select! {
            status = child.wait() => break Outcome::Exited(status?),
            Some(p) = blocks.recv() => {
                if p.out_time_us.is_some() && p.out_time_us > position {
                    position = p.out_time_us;
                    last_move = Instant::now();
                    first_move.get_or_insert(last_move);
                }
                on_progress(p);
            }
            _ = tokio::time::sleep_until(last_move + stall_timeout) => {
                tracing::debug!("FFmpeg made no progress for {stall_timeout:?}: killing it");
                signal_group(&child, Signal::KILL);
                child.wait().await?;
                break Outcome::Stalled;
            }
            _ = stop.cancelled() => {
                signal_group(&child, Signal::TERM);
                if tokio::time::timeout(TERM_GRACE, child.wait()).await.is_err() {
                    signal_group(&child, Signal::KILL);
                    child.wait().await?;
                }
                break Outcome::Stopped;
            }
        }
    };
    let ran_for = started.elapsed();
    // The pipes close when FFmpeg is gone; wait a moment for its last words, no longer (something
    // it started could keep a pipe open).
    let mut err_task = err_task;
    let _ = tokio::time::timeout(Duration::from_millis(500), &mut err_task).await;
    err_task.abort();
    out_task.abort();
    let stderr_tail = tail.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
    Ok(RunReport {
        outcome,
        ran_for,
        healthy_for: first_move.map_or(Duration::ZERO, |f| last_move - f),
        progressed: first_move.is_some(),
        stderr_tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_in_path_or_by_path() {
        assert!(find_program("sh").is_some(), "sh is in PATH");
        assert_eq!(find_program("/bin/sh"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find_program("no-such-program-ferrocast"), None);
        assert_eq!(find_program("/nonexistent/ffmpeg"), None);
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("ffmpeg");
        std::fs::write(&plain, "").unwrap();
        assert_eq!(find_program(plain.to_str().unwrap()), None, "not executable");
    }
}

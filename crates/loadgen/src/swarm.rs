//! The run itself: start players along the ramp, stop them all at the deadline (or Ctrl-C),
//! collect every report within a short grace period, and summarize.
//!
//! Every requested player yields exactly one report, even one the ramp never reached or one
//! that would not stop, so the counts in the summary always add up to `--players`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::live::{Live, progress};
use crate::outcome::{Fail, FailReason, PlayerReport};
use crate::player_http::{self, HttpPlay};
use crate::player_llhls::{self, LlHlsPlay};
use crate::player_rtmp::{self, RtmpPlay};
use crate::player_whep::{self, WhepPlay};
use crate::summary::{RunInfo, Summary, summarize};
use crate::target::Target;

/// How long players get to wind down after the stop signal before they are aborted.
pub const GRACE: Duration = Duration::from_secs(3);

/// The protocol-specific part every player of a run shares.
pub enum Play {
    Http(Arc<HttpPlay>),
    Rtmp(Arc<RtmpPlay>),
    LlHls(Arc<LlHlsPlay>),
    Whep(Arc<WhepPlay>),
}

/// A validated run.
pub struct Plan {
    pub target: Target,
    pub play: Play,
    pub players: usize,
    pub ramp_per_s: f64,
    pub duration: Duration,
}

impl Plan {
    /// How many players the ramp starts before the deadline.
    pub fn players_in_time(&self) -> usize {
        let reachable = (self.duration.as_secs_f64() * self.ramp_per_s).ceil();
        if reachable >= self.players as f64 { self.players } else { reachable as usize }
    }
}

/// Runs the plan to the end and returns the summary.
pub async fn run(plan: Plan) -> Summary {
    let live = Live::new(plan.players);
    let start = live.run_start;
    let stop = CancellationToken::new();
    let interrupted = Arc::new(AtomicBool::new(false));
    tokio::spawn(stopper(start + plan.duration, stop.clone(), interrupted.clone()));
    tokio::spawn(progress(live.clone(), stop.clone()));

    let mut players = JoinSet::new();
    let gap = Duration::from_secs_f64(1.0 / plan.ramp_per_s);
    for i in 0..plan.players {
        let at = start + gap.mul_f64(i as f64);
        if at > Instant::now() {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = sleep_until(at) => {}
            }
        } else if i % 64 == 63 {
            // Behind schedule (a burst): let the players already started run.
            tokio::task::yield_now().await;
        }
        if stop.is_cancelled() {
            break;
        }
        let (live, stop) = (live.clone(), stop.clone());
        match &plan.play {
            Play::Http(play) => players.spawn(player_http::run(play.clone(), live, stop)),
            Play::Rtmp(play) => players.spawn(player_rtmp::run(play.clone(), live, stop)),
            Play::LlHls(play) => players.spawn(player_llhls::run(play.clone(), live, stop)),
            Play::Whep(play) => players.spawn(player_whep::run(play.clone(), live, stop)),
        };
    }
    let started = players.len();
    stop.cancelled().await;
    let stopped_at = Instant::now();

    let mut reports = Vec::with_capacity(plan.players);
    let grace_end = stopped_at + GRACE;
    loop {
        match timeout_at(grace_end, players.join_next()).await {
            Ok(Some(Ok(report))) => reports.push(report),
            Ok(Some(Err(e))) => reports.push(hung(format!("player task failed: {e}"))),
            Ok(None) => break,
            Err(_) => {
                let left = players.len();
                players.abort_all();
                reports.extend((0..left).map(|_| hung("still running after the grace period".into())));
                break;
            }
        }
    }
    reports.extend((started..plan.players).map(|_| PlayerReport::failed(FailReason::NotStarted)));

    let info = RunInfo {
        url: plan.target.url.clone(),
        protocol: plan.target.protocol.name(),
        players_requested: plan.players,
        ramp_per_s: plan.ramp_per_s,
        duration_s: plan.duration.as_secs_f64(),
        elapsed_s: (stopped_at.duration_since(start).as_secs_f64() * 1000.0).round() / 1000.0,
        interrupted: interrupted.load(Ordering::Relaxed),
    };
    summarize(info, &reports)
}

fn hung(detail: String) -> PlayerReport {
    let fail = Fail::new(FailReason::Hung, detail);
    PlayerReport { failure: Some(fail.reason), failure_detail: fail.detail, ..PlayerReport::default() }
}

/// Cancels `stop` at the deadline or on Ctrl-C, whichever comes first.
async fn stopper(deadline: Instant, stop: CancellationToken, interrupted: Arc<AtomicBool>) {
    tokio::select! {
        _ = sleep_until(deadline) => {}
        r = tokio::signal::ctrl_c() => {
            if r.is_ok() {
                interrupted.store(true, Ordering::Relaxed);
                eprintln!("interrupted: stopping the players and reporting");
            } else {
                // No signal handler: just wait for the deadline.
                sleep_until(deadline).await;
            }
        }
    }
    stop.cancel();
}

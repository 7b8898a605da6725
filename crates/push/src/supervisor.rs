//! The supervision loop: find FFmpeg, pick where to publish, run FFmpeg, and when it exits or
//! stalls, wait (with backoff) and start it again — asking the index again first and passing over
//! the origin that just failed, so the stream moves to a backup origin. It gives up only on what a
//! restart cannot fix: no FFmpeg, an input FFmpeg cannot read, an index that never answered.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::PushError;
use crate::backoff::{Backoff, BackoffConfig};
use crate::command::FfmpegCommand;
use crate::run::{Outcome, RunReport, find_program, run_once};
use crate::status::Event;
use crate::target::{IndexClient, PublishAnswer, Target, TargetError};

/// An input error shows within this long of FFmpeg's start; a later failure is worth a restart.
const INPUT_CHECK: Duration = Duration::from_secs(2);

/// Everything a push needs.
#[derive(Clone, Debug)]
pub struct PushConfig {
    /// The FFmpeg program: a name looked up in `PATH`, or a path.
    pub ffmpeg: String,
    pub command: FfmpegCommand,
    pub target: Target,
    /// Kill FFmpeg when its output position has not moved for this long.
    pub stall_timeout: Duration,
    pub backoff: BackoffConfig,
    /// Questions to the index before giving up, when it has never answered.
    pub index_tries: u32,
}

impl PushConfig {
    /// A config with the defaults: `ffmpeg` from `PATH`, 5 s stall timeout, 0.5–10 s backoff, 5 tries.
    pub fn new(command: FfmpegCommand, target: Target) -> PushConfig {
        PushConfig {
            ffmpeg: "ffmpeg".into(),
            command,
            target,
            stall_timeout: Duration::from_secs(5),
            backoff: BackoffConfig::default(),
            index_tries: 5,
        }
    }
}

/// How a push ended without error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// Asked to stop; FFmpeg was stopped.
    Stopped,
    /// FFmpeg read the whole input (no `--loop`) and exited cleanly.
    InputEnded,
}

/// Where one run publishes.
struct Choice {
    urls: Vec<String>,
    label: String,
    /// The origin node, when the index chose it.
    node: Option<String>,
}

/// What names a fixed target in the status line: its host:port, or how many outputs there are.
fn fixed_label(urls: &[String]) -> String {
    match urls {
        [one] => {
            let rest = one.split_once("://").map_or(one.as_str(), |(_, r)| r);
            rest.split('/').next().unwrap_or(rest).to_string()
        }
        [first, rest @ ..] => format!("{}+{}", fixed_label(std::slice::from_ref(first)), rest.len()),
        [] => "-".into(),
    }
}

/// Whether FFmpeg's last words blame the input rather than the output.
fn blames_input(tail: &[String], input: &str) -> bool {
    let prefix = format!("{input}: ");
    tail.iter().any(|l| l.starts_with(&prefix) || l.contains("Error opening input"))
}

struct Supervisor {
    config: PushConfig,
    program: PathBuf,
    events: UnboundedSender<Event>,
    stop: CancellationToken,
    backoff: Backoff,
    restarts: u32,
    /// The index's last answer.
    answer: Option<PublishAnswer>,
    /// The origin node of the run that just failed.
    failed: Option<String>,
    /// The origin node of the current run.
    current: Option<String>,
    /// Some run has ever moved its output position.
    ever_progressed: bool,
}

/// Runs a push until it is stopped, the input ends (without looping), or it meets an error a
/// restart cannot fix. Events go to `events` as they happen.
pub async fn supervise(
    config: PushConfig,
    events: UnboundedSender<Event>,
    stop: CancellationToken,
) -> Result<Finished, PushError> {
    config.command.validate()?;
    if let Target::Fixed(urls) = &config.target
        && urls.is_empty()
    {
        return Err(PushError::NoTarget);
    }
    let program = find_program(&config.ffmpeg).ok_or_else(|| PushError::FfmpegMissing(config.ffmpeg.clone()))?;
    let backoff = Backoff::new(config.backoff);
    let mut s = Supervisor {
        config,
        program,
        events,
        stop,
        backoff,
        restarts: 0,
        answer: None,
        failed: None,
        current: None,
        ever_progressed: false,
    };
    s.run().await
}

impl Supervisor {
    fn emit(&self, event: Event) {
        if let Some(m) = event.message() {
            tracing::debug!("{m}");
        }
        let _ = self.events.send(event);
    }

    /// Waits `d`; false when asked to stop meanwhile.
    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.stop.cancelled() => false,
        }
    }

    /// Asks the index once; `None` when asked to stop meanwhile.
    async fn ask(&self, client: &IndexClient) -> Option<Result<PublishAnswer, TargetError>> {
        tokio::select! {
            r = client.ask() => Some(r),
            _ = self.stop.cancelled() => None,
        }
    }

    /// The index's answer: at the first run, up to `index_tries` questions; later one question,
    /// and the last answer when the index cannot be asked. `None` when asked to stop.
    async fn answer(&mut self, client: &IndexClient) -> Result<Option<PublishAnswer>, PushError> {
        if let Some(last) = self.answer.clone() {
            return Ok(match self.ask(client).await {
                None => None,
                Some(Ok(a)) => Some(a),
                Some(Err(e)) => {
                    self.emit(Event::IndexTrouble { error: e.to_string(), then: "using its last answer".into() });
                    Some(last)
                }
            });
        }
        let mut waits = Backoff::new(self.config.backoff);
        let tries = self.config.index_tries.max(1);
        for attempt in 1..=tries {
            match self.ask(client).await {
                None => return Ok(None),
                Some(Ok(a)) => return Ok(Some(a)),
                Some(Err(error)) if attempt == tries => return Err(PushError::Index { tries, error }),
                Some(Err(e)) => {
                    let delay = waits.after_run(Duration::ZERO);
                    let then = format!("asking again in {:.1}s (try {attempt} of {tries})", delay.as_secs_f64());
                    self.emit(Event::IndexTrouble { error: e.to_string(), then });
                    if !self.sleep(delay).await {
                        return Ok(None);
                    }
                }
            }
        }
        unreachable!("the last try returns")
    }

    /// Where the next run publishes; `None` when asked to stop.
    async fn choose(&mut self) -> Result<Option<Choice>, PushError> {
        let client = match &self.config.target {
            Target::Fixed(urls) => {
                return Ok(Some(Choice { urls: urls.clone(), label: fixed_label(urls), node: None }));
            }
            Target::Index(client) => client.clone(),
        };
        let Some(answer) = self.answer(&client).await? else { return Ok(None) };
        let origin = answer.pick(self.failed.as_deref()).clone();
        self.answer = Some(answer);
        let label = if origin.node.is_empty() { fixed_label(std::slice::from_ref(&origin.url)) } else { origin.node };
        Ok(Some(Choice { urls: vec![origin.url], label: label.clone(), node: Some(label) }))
    }

    async fn run(&mut self) -> Result<Finished, PushError> {
        loop {
            let Some(choice) = self.choose().await? else { return Ok(Finished::Stopped) };
            let moved_from = match (&self.current, &choice.node) {
                (Some(prev), Some(next)) if prev != next => Some(prev.clone()),
                _ => None,
            };
            self.emit(Event::Publishing {
                label: choice.label.clone(),
                urls: choice.urls.clone(),
                moved_from,
                restarts: self.restarts,
            });
            self.current = choice.node.clone();
            let report = self.run_ffmpeg(&choice.urls).await?;
            let reason = match report.outcome {
                Outcome::Stopped => return Ok(Finished::Stopped),
                Outcome::Exited(st) if st.success() && !self.config.command.looped => {
                    return Ok(Finished::InputEnded);
                }
                Outcome::Exited(st)
                    if !st.success()
                        && !self.ever_progressed
                        && !report.progressed
                        && report.ran_for < INPUT_CHECK
                        && blames_input(&report.stderr_tail, &self.config.command.input) =>
                {
                    return Err(PushError::Input {
                        input: self.config.command.input.clone(),
                        stderr: report.stderr_tail,
                    });
                }
                Outcome::Exited(st) => format!("FFmpeg exited ({st})"),
                Outcome::Stalled => {
                    format!(
                        "FFmpeg made no progress for {:.1}s and was stopped",
                        self.config.stall_timeout.as_secs_f64()
                    )
                }
            };
            self.ever_progressed |= report.progressed;
            self.emit(Event::Failed { reason, last_error: report.stderr_tail.last().cloned() });
            self.failed = choice.node;
            let delay = self.backoff.after_run(report.healthy_for);
            self.emit(Event::Waiting { delay });
            if !self.sleep(delay).await {
                return Ok(Finished::Stopped);
            }
            self.restarts += 1;
        }
    }

    async fn run_ffmpeg(&self, urls: &[String]) -> Result<RunReport, PushError> {
        let argv = self.config.command.argv(urls);
        let events = self.events.clone();
        run_once(&self.program, &argv, self.config.stall_timeout, &self.stop, |p| {
            let _ = events.send(Event::Progress(p));
        })
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PushError::FfmpegMissing(self.program.display().to_string()),
            _ => PushError::Spawn { program: self.program.display().to_string(), error: e },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_input_blame() {
        assert_eq!(fixed_label(&["rtmp://10.0.0.1:1935/live/a".into()]), "10.0.0.1:1935");
        let two = ["rtmp://a:1935/live/x".into(), "rtmp://b/live/x".into(), "rtmp://c/live/x".into()];
        assert_eq!(fixed_label(&two), "a:1935+2");
        let tail = |s: &str| vec!["something".to_string(), s.to_string()];
        assert!(blames_input(&tail("in.flv: No such file or directory"), "in.flv"));
        assert!(blames_input(&tail("[in#0 @ 0x55] Error opening input: No such file or directory"), "x"));
        assert!(!blames_input(&tail("rtmp://o1/live/a: Connection refused"), "in.flv"));
        assert!(!blames_input(&tail("Error opening output rtmp://o1/live/a: I/O error"), "in.flv"));
    }
}

//! `ferrocast push`'s engine: a supervised FFmpeg publisher. It builds the FFmpeg command
//! ([`command`]), asks the index server where to publish ([`target`]), runs FFmpeg and reads its
//! progress ([`progress`]), and restarts it with backoff when it exits or stalls, moving to a
//! backup origin when the one it used failed ([`supervisor`]). What happens is told as
//! [`Event`]s, which [`Status`] turns into a live progress line.

pub mod backoff;
pub mod command;
pub mod progress;
mod run;
pub mod status;
pub mod supervisor;
pub mod target;

pub use backoff::BackoffConfig;
pub use command::{CommandError, Encode, FfmpegCommand};
pub use progress::{Progress, ProgressParser};
pub use status::{Event, Status};
pub use supervisor::{Finished, PushConfig, supervise};
pub use target::{IndexClient, Origin, PublishAnswer, Target, TargetError};

/// Lines of FFmpeg's stderr shown with an input error.
const SHOWN_LINES: usize = 8;

/// Why a push gave up.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{}", missing_ffmpeg(.0))]
    FfmpegMissing(String),
    #[error("cannot start FFmpeg ({program}): {error}")]
    Spawn { program: String, error: std::io::Error },
    #[error("{}", unreadable_input(input, stderr))]
    Input { input: String, stderr: Vec<String> },
    #[error("gave up after {tries} {}: {error}", if *.tries == 1 { "try" } else { "tries" })]
    Index { tries: u32, error: TargetError },
    #[error("nowhere to publish: give an index and a stream, or at least one RTMP URL")]
    NoTarget,
    #[error(transparent)]
    Command(#[from] CommandError),
}

fn missing_ffmpeg(program: &str) -> String {
    let what = if program.contains('/') {
        format!("{program} does not exist or is not executable")
    } else {
        format!("`{program}` was not found in PATH")
    };
    format!(
        "FFmpeg is needed to push and {what}: install it (e.g. `apt-get install ffmpeg`) or give its path with --ffmpeg"
    )
}

fn unreadable_input(input: &str, stderr: &[String]) -> String {
    let mut m = format!("FFmpeg cannot read the input {input:?}");
    if stderr.is_empty() {
        m.push_str(" (it said nothing)");
    } else {
        m.push_str(", it said:");
        for line in &stderr[stderr.len().saturating_sub(SHOWN_LINES)..] {
            m.push_str("\n    ");
            m.push_str(line);
        }
        m.push('\n');
    }
    m.push_str("check that the file exists and is readable (or that the URL or device is right)");
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_to_do() {
        let e = PushError::FfmpegMissing("ffmpeg".into()).to_string();
        assert!(e.contains("`ffmpeg` was not found in PATH") && e.contains("apt-get install ffmpeg"), "{e}");
        let e = PushError::FfmpegMissing("/opt/ff/ffmpeg".into()).to_string();
        assert!(e.contains("/opt/ff/ffmpeg does not exist"), "{e}");
        let stderr: Vec<String> = (0..12).map(|i| format!("line {i}")).collect();
        let e = PushError::Input { input: "cam.flv".into(), stderr }.to_string();
        assert!(e.starts_with("FFmpeg cannot read the input \"cam.flv\", it said:\n    line 4\n"), "{e}");
        assert!(e.contains("line 11\ncheck that the file exists"), "{e}");
    }
}

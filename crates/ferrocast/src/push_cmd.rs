//! `ferrocast push`: flags, and the screen side of a supervised FFmpeg publisher. The work
//! (FFmpeg's command line, the index, restarts, failover) is in the `ferrocast-push` crate; this
//! file turns flags into its config, stops it on Ctrl-C or SIGTERM, and shows what it does: a
//! progress line rewritten in place on a terminal, one line every 5 s otherwise.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ferrocast_node::LogFormat;
use ferrocast_push::{
    BackoffConfig, Encode, Event, FfmpegCommand, Finished, IndexClient, PushConfig, Status, Target, supervise,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

/// How often the progress line is written when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

#[derive(Args, Debug)]
pub struct PushArgs {
    /// What to publish: a file, URL or device FFmpeg can read, e.g. fixtures/demo.flv.
    #[arg(value_name = "INPUT")]
    pub input: String,
    /// Index server to ask for the publish URL (and to ask again before each restart), e.g.
    /// http://10.0.0.9:8000. Needs --stream.
    #[arg(long, value_name = "URL")]
    pub index: Option<String>,
    /// The stream to publish through the index, as APP/STREAM, e.g. live/cam1.
    #[arg(long, value_name = "APP/STREAM")]
    pub stream: Option<String>,
    /// A publish token for the stream, when the index's access control wants one (from
    /// `ferrocast token`); the index puts it in the URL it gives.
    #[arg(long, value_name = "TOKEN", env = "FERROCAST_PUBLISH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The index's admin token: with it the index hands out URLs with a fresh publish token, so
    /// no --token is needed.
    #[arg(long, value_name = "TOKEN", env = "FERROCAST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Publish to this RTMP URL instead of asking an index (repeatable: several URLs are fed at
    /// once through FFmpeg's tee muxer; one that fails is dropped and the others go on).
    #[arg(long = "to", value_name = "URL")]
    pub to: Vec<String>,
    /// Read the input again and again (-stream_loop -1); then any exit of FFmpeg is a failure.
    #[arg(long = "loop")]
    pub looped: bool,
    /// Video encoder, e.g. libx264 [default: copy the input's video].
    #[arg(long, value_name = "CODEC")]
    pub video_codec: Option<String>,
    /// Encoder preset, e.g. veryfast (needs --video-codec).
    #[arg(long, value_name = "PRESET")]
    pub preset: Option<String>,
    /// Video bitrate, e.g. 2500k (needs --video-codec).
    #[arg(long, value_name = "RATE")]
    pub video_bitrate: Option<String>,
    /// Audio encoder, e.g. aac [default: copy the input's audio].
    #[arg(long, value_name = "CODEC")]
    pub audio_codec: Option<String>,
    /// Audio bitrate, e.g. 128k (needs --audio-codec).
    #[arg(long, value_name = "RATE")]
    pub audio_bitrate: Option<String>,
    /// A raw FFmpeg option placed before -i (repeatable), e.g. --input-arg=-f --input-arg=v4l2.
    #[arg(long = "input-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub input_args: Vec<String>,
    /// A raw FFmpeg output option placed before -f flv (repeatable), e.g. --ffmpeg-arg=-g --ffmpeg-arg=50.
    #[arg(long = "ffmpeg-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub ffmpeg_args: Vec<String>,
    /// The FFmpeg program: a name looked up in PATH, or a path.
    #[arg(long, value_name = "PROGRAM", default_value = "ffmpeg")]
    pub ffmpeg: String,
    /// Kill and restart FFmpeg when its output has not moved for this long.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub stall_timeout: Duration,
    /// The first wait before a restart; it doubles with each failure in a row.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    pub backoff_min: Duration,
    /// The longest wait before a restart.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub backoff_max: Duration,
    /// A run that made progress this long sets the wait back to --backoff-min.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub backoff_reset: Duration,
    /// Questions to the index before giving up when it has not answered once yet.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub index_tries: u32,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// `500ms`, `5s`, `1.5s` or `2m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration: write it like 500ms, 5s or 1m");
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(bad());
    };
    let v: f64 = number.trim().parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(v * scale).map_err(|_| bad())
}

impl PushArgs {
    fn to_config(&self) -> anyhow::Result<PushConfig> {
        let target = match (&self.index, &self.stream, self.to.is_empty()) {
            (Some(index), Some(stream), true) => {
                let mut client = IndexClient::new(index, stream)?;
                if let Some(t) = &self.token {
                    client = client.with_token(t);
                }
                if let Some(t) = &self.admin_token {
                    client = client.with_bearer(t);
                }
                Target::Index(client)
            }
            (None, None, false) => {
                if let Some(bad) = self.to.iter().find(|u| !u.starts_with("rtmp")) {
                    anyhow::bail!("--to {bad:?} is not an RTMP URL: write it like rtmp://10.0.0.5:1935/live/cam1");
                }
                Target::Fixed(self.to.clone())
            }
            (Some(_), None, _) => anyhow::bail!("--index needs --stream APP/STREAM, e.g. --stream live/cam1"),
            (None, Some(_), _) => anyhow::bail!("--stream needs --index URL: the index says where to publish"),
            (Some(_), Some(_), false) => {
                anyhow::bail!("give either --index with --stream, or --to: not both (--to publishes to fixed URLs)")
            }
            (None, None, true) => anyhow::bail!(
                "say where to publish: --index URL --stream APP/STREAM (the index picks a healthy origin), \
                 or --to rtmp://HOST/APP/STREAM (fixed, repeatable)"
            ),
        };
        let command = FfmpegCommand {
            input: self.input.clone(),
            looped: self.looped,
            input_args: self.input_args.clone(),
            encode: Encode {
                video_codec: self.video_codec.clone(),
                preset: self.preset.clone(),
                video_bitrate: self.video_bitrate.clone(),
                audio_codec: self.audio_codec.clone(),
                audio_bitrate: self.audio_bitrate.clone(),
            },
            output_args: self.ffmpeg_args.clone(),
        };
        command.validate()?;
        let mut config = PushConfig::new(command, target);
        config.ffmpeg = self.ffmpeg.clone();
        config.stall_timeout = self.stall_timeout;
        config.backoff =
            BackoffConfig { min: self.backoff_min, max: self.backoff_max, reset_after: self.backoff_reset };
        config.index_tries = self.index_tries.max(1);
        Ok(config)
    }
}

pub fn run(args: PushArgs) -> anyhow::Result<()> {
    crate::logging::init(args.log_format.unwrap_or(LogFormat::Text));
    let config = args.to_config()?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let stop = CancellationToken::new();
        let on_signal = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::node_cmd::wait_for_signal().await {
                tracing::warn!("{e:#}; stop with SIGKILL");
                return;
            }
            on_signal.cancel();
        });
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let screen = tokio::spawn(show(rx, std::io::stderr().is_terminal()));
        let result = supervise(config, tx, stop).await;
        let _ = screen.await;
        match result? {
            Finished::Stopped => tracing::info!("stopped"),
            Finished::InputEnded => tracing::info!("the input ended; nothing more to publish"),
        }
        Ok(())
    })
}

/// Shows events as log lines and the status as a progress line, until the events end.
async fn show(mut events: UnboundedReceiver<Event>, tty: bool) {
    let mut status = Status::default();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + LOG_EVERY, LOG_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // On a terminal: the progress line is on screen and must be cleared before a log line.
    let mut drawn = false;
    let clear = |drawn: &mut bool| {
        if std::mem::take(drawn) {
            eprint!("\r\x1b[2K");
        }
    };
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                status.apply(&event);
                if let Some(m) = event.message() {
                    clear(&mut drawn);
                    match &event {
                        Event::Failed { .. } | Event::IndexTrouble { .. } => tracing::warn!("{m}"),
                        _ => tracing::info!("{m}"),
                    }
                }
                if tty && matches!(event, Event::Progress(_) | Event::Waiting { .. }) {
                    eprint!("\r\x1b[2K{}", status.line());
                    let _ = std::io::stderr().flush();
                    drawn = true;
                }
            }
            _ = ticker.tick(), if !tty => tracing::info!("{}", status.line()),
        }
    }
    if drawn {
        eprintln!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        push: PushArgs,
    }

    fn parse(args: &[&str]) -> PushArgs {
        Cli::try_parse_from(std::iter::once("push").chain(args.iter().copied())).unwrap().push
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").unwrap_err().contains("500ms, 5s or 1m"));
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn flags_make_the_config() {
        let a = parse(&[
            "in.flv",
            "--to",
            "rtmp://a/live/x",
            "--to",
            "rtmp://b/live/x",
            "--loop",
            "--video-codec",
            "libx264",
            "--video-bitrate",
            "2500k",
            "--ffmpeg-arg",
            "-g",
            "--ffmpeg-arg",
            "50",
            "--stall-timeout",
            "2s",
        ]);
        let c = a.to_config().unwrap();
        assert!(matches!(&c.target, Target::Fixed(u) if u.len() == 2));
        assert!(c.command.looped);
        assert_eq!(c.command.output_args, ["-g", "50"]);
        assert_eq!(c.stall_timeout, Duration::from_secs(2));
        assert_eq!(c.backoff, BackoffConfig::default());
        let c = parse(&["in.flv", "--index", "http://idx:8000", "--stream", "live/cam1"]).to_config().unwrap();
        assert!(matches!(&c.target, Target::Index(i) if i.endpoint() == "http://idx:8000/api/v1/publish/live/cam1"));
    }

    #[test]
    fn where_to_publish_must_be_clear() {
        let err = |args: &[&str]| format!("{:#}", parse(args).to_config().unwrap_err());
        assert!(err(&["in.flv"]).contains("say where to publish"));
        assert!(err(&["in.flv", "--index", "http://idx"]).contains("--index needs --stream"));
        assert!(
            err(&["in.flv", "--index", "http://i", "--stream", "live/a", "--to", "rtmp://x/a/b"]).contains("not both")
        );
        assert!(err(&["in.flv", "--to", "http://x/a/b"]).contains("is not an RTMP URL"));
        assert!(err(&["in.flv", "--index", "http://i", "--stream", "cam1"]).contains("live/cam1"));
        assert!(err(&["in.flv", "--to", "rtmp://x/a/b", "--preset", "fast"]).contains("--preset needs an encoder"));
    }
}

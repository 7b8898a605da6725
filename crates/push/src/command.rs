//! The FFmpeg command line for one push: input options, `-re`, looping, stream copy or encoding,
//! and the output — one FLV URL, or several at once through FFmpeg's tee muxer. Built as an argv
//! (no shell between us and FFmpeg), so file names and URLs go through as they are.

/// Encoding choices. A codec left out is copied from the input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encode {
    /// e.g. `libx264`; `None` or `copy` keeps the input's video.
    pub video_codec: Option<String>,
    /// Encoder preset, e.g. `veryfast`.
    pub preset: Option<String>,
    /// e.g. `2500k`.
    pub video_bitrate: Option<String>,
    /// e.g. `aac`; `None` or `copy` keeps the input's audio.
    pub audio_codec: Option<String>,
    /// e.g. `128k`.
    pub audio_bitrate: Option<String>,
}

/// What FFmpeg reads and how it processes it; the outputs come per run from the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FfmpegCommand {
    /// A file, URL or device FFmpeg can read.
    pub input: String,
    /// Read the input again and again (`-stream_loop -1`).
    pub looped: bool,
    /// Raw options placed before `-i` (e.g. `-f lavfi`).
    pub input_args: Vec<String>,
    pub encode: Encode,
    /// Raw output options placed before `-f` (the escape hatch for anything not covered).
    pub output_args: Vec<String>,
}

/// A combination of options FFmpeg would not honour.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("{option} needs an encoder (e.g. --{needs} {example}): a copied stream keeps the input's settings")]
    NeedsEncoder { option: &'static str, needs: &'static str, example: &'static str },
    #[error("the input is empty: give a file, URL or device FFmpeg can read")]
    NoInput,
}

fn is_copy(codec: &Option<String>) -> bool {
    codec.as_deref().is_none_or(|c| c == "copy")
}

/// Escapes a tee slave's URL for FFmpeg's tokenizer, which treats `\`, `'` and `|` specially.
fn tee_escape(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for ch in url.chars() {
        if matches!(ch, '\\' | '\'' | '|') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

impl FfmpegCommand {
    /// Refuses settings that only an encoder can apply while the stream would be copied.
    pub fn validate(&self) -> Result<(), CommandError> {
        if self.input.is_empty() {
            return Err(CommandError::NoInput);
        }
        let e = &self.encode;
        let video = [("--preset", &e.preset), ("--video-bitrate", &e.video_bitrate)];
        if let Some((option, _)) = video.iter().find(|(_, v)| v.is_some()).filter(|_| is_copy(&e.video_codec)) {
            return Err(CommandError::NeedsEncoder { option, needs: "video-codec", example: "libx264" });
        }
        if e.audio_bitrate.is_some() && is_copy(&e.audio_codec) {
            return Err(CommandError::NeedsEncoder { option: "--audio-bitrate", needs: "audio-codec", example: "aac" });
        }
        Ok(())
    }

    /// The argv (without the program) that publishes to `outputs`: `-f flv URL` for one output,
    /// the tee muxer for several (a failing output is dropped, the others go on).
    pub fn argv(&self, outputs: &[String]) -> Vec<String> {
        let mut a: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error", "-progress", "pipe:1", "-nostats"]
            .map(String::from)
            .into();
        a.push("-re".into());
        if self.looped {
            a.extend(["-stream_loop".into(), "-1".into()]);
        }
        a.extend(self.input_args.iter().cloned());
        a.extend(["-i".into(), self.input.clone()]);
        let e = &self.encode;
        a.extend(["-c:v".into(), e.video_codec.clone().unwrap_or_else(|| "copy".into())]);
        if !is_copy(&e.video_codec) {
            if let Some(p) = &e.preset {
                a.extend(["-preset".into(), p.clone()]);
            }
            if let Some(b) = &e.video_bitrate {
                a.extend(["-b:v".into(), b.clone()]);
            }
        }
        a.extend(["-c:a".into(), e.audio_codec.clone().unwrap_or_else(|| "copy".into())]);
        if let (false, Some(b)) = (is_copy(&e.audio_codec), &e.audio_bitrate) {
            a.extend(["-b:a".into(), b.clone()]);
        }
        a.extend(self.output_args.iter().cloned());
        match outputs {
            [one] => a.extend(["-f".into(), "flv".into(), one.clone()]),
            many => {
                // The tee muxer does no stream selection of its own: take the video and audio
                // FFmpeg would pick for one FLV output (FLV carries one of each).
                a.extend(["-map", "0:v:0?", "-map", "0:a:0?"].map(String::from));
                let slaves: Vec<String> =
                    many.iter().map(|u| format!("[f=flv:onfail=ignore]{}", tee_escape(u))).collect();
                a.extend(["-f".into(), "tee".into(), slaves.join("|")]);
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> FfmpegCommand {
        FfmpegCommand { input: "demo.flv".into(), ..Default::default() }
    }

    fn joined(c: &FfmpegCommand, outputs: &[&str]) -> String {
        c.argv(&outputs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).join(" ")
    }

    #[test]
    fn copy_by_default_with_progress_on_stdout() {
        assert_eq!(
            joined(&cmd(), &["rtmp://o1/live/cam1"]),
            "-hide_banner -nostdin -loglevel error -progress pipe:1 -nostats -re -i demo.flv \
             -c:v copy -c:a copy -f flv rtmp://o1/live/cam1"
        );
    }

    #[test]
    fn loop_and_raw_options_go_where_ffmpeg_reads_them() {
        let c = FfmpegCommand {
            looped: true,
            input_args: vec!["-f".into(), "lavfi".into()],
            output_args: vec!["-g".into(), "50".into()],
            ..cmd()
        };
        let s = joined(&c, &["rtmp://o1/live/a"]);
        assert!(s.contains("-re -stream_loop -1 -f lavfi -i demo.flv"), "{s}");
        assert!(s.ends_with("-c:a copy -g 50 -f flv rtmp://o1/live/a"), "{s}");
    }

    #[test]
    fn encoding_options() {
        let c = FfmpegCommand {
            encode: Encode {
                video_codec: Some("libx264".into()),
                preset: Some("veryfast".into()),
                video_bitrate: Some("2500k".into()),
                audio_codec: Some("aac".into()),
                audio_bitrate: Some("128k".into()),
            },
            ..cmd()
        };
        c.validate().unwrap();
        assert!(
            joined(&c, &["rtmp://o1/live/a"])
                .ends_with("-c:v libx264 -preset veryfast -b:v 2500k -c:a aac -b:a 128k -f flv rtmp://o1/live/a")
        );
    }

    #[test]
    fn encoder_settings_without_an_encoder_are_refused() {
        let c = FfmpegCommand { encode: Encode { video_bitrate: Some("1M".into()), ..Default::default() }, ..cmd() };
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("--video-bitrate needs an encoder (e.g. --video-codec libx264)"), "{e}");
        let c = FfmpegCommand {
            encode: Encode {
                audio_codec: Some("copy".into()),
                audio_bitrate: Some("96k".into()),
                ..Default::default()
            },
            ..cmd()
        };
        assert!(c.validate().unwrap_err().to_string().contains("--audio-codec aac"));
        assert_eq!(FfmpegCommand::default().validate(), Err(CommandError::NoInput));
    }

    #[test]
    fn several_outputs_go_through_the_tee_muxer() {
        let c = cmd();
        let argv = c.argv(&["rtmp://e1/live/a".into(), "rtmp://e2/live/a?k=x|y".into()]);
        let n = argv.len();
        assert_eq!(argv[n - 3..n - 1], ["-f", "tee"]);
        assert_eq!(argv[n - 1], r"[f=flv:onfail=ignore]rtmp://e1/live/a|[f=flv:onfail=ignore]rtmp://e2/live/a?k=x\|y");
        assert!(argv.join(" ").contains("-map 0:v:0? -map 0:a:0? -f tee"));
    }
}

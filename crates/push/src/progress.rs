//! FFmpeg's `-progress` output, parsed. FFmpeg writes one `key=value` per line and closes each
//! block with `progress=continue` (or `progress=end` when it is done). The supervisor reads these
//! blocks for the live progress line and to notice an FFmpeg that stopped moving. Pure: lines in,
//! blocks out, so it is tested without FFmpeg.

/// One progress block. A field FFmpeg left out or wrote as `N/A` is `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub frame: Option<u64>,
    pub fps: Option<f64>,
    /// Output bitrate in kbit/s (FFmpeg writes `1234.5kbits/s`).
    pub bitrate_kbps: Option<f64>,
    pub total_size: Option<u64>,
    /// Position of the output, in microseconds.
    pub out_time_us: Option<i64>,
    pub dup_frames: Option<u64>,
    pub drop_frames: Option<u64>,
    /// Speed relative to real time (FFmpeg writes `1.01x`); about 1 with `-re`.
    pub speed: Option<f64>,
    /// `progress=end`: FFmpeg finished (this is its last block).
    pub end: bool,
}

/// Turns lines of `-progress` output into [`Progress`] blocks.
#[derive(Debug, Default)]
pub struct ProgressParser {
    current: Progress,
}

fn number<T: std::str::FromStr>(v: &str) -> Option<T> {
    v.parse().ok()
}

fn with_suffix(v: &str, suffix: &str) -> Option<f64> {
    v.strip_suffix(suffix)?.trim().parse().ok()
}

impl ProgressParser {
    pub fn new() -> ProgressParser {
        ProgressParser::default()
    }

    /// Takes one line; gives the block it completes, if it is a `progress=` line.
    pub fn feed(&mut self, line: &str) -> Option<Progress> {
        let (key, value) = line.trim().split_once('=')?;
        let value = value.trim();
        let c = &mut self.current;
        match key.trim() {
            "frame" => c.frame = number(value),
            "fps" => c.fps = number(value),
            "bitrate" => c.bitrate_kbps = with_suffix(value, "kbits/s"),
            "total_size" => c.total_size = number(value),
            "out_time_us" => c.out_time_us = number(value),
            // Older FFmpeg has only out_time_ms, which (despite its name) also counts microseconds.
            "out_time_ms" if c.out_time_us.is_none() => c.out_time_us = number(value),
            "dup_frames" => c.dup_frames = number(value),
            "drop_frames" => c.drop_frames = number(value),
            "speed" => c.speed = with_suffix(value, "x"),
            "progress" => {
                let mut block = std::mem::take(&mut self.current);
                block.end = value == "end";
                return Some(block);
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "frame=250\nfps=25.02\nstream_0_0_q=-1.0\nbitrate= 842.3kbits/s\ntotal_size=1048576\n\
        out_time_us=10000000\nout_time_ms=10000000\nout_time=00:00:10.000000\ndup_frames=0\ndrop_frames=3\n\
        speed=1.01x\nprogress=continue\n";

    fn parse_all(text: &str) -> Vec<Progress> {
        let mut p = ProgressParser::new();
        text.lines().filter_map(|l| p.feed(l)).collect()
    }

    #[test]
    fn a_block_gives_every_field() {
        let blocks = parse_all(BLOCK);
        assert_eq!(
            blocks,
            [Progress {
                frame: Some(250),
                fps: Some(25.02),
                bitrate_kbps: Some(842.3),
                total_size: Some(1048576),
                out_time_us: Some(10_000_000),
                dup_frames: Some(0),
                drop_frames: Some(3),
                speed: Some(1.01),
                end: false,
            }]
        );
    }

    #[test]
    fn not_available_values_and_the_end_block() {
        let blocks = parse_all(
            "frame=0\nfps=0.00\nbitrate=N/A\ntotal_size=N/A\nout_time_us=N/A\nspeed=N/A\nprogress=continue\n\
             frame=10\nout_time_us=400000\nspeed= 1x\nprogress=end\n",
        );
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].bitrate_kbps, blocks[0].out_time_us, blocks[0].speed), (None, None, None));
        assert!(!blocks[0].end);
        assert_eq!((blocks[1].frame, blocks[1].out_time_us, blocks[1].speed), (Some(10), Some(400_000), Some(1.0)));
        assert!(blocks[1].end);
        assert_eq!(blocks[1].fps, None, "each block starts empty");
    }

    #[test]
    fn old_ffmpeg_out_time_ms_counts_microseconds() {
        let blocks = parse_all("out_time_ms=2000000\nprogress=continue\n");
        assert_eq!(blocks[0].out_time_us, Some(2_000_000));
    }

    #[test]
    fn noise_is_ignored() {
        let blocks = parse_all("\ngarbage line\n=\nfps=abc\nprogress=continue\r\n");
        assert_eq!(blocks, [Progress::default()]);
    }
}

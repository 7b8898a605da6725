//! Command-line flags and their limits.
//!
//! The limits are part of the safety story: a run is always bounded in players
//! ([`MAX_PLAYERS`]) and in time (`--duration` is required), and it only targets loopback
//! unless `--allow-remote` says otherwise.

use clap::Parser;

/// The most players one run may start.
pub const MAX_PLAYERS: u32 = 20_000;
/// The longest run, in seconds (one day).
pub const MAX_DURATION_S: u64 = 86_400;

const AFTER_HELP: &str = "\
Each player is one TCP connection (a WHEP viewer: one HTTP request, then its own UDP socket
for ICE, DTLS and SRTP, leaving with a DELETE). The report counts players requested, connected (play
accepted), healthy (stayed until the end with a delivery rate at least 90% of the median) and
failed (per reason), with first-byte and first-keyframe latency percentiles measured from the
start of each player's connect. Progress goes to stderr every 2 s; the report to stdout.

With --reference ADDR the report adds delivery latency per video frame (p50/p95/p99/max ms):
from the publisher's copy arriving on ADDR to a player receiving the same frame. Publish with
FFmpeg's tee muxer, e.g.
  ffmpeg -re -i in.flv -map 0 -c copy -f tee \
    '[f=flv:flush_packets=1]rtmp://127.0.0.1/live/demo|[f=flv:flush_packets=1]tcp://127.0.0.1:9000'
and start the load generator first with --reference 127.0.0.1:9000.

Only loopback targets (127.0.0.0/8, ::1) are allowed unless --allow-remote is given. Large runs
need a file-descriptor limit above --players: run `ulimit -n 65535` first.

Example:
  ferrocast-loadgen --url http://127.0.0.1:8080/live/demo.flv --players 1000 --ramp 200 --duration 60";

/// Swarms of HTTP-FLV, RTMP, Low-Latency HLS or WebRTC (WHEP) players against one stream, for
/// benchmarks.
#[derive(Parser, Debug, Clone)]
#[command(name = "ferrocast-loadgen", version, about, after_help = AFTER_HELP)]
pub struct Args {
    /// Stream to play: http://host:port/app/stream.flv (HTTP-FLV), rtmp://host:port/app/stream
    /// (RTMP), http://host:port/app/stream/index.m3u8 (Low-Latency HLS: each viewer fetches the
    /// preload-hinted part and the blocking playlist reload, as hls.js in low-latency mode) or
    /// http://host:port/app/stream/whep (WebRTC: each viewer receives video and audio and counts
    /// the video frames it got and lost).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Number of players, 1 to 20000.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PLAYERS)))]
    pub players: u32,
    /// Players started per second, spread evenly (e.g. 0.5, 200; a value >= --players starts all at once).
    #[arg(long, value_name = "R", value_parser = parse_ramp)]
    pub ramp: f64,
    /// Length of the run in seconds, 1 to 86400. Every player stops when it ends; players the
    /// ramp has not reached by then are never started.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=MAX_DURATION_S))]
    pub duration: u64,
    /// Print the report as one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Measure delivery latency per video frame: listen on ADDR for the publisher's own copy of
    /// the stream (FLV over TCP, e.g. from FFmpeg's tee muxer), wait for it to connect, then start
    /// the players. Each video frame a player receives is matched with the copy and timed.
    /// HTTP-FLV, LL-HLS and WHEP players (H.264; for WHEP, a stream without B-frames).
    #[arg(long, value_name = "ADDR")]
    pub reference: Option<std::net::SocketAddr>,
    /// Allow a target that is not a loopback address. Only use it against servers you run and
    /// are allowed to load-test.
    #[arg(long)]
    pub allow_remote: bool,
}

fn parse_ramp(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if r.is_finite() && r > 0.0 && r <= 1_000_000.0 {
        Ok(r)
    } else {
        Err("the ramp must be more than 0 and at most 1000000 players/s".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let base = ["ferrocast-loadgen", "--url", "http://127.0.0.1/a.flv"];
        Args::try_parse_from(base.iter().chain(extra))
    }

    #[test]
    fn limits_are_enforced() {
        let ok = parse(&["--players", "20000", "--ramp", "0.5", "--duration", "10"]).unwrap();
        assert_eq!((ok.players, ok.ramp, ok.duration, ok.json, ok.allow_remote), (20000, 0.5, 10, false, false));
        assert_eq!(ok.reference, None);
        let timed = parse(&["--players", "1", "--ramp", "1", "--duration", "1", "--reference", "127.0.0.1:9000"]);
        assert_eq!(timed.unwrap().reference, Some("127.0.0.1:9000".parse().unwrap()));
        assert!(parse(&["--players", "1", "--ramp", "1", "--duration", "1", "--reference", "nowhere"]).is_err());
        assert!(parse(&["--players", "20001", "--ramp", "1", "--duration", "10"]).is_err());
        assert!(parse(&["--players", "0", "--ramp", "1", "--duration", "10"]).is_err());
        assert!(parse(&["--players", "1", "--ramp", "1"]).is_err(), "duration is required");
        assert!(parse(&["--players", "1", "--ramp", "0", "--duration", "1"]).is_err());
        assert!(parse(&["--players", "1", "--ramp", "NaN", "--duration", "1"]).is_err());
        assert!(parse(&["--players", "1", "--ramp", "1", "--duration", "86401"]).is_err());
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}

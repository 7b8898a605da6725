//! The TS muxer's output is what FFmpeg expects: the first 4 s of `fixtures/demo.flv`, muxed as
//! one HLS segment, probe as H.264 640x360 + AAC and decode without a single error.
//! (FFmpeg is installed by `scripts/test`.)

use std::path::PathBuf;
use std::process::Command;

use ferrocast_media::flv::read_all;
use ferrocast_media::ts::{PACKET_SIZE, SYNC_BYTE, TsMuxer};

const DEMO_FLV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.flv");

fn segment() -> Vec<u8> {
    let data = std::fs::read(DEMO_FLV).expect("fixtures/demo.flv is missing: see fixtures/README.md");
    let frames = read_all(&data).expect("fixtures/demo.flv parses");
    let mut muxer = TsMuxer::new();
    muxer.start_segment();
    let mut ts = Vec::new();
    for frame in frames.iter().filter(|f| f.timestamp < 4000) {
        ts.extend_from_slice(&muxer.write_frame(frame).expect("demo frames mux"));
    }
    ts
}

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).expect("write the segment");
    path
}

#[test]
fn demo_segment_probes_and_decodes() {
    let ts = segment();
    assert!(ts.len() > 100 * PACKET_SIZE);
    assert_eq!(ts.len() % PACKET_SIZE, 0);
    assert!(ts.chunks(PACKET_SIZE).all(|p| p[0] == SYNC_BYTE));
    let path = write_temp("demo-segment.ts", &ts);
    let result = std::panic::catch_unwind(|| check_with_ffmpeg(&path));
    let _ = std::fs::remove_file(&path);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn check_with_ffmpeg(path: &std::path::Path) {
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs (scripts/test installs FFmpeg)");
    let stdout = String::from_utf8_lossy(&probe.stdout);
    let stderr = String::from_utf8_lossy(&probe.stderr);
    assert!(probe.status.success(), "ffprobe failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffprobe complained: {stderr}");
    let mut lines: Vec<&str> =
        stdout.lines().map(|l| l.trim().trim_end_matches(',')).filter(|l| !l.is_empty()).collect();
    // ffprobe lists each stream twice for a TS file: inside its program, then on its own.
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines, ["aac", "h264,640,360"], "ffprobe said: {stdout}");

    let decode = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let stderr = String::from_utf8_lossy(&decode.stderr);
    assert!(decode.status.success(), "ffmpeg failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg reported errors: {stderr}");
}

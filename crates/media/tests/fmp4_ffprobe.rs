//! The fMP4 writer's output is what FFmpeg expects: `fixtures/demo.flv` as an init segment and
//! fragments of about half a second (the shape of LL-HLS parts) probes as H.264 640x360 + AAC and
//! decodes every frame without an error. (FFmpeg is installed by `scripts/test`.)

use std::path::PathBuf;
use std::process::Command;

use ferrocast_media::flv::read_all;
use ferrocast_media::fmp4::{Sample, Tracks, fragment, sample_of};

const DEMO_FLV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.flv");

/// The init segment, the fragments, and how many video frames they hold.
fn fmp4() -> (Vec<u8>, usize) {
    let data = std::fs::read(DEMO_FLV).expect("fixtures/demo.flv is missing: see fixtures/README.md");
    let frames = read_all(&data).expect("fixtures/demo.flv parses");
    let mut tracks = Tracks::default();
    let mut samples = Vec::new();
    for f in &frames {
        tracks.configure(f).expect("demo sequence headers");
        if let Some((track, cts, keyframe, data)) = sample_of(f) {
            samples.push(Sample { track, dts: u64::from(f.timestamp), duration: 0, cts, keyframe, data });
        }
    }
    // Each sample lasts until the next one of its track; the last of each keeps its neighbour's.
    for i in 0..samples.len() {
        let next = samples[i + 1..].iter().find(|s| s.track == samples[i].track).map(|s| s.dts);
        samples[i].duration = next.map_or(23, |n| (n - samples[i].dts) as u32);
    }
    let video = samples.iter().filter(|s| s.track == ferrocast_media::fmp4::VIDEO_TRACK).count();
    let mut out = tracks.init_segment().expect("init segment").to_vec();
    let mut part: Vec<Sample> = Vec::new();
    let mut seq = 1;
    for s in samples {
        if part.first().is_some_and(|p| s.dts - p.dts >= 500) {
            out.extend_from_slice(&fragment(seq, &part).expect("fragment"));
            seq += 1;
            part.clear();
        }
        part.push(s);
    }
    out.extend_from_slice(&fragment(seq, &part).expect("fragment"));
    (out, video)
}

#[test]
fn demo_as_fragmented_mp4_probes_and_decodes_every_frame() {
    let (bytes, video_frames) = fmp4();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-demo.mp4", std::process::id()));
    std::fs::write(&path, &bytes).expect("write the file");
    let result = std::panic::catch_unwind(|| check_with_ffmpeg(&path, video_frames));
    let _ = std::fs::remove_file(&path);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn check_with_ffmpeg(path: &std::path::Path, video_frames: usize) {
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs (scripts/test installs FFmpeg)");
    let stdout = String::from_utf8_lossy(&probe.stdout);
    let stderr = String::from_utf8_lossy(&probe.stderr);
    assert!(probe.status.success(), "ffprobe failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffprobe complained: {stderr}");
    let lines: Vec<&str> = stdout.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "ffprobe said: {stdout}");
    assert_eq!(lines[0], format!("h264,640,360,{video_frames}"), "every video frame decodes");
    assert!(lines[1].starts_with("aac,"), "ffprobe said: {stdout}");

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

//! Printing a [`Summary`]: a table for people, or one JSON object for scripts (`--json`).

use std::fmt::Write;

use crate::summary::{Percentiles, Summary};

/// One JSON object on one line.
pub fn json(s: &Summary) -> String {
    serde_json::to_string(s).unwrap_or_else(|e| format!("{{\"error\":\"cannot encode the report: {e}\"}}"))
}

/// The human-readable report.
pub fn table(s: &Summary) -> String {
    let mut out = String::new();
    let r = &s.run;
    let _ = writeln!(out, "ferrocast-loadgen: {} {}", r.protocol, r.url);
    let _ = writeln!(
        out,
        "run       {:.1} s of {:.0} s, ramp {} players/s{}",
        r.elapsed_s,
        r.duration_s,
        r.ramp_per_s,
        if r.interrupted { " (interrupted)" } else { "" }
    );
    let _ = writeln!(
        out,
        "players   requested {}  connected {}  healthy {}  failed {}",
        r.players_requested, s.connected, s.healthy, s.failed
    );
    for (reason, count) in &s.failures {
        let example = s.failure_examples.get(reason).map(|e| format!("  (e.g. {e})")).unwrap_or_default();
        let _ = writeln!(out, "  failed  {count:>6}  {reason}{example}");
    }
    let _ = writeln!(out, "latency ms          {:>9} {:>9} {:>9} {:>9}", "p50", "p90", "p99", "max");
    latency_row(&mut out, "first byte", s.first_byte_ms.as_ref());
    latency_row(&mut out, "first keyframe", s.first_keyframe_ms.as_ref());
    if let Some(l) = &s.delivery_latency_ms {
        let _ = writeln!(
            out,
            "latency   publisher to player, per video frame: p50 {:.1} ms, p95 {:.1}, p99 {:.1}, max {:.1} ({} frames, {} unmatched)",
            l.p50, l.p95, l.p99, l.max, l.frames, l.unmatched
        );
    }
    match &s.delivery_kbps {
        Some(d) => {
            let _ = writeln!(
                out,
                "delivery  per player: median {:.1} kbit/s, p10 {:.1}, min {:.1}",
                d.median, d.p10, d.min
            );
        }
        None => {
            let _ = writeln!(out, "delivery  no player received media until the end");
        }
    }
    if let (Some(min), Some(n)) = (s.frames_received_min_pct, s.players_with_99pct_frames) {
        let _ = writeln!(out, "frames    video frames received: {n} players got >= 99%, the fewest got {min:.2}%");
    }
    let _ = writeln!(
        out,
        "total     {:.1} Mbit/s, {:.1} frames/s ({} bytes, {} frames, {} keyframes)",
        s.throughput_mbps, s.frames_per_s, s.total_bytes, s.total_frames, s.total_keyframes
    );
    out
}

fn latency_row(out: &mut String, name: &str, p: Option<&Percentiles>) {
    let _ = match p {
        Some(p) => writeln!(out, "  {name:<17} {:>9.1} {:>9.1} {:>9.1} {:>9.1}", p.p50, p.p90, p.p99, p.max),
        None => writeln!(out, "  {name:<17} {:>9}", "none"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{FailReason, PlayerReport};
    use crate::summary::{RunInfo, summarize};

    #[test]
    fn both_formats_render() {
        let run = RunInfo {
            url: "rtmp://127.0.0.1/live/a".into(),
            protocol: "rtmp",
            players_requested: 1,
            ramp_per_s: 1.0,
            duration_s: 1.0,
            elapsed_s: 1.0,
            interrupted: false,
        };
        let s = summarize(run, &[PlayerReport::failed(FailReason::ConnectRefused)]);
        let t = table(&s);
        assert!(t.contains("failed 1") && t.contains("connect_refused"), "{t}");
        let v: serde_json::Value = serde_json::from_str(&json(&s)).unwrap();
        assert_eq!(v["failures"]["connect_refused"], 1);
        assert!(!json(&s).contains('\n'));
    }
}

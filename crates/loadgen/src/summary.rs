//! Turning the players' reports into the run's numbers: counts, failure reasons, latency
//! percentiles, delivery rates, the healthy verdict and throughput.
//!
//! Healthy means the player stayed connected until the end AND its delivery rate (bytes/s
//! after its first media byte) is at least [`HEALTHY_FRACTION`] of the median rate of the
//! players that stayed. A player the server starves or skips ahead shows up here even though
//! its socket stayed open.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::latency::LatencyStats;
use crate::outcome::PlayerReport;

/// A player is healthy at this fraction of the median delivery rate or better.
pub const HEALTHY_FRACTION: f64 = 0.9;

/// What the run was asked to do (echoed in the report).
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    pub url: String,
    pub protocol: &'static str,
    pub players_requested: usize,
    pub ramp_per_s: f64,
    pub duration_s: f64,
    /// From the first connect to the end (the deadline, or Ctrl-C).
    pub elapsed_s: f64,
    /// True when Ctrl-C ended the run early.
    pub interrupted: bool,
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Per-player delivery rate, kbit/s, over players that stayed until the end.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RateStats {
    pub median: f64,
    pub p10: f64,
    pub min: f64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub run: RunInfo,
    pub connected: usize,
    pub healthy: usize,
    pub failed: usize,
    /// Failed players per reason.
    pub failures: BTreeMap<String, usize>,
    /// One error message per reason, when there was one.
    pub failure_examples: BTreeMap<String, String>,
    pub first_byte_ms: Option<Percentiles>,
    pub first_keyframe_ms: Option<Percentiles>,
    pub delivery_kbps: Option<RateStats>,
    pub throughput_mbps: f64,
    pub frames_per_s: f64,
    pub total_bytes: u64,
    pub total_frames: u64,
    pub total_keyframes: u64,
    /// WebRTC: the smallest share of the video frames a player that stayed got, in percent, and
    /// how many of them got at least 99%.
    pub frames_received_min_pct: Option<f64>,
    pub players_with_99pct_frames: Option<usize>,
    /// Per video frame, publisher to player (`--reference` only).
    pub delivery_latency_ms: Option<LatencyStats>,
}

/// The median of `values` (unsorted), or `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n.is_multiple_of(2) => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
        _ => Some(sorted[n / 2]),
    }
}

/// Nearest-rank quantile of unsorted values.
fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    Some(sorted[rank - 1])
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn percentiles(samples: impl Iterator<Item = Duration>) -> Option<Percentiles> {
    // Microseconds, 1 µs to 1 hour, 3 significant digits.
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).ok()?;
    for d in samples {
        h.saturating_record((d.as_micros() as u64).max(1));
    }
    if h.is_empty() {
        return None;
    }
    let ms = |us: u64| round1(us as f64 / 1000.0);
    Some(Percentiles {
        count: h.len(),
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    })
}

/// Builds the summary from every player's report (one per requested player).
pub fn summarize(run: RunInfo, reports: &[PlayerReport]) -> Summary {
    let stayed_rates: Vec<f64> = reports.iter().filter(|r| r.failure.is_none()).filter_map(|r| r.rate).collect();
    let median_rate = median(&stayed_rates);
    let healthy = match median_rate {
        Some(m) => reports
            .iter()
            .filter(|r| r.failure.is_none() && r.rate.is_some_and(|rate| rate >= HEALTHY_FRACTION * m))
            .count(),
        None => 0,
    };
    let mut failures = BTreeMap::new();
    let mut failure_examples = BTreeMap::new();
    for r in reports {
        if let Some(reason) = &r.failure {
            let key = reason.key();
            if let Some(detail) = &r.failure_detail {
                failure_examples.entry(key.clone()).or_insert_with(|| detail.clone());
            }
            *failures.entry(key).or_insert(0) += 1;
        }
    }
    let kbps = |bytes_per_s: f64| round1(bytes_per_s * 8.0 / 1000.0);
    let delivery_kbps = median_rate.map(|m| RateStats {
        median: kbps(m),
        p10: kbps(quantile(&stayed_rates, 0.1).unwrap_or(m)),
        min: kbps(stayed_rates.iter().copied().fold(f64::INFINITY, f64::min)),
    });
    let total_bytes: u64 = reports.iter().map(|r| r.bytes).sum();
    let total_frames: u64 = reports.iter().map(|r| r.frames).sum();
    let secs = run.elapsed_s.max(1e-3);
    let received_pct: Vec<f64> = reports
        .iter()
        .filter(|r| r.failure.is_none())
        .filter_map(|r| r.frames_lost.map(|lost| 100.0 * r.frames as f64 / (r.frames + lost).max(1) as f64))
        .collect();
    Summary {
        connected: reports.iter().filter(|r| r.connected).count(),
        healthy,
        failed: reports.iter().filter(|r| r.failure.is_some()).count(),
        failures,
        failure_examples,
        first_byte_ms: percentiles(reports.iter().filter_map(|r| r.first_byte)),
        first_keyframe_ms: percentiles(reports.iter().filter_map(|r| r.first_keyframe)),
        delivery_kbps,
        throughput_mbps: round1(total_bytes as f64 * 8.0 / 1e6 / secs),
        frames_per_s: round1(total_frames as f64 / secs),
        total_bytes,
        total_frames,
        total_keyframes: reports.iter().map(|r| r.keyframes).sum(),
        frames_received_min_pct: received_pct.iter().copied().reduce(f64::min).map(|p| (p * 100.0).floor() / 100.0),
        players_with_99pct_frames: (!received_pct.is_empty())
            .then(|| received_pct.iter().filter(|p| **p >= 99.0).count()),
        delivery_latency_ms: None,
        run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::FailReason;

    fn run() -> RunInfo {
        RunInfo {
            url: "http://127.0.0.1/a.flv".into(),
            protocol: "http-flv",
            players_requested: 5,
            ramp_per_s: 10.0,
            duration_s: 10.0,
            elapsed_s: 10.0,
            interrupted: false,
        }
    }

    fn player(rate: f64, ms: u64) -> PlayerReport {
        PlayerReport {
            connected: true,
            first_byte: Some(Duration::from_millis(ms)),
            first_keyframe: Some(Duration::from_millis(ms * 2)),
            bytes: (rate * 10.0) as u64,
            frames: 100,
            keyframes: 2,
            rate: Some(rate),
            ..PlayerReport::default()
        }
    }

    #[test]
    fn median_and_quantiles() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(quantile(&[5.0, 1.0, 4.0, 2.0, 3.0], 0.1), Some(1.0));
    }

    #[test]
    fn healthy_needs_rate_and_staying() {
        let mut dropped = player(1000.0, 5);
        dropped.failure = Some(FailReason::ClosedEarly);
        let reports = vec![
            player(1000.0, 10),
            player(1000.0, 20),
            player(950.0, 30),
            player(500.0, 40), // starved
            dropped,
            PlayerReport::failed(FailReason::ConnectRefused),
        ];
        let s = summarize(run(), &reports);
        assert_eq!((s.connected, s.healthy, s.failed), (5, 3, 2));
        assert_eq!(s.failures.get("closed_by_server"), Some(&1));
        assert_eq!(s.failures.get("connect_refused"), Some(&1));
        let fb = s.first_byte_ms.unwrap();
        assert_eq!((fb.count, fb.max), (5, 40.0));
        assert_eq!(s.first_keyframe_ms.unwrap().p50, 40.0);
        assert_eq!(s.delivery_kbps.unwrap().median, 7.8); // median of 1000,1000,950,500 B/s = 975
        assert_eq!(s.total_frames, 500);
        assert_eq!(s.frames_per_s, 50.0);
    }

    #[test]
    fn nothing_connected() {
        let s = summarize(run(), &[PlayerReport::failed(FailReason::NotStarted)]);
        assert_eq!((s.connected, s.healthy, s.failed), (0, 0, 1));
        assert!(s.first_byte_ms.is_none() && s.delivery_kbps.is_none());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["players_requested"], 5);
        assert_eq!(json["first_keyframe_ms"], serde_json::Value::Null);
    }
}

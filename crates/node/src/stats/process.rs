//! Process and host figures for `/api/v1/summaries`, read from /proc the way SRS's samplers do.
//!
//! CPU percentages need two readings, so a sampler keeps the previous one; everything else is
//! read on demand. On a system without /proc every figure reads 0 and `ok` is false.

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// CPU ticks of this process and of the whole host at one moment.
#[derive(Clone, Copy, Debug, Default)]
struct CpuReading {
    self_ticks: u64,
    host_busy: u64,
    host_total: u64,
    idle: u64,
}

/// The last computed CPU ratios (0..1; self is a ratio of one core, as SRS).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuRatios {
    pub self_cpu: f64,
    pub host_cpu: f64,
}

#[derive(Default)]
pub struct ProcessSampler {
    state: Mutex<(Option<(Instant, CpuReading)>, CpuRatios)>,
}

fn read_cpu() -> Option<CpuReading> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the `(comm)`: state is field 3; utime 14 and stime 15 (1-based).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let host = std::fs::read_to_string("/proc/stat").ok()?;
    let line = host.lines().next()?;
    let nums: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = nums.iter().take(8).sum();
    let idle = nums.get(3).copied().unwrap_or(0) + nums.get(4).copied().unwrap_or(0);
    Some(CpuReading { self_ticks: utime + stime, host_busy: total.saturating_sub(idle), host_total: total, idle })
}

impl ProcessSampler {
    /// Takes a reading and updates the ratios from the previous one.
    pub fn sample(&self) {
        let Some(now) = read_cpu() else { return };
        let at = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((then_at, then)) = state.0 {
            let secs = at.duration_since(then_at).as_secs_f64();
            let ticks_per_sec = 100.0; // USER_HZ on Linux
            let self_cpu = if secs > 0.0 {
                now.self_ticks.saturating_sub(then.self_ticks) as f64 / ticks_per_sec / secs
            } else {
                0.0
            };
            let total = now.host_total.saturating_sub(then.host_total) as f64;
            let host_cpu = if total > 0.0 { now.host_busy.saturating_sub(then.host_busy) as f64 / total } else { 0.0 };
            state.1 = CpuRatios { self_cpu, host_cpu };
        }
        state.0 = Some((at, now));
    }

    pub fn ratios(&self) -> CpuRatios {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Host idle seconds summed over CPUs at the last sample (SRS's misspelled `ilde_time`).
    pub fn idle_seconds(&self) -> f64 {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0.map(|(_, r)| r.idle as f64 / 100.0).unwrap_or(0.0)
    }
}

/// The `key: value kB` lines of a /proc status-like file, read once.
pub struct ProcKb(String);

impl ProcKb {
    pub fn read(path: &str) -> ProcKb {
        ProcKb(std::fs::read_to_string(path).unwrap_or_default())
    }

    /// The value of `key` in kB (0 when absent).
    pub fn get(&self, key: &str) -> u64 {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

/// 1, 5 and 15 minute load averages.
pub fn loadavg() -> [f64; 3] {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = s.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [it.next().unwrap_or(0.0), it.next().unwrap_or(0.0), it.next().unwrap_or(0.0)]
}

/// Host uptime in seconds.
pub fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(ProcKb::read("/proc/self/status").get("VmRSS") > 0);
        let mem = ProcKb::read("/proc/meminfo");
        assert!(mem.get("MemTotal") > 0 && mem.get("MemTotal") >= mem.get("MemAvailable"));
        assert_eq!(mem.get("Mem"), 0, "a key matches whole");
        assert!(uptime() > 0.0);
        let s = ProcessSampler::default();
        s.sample();
        s.sample();
        assert!(s.ratios().host_cpu >= 0.0);
    }
}

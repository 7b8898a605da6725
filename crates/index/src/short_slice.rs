//! Short scheduler slices for the threads that answer requests (DNS and HTTP).
//!
//! Linux's EEVDF scheduler (6.6 and later) lets a running thread finish its slice — 0.75 to 3 ms
//! by the number of CPUs — before a woken thread of the same weight or lower deadline gets the
//! core. An answer is microseconds of work, yet it waited for whatever else held the core: the
//! index's own polls (even at nice +10, see [`crate::background`]), or another process. That wait
//! was the whole p99 of `bench/dns.sh` (1.8–4 ms at half of NSD's rate). A thread may ask for a
//! shorter slice (Linux 6.12: `sched_runtime` of `sched_setattr` for a normal thread); its
//! deadline then comes first and it runs at once when woken. Its share of the CPU is unchanged:
//! it keeps its nice value and policy. On older kernels the request is refused or ignored and
//! nothing else changes.

/// The slice asked for: the kernel's minimum (0.1 ms).
pub const SLICE_NS: u64 = 100_000;

/// `struct sched_attr` of `sched_setattr(2)`, its first version (48 bytes).
#[repr(C)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
}

/// Asks for a short slice for the calling thread, keeping its nice value (`SCHED_OTHER`).
pub fn request_for_this_thread() -> std::io::Result<()> {
    let tid = rustix::thread::gettid();
    let nice = rustix::process::getpriority_process(Some(tid))?;
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        sched_nice: nice,
        sched_priority: 0,
        sched_runtime: SLICE_NS,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: `attr` is a valid, fully initialised `struct sched_attr` whose `size` field says
    // how many bytes the kernel may read; it outlives the call. Thread id 0 is the caller.
    #[allow(unsafe_code)]
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0u32) };
    if ret == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// [`request_for_this_thread`], logging (once per process) when the kernel refuses it.
pub fn request_or_log() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Err(e) = request_for_this_thread() {
        WARNED.call_once(|| {
            tracing::info!(error = %e, "the kernel gives request threads no short scheduler slice (Linux 6.12 has them); answers may wait up to a slice behind other work on a busy core");
        });
    }
}

/// Whether the running kernel honours the request (Linux 6.12 and later).
pub fn kernel_has_short_slices() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (6, 12)
}

/// The slice in nanoseconds the kernel reports for a thread (`thread-self`, or `self/task/{tid}`
/// under `/proc`), when it reports one (Linux 6.6 and later).
pub fn reported_slice(proc_path: &str) -> Option<u64> {
    let sched = std::fs::read_to_string(format!("/proc/{proc_path}/sched")).ok()?;
    let line = sched.lines().find(|l| l.starts_with("se.slice"))?;
    line.split(':').nth(1)?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{kernel_has_short_slices, reported_slice};

    #[test]
    fn a_thread_gets_the_short_slice_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            let tid = rustix::thread::gettid();
            rustix::process::setpriority_process(Some(tid), 5).unwrap();
            let before = reported_slice("thread-self");
            match super::request_for_this_thread() {
                Ok(()) => {
                    // Linux 6.12 and later report the slice asked for; older ones accept the
                    // request and ignore it.
                    let after = reported_slice("thread-self");
                    if kernel_has_short_slices() {
                        assert_eq!(after, Some(super::SLICE_NS));
                    } else {
                        assert_eq!(after, before);
                    }
                }
                Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}"),
            }
            assert_eq!(rustix::process::getpriority_process(Some(tid)).unwrap(), 5);
        })
        .join()
        .unwrap();
    }
}

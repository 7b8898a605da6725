//! The node's `/api/v1/summaries` payload (process and host figures, SRS field names and spelling,
//! `ilde_time` included), built in one place because two things send it: the API handler and the
//! heartbeat to the index server, which embeds it exactly as SRS's `heartbeat { summaries on; }` does.
//!
//! Unlike SRS it carries no `argv` or `cwd`: a command line can hold secrets (a hook URL's
//! `?secret=`), and this payload goes to anyone who can read the API and to the index.

use serde_json::{Value, json};

use crate::context::NodeContext;
use crate::stats::process::{ProcKb, cpus, loadavg, now_ms, uptime};

/// The play protocols this node serves (WebRTC only when it has a UDP port for it).
fn protocols(ctx: &NodeContext) -> Vec<&'static str> {
    let mut p = vec!["rtmp", "flv", "hls", "llhls"];
    if ctx.whep.get().is_some() {
        p.push("whep");
    }
    p
}

/// The `/api/v1/summaries` payload without the envelope: `{"data": {"ok", "now_ms", "self", "system"}}`.
pub fn summaries(ctx: &NodeContext) -> Value {
    let cpu = ctx.process.ratios();
    let meminfo = ProcKb::read("/proc/meminfo");
    let mem_total = meminfo.get("MemTotal");
    let rss = ProcKb::read("/proc/self/status").get("VmRSS");
    let swap_total = meminfo.get("SwapTotal");
    let swap_free = meminfo.get("SwapFree");
    let [l1, l5, l15] = loadavg();
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    // The node's totals, the bytes of vhosts that left included (as `/metrics` counts them).
    let (recv, send) = ctx.registry.byte_totals();
    let data = json!({
        "ok": mem_total > 0,
        "now_ms": now_ms(),
        "self": {
            "version": env!("CARGO_PKG_VERSION"),
            "pid": ctx.pid,
            "ppid": std::os::unix::process::parent_id(),
            "mem_kbyte": rss,
            "mem_percent": ratio(rss, mem_total),
            "cpu_percent": cpu.self_cpu,
            "srs_uptime": ctx.started.elapsed().as_secs(),
            "region": ctx.config.region,
            "role": ctx.config.role.to_string(),
            // Beyond SRS: what this node plays, so the index sends LL-HLS and WebRTC viewers
            // only to nodes that serve them.
            "protocols": protocols(ctx),
        },
        "system": {
            "cpu_percent": cpu.host_cpu,
            "disk_read_KBps": 0,
            "disk_write_KBps": 0,
            "disk_busy_percent": 0.0,
            "mem_ram_kbyte": mem_total,
            "mem_ram_percent": ratio(mem_total.saturating_sub(meminfo.get("MemAvailable")), mem_total),
            "mem_swap_kbyte": swap_total,
            "mem_swap_percent": ratio(swap_total.saturating_sub(swap_free), swap_total),
            "cpus": cpus(),
            "cpus_online": cpus(),
            "uptime": uptime(),
            "ilde_time": ctx.process.idle_seconds(),
            "load_1m": l1,
            "load_5m": l5,
            "load_15m": l15,
            "net_sample_time": now_ms(),
            "net_recv_bytes": 0,
            "net_send_bytes": 0,
            "net_recvi_bytes": 0,
            "net_sendi_bytes": 0,
            "srs_sample_time": now_ms(),
            "srs_recv_bytes": recv,
            "srs_send_bytes": send,
            "conn_sys": 0,
            "conn_sys_et": 0,
            "conn_sys_tw": 0,
            "conn_sys_udp": 0,
            "conn_srs": ctx.registry.clients().len(),
        },
    });
    json!({ "data": data })
}

//! `ferrocast-loadgen`: swarms of HTTP-FLV, RTMP, LL-HLS or WebRTC (WHEP) players against one
//! stream, for benchmarks.
//!
//! Checks the flags and the target (loopback only unless `--allow-remote`), runs the swarm for
//! `--duration`, prints the report (a table, or one JSON object with `--json`) and exits.
//! Errors in setup exit with status 1; a completed run exits 0 whatever its numbers.

mod cli;
mod connect;
mod flv;
mod http_body;
mod http_conn;
mod http_head;
mod keyframe;
mod latency;
mod live;
mod meter;
mod outcome;
mod player_http;
mod player_llhls;
mod player_rtmp;
mod player_whep;
mod render;
mod summary;
mod swarm;
#[cfg(test)]
mod swarm_rtmp_tests;
#[cfg(test)]
mod swarm_tests;
mod target;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::cli::Args;
use crate::latency::Reference;
use crate::player_http::HttpPlay;
use crate::player_llhls::LlHlsPlay;
use crate::player_rtmp::RtmpPlay;
use crate::player_whep::WhepPlay;
use crate::swarm::{Plan, Play};
use crate::target::{Protocol, Target};

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    // Players are all stopped or aborted by now; do not wait on anything left behind.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::parse(&args.url)?;
    let addr = target.resolve(args.allow_remote).await?;
    let reference = match (args.reference, target.protocol) {
        (None, _) => None,
        (Some(listen), Protocol::HttpFlv | Protocol::LlHls | Protocol::Whep) => {
            let reference = tokio::task::spawn_blocking(move || Reference::accept(listen)).await??;
            // Let the server take the publisher's first frames before the players ask for them.
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some(reference)
        }
        (Some(_), Protocol::Rtmp) => anyhow::bail!("--reference measures HTTP-FLV, LL-HLS and WHEP players only"),
    };
    let play = match target.protocol {
        Protocol::HttpFlv => Play::Http(Arc::new(HttpPlay::new(&target, addr, reference.clone()))),
        Protocol::LlHls => Play::LlHls(Arc::new(LlHlsPlay::new(&target, addr, reference.clone()))),
        Protocol::Whep => Play::Whep(Arc::new(WhepPlay::new(&target, addr, reference.clone()))),
        Protocol::Rtmp => Play::Rtmp(Arc::new(RtmpPlay::new(&target.url, addr)?)),
    };
    let plan = Plan {
        target,
        play,
        players: args.players as usize,
        ramp_per_s: args.ramp,
        duration: Duration::from_secs(args.duration),
    };
    let in_time = plan.players_in_time();
    if in_time < plan.players {
        eprintln!(
            "warning: at --ramp {} only {in_time} of {} players start within --duration {}; the rest are reported as not_started",
            plan.ramp_per_s, plan.players, args.duration
        );
    }
    eprintln!(
        "ferrocast-loadgen: {} {} players against {addr} ({}), ramp {}/s, {} s",
        plan.players,
        plan.target.protocol.name(),
        plan.target.url,
        plan.ramp_per_s,
        args.duration
    );
    let mut summary = swarm::run(plan).await;
    summary.delivery_latency_ms = reference.and_then(|r| r.stats());
    if args.json {
        println!("{}", render::json(&summary));
    } else {
        print!("{}", render::table(&summary));
    }
    Ok(())
}

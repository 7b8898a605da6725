//! Opening a player's TCP connection, bounded by the end of the run.
//!
//! Running out of file descriptors is the first wall a large run hits, so EMFILE gets a
//! one-time message that says what to do instead of thousands of identical failures.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::outcome::{Fail, FailReason};

static WARNED_EMFILE: AtomicBool = AtomicBool::new(false);

/// Connects to `addr`, or gives up when `stop` fires.
pub async fn connect(addr: SocketAddr, stop: &CancellationToken) -> Result<TcpStream, Fail> {
    let result = tokio::select! {
        biased;
        _ = stop.cancelled() => return Err(FailReason::NotConnectedInTime.into()),
        r = TcpStream::connect(addr) => r,
    };
    let stream = result.map_err(|e| {
        let reason = FailReason::from_connect(&e);
        if reason == FailReason::TooManyOpenFiles && !WARNED_EMFILE.swap(true, Ordering::Relaxed) {
            eprintln!(
                "error: too many open files ({e}): each player needs one socket. Raise the limit \
                 before running, e.g. `ulimit -n 65535`, or use fewer --players"
            );
        }
        Fail::new(reason, e)
    })?;
    // Frames are small and latency is measured; never let Nagle hold our (few) writes.
    stream.set_nodelay(true).ok();
    Ok(stream)
}

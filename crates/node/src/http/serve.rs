//! Our HTTP accept loop, shared by the media port and the API port.
//!
//! We drive hyper per connection rather than use `axum::serve` for two reasons: each request
//! learns its peer address and its connection's kick token (so the API can disconnect an HTTP-FLV
//! player whose socket is stuck in a write), and shutdown is graceful per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::context::NodeContext;

/// The most a connection buffers in the server before it waits for the peer to read.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Per-connection facts, available to handlers as an `Extension`.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// Cancelling it closes the TCP connection, whatever the handler is doing.
    pub kick: CancellationToken,
}

/// Serves `router` on `listener` until the node shuts down.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    ctx: Arc<NodeContext>,
    tracker: TaskTracker,
    name: &'static str,
) {
    let limiter = ctx.conn_limiter(name);
    loop {
        let (socket, peer) = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    warn!("{name} accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(permit) = limiter.try_acquire(peer.ip()) else { continue };
        let _ = socket.set_nodelay(true);
        let kick = CancellationToken::new();
        let info = ConnInfo { peer, kick: kick.clone() };
        let router = router.clone();
        let service = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(info.clone());
            router.clone().oneshot(req)
        });
        let shutdown = ctx.shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                // What hyper holds for a player that stops reading, on top of the socket's own
                // buffer: its default (~400 KiB) made 1,000 such HTTP-FLV players 428 MiB of RSS.
                .max_buf_size(WRITE_BUFFER_BYTES)
                .serve_connection(TokioIo::new(socket), TowerToHyperService::new(service));
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = kick.cancelled() => Ok(()),
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(Duration::from_secs(2), conn.as_mut()).await.unwrap_or(Ok(()))
                }
            };
            if let Err(e) = result {
                debug!(%peer, "{name} connection error: {e}");
            }
        });
    }
}

//! The index's accept loop: hyper driven per connection, with the bounds a public port needs.
//!
//! - A connection that sends no complete request head within `http.header_timeout_ms` is closed:
//!   a new connection that sends nothing or trickles its headers (slow-loris), and a kept-alive
//!   one idle between requests alike.
//! - At most `http.max_connections` connections at once; the next one gets a `503` and is closed.
//! - Handlers see the peer address (`ConnectInfo<SocketAddr>`); WebSocket upgrades work.
//! - Shutdown is graceful per connection (2 s at most).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::HttpConfig;

/// What a connection over the cap is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n\
content-length: 91\r\n\r\n{\"code\":503,\"error\":\"the index has http.max_connections connections open: try again soon\"}\n";

/// Serves `router` on `listener` until `stop` is cancelled, then waits for open connections to
/// finish (each gets 2 s).
pub async fn serve(listener: TcpListener, router: Router, stop: CancellationToken, limits: HttpConfig) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let header_timeout = Duration::from_millis(limits.header_timeout_ms);
    let conns = TaskTracker::new();
    loop {
        let (socket, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, most likely: the connections open now close in time.
                    tracing::warn!("index accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // The socket's send buffer is empty: this write does not wait.
            let _ = socket.try_write(BUSY);
            tracing::debug!(%peer, "connection refused: http.max_connections reached");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let router = router.clone();
        let service = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req)
        });
        let stop = stop.clone();
        conns.spawn(async move {
            let _slot = slot;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(socket), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(Duration::from_secs(2), conn.as_mut()).await.unwrap_or(Ok(()))
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "index connection: {e}");
            }
        });
    }
    conns.close();
    conns.wait().await;
}

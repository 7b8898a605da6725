//! Events over a WebSocket: one text frame per event, the event's JSON. What the client sends is
//! ignored but read, so pings are answered and a close is noticed. A client that stops reading is
//! dropped after a send timeout; meanwhile the bus goes on without it (it is resynced if it lags).

use std::time::Duration;

use axum::extract::WebSocketUpgrade;
use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use axum::response::Response;

use super::feed::Feed;

/// A frame not taken by the client within this long ends the connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub fn respond(upgrade: WebSocketUpgrade, feed: Feed) -> Response {
    upgrade.on_upgrade(move |socket| run(socket, feed))
}

async fn run(mut socket: WebSocket, mut feed: Feed) {
    loop {
        tokio::select! {
            out = feed.next() => {
                let Some(out) = out else {
                    let bye = match feed.ended() {
                        Some(why) => CloseFrame { code: close_code::POLICY, reason: why.into() },
                        None => CloseFrame { code: close_code::AWAY, reason: "the index server is stopping".into() },
                    };
                    let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(bye)))).await;
                    return;
                };
                match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(out.json))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!("event listener gone: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::info!("event listener took no frame for {SEND_TIMEOUT:?}: dropped");
                        return;
                    }
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

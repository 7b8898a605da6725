//! WebRTC playback (WHEP): a browser POSTs an SDP offer to `/{app}/{stream}/whep` and gets the
//! stream as WebRTC, sub-second, from any node, edges included (the viewer is admitted like any
//! player, so on an edge it starts the upstream pull).
//!
//! One UDP socket (`--webrtc-udp`) carries every session; the node is ICE-lite (it answers the
//! browser's connectivity checks, it never gathers), with one host candidate: the socket's
//! address, or `--webrtc-candidate` for a node behind NAT. A TCP listener on the same port number
//! is the fallback for viewers whose network blocks UDP (ICE-TCP, `transport`), offered as a
//! second, passive candidate. The sessions live in one task
//! (`engine`), which owns their sans-IO `str0m::Rtc` state: packets, timers and frames are its
//! inputs. H.264 video is passed through (`media`); AAC audio is transcoded to Opus once per
//! stream (`audio`).

mod audio;
mod engine;
mod media;
mod session;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::admission::Viewer;

pub use audio::OpusPacket;
pub use engine::MAX_SESSIONS;

/// A request to the engine.
enum Command {
    Offer { sdp: String, viewer: Box<Viewer>, reply: oneshot::Sender<Result<Answer, String>> },
    Close { id: String },
}

/// The SDP answer for a new session, and the session's id (its resource URL's last segment).
pub struct Answer {
    pub sdp: String,
    pub id: String,
}

/// The node's WebRTC side: the way into the engine task.
pub struct Whep {
    commands: mpsc::Sender<Command>,
}

impl Whep {
    /// Starts the engine on `socket` (and ICE-TCP on `tcp`); `candidate` is the address browsers
    /// are told to reach.
    pub fn start(
        socket: tokio::net::UdpSocket,
        tcp: Option<tokio::net::TcpListener>,
        candidate: SocketAddr,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Arc<Whep> {
        let (commands, rx) = mpsc::channel(256);
        tokio::spawn(engine::run(socket, tcp, candidate, rx, shutdown));
        Arc::new(Whep { commands })
    }

    /// Opens a session for an admitted viewer: the SDP answer, or why not.
    pub async fn offer(&self, sdp: String, viewer: Viewer) -> Result<Answer, String> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Offer { sdp, viewer: Box::new(viewer), reply })
            .await
            .map_err(|_| "the WebRTC engine has stopped".to_string())?;
        answer.await.map_err(|_| "the WebRTC engine has stopped".to_string())?
    }

    /// Ends a session (the WHEP `DELETE`). Unknown ids are ignored.
    pub async fn close(&self, id: String) {
        let _ = self.commands.send(Command::Close { id }).await;
    }
}

//! WebRTC playback (WHEP): a browser POSTs an SDP offer to `/{app}/{stream}/whep` and gets the
//! stream as WebRTC, sub-second, from any node, edges included (the viewer is admitted like any
//! player, so on an edge it starts the upstream pull).
//!
//! Sessions live in engines (`engine`), one task each, one per core by default: each owns its
//! sessions' sans-IO `str0m::Rtc` state and one UDP socket (`--webrtc-udp`'s port, the next one,
//! ...), with ICE-TCP on the same port number as the fallback for viewers whose network blocks
//! UDP (`transport`). The node is ICE-lite (it answers the browser's connectivity checks, it
//! never gathers); its candidates are the engine's address, or `--webrtc-candidate` for a node
//! behind NAT. H.264 video is passed through (`media`), cut into RTP payloads once per stream
//! (`rtp`); AAC audio is transcoded to Opus once per stream, whichever engines its viewers are
//! on (`audio`). Those shared payloads are the stream's packet cache: NACKs and keyframe
//! requests are answered from them (`session`). A per-session pacer spreads what would otherwise
//! go in one burst: a new viewer's GOP-cache start, a keyframe request's answer (`pacer`).

mod audio;
mod engine;
mod media;
mod pacer;
mod rtp;
mod session;
mod transport;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};

use crate::StartError;
use crate::admission::Viewer;

pub use audio::OpusPacket;
pub use rtp::FramePayloads;

/// A request to an engine.
enum Command {
    Offer { sdp: String, viewer: Box<Viewer>, reply: oneshot::Sender<Result<Answer, String>> },
    Close { id: String },
}

/// The SDP answer for a new session, and the session's id (its resource URL's last segment).
pub struct Answer {
    pub sdp: String,
    pub id: String,
}

/// One engine's sockets: its UDP port, and ICE-TCP on the same port number when that was free.
pub struct EngineSockets {
    udp: UdpSocket,
    tcp: Option<TcpListener>,
}

/// Binds `engines` engines (0: one per core) on `addr`'s port and the ones after it (each on
/// any free port when `addr`'s port is 0).
pub async fn bind_engines(addr: SocketAddr, engines: usize) -> Result<Vec<EngineSockets>, StartError> {
    let n = if engines == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { engines };
    let mut bound = Vec::with_capacity(n);
    for i in 0..n {
        let port = if addr.port() == 0 { 0 } else { addr.port().saturating_add(u16::try_from(i).unwrap_or(u16::MAX)) };
        let at = SocketAddr::new(addr.ip(), port);
        let udp =
            UdpSocket::bind(at).await.map_err(|cause| StartError::Bind { what: "WebRTC (UDP)", addr: at, cause })?;
        let local = udp.local_addr().unwrap_or(at);
        // ICE over TCP on the same port number, for viewers whose network blocks UDP; the
        // engine still plays WebRTC over UDP if that port is taken for TCP.
        let tcp = match TcpListener::bind(local).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(%local, "webrtc over TCP is off for this engine: cannot listen on {local}: {e}");
                None
            }
        };
        bound.push(EngineSockets { udp, tcp });
    }
    Ok(bound)
}

/// One running engine: the way into its task, and how many sessions it has.
struct EngineHandle {
    commands: mpsc::Sender<Command>,
    sessions: Arc<AtomicUsize>,
}

/// The node's WebRTC side: the ways into the engine tasks. A new viewer goes to the engine with
/// the fewest sessions; a session's id starts with its engine's number, so its `DELETE` finds it.
pub struct Whep {
    engines: Vec<EngineHandle>,
}

impl Whep {
    /// Starts one engine per bound socket; `candidate` is the IP browsers are told to reach
    /// (each engine's own address when `None`).
    pub fn start(
        sockets: Vec<EngineSockets>,
        candidate: Option<IpAddr>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Arc<Whep> {
        let transcoders = Arc::new(audio::Transcoders::default());
        let engines = sockets
            .into_iter()
            .enumerate()
            .map(|(index, EngineSockets { udp, tcp })| {
                let (commands, rx) = mpsc::channel(256);
                let local = udp.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                let at = SocketAddr::new(candidate.unwrap_or(local.ip()), local.port());
                let sessions = Arc::new(AtomicUsize::new(0));
                let place = engine::Place {
                    index,
                    candidate: at,
                    sessions: sessions.clone(),
                    transcoders: transcoders.clone(),
                };
                tokio::spawn(engine::run(udp, tcp, place, rx, shutdown.clone()));
                EngineHandle { commands, sessions }
            })
            .collect();
        Arc::new(Whep { engines })
    }

    /// Opens a session for an admitted viewer: the SDP answer, or why not.
    pub async fn offer(&self, sdp: String, viewer: Viewer) -> Result<Answer, String> {
        let engine = self
            .engines
            .iter()
            .min_by_key(|e| e.sessions.load(Ordering::Relaxed))
            .ok_or_else(|| "no WebRTC engine runs".to_string())?;
        let (reply, answer) = oneshot::channel();
        engine
            .commands
            .send(Command::Offer { sdp, viewer: Box::new(viewer), reply })
            .await
            .map_err(|_| "the WebRTC engine has stopped".to_string())?;
        answer.await.map_err(|_| "the WebRTC engine has stopped".to_string())?
    }

    /// Ends a session (the WHEP `DELETE`). Unknown ids are ignored.
    pub async fn close(&self, id: String) {
        let engine = id.split_once('-').and_then(|(n, _)| n.parse::<usize>().ok()).and_then(|n| self.engines.get(n));
        if let Some(engine) = engine {
            let _ = engine.commands.send(Command::Close { id }).await;
        }
    }
}

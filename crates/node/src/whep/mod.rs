//! WebRTC playback (WHEP): a browser POSTs an SDP offer to `/{app}/{stream}/whep` and gets the
//! stream as WebRTC, sub-second, from any node, edges included (the viewer is admitted like any
//! player, so on an edge it starts the upstream pull).
//!
//! Sessions live in engines (`engine`), one task each, one per core by default: each owns its
//! sessions' sans-IO `str0m::Rtc` state. All engines share one UDP port (`--webrtc-udp`), with
//! ICE-TCP on the same port number as the fallback for viewers whose network blocks UDP
//! (`transport`); the router hands each packet to its session's engine (`router`). The node is
//! ICE-lite (it answers the browser's connectivity checks, it never gathers); its candidates are
//! that port's address, or `--webrtc-candidate` for a node behind NAT. H.264 video is passed through (`media`), cut into RTP payloads once per stream
//! (`rtp`); AAC audio is transcoded to Opus once per stream, whichever engines its viewers are
//! on (`audio`). Those shared payloads are the stream's packet cache: NACKs and keyframe
//! requests are answered from them (`session`). A per-session pacer spreads what would otherwise
//! go in one burst: a new viewer's GOP-cache start, a keyframe request's answer (`pacer`).

mod audio;
mod engine;
mod media;
mod pacer;
mod router;
mod rtp;
mod session;
mod transport;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};

use crate::StartError;
use crate::admission::Viewer;
use crate::limits::{ConnLimiter, ConnPermit};

pub use audio::OpusPacket;
pub use rtp::FramePayloads;

/// A request to an engine.
enum Command {
    Offer { sdp: String, viewer: Box<(Viewer, ConnPermit)>, reply: oneshot::Sender<Result<Answer, Refused>> },
    Close { id: String },
}

/// What the node's WebRTC did, for `/metrics`.
#[derive(Default)]
pub struct Counters {
    /// Keyframe requests (PLI/FIR) answered from the GOP, and those left to the publisher's
    /// next keyframe (rate-limited, or nothing to resend).
    pub keyframes_resent: AtomicU64,
    pub keyframes_waited: AtomicU64,
    /// Packets that named no session (dropped by the router), and datagrams dropped because
    /// their engine's queue was full (the node out of CPU).
    pub unrouted: AtomicU64,
    pub engine_busy: AtomicU64,
    /// Viewers that fell behind their pacer and started again at a keyframe.
    pub fell_behind: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why an offer got no session: the offer's fault (400), or the node's capacity (503).
#[derive(Debug)]
pub enum Refused {
    BadOffer(String),
    Unavailable(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::BadOffer(why) | Refused::Unavailable(why) => f.write_str(why),
        }
    }
}

/// The SDP answer for a new session, and the session's id (its resource URL's last segment).
pub struct Answer {
    pub sdp: String,
    pub id: String,
}

/// The node's WebRTC sockets, shared by its engines: the UDP port, and ICE-TCP on the same port
/// number when that was free.
pub struct Sockets {
    udp: UdpSocket,
    tcp: Option<TcpListener>,
    /// How many engines to run (one per core unless configured).
    engines: usize,
}

/// Binds WebRTC's port `addr` (UDP, and TCP when free) for `engines` engines (0: one per core).
pub async fn bind(addr: SocketAddr, engines: usize) -> Result<Sockets, StartError> {
    let engines = if engines == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { engines };
    let udp = UdpSocket::bind(addr).await.map_err(|cause| StartError::Bind { what: "WebRTC (UDP)", addr, cause })?;
    let local = udp.local_addr().unwrap_or(addr);
    // Every session sends through this socket: room for many viewers' packets at once (the
    // kernel caps it at net.core.wmem_max / rmem_max).
    let sock = socket2::SockRef::from(&udp);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let (send, recv) = (sock.send_buffer_size().unwrap_or(0), sock.recv_buffer_size().unwrap_or(0));
    if send < SOCKET_BUFFER {
        tracing::warn!(
            send,
            recv,
            "webrtc: the UDP socket's buffers are smaller than {SOCKET_BUFFER} bytes (the kernel's cap); raise net.core.wmem_max and net.core.rmem_max for many viewers"
        );
    }
    // ICE over TCP on the same port number, for viewers whose network blocks UDP; the node still
    // plays WebRTC over UDP if that port is taken for TCP.
    let tcp = match TcpListener::bind(local).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(%local, "webrtc over TCP is off: cannot listen on {local}: {e}");
            None
        }
    };
    Ok(Sockets { udp, tcp, engines })
}

/// The WebRTC socket's send and receive buffers asked for.
const SOCKET_BUFFER: usize = 4 << 20;

/// Datagrams queued for one engine before the router drops them.
const INBOUND_QUEUE: usize = 4096;

/// One running engine: the way into its task, and how many sessions it has.
struct EngineHandle {
    commands: mpsc::Sender<Command>,
    sessions: Arc<AtomicUsize>,
}

/// The node's WebRTC side: the ways into the engine tasks. A new viewer goes to the engine with
/// the fewest sessions; a session's id starts with its engine's number, so its `DELETE` finds it.
pub struct Whep {
    engines: Vec<EngineHandle>,
    pub counters: Arc<Counters>,
    /// Sessions in all and per viewer address (`--max-connections`, `--max-connections-per-ip`),
    /// taken before admission: every session costs the node a stream's bitrate.
    pub limiter: Arc<ConnLimiter>,
}

impl Whep {
    /// Starts the engines on the shared sockets, and the router that hands them their packets;
    /// `candidate` is the IP browsers are told to reach (the socket's own when `None`).
    pub fn start(
        sockets: Sockets,
        candidate: Option<IpAddr>,
        limiter: Arc<ConnLimiter>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Arc<Whep> {
        let Sockets { udp, tcp, engines: count } = sockets;
        let udp = Arc::new(udp);
        let local = udp.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let at = SocketAddr::new(candidate.unwrap_or(local.ip()), local.port());
        let transcoders = Arc::new(audio::Transcoders::default());
        let routes = Arc::new(router::Routes::default());
        let counters = Arc::new(Counters::default());
        let mut inboxes = Vec::with_capacity(count);
        let mut engines = Vec::with_capacity(count);
        for index in 0..count {
            let (commands, rx) = mpsc::channel(256);
            let (inbox, inbound) = mpsc::channel(INBOUND_QUEUE);
            let sessions = Arc::new(AtomicUsize::new(0));
            let place = engine::Place {
                index,
                candidate: at,
                sessions: sessions.clone(),
                transcoders: transcoders.clone(),
                routes: routes.clone(),
                counters: counters.clone(),
            };
            tokio::spawn(engine::run(udp.clone(), inbound, tcp.is_some(), place, rx, shutdown.clone()));
            inboxes.push(inbox);
            engines.push(EngineHandle { commands, sessions });
        }
        if let Some(listener) = tcp {
            let routed =
                router::Routed { routes: routes.clone(), engines: inboxes.clone(), counters: counters.clone() };
            tokio::spawn(transport::accept(listener, routed, shutdown.clone()));
        }
        let routed = router::Routed { routes, engines: inboxes, counters: counters.clone() };
        tokio::spawn(router::udp(udp, routed, shutdown));
        tracing::info!(udp = %local, candidate = %at, engines = count, "webrtc (WHEP) ready");
        Arc::new(Whep { engines, counters, limiter })
    }

    /// Each engine's session count.
    pub fn sessions(&self) -> Vec<usize> {
        self.engines.iter().map(|e| e.sessions.load(Ordering::Relaxed)).collect()
    }

    /// Opens a session for an admitted viewer: the SDP answer, or why not.
    pub async fn offer(&self, sdp: String, viewer: Viewer, permit: ConnPermit) -> Result<Answer, Refused> {
        let stopped = || Refused::Unavailable("the WebRTC engine has stopped".to_string());
        let engine = self
            .engines
            .iter()
            .min_by_key(|e| e.sessions.load(Ordering::Relaxed))
            .ok_or_else(|| Refused::Unavailable("no WebRTC engine runs".to_string()))?;
        let (reply, answer) = oneshot::channel();
        engine
            .commands
            .send(Command::Offer { sdp, viewer: Box::new((viewer, permit)), reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Ends a session (the WHEP `DELETE`). Unknown ids are ignored.
    pub async fn close(&self, id: String) {
        let engine = id.split_once('-').and_then(|(n, _)| n.parse::<usize>().ok()).and_then(|n| self.engines.get(n));
        if let Some(engine) = engine {
            let _ = engine.commands.send(Command::Close { id }).await;
        }
    }
}

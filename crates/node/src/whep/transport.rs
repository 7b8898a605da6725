//! How sessions' packets leave and arrive: the one UDP socket, and ICE over TCP (RFC 6544) on the
//! same port number for viewers whose network blocks UDP, each TCP connection framed as RFC 4571
//! says (a 2-byte length before each packet).
//!
//! A TCP connection is a reader task, which hands each frame with the connection's address (as a
//! datagram from that address) to the engine its first STUN check names (`router`), and a writer
//! fed by a bounded queue: a viewer that does not read loses packets, as on UDP, and never
//! blocks the engine. Connections are bounded in number (in all, and per address), in frame
//! size, and in time without a frame; one that names no session within the connect wait is
//! closed, so is one its engine's session does not take, and a session's connection closes when
//! the session ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use str0m::net::{Protocol, Transmit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::router::Routed;
use super::session::CONNECT_WAIT;
use crate::limits::ConnLimiter;

/// Most TCP connections at once (sessions are bounded separately), and from one IP address.
const MAX_CONNECTIONS: usize = 4096;
const MAX_PER_IP: usize = 16;
/// The largest frame taken: WebRTC packets are MTU-sized.
const MAX_FRAME: usize = 2048;
/// A connection with no frame this long is closed (keepalives come every few seconds).
const IDLE: Duration = Duration::from_secs(30);
/// Packets queued for one connection before new ones are dropped.
const QUEUE: usize = 512;

/// What arrives for an engine.
pub enum Inbound {
    /// A datagram on the shared UDP socket.
    Udp(SocketAddr, Vec<u8>),
    /// A TCP connection for one of the engine's sessions: where to send its packets.
    TcpOpen(SocketAddr, mpsc::Sender<Bytes>),
    /// A frame from a connection.
    TcpFrame(SocketAddr, Vec<u8>),
    TcpClosed(SocketAddr),
}

/// Where sessions' output goes: the shared UDP socket, and the engine's TCP connections.
pub struct Out {
    pub udp: Arc<UdpSocket>,
    pub tcp: HashMap<SocketAddr, Conn>,
}

/// An open ICE-TCP connection: its write queue, and when it opened (one no session takes within
/// the connect wait is closed).
pub struct Conn {
    pub tx: mpsc::Sender<Bytes>,
    pub opened: Instant,
}

impl Out {
    /// Sends one packet; a full buffer or queue drops it (RTP and its retransmissions cope).
    pub fn send(&self, t: &Transmit) {
        match t.proto {
            Protocol::Udp => {
                let _ = self.udp.try_send_to(&t.contents, t.destination);
            }
            Protocol::Tcp => {
                let Some(conn) = self.tcp.get(&t.destination) else { return };
                let Ok(len) = u16::try_from(t.contents.len()) else { return };
                let mut frame = BytesMut::with_capacity(2 + t.contents.len());
                frame.put_u16(len);
                frame.put_slice(&t.contents);
                let _ = conn.tx.try_send(frame.freeze());
            }
            _ => {}
        }
    }
}

/// Accepts viewers' ICE-TCP connections until `shutdown`; each goes to the engine its first STUN
/// check names.
pub async fn accept(listener: TcpListener, routed: Routed, shutdown: CancellationToken) {
    let limiter = ConnLimiter::with_settings("webrtc-tcp", MAX_CONNECTIONS, MAX_PER_IP, ["a fixed cap"; 2]);
    if let Ok(addr) = listener.local_addr() {
        info!(tcp = %addr, "webrtc over TCP ready");
    }
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    warn!("webrtc over TCP: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Over either cap the connection is closed at once (the limiter logs it).
        let Some(permit) = limiter.try_acquire(peer.ip()) else { continue };
        let (routed, shutdown) = (routed.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let mut engine = None;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = connection(stream, peer, &routed, &mut engine) => {}
            }
            if let Some(engine) = engine {
                let _ = engine.send(Inbound::TcpClosed(peer)).await;
            }
        });
    }
}

/// One connection: frames in to its engine (`engine`, once its first STUN check named one),
/// queued packets out, until either side ends.
async fn connection(stream: TcpStream, peer: SocketAddr, routed: &Routed, engine: &mut Option<mpsc::Sender<Inbound>>) {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
    let write = async move {
        while let Some(frame) = rx.recv().await {
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
    };
    let opened = Instant::now();
    let read = async {
        let mut tx = Some(tx);
        let mut len = [0u8; 2];
        loop {
            // Until a frame names a session, the connection has the connect wait to do so.
            let wait = if engine.is_some() { IDLE } else { CONNECT_WAIT.saturating_sub(opened.elapsed()) };
            let header = tokio::time::timeout(wait, reader.read_exact(&mut len)).await;
            if !matches!(header, Ok(Ok(_))) {
                return;
            }
            let n = usize::from(u16::from_be_bytes(len));
            if n == 0 || n > MAX_FRAME {
                debug!(%peer, n, "webrtc over TCP: a frame of a size no WebRTC packet has; closing");
                return;
            }
            let mut frame = vec![0u8; n];
            if !matches!(tokio::time::timeout(IDLE, reader.read_exact(&mut frame)).await, Ok(Ok(_))) {
                return;
            }
            if engine.is_none() {
                let Some(named) = routed.engine(Protocol::Tcp, peer, &frame) else {
                    continue; // not a check for a session here: dropped
                };
                let Some(tx) = tx.take() else { return };
                if named.send(Inbound::TcpOpen(peer, tx)).await.is_err() {
                    return;
                }
                *engine = Some(named.clone());
            }
            // Like a datagram: dropped when the engine's queue is full, so one busy connection
            // cannot hold the queue that UDP viewers share.
            let Some(to) = engine.as_ref() else { return };
            match to.try_send(Inbound::TcpFrame(peer, frame)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => super::Counters::add(&routed.counters.engine_busy),
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    };
    tokio::select! {
        _ = write => {}
        _ = read => {}
    }
}

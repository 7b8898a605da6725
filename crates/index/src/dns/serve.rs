//! The DNS listeners: UDP on threads of its own (one per CPU, on one socket) and TCP (RFC 7766
//! framing, pipelined queries answered in order, bounded connections with an idle timeout).
//!
//! UDP answers run on their own OS threads, not as tasks of the async runtime, because the
//! runtime also parses node polls (a 500-stream answer is milliseconds of work in one go): as
//! tasks, queries arriving meanwhile waited for it (a p99 of 19 ms on one core in
//! `bench/dns.sh`); as threads with a short scheduler slice ([`crate::short_slice`]), the
//! kernel lets a waiting query in at once. Each query is
//! answered by [`answer::respond`] from the current zone, directory and config, or over UDP from
//! [`cache`] when the same asker asked the same question a moment ago; a panic in it (a bug, never
//! expected) costs that query only.

use std::net::{IpAddr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::answer::{self, Context, Note, Transport};
use super::cache::{self, AnswerCache, Generation};
use super::rate_limit::{RateLimit, Verdict};
use crate::state::IndexState;

/// The bound DNS sockets, before they serve.
pub struct DnsListeners {
    pub udp: std::net::UdpSocket,
    pub tcp: TcpListener,
    /// The address both listen on.
    pub addr: SocketAddr,
}

/// Binds UDP and TCP on `addr`; with port 0, TCP takes the port UDP was given.
pub async fn bind(addr: SocketAddr) -> std::io::Result<DnsListeners> {
    let mut last = None;
    for _ in 0..20 {
        let udp = std::net::UdpSocket::bind(addr)?;
        let bound = udp.local_addr()?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok(DnsListeners { udp, tcp, addr: bound }),
            // Port 0 gave UDP a port TCP cannot have: try another.
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no port free for both UDP and TCP")))
}

/// How often a UDP thread looks at the shutdown signal while no query comes.
const UDP_WAKE: Duration = Duration::from_millis(200);

/// Serves DNS on `listeners` until the index shuts down.
pub fn start(state: &Arc<IndexState>, listeners: DnsListeners) {
    let cfg = state.config.load();
    let limit = Arc::new(RateLimit::new(cfg.dns.rate_limit_qps));
    let cache = Arc::new(AnswerCache::default());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if let Err(e) = listeners.udp.set_read_timeout(Some(UDP_WAKE)) {
        tracing::warn!(error = %e, "DNS: cannot set the UDP read timeout; shutdown may wait for a query");
    }
    for n in 0..workers {
        let socket = match listeners.udp.try_clone() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "DNS: cannot share the UDP socket with another thread");
                break;
            }
        };
        let (st, limit, cache) = (state.clone(), limit.clone(), cache.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("dns-udp-{n}"))
            .spawn(move || serve_udp(&st, &socket, &limit, &cache));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "DNS: cannot start a UDP thread");
        }
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(cfg.dns.max_tcp_connections));
    state.tasks.spawn(serve_tcp(state.clone(), listeners.tcp, permits));
}

/// Answers one query from the state in force, or None for silence: given again from `cache`
/// (with the key of the query) where it holds one for the state in force, and kept there when it
/// may be.
fn answer(
    st: &IndexState,
    cache: Option<(&AnswerCache, &[u8])>,
    packet: &[u8],
    peer: IpAddr,
    transport: Transport,
    truncate: bool,
) -> Option<Vec<u8>> {
    let zone = st.dns_zone.load();
    let zone = zone.as_ref()?;
    let dir = st.directory.load();
    let generation = Generation { directory: dir.id, zone: zone.id };
    let now = Instant::now();
    let cache = cache.filter(|_| !truncate);
    if let Some((cache, key)) = cache
        && let Some((bytes, note)) = cache.get(generation, key, packet, now)
    {
        st.metrics.dns.query(note.qtype, note.rcode);
        if let Some((i, region)) = &note.assigned {
            crate::scheduler::assign(&dir, *i);
            st.metrics.dns.answer(region);
        }
        return Some(bytes);
    }
    let cfg = st.config.load();
    let resolver = st.resolver.load();
    let cx = Context {
        zone,
        dir: &dir,
        scheduler: &cfg.scheduler,
        resolver: &resolver,
        metrics: &st.metrics.dns,
        placements: &st.placements,
    };
    let mut note = Note::default();
    match catch_unwind(AssertUnwindSafe(|| answer::respond_noted(&cx, packet, peer, transport, truncate, &mut note))) {
        Ok(a) => {
            if let (Some((cache, key)), Some(bytes)) = (cache, &a) {
                cache.put(generation, key, bytes, &note, now);
            }
            a
        }
        Err(_) => {
            st.metrics.dns.dropped("panic");
            tracing::error!(%peer, len = packet.len(), "a DNS query panicked the answer code; it got no answer");
            None
        }
    }
}

fn serve_udp(st: &IndexState, socket: &std::net::UdpSocket, limit: &RateLimit, cache: &AnswerCache) {
    crate::short_slice::request_or_log();
    // Queries larger than this are cut; their parse fails and they get FORMERR.
    let mut buf = vec![0u8; 4096];
    let mut key = Vec::with_capacity(16 + cache::MAX_QUERY);
    while !st.shutdown.is_cancelled() {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => {
                // ICMP errors of earlier sends surface here on some systems: not fatal.
                tracing::debug!(error = %e, "DNS UDP receive failed");
                continue;
            }
        };
        let verdict = limit.check(peer.ip());
        if verdict == Verdict::Drop {
            st.metrics.dns.dropped("rate_limit");
            continue;
        }
        if verdict == Verdict::Truncate {
            st.metrics.dns.rate_limited();
        }
        let packet = &buf[..n];
        let cached = cache::key_of(&mut key, peer.ip(), packet).then_some((cache, key.as_slice()));
        if let Some(out) = answer(st, cached, packet, peer.ip(), Transport::Udp, verdict == Verdict::Truncate)
            && let Err(e) = socket.send_to(&out, peer)
        {
            tracing::debug!(%peer, error = %e, "cannot send a DNS answer");
        }
    }
}

async fn serve_tcp(st: Arc<IndexState>, listener: TcpListener, permits: Arc<tokio::sync::Semaphore>) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = st.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "DNS TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            st.metrics.dns.dropped("tcp_connections");
            drop(stream);
            continue;
        };
        let st = st.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let idle = Duration::from_millis(st.config.load().dns.tcp_idle_timeout_ms);
            tokio::select! {
                _ = st.shutdown.cancelled() => {}
                _ = tcp_connection(&st, stream, peer.ip(), idle) => {}
            }
        });
    }
}

/// Length-prefixed queries in, answers out, until the client closes, idles past `idle`, or sends
/// something that gets no answer.
async fn tcp_connection(st: &IndexState, mut stream: TcpStream, peer: IpAddr, idle: Duration) {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        if !matches!(tokio::time::timeout(idle, stream.read_exact(&mut len)).await, Ok(Ok(_))) {
            return;
        }
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        if !matches!(tokio::time::timeout(idle, stream.read_exact(&mut buf)).await, Ok(Ok(_))) {
            return;
        }
        let Some(out) = answer(st, None, &buf, peer, Transport::Tcp, false) else { return };
        let Ok(n) = u16::try_from(out.len()) else { return };
        let mut framed = Vec::with_capacity(out.len() + 2);
        framed.extend_from_slice(&n.to_be_bytes());
        framed.extend_from_slice(&out);
        if !matches!(tokio::time::timeout(idle, stream.write_all(&framed)).await, Ok(Ok(()))) {
            return;
        }
    }
}

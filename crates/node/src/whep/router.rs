//! One port for every engine: the node's WebRTC UDP socket and ICE-TCP listener are shared by
//! its engines, and this module hands each arriving packet to the engine whose session it is for.
//!
//! A viewer's first packets are ICE connectivity checks (STUN), whose USERNAME names the ICE
//! ufrag of the node's answer; an engine registers each session's ufrag when it answers the
//! offer, and each address once the session has taken a packet from it. So a STUN check goes to
//! the engine its ufrag names, anything else to the engine of its source address, and a packet
//! that matches neither is dropped here, before any engine spends time on it. Operators open one
//! UDP and TCP port whatever the number of engines (cores).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use str0m::net::Protocol;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Counters;
use super::transport::Inbound;

/// The largest datagram read.
const DATAGRAM: usize = 2048;

/// Which engine holds a session's ufrag and addresses.
#[derive(Default)]
pub struct Routes {
    ufrags: Mutex<HashMap<String, usize>>,
    addrs: Mutex<HashMap<(Protocol, SocketAddr), usize>>,
}

impl Routes {
    pub fn add_ufrag(&self, ufrag: &str, engine: usize) {
        lock(&self.ufrags).insert(ufrag.to_string(), engine);
    }

    pub fn remove_ufrag(&self, ufrag: &str) {
        lock(&self.ufrags).remove(ufrag);
    }

    pub fn add_addr(&self, addr: (Protocol, SocketAddr), engine: usize) {
        lock(&self.addrs).insert(addr, engine);
    }

    /// Forgets `addr` if `engine` still holds it (a session on another engine may have taken it
    /// since).
    pub fn remove_addr(&self, addr: (Protocol, SocketAddr), engine: usize) {
        let mut addrs = lock(&self.addrs);
        if addrs.get(&addr) == Some(&engine) {
            addrs.remove(&addr);
        }
    }

    /// The engine a packet from `source` is for: a STUN check's ufrag decides (a new viewer, or
    /// a new session from an address another one used), else the source address.
    pub fn engine_for(&self, proto: Protocol, source: SocketAddr, data: &[u8]) -> Option<usize> {
        if let Some(ufrag) = stun_username(data).and_then(|u| u.split(':').next())
            && let Some(engine) = lock(&self.ufrags).get(ufrag)
        {
            return Some(*engine);
        }
        lock(&self.addrs).get(&(proto, source)).copied()
    }
}

/// What hands a packet to its engine: the tables, the engines' queues, and the counters of what
/// it drops.
#[derive(Clone)]
pub struct Routed {
    pub routes: Arc<Routes>,
    pub engines: Vec<mpsc::Sender<Inbound>>,
    pub counters: Arc<Counters>,
}

impl Routed {
    /// The queue of the engine a packet from `source` is for; `None` (counted) when it names no
    /// session.
    pub fn engine(&self, proto: Protocol, source: SocketAddr, data: &[u8]) -> Option<&mpsc::Sender<Inbound>> {
        let engine = self.routes.engine_for(proto, source, data).and_then(|i| self.engines.get(i));
        if engine.is_none() {
            Counters::add(&self.counters.unrouted);
        }
        engine
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads the shared UDP socket until `shutdown` and hands each datagram to its engine. An
/// engine whose queue is full loses the datagram (as a full socket buffer would).
pub async fn udp(socket: Arc<UdpSocket>, routed: Routed, shutdown: CancellationToken) {
    let mut buf = vec![0u8; DATAGRAM];
    let mut full_warned = false;
    loop {
        let (n, source) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                // ICMP errors for earlier sends surface here on some systems: not fatal.
                Err(e) => {
                    debug!("webrtc: UDP receive: {e}");
                    continue;
                }
            },
        };
        let data = &buf[..n];
        let Some(engine) = routed.engine(Protocol::Udp, source, data) else { continue };
        if engine.try_send(Inbound::Udp(source, data.to_vec())).is_err() {
            Counters::add(&routed.counters.engine_busy);
            if !full_warned {
                full_warned = true;
                warn!(
                    "webrtc: an engine's inbound queue is full; packets are dropped (the node is out of CPU; see ferrocast_node_webrtc_dropped_packets_total)"
                );
            }
        }
    }
}

/// The USERNAME of a STUN message (`node-ufrag:viewer-ufrag` in a viewer's checks), if `data`
/// is one that has it.
pub fn stun_username(data: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    // RFC 7983: a STUN message's first byte is 0 to 3 (an RTCP packet whose SSRC happens to be
    // the magic cookie is not one).
    if data.len() < 20 || data[0] > 3 || data[4..8] != MAGIC {
        return None;
    }
    let mut attrs = &data[20..];
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([attrs[0], attrs[1]]);
        let len = usize::from(u16::from_be_bytes([attrs[2], attrs[3]]));
        let value = attrs.get(4..4 + len)?;
        if kind == USERNAME {
            return std::str::from_utf8(value).ok();
        }
        attrs = attrs.get((4 + len).next_multiple_of(4)..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding request whose USERNAME is `user`, with a PRIORITY attribute before it.
    fn binding(user: &str) -> Vec<u8> {
        let mut stun = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&[7; 12]);
        stun.extend_from_slice(&[0x00, 0x24, 0, 4, 1, 2, 3, 4, 0x00, 0x06, 0, user.len() as u8]);
        stun.extend_from_slice(user.as_bytes());
        stun
    }

    #[test]
    fn the_stun_username_is_read_from_a_binding_request_and_nothing_else() {
        let mut stun = binding("nodeufrag:viewer");
        assert_eq!(stun_username(&stun), Some("nodeufrag:viewer"));
        assert_eq!(stun_username(&stun[..stun.len() - 3]), None, "truncated");
        assert_eq!(stun_username(&[0x80; 40]), None, "RTP");
        let mut rtcp_like = stun.clone();
        rtcp_like[0] = 0x80;
        assert_eq!(stun_username(&rtcp_like), None, "RTP/RTCP that carries the magic cookie");
        stun[4] = 0;
        assert_eq!(stun_username(&stun), None, "no magic cookie");
    }

    #[test]
    fn a_check_goes_where_its_ufrag_is_and_other_packets_where_their_address_is() {
        let routes = Routes::default();
        let viewer: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        routes.add_ufrag("aaaa", 0);
        routes.add_ufrag("bbbb", 1);
        assert_eq!(routes.engine_for(Protocol::Udp, viewer, &binding("bbbb:v")), Some(1));
        assert_eq!(routes.engine_for(Protocol::Udp, viewer, &[0x80; 100]), None, "unknown address");
        assert_eq!(routes.engine_for(Protocol::Udp, viewer, &binding("zzzz:v")), None, "unknown ufrag");
        routes.add_addr((Protocol::Udp, viewer), 1);
        assert_eq!(routes.engine_for(Protocol::Udp, viewer, &[0x80; 100]), Some(1));
        assert_eq!(routes.engine_for(Protocol::Tcp, viewer, &[0x80; 100]), None, "TCP is another route");
        // A new session from the same address, on engine 0: its check names its ufrag.
        assert_eq!(routes.engine_for(Protocol::Udp, viewer, &binding("aaaa:v")), Some(0));
        routes.add_addr((Protocol::Udp, viewer), 0);
        // The old session's end does not take the address from the new one.
        routes.remove_addr((Protocol::Udp, viewer), 1);
        assert_eq!(routes.engine_for(Protocol::Udp, viewer, &[0x80; 100]), Some(0));
        routes.remove_addr((Protocol::Udp, viewer), 0);
        routes.remove_ufrag("aaaa");
        assert_eq!(routes.engine_for(Protocol::Udp, viewer, &binding("aaaa:v")), None);
    }
}

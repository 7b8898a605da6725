//! Helpers shared by the integration tests: a raw client's C0C1/C2 and a pump between
//! a ClientSession and a ServerSession.
#![allow(dead_code)]

use ferrocast_rtmp::{ClientEvent, ClientSession, ServerEvent, ServerSession};

pub const HS: usize = 1536;

/// A simple-handshake C0C1 with a recognisable body.
pub fn simple_c0c1() -> Vec<u8> {
    let mut v = vec![3u8];
    v.extend((0..HS).map(|i| if i < 8 { 0 } else { (i % 251) as u8 }));
    v
}

/// Runs a server through the handshake; returns the session with empty output.
pub fn handshaken_server() -> ServerSession {
    let mut s = ServerSession::new(Default::default());
    assert!(s.feed(&simple_c0c1()).unwrap().is_empty());
    assert_eq!(s.take_output().len(), 1 + 2 * HS);
    assert!(s.feed(&[0u8; HS]).unwrap().is_empty());
    s
}

/// Moves output between the two sessions until both are quiet, feeding in pieces of
/// `step` bytes. Events are appended in arrival order.
pub fn pump(
    client: &mut ClientSession,
    server: &mut ServerSession,
    step: usize,
    cev: &mut Vec<ClientEvent>,
    sev: &mut Vec<ServerEvent>,
) {
    for _ in 0..1000 {
        let to_server = client.take_output();
        let to_client = server.take_output();
        if to_server.is_empty() && to_client.is_empty() {
            return;
        }
        for piece in to_server.chunks(step) {
            sev.extend(server.feed(piece).unwrap());
        }
        for piece in to_client.chunks(step) {
            cev.extend(client.feed(piece).unwrap());
        }
    }
    panic!("sessions never went quiet");
}

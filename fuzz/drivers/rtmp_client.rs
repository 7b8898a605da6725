//! The `ClientSession` fuzz driver: what an edge parses from an origin it pulls from, and what an
//! origin parses from a forward destination it pushes to. A hostile or broken upstream must end
//! that connection with an error, never panic the node. Shared by the cargo-fuzz target
//! `rtmp_client_session` and by `crates/rtmp/tests/fuzz_regressions.rs`.

use ferrocast_rtmp::{ClientConfig, ClientEvent, ClientMode, ClientSession, MessageKind};

const HANDSHAKE: usize = 1 + 2 * 1536;

/// Input layout: the first byte steers, the rest is what the server "sent".
/// - bit 0: first answer a valid simple handshake (S0+S1+S2), so the input starts in the
///   chunk stream;
/// - bit 7: publish instead of play (a publishing client sends media once started);
/// - bits 1..=6: size of each `feed` piece minus one (1..=64 bytes).
pub fn drive_client(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let mode = if ctl & 0x80 != 0 { ClientMode::Publish } else { ClientMode::Play };
    let Ok((_, config)) = ClientConfig::from_url("rtmp://origin/live/cam?token=t", mode) else {
        return;
    };
    let mut session = ClientSession::new(ClientConfig { max_message_size: 1 << 20, ..config });
    let _ = session.take_output();
    if ctl & 1 == 1 {
        let mut handshake = vec![0u8; HANDSHAKE];
        handshake[0] = 3;
        if session.feed(&handshake).is_err() {
            return;
        }
    }
    let step = usize::from((ctl >> 1) & 0x3F) + 1;
    for piece in rest.chunks(step) {
        let Ok(events) = session.feed(piece) else {
            return;
        };
        for event in events {
            if event == ClientEvent::PublishStarted {
                session.send_media(MessageKind::Data, 0, b"\x02\x00\x0aonMetaData\x05");
                session.send_media(MessageKind::Video, 0, &[0x17; 300]);
            }
        }
        let _ = session.take_output();
    }
    session.close();
    let _ = session.take_output();
}

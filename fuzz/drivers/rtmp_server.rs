//! The `ServerSession` fuzz driver (what a node parses from every RTMP client), shared by the
//! cargo-fuzz target `rtmp_server_session` and by `crates/rtmp/tests/fuzz_driver.rs`, so it is
//! compiled and run on every `cargo test` even where libFuzzer is not installed.

use ferrocast_rtmp::{ServerConfig, ServerEvent, ServerSession};

const HANDSHAKE: usize = 1 + 2 * 1536;

/// Input layout: the first byte steers, the rest is fed to the session.
/// - bit 0: first complete a valid simple handshake, so the input starts in the chunk stream;
/// - bit 7: reject connect/publish/play instead of accepting them;
/// - bits 1..=6: size of each `feed` piece minus one (1..=64 bytes).
///
/// The driver plays the node's part (accept or reject, pings, end of stream) so the fuzzer
/// reaches deep session states. Any error ends the run; a panic is a bug.
pub fn drive_server(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let mut session = ServerSession::new(ServerConfig { max_message_size: 1 << 20, ..ServerConfig::default() });
    if ctl & 1 == 1 {
        let mut handshake = vec![0u8; HANDSHAKE];
        handshake[0] = 3;
        if session.feed(&handshake).is_err() {
            return;
        }
    }
    let reject = ctl & 0x80 != 0;
    let step = usize::from((ctl >> 1) & 0x3F) + 1;
    for piece in rest.chunks(step) {
        let Ok(events) = session.feed(piece) else {
            return;
        };
        for event in events {
            match event {
                ServerEvent::Connect { .. } if reject => session.reject_connect("fuzz"),
                ServerEvent::Publish { stream_id, .. } if reject => {
                    session.reject_publish(stream_id, "NetStream.Publish.BadName", "fuzz");
                }
                ServerEvent::Publish { stream_id, .. } => session.accept_publish(stream_id),
                ServerEvent::Play { stream_id, .. } if reject => {
                    session.reject_play(stream_id, "NetStream.Play.StreamNotFound", "fuzz");
                }
                ServerEvent::Play { stream_id, .. } => {
                    session.accept_play(stream_id);
                    session.end_of_stream(stream_id);
                }
                ServerEvent::Media { timestamp, .. } => session.ping(timestamp),
                _ => {}
            }
        }
        let _ = session.take_output();
    }
}

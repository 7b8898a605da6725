//! Runs the `ServerSession` fuzz driver (`fuzz/drivers/rtmp_server.rs` at the repo root) under proptest and on seeds
//! made from real client conversations, and can (re)write those seeds for cargo-fuzz:
//! `FERROCAST_WRITE_SEEDS=1 cargo test -p ferrocast-rtmp --test fuzz_driver`.

#[path = "../../../fuzz/drivers/rtmp_server.rs"]
mod driver;

use ferrocast_rtmp::{
    ClientConfig, ClientEvent, ClientMode, ClientSession, MessageKind, ServerConfig, ServerEvent, ServerSession,
};
use proptest::prelude::*;

/// Everything a client sends in a full conversation with a cooperative server.
fn conversation(mode: ClientMode) -> Vec<u8> {
    let (_, config) = ClientConfig::from_url("rtmp://h/live/cam?token=t", mode).unwrap();
    let mut client = ClientSession::new(config);
    let mut server = ServerSession::new(ServerConfig::default());
    let mut sent = Vec::new();
    for round in 0..20 {
        let out = client.take_output();
        sent.extend_from_slice(&out);
        for event in server.feed(&out).unwrap() {
            match event {
                ServerEvent::Publish { stream_id, .. } => server.accept_publish(stream_id),
                ServerEvent::Play { stream_id, .. } => server.accept_play(stream_id),
                _ => {}
            }
        }
        for event in client.feed(&server.take_output()).unwrap() {
            if event == ClientEvent::PublishStarted {
                client.send_media(MessageKind::Data, 0, b"\x02\x00\x0aonMetaData\x05");
                client.send_media(MessageKind::Video, 0, &[0x17; 300]);
                client.send_media(MessageKind::Audio, 0x0100_0000, &[0xAF; 20]);
            }
        }
        if round == 10 {
            client.close();
        }
    }
    sent
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let with_ctl = |ctl: u8, mut bytes: Vec<u8>| {
        bytes.insert(0, ctl);
        bytes
    };
    vec![
        ("publish_whole", with_ctl(0x7E, conversation(ClientMode::Publish))),
        ("publish_bytewise", with_ctl(0x00, conversation(ClientMode::Publish))),
        ("play_reject", with_ctl(0xFE, conversation(ClientMode::Play))),
        ("play", with_ctl(0x10, conversation(ClientMode::Play))),
    ]
}

#[test]
fn seeds_run_clean() {
    for (_, seed) in seeds() {
        driver::drive_server(&seed);
    }
    driver::drive_server(&[]);
    driver::drive_server(&[1]);
}

/// The committed seeds (`fuzz/seeds/rtmp_server_session`) drive the session as far as fresh ones do.
/// They differ byte-for-byte from `seeds()` only in the handshake's random bytes.
/// `FERROCAST_WRITE_SEEDS=1 cargo test -p ferrocast-rtmp --test fuzz_driver` rewrites them.
#[test]
fn committed_seeds_are_complete_conversations() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/rtmp_server_session");
    let write = std::env::var_os("FERROCAST_WRITE_SEEDS").is_some();
    for (name, seed) in seeds() {
        let path = dir.join(name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &seed).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert_eq!(committed.len(), seed.len(), "{} is stale: rewrite the seeds", path.display());
        driver::drive_server(&committed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn driver_never_panics(data in prop::collection::vec(any::<u8>(), 0..6000)) {
        driver::drive_server(&data);
    }

    #[test]
    fn mutated_seeds_never_panic(
        which in 0usize..4,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut seed = seeds().swap_remove(which).1;
        for (at, byte) in flips {
            let i = at.index(seed.len());
            seed[i] = byte;
        }
        driver::drive_server(&seed);
    }
}

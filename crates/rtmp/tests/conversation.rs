//! Full in-memory conversations: ClientSession <-> ServerSession, and the server's replies
//! checked message by message against what SRS sends.

mod common;
#[path = "common/srs.rs"]
mod srs;

use bytes::BytesMut;
use common::{HS, handshaken_server, pump};
use ferrocast_rtmp::chunk::{ChunkDecoder, encode_message};
use ferrocast_rtmp::message::{UserControl, parse_command, type_id};
use ferrocast_rtmp::{
    Amf0Value, ClientConfig, ClientEvent, ClientMode, ClientSession, MessageKind, ServerConfig, ServerEvent,
    ServerSession, amf0, encode_media_message,
};

const URL: &str = "rtmp://127.0.0.1:1935/live/cam?token=abc";

fn client(mode: ClientMode) -> ClientSession {
    let (addr, config) = ClientConfig::from_url(URL, mode).unwrap();
    assert_eq!(addr, "127.0.0.1:1935");
    ClientSession::new(config)
}

fn metadata() -> Vec<u8> {
    amf0::encode_all(&["onMetaData".into(), Amf0Value::EcmaArray(vec![("width".into(), 320.0.into())])])
}

/// Connects and publishes; returns the sessions after `PublishStarted`.
fn publishing(step: usize) -> (ClientSession, ServerSession) {
    let mut c = client(ClientMode::Publish);
    let mut s = ServerSession::new(ServerConfig::default());
    let (mut cev, mut sev) = (Vec::new(), Vec::new());
    pump(&mut c, &mut s, step, &mut cev, &mut sev);
    assert_eq!(cev, vec![ClientEvent::Connected]);
    let ServerEvent::Connect { app, tc_url, param, properties, .. } = &sev[0] else { panic!("{sev:?}") };
    assert_eq!(app, "live");
    assert_eq!(tc_url, "rtmp://127.0.0.1:1935/live");
    assert_eq!(param, "");
    assert!(properties.iter().any(|(k, _)| k == "flashVer"));
    assert_eq!(
        sev[1],
        ServerEvent::Publish {
            stream_id: 1,
            stream_name: "cam".into(),
            param: "?token=abc".into(),
            publish_type: "live".into(),
        }
    );
    assert_eq!(sev.len(), 2);
    s.accept_publish(1);
    cev.clear();
    pump(&mut c, &mut s, step, &mut cev, &mut sev);
    assert_eq!(cev.last(), Some(&ClientEvent::PublishStarted));
    assert!(cev.contains(&ClientEvent::Status {
        level: "status".into(),
        code: "NetStream.Publish.Start".into(),
        description: "Started publishing stream.".into(),
    }));
    (c, s)
}

#[test]
fn publish_then_media_round_trips() {
    for step in [1, 7, 100_000] {
        let (mut c, mut s) = publishing(step);
        let video: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        c.send_media(MessageKind::Data, 0, &metadata());
        c.send_media(MessageKind::Video, 40, &video);
        c.send_media(MessageKind::Audio, 0xFF_FFFF + 5, b"aac");
        let (mut cev, mut sev) = (Vec::new(), Vec::new());
        pump(&mut c, &mut s, step, &mut cev, &mut sev);
        let media: Vec<_> = sev
            .iter()
            .map(|e| match e {
                ServerEvent::Media { stream_id, kind, timestamp, payload } => {
                    (*stream_id, *kind, *timestamp, payload.to_vec())
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            media,
            vec![
                (1, MessageKind::Data, 0, metadata()),
                (1, MessageKind::Video, 40, video.clone()),
                (1, MessageKind::Audio, 0xFF_FFFF + 5, b"aac".to_vec()),
            ]
        );
        c.close();
        sev.clear();
        pump(&mut c, &mut s, step, &mut cev, &mut sev);
        assert_eq!(sev, vec![ServerEvent::CloseStream { stream_id: 1 }]);
        // Media after close is not sent.
        c.send_media(MessageKind::Audio, 1, b"x");
        assert!(c.take_output().is_empty());
    }
}

#[test]
fn second_publisher_is_rejected() {
    let mut c = client(ClientMode::Publish);
    let mut s = ServerSession::new(ServerConfig::default());
    let (mut cev, mut sev) = (Vec::new(), Vec::new());
    pump(&mut c, &mut s, 1000, &mut cev, &mut sev);
    assert!(matches!(sev.last(), Some(ServerEvent::Publish { .. })));
    s.reject_publish(1, "NetStream.Publish.BadName", "Stream is busy");
    cev.clear();
    pump(&mut c, &mut s, 1000, &mut cev, &mut sev);
    assert_eq!(
        cev,
        vec![ClientEvent::Status {
            level: "error".into(),
            code: "NetStream.Publish.BadName".into(),
            description: "Stream is busy".into(),
        }]
    );
    // send_media before PublishStarted is ignored.
    c.send_media(MessageKind::Video, 0, b"v");
    assert!(c.take_output().is_empty());
}

#[test]
fn play_then_shared_media() {
    let mut c = client(ClientMode::Play);
    let mut s = ServerSession::new(ServerConfig::default());
    let (mut cev, mut sev) = (Vec::new(), Vec::new());
    pump(&mut c, &mut s, 3, &mut cev, &mut sev);
    assert_eq!(
        sev.last(),
        Some(&ServerEvent::Play { stream_id: 1, stream_name: "cam".into(), param: "?token=abc".into() })
    );
    s.accept_play(1);
    cev.clear();
    pump(&mut c, &mut s, 3, &mut cev, &mut sev);
    assert_eq!(cev.last(), Some(&ClientEvent::PlayStarted));
    let codes: Vec<_> = cev
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Status { code, .. } => Some(code.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(codes, vec!["NetStream.Play.Reset", "NetStream.Play.Start"]);

    // The node's fan-out path: frames encoded once with the server's chunk size.
    let chunk = s.out_chunk_size();
    assert_eq!(chunk, 60_000);
    let big: Vec<u8> = (0..150_000u32).map(|i| i as u8).collect();
    let frames = [
        (MessageKind::Data, 0, metadata()),
        (MessageKind::Video, 0, big.clone()),
        (MessageKind::Audio, 23, b"aac".to_vec()),
        (MessageKind::Video, 0xFF_FFFF, big.clone()),
        (MessageKind::Video, 0x1234_5678, b"late".to_vec()),
    ];
    let mut wire = Vec::new();
    for (kind, ts, payload) in &frames {
        wire.extend_from_slice(&encode_media_message(*kind, *ts, 1, payload, chunk));
        // Server output may be interleaved between shared frames.
        s.ping(*ts);
        wire.extend_from_slice(&s.take_output());
    }
    let mut got = Vec::new();
    for piece in wire.chunks(4096) {
        got.extend(c.feed(piece).unwrap());
    }
    let media: Vec<_> = got
        .iter()
        .map(|e| match e {
            ClientEvent::Media { kind, timestamp, payload } => (*kind, *timestamp, payload.to_vec()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(media, frames.to_vec());
    // The client answered every ping.
    let answers = ChunkDecoder::new(1 << 20, 8).decode(&c.take_output()).unwrap();
    let pongs = answers
        .iter()
        .filter(|m| {
            m.type_id == type_id::USER_CONTROL
                && matches!(UserControl::parse(&m.payload), Ok(UserControl::PingResponse(_)))
        })
        .count();
    assert_eq!(pongs, frames.len());

    // A clean end for players.
    s.end_of_stream(1);
    let events = c.feed(&s.take_output()).unwrap();
    assert!(matches!(&events[0], ClientEvent::Status { code, .. } if code == "NetStream.Play.UnpublishNotify"));
    assert_eq!(events[1], ClientEvent::StreamEof);
}

#[test]
fn play_not_found() {
    let mut c = client(ClientMode::Play);
    let mut s = ServerSession::new(ServerConfig::default());
    let (mut cev, mut sev) = (Vec::new(), Vec::new());
    pump(&mut c, &mut s, 512, &mut cev, &mut sev);
    s.reject_play(1, "NetStream.Play.StreamNotFound", "no such stream");
    cev.clear();
    pump(&mut c, &mut s, 512, &mut cev, &mut sev);
    assert!(matches!(&cev[..], [ClientEvent::Status { level, code, .. }]
        if level == "error" && code == "NetStream.Play.StreamNotFound"));
    c.close();
    sev.clear();
    pump(&mut c, &mut s, 512, &mut cev, &mut sev);
    assert!(sev.is_empty(), "rejected stream closes silently: {sev:?}");
}

#[test]
fn connect_rejected() {
    let mut c = client(ClientMode::Publish);
    let mut s = ServerSession::new(ServerConfig::default());
    let mut cev = Vec::new();
    // Drive by hand so the rejection happens between feed and take_output.
    for _ in 0..10 {
        let out = c.take_output();
        for e in s.feed(&out).unwrap() {
            if matches!(e, ServerEvent::Connect { .. }) {
                s.reject_connect("token expired");
            }
        }
        cev.extend(c.feed(&s.take_output()).unwrap());
    }
    assert_eq!(
        cev,
        vec![ClientEvent::Status {
            level: "error".into(),
            code: "NetConnection.Connect.Rejected".into(),
            description: "token expired".into(),
        }]
    );
}

/// Raw command message on csid 3.
fn command(name: &str, txid: f64, object: Amf0Value, args: &[Amf0Value], sid: u32) -> BytesMut {
    let body = ferrocast_rtmp::message::encode_command(name, txid, &object, args);
    let mut out = BytesMut::new();
    encode_message(3, 0, type_id::COMMAND_AMF0, sid, &body, 128, &mut out).unwrap();
    out
}

#[test]
fn server_replies_match_srs() {
    let mut s = handshaken_server();
    let connect = Amf0Value::object([
        ("app", "live?vhost=v1".into()),
        ("tcUrl", "rtmp://h/live?vhost=v1".into()),
        ("objectEncoding", 3.0.into()),
    ]);
    let ev = s.feed(&command("connect", 1.0, connect, &[], 0)).unwrap();
    assert!(matches!(&ev[0], ServerEvent::Connect { app, param, .. }
        if app == "live" && param == "?vhost=v1"));
    let mut dec = ChunkDecoder::new(1 << 20, 8);
    let msgs = dec.decode(&s.take_output()).unwrap();
    let types: Vec<u8> = msgs.iter().map(|m| m.type_id).collect();
    assert_eq!(types, vec![5, 6, 1, 20, 20]);
    assert_eq!(&msgs[0].payload[..], &2_500_000u32.to_be_bytes());
    assert_eq!(&msgs[1].payload[..], &[0x00, 0x26, 0x25, 0xA0, 2]);
    assert_eq!(&msgs[2].payload[..], &60_000u32.to_be_bytes());
    let result = parse_command(20, &msgs[3].payload).unwrap();
    assert_eq!((result.name.as_str(), result.transaction_id), ("_result", 1.0));
    assert_eq!(result.object.get_str("fmsVer"), Some("FMS/3,5,3,888"));
    let info = result.arg(0).unwrap();
    assert_eq!(info.get_str("code"), Some("NetConnection.Connect.Success"));
    assert_eq!(info.get_f64("objectEncoding"), Some(3.0));
    assert_eq!(parse_command(20, &msgs[4].payload).unwrap().name, "onBWDone");

    // FMLE sequence, one message at a time; each answered with _result and the txid.
    let null = Amf0Value::Null;
    for (name, txid, args, want) in [
        ("releaseStream", 2.0, vec!["cam".into()], Amf0Value::Undefined),
        ("FCPublish", 3.0, vec!["cam".into()], Amf0Value::Undefined),
        ("createStream", 4.0, vec![], Amf0Value::Number(1.0)),
        ("getStreamLength", 5.0, vec!["cam".into()], Amf0Value::Number(0.0)),
        ("_checkbw", 6.0, vec![], Amf0Value::Null),
    ] {
        assert!(s.feed(&command(name, txid, null.clone(), &args, 0)).unwrap().is_empty());
        let msgs = dec.decode(&s.take_output()).unwrap();
        assert_eq!(msgs.len(), 1, "{name}");
        let r = parse_command(20, &msgs[0].payload).unwrap();
        assert_eq!((r.name.as_str(), r.transaction_id), ("_result", txid));
        assert_eq!(r.arg(0), Some(&want), "{name}");
    }
    let ev = s.feed(&command("publish", 7.0, null.clone(), &["cam".into()], 1)).unwrap();
    assert!(matches!(&ev[0], ServerEvent::Publish { publish_type, .. } if publish_type == "live"));
    s.accept_publish(1);
    let msgs = dec.decode(&s.take_output()).unwrap();
    let names: Vec<_> =
        msgs.iter().map(|m| (m.csid, m.stream_id, parse_command(20, &m.payload).unwrap().name)).collect();
    assert_eq!(names, vec![(5, 1, "onFCPublish".to_owned()), (5, 1, "onStatus".to_owned())]);

    // Media from the publisher, with @setDataFrame stripped; AMF3 data too.
    let mut data = b"\x02\x00\x0d@setDataFrame".to_vec();
    data.extend(metadata());
    let mut wire = BytesMut::new();
    encode_message(5, 0, 18, 1, &data, 128, &mut wire).unwrap();
    let mut amf3 = vec![0u8];
    amf3.extend(metadata());
    encode_message(5, 0, 15, 1, &amf3, 128, &mut wire).unwrap();
    // Media on a stream that did not publish is ignored.
    encode_message(6, 0, 9, 2, b"x", 128, &mut wire).unwrap();
    let ev = s.feed(&wire).unwrap();
    assert_eq!(ev.len(), 2);
    for e in ev {
        assert!(
            matches!(e, ServerEvent::Media { kind: MessageKind::Data, payload, .. } if payload[..] == metadata()[..])
        );
    }

    // FCUnpublish: onFCUnpublish, _result, onStatus Unpublish.Success; then one CloseStream.
    let ev = s.feed(&command("FCUnpublish", 8.0, null.clone(), &["cam".into()], 0)).unwrap();
    assert_eq!(ev, vec![ServerEvent::CloseStream { stream_id: 1 }]);
    let msgs = dec.decode(&s.take_output()).unwrap();
    let names: Vec<_> = msgs.iter().map(|m| parse_command(20, &m.payload).unwrap().name).collect();
    assert_eq!(names, vec!["onFCUnpublish", "_result", "onStatus"]);
    let ev = s.feed(&command("deleteStream", 9.0, null, &[1.0.into()], 0)).unwrap();
    assert!(ev.is_empty());
}

#[test]
fn server_acknowledges_the_peer_window() {
    let ack_of = |s: &mut ServerSession| -> Option<u32> {
        let msgs = ChunkDecoder::new(1 << 20, 8).decode(&s.take_output()).unwrap();
        msgs.iter().find(|m| m.type_id == type_id::ACK).map(|m| u32::from_be_bytes(m.payload[..4].try_into().unwrap()))
    };
    let mut s = handshaken_server();
    let mut wire = BytesMut::new();
    encode_message(2, 0, type_id::WINDOW_ACK_SIZE, 0, &1000u32.to_be_bytes(), 128, &mut wire).unwrap();
    s.feed(&wire).unwrap();
    // Handshake bytes count too (as FFmpeg and librtmp count): already past the window.
    let mut total = (1 + 2 * HS + wire.len()) as u32;
    assert_eq!(ack_of(&mut s), Some(total));
    let mut wire = BytesMut::new();
    encode_message(3, 0, 9, 1, &[0; 500], 128, &mut wire).unwrap();
    s.feed(&wire).unwrap();
    total += wire.len() as u32;
    assert_eq!(ack_of(&mut s), None);
    s.feed(&wire).unwrap();
    total += wire.len() as u32;
    assert_eq!(ack_of(&mut s), Some(total));
}

#[test]
fn publisher_pipelining_gets_ordered_replies() {
    // A client that sends connect and createStream in one write, without waiting.
    let mut s = handshaken_server();
    let mut wire = command("connect", 1.0, Amf0Value::object([("app", "live".into())]), &[], 0);
    wire.extend_from_slice(&command("createStream", 2.0, Amf0Value::Null, &[], 0));
    s.feed(&wire).unwrap();
    let msgs = ChunkDecoder::new(1 << 20, 8).decode(&s.take_output()).unwrap();
    let txids: Vec<f64> = msgs
        .iter()
        .filter(|m| m.type_id == 20)
        .map(|m| parse_command(20, &m.payload).unwrap())
        .filter(|c| c.name == "_result")
        .map(|c| c.transaction_id)
        .collect();
    assert_eq!(txids, vec![1.0, 2.0]);
}

#[test]
fn play_redirected_as_srs_origins_do() {
    let mut c = client(ClientMode::Play);
    let mut s = ServerSession::new(ServerConfig::default());
    let (mut cev, mut sev) = (Vec::new(), Vec::new());
    pump(&mut c, &mut s, 512, &mut cev, &mut sev);
    assert!(sev.iter().any(|e| matches!(e, ServerEvent::Play { .. })), "{sev:?}");
    s.redirect("rtmp://10.0.0.3:1935/live/cam?token=abc");
    cev.clear();
    pump(&mut c, &mut s, 512, &mut cev, &mut sev);
    assert_eq!(
        cev,
        vec![
            ClientEvent::Redirect { url: "rtmp://10.0.0.3:1935/live/cam?token=abc".into() },
            ClientEvent::Status {
                level: "error".into(),
                code: "NetConnection.Connect.Rejected".into(),
                description: "RTMP 302 Redirect".into(),
            },
        ]
    );
}

#[test]
fn srs_redirect_bytes_are_understood_and_ours_match_them() {
    let (tc, url) = ("rtmp://10.0.0.3:1935/live", "rtmp://10.0.0.3:1935/live/cam?token=abc");
    let srs = srs::redirect_body(tc, url);
    // A playing client fed SRS's message follows it.
    let mut c = client(ClientMode::Play);
    let mut server = ServerSession::new(ServerConfig::default());
    let (mut cev, mut sev) = (Vec::new(), Vec::new());
    pump(&mut c, &mut server, 512, &mut cev, &mut sev);
    let mut chunk = BytesMut::new();
    encode_message(3, 0, type_id::COMMAND_AMF0, 0, &srs, server.out_chunk_size(), &mut chunk).unwrap();
    let events = c.feed(&chunk).unwrap();
    assert_eq!(events[0], ClientEvent::Redirect { url: url.into() }, "{events:?}");
    assert_eq!(parse_command(type_id::COMMAND_AMF0, &srs).unwrap().name, "onStatus");
    // Ours: the same message body, byte for byte.
    let mut s = handshaken_server();
    s.redirect(url);
    let msgs = ChunkDecoder::new(1 << 20, 8).decode(&s.take_output()).unwrap();
    let ours = msgs.iter().find(|m| m.type_id == type_id::COMMAND_AMF0).expect("a command message");
    assert_eq!(&ours.payload[..], &srs[..], "our RTMP 302 is SRS's");
    assert_eq!(ours.stream_id, 0, "on the NetConnection, as SRS sends it");
}

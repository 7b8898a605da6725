//! The records' encoding, and what the leader writes again.

use std::collections::HashMap;
use std::sync::Arc;

use super::wire::{decode_body, encode_body};
use super::writer::{Sent, diff, row};
use crate::config::NodeSpec;
use crate::nodes::{Health, NodeEntry, NodeReport, NodeStream};
use crate::srs::{Audio, Kbps, Video};

fn snap() -> NodeReport {
    let video =
        Arc::new(Video { codec: "H264".into(), profile: Some("High".into()), level: None, width: 1280, height: 720 });
    let audio = Arc::new(Audio { codec: "AAC".into(), sample_rate: 44100, channels: 2, profile: Some("LC".into()) });
    NodeReport {
        server: Some("vid-1".into()),
        service: Some("svc".into()),
        version: Some("7.0.18".into()),
        cpu_percent: Some(1.5),
        mem_kbyte: Some(1000),
        uptime_s: Some(9),
        extras: crate::nodes::Extras { llhls: true, whep: false },
        streams: (0..3)
            .map(|i| NodeStream {
                key: format!("__defaultVhost__/live/s{i}").into(),
                active: i != 2,
                clients: i,
                kbps: Kbps { recv_30s: 10 * i, send_30s: 20 * i },
                video: (i != 1).then(|| video.clone()),
                audio: Some(audio.clone()),
            })
            .collect(),
    }
}

#[test]
fn stream_lists_round_trip_and_share_codecs() {
    let s = snap();
    let text = encode_body(&s);
    assert_eq!(text.matches("H264").count(), 1, "codecs are listed once: {text}");
    let back = decode_body(&text).unwrap();
    assert_eq!(encode_body(&back), text);
    assert_eq!(back.streams.len(), 3);
    assert!(back.streams[1].video.is_none());
    assert!(Arc::ptr_eq(back.streams[0].video.as_ref().unwrap(), back.streams[2].video.as_ref().unwrap()));
    assert_eq!((back.streams[2].active, back.streams[2].kbps.send_30s), (false, 40));
    assert_eq!(back.extras, s.extras, "a follower knows what the node serves");
    // A record written before the field existed reads as a node with no extras.
    let old = text.replace(r#""x":["llhls"],"#, "");
    assert_ne!(old, text);
    assert_eq!(decode_body(&old).unwrap().extras, crate::nodes::Extras::default());
}

#[test]
fn only_what_changed_is_written_again() {
    let spec: NodeSpec = "name=e1,api=http://127.0.0.1:1".parse().unwrap();
    let mut entry = NodeEntry::new(spec, 0, None);
    entry.health = Health::Up;
    entry.last_ok_ms = Some(1);
    entry.report = Some(Arc::new(snap()));
    let first = diff(&HashMap::new(), vec![row("e1", &entry)], &["gone".to_string()]);
    assert_eq!((first.metas.len(), first.bodies.len()), (1, 1));
    assert_eq!(first.removed, ["gone"]);
    let sent: HashMap<String, Sent> = first.sent.into_iter().collect();
    assert!(diff(&sent, vec![row("e1", &entry)], &[]).is_empty(), "nothing changed");
    // A new poll with the same streams: the small record only.
    entry.last_ok_ms = Some(2);
    entry.report = Some(Arc::new(snap()));
    entry.poll_seq = crate::nodes::next_poll_seq();
    let second = diff(&sent, vec![row("e1", &entry)], &[]);
    assert_eq!((second.metas.len(), second.bodies.len()), (1, 0));
    assert!(diff(&sent, vec![], &[]).removed == ["e1"], "a node that left is removed");
}

//! Unit tests of the muxer on a small synthetic H.264 + AAC stream.

use std::collections::HashMap;

use super::*;

const START_CODE: [u8; 4] = [0, 0, 0, 1];
const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00,
    0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

fn frame(kind: FrameKind, ts: u32, payload: Vec<u8>) -> Frame {
    Frame::new(kind, ts, Bytes::from(payload))
}

fn video_sh() -> Frame {
    let mut p = vec![0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1];
    p.extend_from_slice(&u16::try_from(SPS.len()).unwrap().to_be_bytes());
    p.extend_from_slice(SPS);
    p.push(1);
    p.extend_from_slice(&u16::try_from(PPS.len()).unwrap().to_be_bytes());
    p.extend_from_slice(PPS);
    frame(FrameKind::Video, 0, p)
}

fn audio_sh() -> Frame {
    frame(FrameKind::Audio, 0, vec![0xaf, 0x00, 0x12, 0x10])
}

/// A video frame of one NAL unit of `size` bytes (an AUD first, which the muxer drops).
fn picture(ts: u32, key: bool, cts: i32, size: usize) -> Frame {
    let mut p = vec![if key { 0x17 } else { 0x27 }, 0x01];
    p.extend_from_slice(&cts.to_be_bytes()[1..]);
    p.extend_from_slice(&[0, 0, 0, 2, 0x09, 0xf0]);
    p.extend_from_slice(&u32::try_from(size).unwrap().to_be_bytes());
    p.push(if key { 0x65 } else { 0x41 });
    p.extend((1..size).map(|i| (i % 251) as u8 | 1));
    frame(FrameKind::Video, ts, p)
}

fn aac(ts: u32, size: usize) -> Frame {
    let mut p = vec![0xaf, 0x01];
    p.extend((0..size).map(|i| i as u8));
    frame(FrameKind::Audio, ts, p)
}

/// Two seconds of 25 fps video (keyframe every second) with ~43 audio frames per second.
fn stream() -> Vec<Frame> {
    let mut frames = vec![video_sh(), audio_sh()];
    for i in 0..50u32 {
        frames.push(picture(i * 40, i % 25 == 0, 80, 300 + (i as usize * 97) % 3000));
        frames.push(aac(i * 40, 200 + i as usize));
    }
    frames
}

fn pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

fn assert_aligned(out: &[u8]) {
    assert_eq!(out.len() % PACKET_SIZE, 0);
    for p in out.chunks(PACKET_SIZE) {
        assert_eq!(p[0], SYNC_BYTE);
    }
}

/// The payload of a packet (after header and adaptation field).
fn payload(p: &[u8]) -> &[u8] {
    let start = if p[3] & 0x20 != 0 { 5 + usize::from(p[4]) } else { 4 };
    &p[start..]
}

/// PES packets per PID, reassembled from `out`.
fn pes_units(out: &[u8]) -> HashMap<u16, Vec<Vec<u8>>> {
    let mut units: HashMap<u16, Vec<Vec<u8>>> = HashMap::new();
    for p in out.chunks(PACKET_SIZE) {
        let list = units.entry(pid(p)).or_default();
        if p[1] & 0x40 != 0 {
            list.push(Vec::new());
        }
        list.last_mut().expect("a unit starts with PUSI").extend_from_slice(payload(p));
    }
    units
}

fn read_ts(b: &[u8]) -> u64 {
    (u64::from((b[0] >> 1) & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

fn mux_all(frames: &[Frame]) -> Vec<Bytes> {
    let mut m = TsMuxer::new();
    frames.iter().map(|f| m.write_frame(f).unwrap()).collect()
}

#[test]
fn outputs_are_whole_packets() {
    let outs = mux_all(&stream());
    assert!(outs[0].is_empty() && outs[1].is_empty(), "sequence headers are remembered, not written");
    for out in &outs {
        assert_aligned(out);
    }
    assert!(outs.iter().skip(2).all(|o| !o.is_empty()));
}

#[test]
fn continuity_counters_per_pid() {
    let mut m = TsMuxer::new();
    let mut all = Vec::new();
    for (i, f) in stream().iter().enumerate() {
        if i == 40 {
            m.start_segment();
        }
        all.extend_from_slice(&m.write_frame(f).unwrap());
    }
    let mut last: HashMap<u16, u8> = HashMap::new();
    let mut wrapped = HashMap::new();
    for p in all.chunks(PACKET_SIZE) {
        let cc = p[3] & 0x0f;
        if let Some(prev) = last.insert(pid(p), cc) {
            assert_eq!(cc, (prev + 1) % 16, "PID {:#x}", pid(p));
            if cc == 0 {
                wrapped.insert(pid(p), true);
            }
        }
    }
    assert_eq!(last.keys().copied().collect::<std::collections::BTreeSet<_>>(), [0, 0x100, 0x101, 0x1000].into());
    assert!(wrapped.contains_key(&VIDEO_PID) && wrapped.contains_key(&AUDIO_PID));
}

#[test]
fn pat_and_pmt_open_each_segment() {
    let frames = stream();
    let mut m = TsMuxer::new();
    let mut firsts = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        if i == 27 {
            m.start_segment();
        }
        let out = m.write_frame(f).unwrap();
        let pids: Vec<u16> = out.chunks(PACKET_SIZE).map(pid).collect();
        if !out.is_empty() && firsts.len() < 2 && (i == 2 || i == 27) {
            firsts.push(out.clone());
        }
        let psi = pids.iter().filter(|&&p| p == PAT_PID || p == PMT_PID).count();
        if i == 2 || i == 27 {
            assert_eq!(&pids[..2], &[PAT_PID, PMT_PID], "frame {i}");
        } else {
            assert_eq!(psi, 0, "frame {i}");
        }
    }
    for out in firsts {
        assert_eq!(&payload(&out[..188])[..17], &[&[0u8][..], &psi::pat()].concat()[..]);
        let pmt = psi::pmt(
            &[
                EsInfo { stream_type: STREAM_TYPE_H264, pid: VIDEO_PID },
                EsInfo { stream_type: STREAM_TYPE_AAC_ADTS, pid: AUDIO_PID },
            ],
            VIDEO_PID,
            0,
        );
        assert_eq!(&payload(&out[188..376])[1..1 + pmt.len()], &pmt[..]);
        assert!(payload(&out[188..376])[1 + pmt.len()..].iter().all(|&b| b == 0xff));
    }
}

#[test]
fn keyframe_pes_is_annex_b_with_parameter_sets() {
    let mut m = TsMuxer::new();
    m.write_frame(&video_sh()).unwrap();
    let out = m.write_frame(&picture(1000, true, 80, 400)).unwrap();
    assert_aligned(&out);
    let video_packet = &out[2 * 188..3 * 188];
    assert_eq!(pid(video_packet), VIDEO_PID);
    // Adaptation field: random access + PCR.
    assert_eq!(video_packet[5] & 0x50, 0x50);
    let units = pes_units(&out);
    let pes = &units[&VIDEO_PID][0];
    assert_eq!(&pes[..9], &[0, 0, 1, 0xe0, 0, 0, 0x84, 0xc0, 10]);
    assert_eq!(read_ts(&pes[9..14]), 1080 * 90 + PCR_DELAY);
    assert_eq!(read_ts(&pes[14..19]), 1000 * 90 + PCR_DELAY);
    let es = &pes[19..];
    let mut expected = AUD.to_vec();
    for nal in [SPS, PPS] {
        expected.extend_from_slice(&START_CODE);
        expected.extend_from_slice(nal);
    }
    expected.extend_from_slice(&START_CODE);
    assert_eq!(&es[..expected.len()], &expected[..]);
    assert_eq!(es[expected.len()], 0x65);
    assert_eq!(es.len(), expected.len() + 400);
    // Only PAT, PMT and video: no audio stream announced.
    let pmt = payload(&out[188..376]);
    assert_eq!(usize::from(u16::from_be_bytes([pmt[2], pmt[3]]) & 0xfff), 13 + 5);

    // An inter frame: AUD, no parameter sets, no PSI, PTS == DTS so no DTS.
    let out = m.write_frame(&picture(1040, false, 0, 10)).unwrap();
    let pes = &pes_units(&out)[&VIDEO_PID][0];
    assert_eq!(&pes[7..9], &[0x80, 5]);
    assert_eq!(&pes[14..20], &AUD);
    assert_eq!(&pes[20..24], &START_CODE);
}

#[test]
fn audio_pes_has_adts_and_length() {
    let mut m = TsMuxer::new();
    m.write_frame(&audio_sh()).unwrap();
    let out = m.write_frame(&aac(500, 100)).unwrap();
    let pes = &pes_units(&out)[&AUDIO_PID][0];
    assert_eq!(&pes[..9], &[0, 0, 1, 0xc0, 0, 3 + 5 + 7 + 100, 0x84, 0x80, 5]);
    assert_eq!(read_ts(&pes[9..14]), 500 * 90 + PCR_DELAY);
    let config = AacConfig::parse(&[0x12, 0x10]).unwrap();
    assert_eq!(&pes[14..21], &config.adts_header(100));
    assert_eq!(pes.len(), 6 + 3 + 5 + 7 + 100);
}

#[test]
fn audio_only_puts_pcr_on_audio() {
    let mut m = TsMuxer::new();
    m.write_frame(&audio_sh()).unwrap();
    let mut pcrs = Vec::new();
    for i in 0..20 {
        let out = m.write_frame(&aac(i * 23, 150)).unwrap();
        assert_aligned(&out);
        for p in out.chunks(PACKET_SIZE) {
            if pid(p) == PMT_PID {
                // PCR_PID is the audio PID.
                assert_eq!(&payload(p)[9..11], &[0xe1, 0x01]);
            }
            if p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x10 != 0 {
                assert_eq!(pid(p), AUDIO_PID);
                pcrs.push(i * 23);
            }
        }
    }
    assert_eq!(pcrs.first(), Some(&0));
    assert!(pcrs.windows(2).all(|w| w[1] - w[0] <= 100), "PCRs at {pcrs:?} ms");
    assert!(pcrs.last().is_some_and(|&t| t >= 437 - 100), "PCRs at {pcrs:?} ms");
}

#[test]
fn pmt_is_rewritten_when_video_appears() {
    let mut m = TsMuxer::new();
    m.write_frame(&audio_sh()).unwrap();
    assert!(!m.write_frame(&aac(0, 10)).unwrap().is_empty());
    m.write_frame(&video_sh()).unwrap();
    let out = m.write_frame(&picture(40, true, 0, 10)).unwrap();
    let pids: Vec<u16> = out.chunks(PACKET_SIZE).map(pid).collect();
    assert_eq!(&pids[..3], &[PAT_PID, PMT_PID, VIDEO_PID]);
    let pmt = payload(&out[188..376]);
    assert_eq!((pmt[6] >> 1) & 0x1f, 1, "PMT version bumped");
    assert_eq!(&pmt[9..11], &[0xe1, 0x00], "PCR on video now");
}

#[test]
fn frames_before_their_sequence_header_or_keyframe_are_skipped() {
    let mut m = TsMuxer::new();
    assert!(m.write_frame(&picture(0, true, 0, 10)).unwrap().is_empty());
    assert!(m.write_frame(&aac(0, 10)).unwrap().is_empty());
    let script = frame(FrameKind::Script, 0, b"\x02\x00\x0aonMetaData".to_vec());
    assert!(m.write_frame(&script).unwrap().is_empty());
    m.write_frame(&video_sh()).unwrap();
    assert!(m.write_frame(&picture(40, false, 0, 10)).unwrap().is_empty());
    assert!(!m.write_frame(&picture(80, true, 0, 10)).unwrap().is_empty());
    assert!(!m.write_frame(&picture(120, false, 0, 10)).unwrap().is_empty());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut m = TsMuxer::new();
    m.write_frame(&video_sh()).unwrap();
    m.write_frame(&audio_sh()).unwrap();
    // NAL length beyond the end.
    let bad = frame(FrameKind::Video, 0, vec![0x17, 0x01, 0, 0, 0, 0, 0, 0, 9, 0x65]);
    assert!(m.write_frame(&bad).is_err());
    assert!(m.write_frame(&frame(FrameKind::Video, 0, vec![0x17, 0x00, 0, 0, 0, 0x02])).is_err());
    assert!(m.write_frame(&aac(0, MAX_AAC_FRAME + 1)).is_err());
    // The muxer still works, with the old configuration.
    let out = m.write_frame(&picture(0, true, 0, 10)).unwrap();
    assert_aligned(&out);

    let mut seed = 0x1234_5678u32;
    for len in 0..300 {
        for kind in [FrameKind::Video, FrameKind::Audio] {
            let body: Vec<u8> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    if i == 0 { [0x17, 0x27, 0xaf][(seed >> 16) as usize % 3] } else { (seed >> 16) as u8 }
                })
                .collect();
            if let Ok(out) = m.write_frame(&frame(kind, seed, body)) {
                assert_aligned(&out);
            }
        }
    }
}

#[test]
fn negative_composition_time_wraps() {
    let mut m = TsMuxer::new();
    m.write_frame(&video_sh()).unwrap();
    let out = m.write_frame(&picture(0, true, -1000, 10)).unwrap();
    let pes = &pes_units(&out)[&VIDEO_PID][0];
    assert_eq!(read_ts(&pes[9..14]), (1 << 33) + PCR_DELAY - 90_000);
}

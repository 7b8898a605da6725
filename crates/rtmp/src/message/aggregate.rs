//! Aggregate messages (type 22): several FLV tags packed into one RTMP message, sent by
//! some servers (FMS, Wowza) to players and edges. We split them back into media messages.

use bytes::Bytes;

use super::media::{MessageKind, media_payload};
use crate::error::RtmpError;
use crate::reader::Reader;

/// One media message taken out of an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubMessage {
    /// Kind of the sub-message.
    pub kind: MessageKind,
    /// Absolute timestamp: the aggregate's timestamp plus the offset from its first tag.
    pub timestamp: u32,
    /// The tag body.
    pub payload: Bytes,
}

/// Splits an aggregate body. Tags of types other than audio/video/data are skipped.
pub fn split_aggregate(timestamp: u32, payload: &Bytes) -> Result<Vec<SubMessage>, RtmpError> {
    let bad = || RtmpError::Malformed("aggregate");
    let mut r = Reader::new(payload);
    let mut first_ts = None;
    let mut out = Vec::new();
    while !r.is_empty() {
        let tag_type = r.u8().ok_or_else(bad)?;
        let size = r.u24_be().ok_or_else(bad)?;
        let ts_low = r.u24_be().ok_or_else(bad)?;
        let ts_high = r.u8().ok_or_else(bad)?;
        let _stream_id = r.u24_be().ok_or_else(bad)?;
        let start = r.position();
        let size = usize::try_from(size).map_err(|_| bad())?;
        r.take(size).ok_or_else(bad)?;
        // Back pointer (previous tag size); tolerate its absence after the last tag.
        if r.remaining() >= 4 {
            r.u32_be();
        } else if !r.is_empty() {
            return Err(bad());
        }
        let tag_ts = ts_low | (u32::from(ts_high) << 24);
        let base = *first_ts.get_or_insert(tag_ts);
        let body = payload.slice(start..start.saturating_add(size));
        if let Some((kind, payload)) = media_payload(tag_type, body) {
            out.push(SubMessage { kind, timestamp: timestamp.wrapping_add(tag_ts.wrapping_sub(base)), payload });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(t: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let mut v = vec![t];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        v.extend_from_slice(&ts.to_be_bytes()[1..]);
        v.push((ts >> 24) as u8);
        v.extend_from_slice(&[0, 0, 0]);
        v.extend_from_slice(body);
        v.extend_from_slice(&(body.len() as u32 + 11).to_be_bytes());
        v
    }

    #[test]
    fn splits_with_relative_timestamps() {
        let mut body = tag(9, 5000, b"vid");
        body.extend(tag(8, 5020, b"au"));
        body.extend(tag(99, 5030, b"?"));
        let subs = split_aggregate(100, &Bytes::from(body)).unwrap();
        assert_eq!(subs.len(), 2);
        assert_eq!((subs[0].kind, subs[0].timestamp, &subs[0].payload[..]), (MessageKind::Video, 100, &b"vid"[..]));
        assert_eq!((subs[1].kind, subs[1].timestamp), (MessageKind::Audio, 120));
    }

    #[test]
    fn truncated_is_malformed() {
        let body = tag(9, 0, b"video");
        for cut in [1, 5, 12, body.len() - 2] {
            let r = split_aggregate(0, &Bytes::copy_from_slice(&body[..cut]));
            assert!(r.is_err(), "cut {cut}");
        }
        let ok = split_aggregate(0, &Bytes::copy_from_slice(&body[..body.len() - 4]));
        assert_eq!(ok.unwrap().len(), 1);
    }
}

//! One Low-Latency HLS viewer, fetching as hls.js does in low-latency mode, without decoding:
//! the playlist, the init segment once, then for each part the preload-hinted part (which the
//! server answers when it is cut) and the playlist reload (`_HLS_msn`, `_HLS_part`) that lists it
//! and hints the next one. Like hls.js, it reloads the playlist URL it was given (without the
//! `hls_ctx` the playlist's URIs carry: the node finds the session by address, stream and query).
//! One keep-alive connection.
//!
//! Each part's samples are counted from its `moof`; with `--reference`, each H.264 video sample
//! is fingerprinted as the FLV tag it came from (the tag header is rebuilt from the sample's flags
//! and composition offset), so the delivery latency is the publisher → part-in-hand time.

use std::net::SocketAddr;
use std::sync::Arc;

use mp4_atom::{Decode, Moof};
use tokio_util::sync::CancellationToken;

use crate::connect::connect;
use crate::flv::fingerprint;
use crate::http_conn::Conn;
use crate::latency::{PlayerClock, Reference};
use crate::live::Live;
use crate::meter::Meter;
use crate::outcome::{Fail, FailReason, PlayerReport};
use crate::target::Target;

const VIDEO_TRACK: u32 = 1;

/// What every LL-HLS viewer of a run shares.
#[derive(Debug)]
pub struct LlHlsPlay {
    pub addr: SocketAddr,
    host: String,
    /// The stream's directory, `/app/stream/`.
    base: String,
    /// The URL's own query, without its `?` (a token).
    query: String,
    pub reference: Option<Arc<Reference>>,
}

impl LlHlsPlay {
    pub fn new(target: &Target, addr: SocketAddr, reference: Option<Arc<Reference>>) -> Self {
        let (path, query) = target.path.split_once('?').unwrap_or((&target.path, ""));
        let base = path.trim_end_matches("index.m3u8").to_string();
        Self { addr, host: target.host_header(), base, query: query.to_string(), reference }
    }
}

/// Plays until `stop` fires or the viewer fails.
pub async fn run(play: Arc<LlHlsPlay>, live: Arc<Live>, stop: CancellationToken) -> PlayerReport {
    let mut meter = Meter::start(live);
    let result = tokio::select! {
        biased;
        _ = stop.cancelled() => if meter.is_connected() { Ok(()) } else { Err(FailReason::NotConnectedInTime.into()) },
        r = drive(&play, &mut meter, &stop) => r,
    };
    meter.finish(result.err())
}

/// The playlist's init segment URI and preload hint (`msn`, `part`, URI), each relative.
fn parse_playlist(text: &str) -> Option<(String, (u64, u32, String))> {
    let init = text.lines().find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))?.trim_end_matches('"').to_string();
    let hint = text.lines().find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))?;
    let hint = hint.trim_end_matches('"').to_string();
    let (msn, part) = hint.split('?').next()?.strip_suffix(".m4s")?.split_once('.')?;
    Some((init, (msn.parse().ok()?, part.parse().ok()?, hint)))
}

async fn drive(play: &LlHlsPlay, meter: &mut Meter, stop: &CancellationToken) -> Result<(), Fail> {
    let mut clock = PlayerClock::new();
    let stream = connect(play.addr, stop).await?;
    let mut conn = Conn::new(stream, play.host.clone());
    let q = if play.query.is_empty() { String::new() } else { format!("?{}", play.query) };
    let own = if play.query.is_empty() { String::new() } else { format!("{}&", play.query) };
    let (status, body) = conn.get(&format!("{}index.m3u8{q}", play.base)).await?;
    if status != 200 {
        return Err(Fail::new(FailReason::HttpStatus(status), format!("HTTP {status}")));
    }
    let bad = || Fail::new(FailReason::BadHttp, "the playlist has no EXT-X-MAP or EXT-X-PRELOAD-HINT");
    let (init, mut hint) = parse_playlist(&String::from_utf8_lossy(&body)).ok_or_else(bad)?;
    meter.connected();
    meter.on_read(body.len(), false);
    let (status, data) = conn.get(&format!("{}{init}", play.base)).await?;
    if status != 200 {
        return Err(Fail::new(FailReason::HttpStatus(status), format!("init segment: HTTP {status}")));
    }
    meter.on_read(data.len(), false);
    loop {
        let (msn, part, uri) = &hint;
        let (status, data) = conn.get(&format!("{}{uri}", play.base)).await?;
        let reload = match status {
            200 => {
                meter.on_read(data.len(), true);
                let (frames, keyframes) = count_samples(&data, play.reference.as_deref(), &mut clock);
                meter.on_frames(frames, keyframes);
                // The playlist that lists this part (at once): its hint is the part after it.
                format!("{}index.m3u8?{}_HLS_msn={msn}&_HLS_part={part}", play.base, own)
            }
            // The segment ended before the hinted part: read the playlist as it is now.
            404 => format!("{}index.m3u8{q}", play.base),
            other => return Err(Fail::new(FailReason::HttpStatus(other), format!("part {msn}.{part}: HTTP {other}"))),
        };
        let (status, body) = conn.get(&reload).await?;
        if status != 200 {
            return Err(Fail::new(FailReason::HttpStatus(status), format!("playlist reload: HTTP {status}")));
        }
        meter.on_read(body.len(), false);
        hint = parse_playlist(&String::from_utf8_lossy(&body)).ok_or_else(bad)?.1;
    }
}

/// Counts a part's samples (frames, keyframes) from its `moof`, and with a reference, times its
/// H.264 video samples.
fn count_samples(data: &[u8], reference: Option<&Reference>, clock: &mut PlayerClock) -> (u64, u64) {
    let mut input = data;
    let Ok(moof) = Moof::decode(&mut input) else { return (0, 0) };
    let (mut frames, mut keyframes) = (0, 0);
    for traf in &moof.traf {
        for trun in &traf.trun {
            let mut at = trun.data_offset.unwrap_or(0).max(0) as usize;
            for s in trun.samples.iter() {
                let size = s.size.unwrap_or(0) as usize;
                frames += 1;
                let key = s.flags.is_some_and(|f| f & 0x0001_0000 == 0);
                if traf.tfhd.track_id == VIDEO_TRACK {
                    keyframes += u64::from(key);
                    if let (Some(reference), Some(sample)) = (reference, data.get(at..at + size)) {
                        let cts = s.cts.unwrap_or(0) as i32;
                        let header = [if key { 0x17 } else { 0x27 }, 1, (cts >> 16) as u8, (cts >> 8) as u8, cts as u8];
                        reference.delivered(fingerprint(&[&header, sample]), clock);
                    }
                }
                at += size;
            }
        }
    }
    (frames, keyframes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_and_the_init_segment_are_read_from_the_playlist() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init-2.mp4?t=1&hls_ctx=ab\"\n#EXT-X-PART:DURATION=0.280,URI=\"3.0.m4s?t=1&hls_ctx=ab\"\n\
                    #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"3.1.m4s?t=1&hls_ctx=ab\"\n";
        let (init, (msn, part, uri)) = parse_playlist(text).unwrap();
        assert_eq!(
            (init.as_str(), msn, part, uri.as_str()),
            ("init-2.mp4?t=1&hls_ctx=ab", 3, 1, "3.1.m4s?t=1&hls_ctx=ab")
        );
        assert!(parse_playlist("#EXTM3U\n").is_none());
    }
}

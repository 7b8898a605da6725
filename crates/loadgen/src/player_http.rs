//! One HTTP-FLV player: a plain `GET`, the response head, the (chunked) body, the FLV counter.
//!
//! No HTTP client library: a player is one socket, one 16 KiB buffer and a few small state
//! machines, so 20,000 of them fit in memory and the load generator stays cheaper than the
//! server it measures.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::connect::connect;
use crate::flv::FlvCounter;
use crate::http_body::BodyDecoder;
use crate::http_head::HeadParser;
use crate::latency::{PlayerClock, Reference};
use crate::live::Live;
use crate::meter::Meter;
use crate::outcome::{Fail, FailReason, PlayerReport};
use crate::target::Target;

/// Per-player read buffer.
pub const READ_BUF: usize = 16 * 1024;

/// What every HTTP-FLV player of a run shares.
#[derive(Debug)]
pub struct HttpPlay {
    pub addr: SocketAddr,
    /// The whole request, built once.
    pub request: Vec<u8>,
    /// The publisher's copy, when delivery latency is measured.
    pub reference: Option<Arc<Reference>>,
}

impl HttpPlay {
    pub fn new(target: &Target, addr: SocketAddr, reference: Option<Arc<Reference>>) -> Self {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ferrocast-loadgen\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            target.path,
            target.host_header()
        );
        Self { addr, request: request.into_bytes(), reference }
    }
}

/// Plays until `stop` fires or the player fails.
pub async fn run(play: Arc<HttpPlay>, live: Arc<Live>, stop: CancellationToken) -> PlayerReport {
    let mut meter = Meter::start(live);
    let result = drive(&play, &mut meter, &stop).await;
    meter.finish(result.err())
}

async fn drive(play: &HttpPlay, meter: &mut Meter, stop: &CancellationToken) -> Result<(), Fail> {
    let mut clock = PlayerClock::new();
    let mut stream = connect(play.addr, stop).await?;
    stream.write_all(&play.request).await.map_err(|e| Fail::new(FailReason::Io(e.kind()), e))?;
    let mut buf = vec![0u8; READ_BUF];
    let mut head = Some(HeadParser::new());
    let mut body = BodyDecoder::identity(None);
    let mut flv = if play.reference.is_some() { FlvCounter::with_fingerprints() } else { FlvCounter::new() };
    loop {
        let n = tokio::select! {
            biased;
            _ = stop.cancelled() => {
                return if meter.is_connected() { Ok(()) } else { Err(FailReason::NotConnectedInTime.into()) };
            }
            r = stream.read(&mut buf) => r.map_err(|e| Fail::new(FailReason::Io(e.kind()), e))?,
        };
        if n == 0 {
            return Err(Fail::new(FailReason::ClosedEarly, "the server closed the connection"));
        }
        let mut input = &buf[..n];
        if let Some(parser) = &mut head {
            let Some((response, used)) = parser.feed(input).map_err(|e| Fail::new(FailReason::BadHttp, e))? else {
                meter.on_read(n, false);
                continue;
            };
            if response.status != 200 {
                meter.on_read(n, false);
                return Err(Fail::new(FailReason::HttpStatus(response.status), format!("HTTP {}", response.status)));
            }
            body =
                if response.chunked { BodyDecoder::chunked() } else { BodyDecoder::identity(response.content_length) };
            head = None;
            meter.connected();
            input = &input[used..];
        }
        let before = flv.counts();
        let mut media = false;
        while let Some(data) = body.next_data(&mut input).map_err(|e| Fail::new(FailReason::BadHttp, e))? {
            media = true;
            flv.feed(data).map_err(|e| Fail::new(FailReason::BadFlv, e))?;
        }
        if let Some(reference) = &play.reference {
            flv.take_fingerprints(|id| reference.delivered(id, &mut clock));
        }
        let after = flv.counts();
        meter.on_read(n, media);
        meter.on_frames(after.frames() - before.frames(), after.keyframes - before.keyframes);
        if body.is_done() {
            return Err(Fail::new(FailReason::ClosedEarly, "the response body ended"));
        }
    }
}

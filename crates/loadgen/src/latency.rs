//! Delivery latency per frame: from the publisher sending a video frame to a player receiving it,
//! the frame matched by its fingerprint (size and first body bytes).
//!
//! The publisher (FFmpeg's `tee` muxer) writes the same packets to the server and, over TCP, to
//! this load generator (`--reference`), which notes when each video frame arrives. A player that
//! completes a video frame looks its fingerprint up: the difference is the latency. The reference
//! is read on its own thread with blocking reads, so the swarm's work does not delay its clock.
//!
//! Frames the publisher sent before a player joined (the GOP cache a player starts with) are not
//! counted: they measure the start, not delivery. A looping publisher sends the same frames again
//! each loop, so a fingerprint keeps its latest send time; a frame whose match is older than the
//! player's previous frame's (its reference copy not read yet, so the match is a loop old) counts
//! as unmatched, never as a loop-long latency.

use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::flv::FlvCounter;

/// How long to wait for the publisher's copy to connect.
pub const CONNECT_WAIT: Duration = Duration::from_secs(60);
/// Send times older than this are forgotten (once the table is large).
const KEEP: Duration = Duration::from_secs(120);
const PRUNE_AT: usize = 100_000;

/// The publisher's copy of the stream, and the latencies players measured against it.
#[derive(Debug)]
pub struct Reference {
    sent: Mutex<HashMap<u64, Instant>>,
    latencies: Mutex<Histogram<u64>>,
    unmatched: AtomicU64,
    before_join: AtomicU64,
}

/// The run's delivery latency, in milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LatencyStats {
    /// Video frames measured (sent by the publisher after the player joined).
    pub frames: u64,
    /// Video frames with no send time to match (see the module doc).
    pub unmatched: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// One player's place in the measurement.
pub struct PlayerClock {
    joined: Instant,
    last_sent: Option<Instant>,
}

impl PlayerClock {
    /// Call when the player starts (before it connects).
    pub fn new() -> Self {
        Self { joined: Instant::now(), last_sent: None }
    }
}

impl Reference {
    /// Waits (up to [`CONNECT_WAIT`]) for the publisher's copy on `listen`, then reads it on a
    /// thread of its own until it ends.
    pub fn accept(listen: SocketAddr) -> anyhow::Result<Arc<Reference>> {
        let listener = TcpListener::bind(listen)
            .map_err(|e| anyhow::anyhow!("cannot listen for the reference stream on {listen}: {e}"))?;
        eprintln!("ferrocast-loadgen: waiting for the publisher's reference copy (FLV over TCP) on {listen}");
        listener.set_nonblocking(true)?;
        let deadline = Instant::now() + CONNECT_WAIT;
        let (stream, peer) = loop {
            match listener.accept() {
                Ok(conn) => break conn,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    anyhow::bail!("no reference stream connected to {listen} within {} s", CONNECT_WAIT.as_secs())
                }
                Err(e) => anyhow::bail!("accepting the reference stream on {listen}: {e}"),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        eprintln!("ferrocast-loadgen: reference stream from {peer}");
        let reference = Arc::new(Reference {
            sent: Mutex::new(HashMap::new()),
            latencies: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3)?),
            unmatched: AtomicU64::new(0),
            before_join: AtomicU64::new(0),
        });
        let reader = reference.clone();
        std::thread::Builder::new().name("reference".into()).spawn(move || reader.read(stream))?;
        Ok(reference)
    }

    fn read(&self, mut stream: std::net::TcpStream) {
        let mut flv = FlvCounter::with_fingerprints();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) => break eprintln!("ferrocast-loadgen: the reference stream ended"),
                Ok(n) => n,
                Err(e) => break eprintln!("ferrocast-loadgen: reading the reference stream: {e}"),
            };
            let now = Instant::now();
            if let Err(e) = flv.feed(&buf[..n]) {
                break eprintln!("ferrocast-loadgen: the reference stream is not FLV: {e}");
            }
            let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
            flv.take_fingerprints(|id| {
                sent.insert(id, now);
            });
            if sent.len() > PRUNE_AT {
                sent.retain(|_, at| now.duration_since(*at) < KEEP);
            }
        }
    }

    /// A player completed the video frame `id` just now.
    pub fn delivered(&self, id: u64, clock: &mut PlayerClock) {
        let now = Instant::now();
        let sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner).get(&id).copied();
        let Some(sent) = sent.filter(|s| clock.last_sent.is_none_or(|last| *s >= last)) else {
            self.unmatched.fetch_add(1, Ordering::Relaxed);
            return;
        };
        clock.last_sent = Some(sent);
        if sent < clock.joined {
            self.before_join.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let us = now.saturating_duration_since(sent).as_micros() as u64;
        self.latencies.lock().unwrap_or_else(PoisonError::into_inner).saturating_record(us.max(1));
    }

    /// The latencies so far.
    pub fn stats(&self) -> Option<LatencyStats> {
        let h = self.latencies.lock().unwrap_or_else(PoisonError::into_inner);
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| (us as f64 / 100.0).round() / 10.0;
        Some(LatencyStats {
            frames: h.len(),
            unmatched: self.unmatched.load(Ordering::Relaxed),
            p50: ms(h.value_at_quantile(0.5)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::tag;
    use std::io::Write;

    fn frame(n: u8) -> Vec<u8> {
        tag(9, &[0x27, 0x01, 0, 0, 0, 0, 0, 0, 2, 0x41, n])
    }

    fn fingerprint(bytes: &[u8]) -> u64 {
        let mut c = FlvCounter::with_fingerprints();
        c.feed(b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00").unwrap();
        c.feed(bytes).unwrap();
        let mut out = None;
        c.take_fingerprints(|f| out = Some(f));
        out.unwrap()
    }

    fn recorded(reference: &Reference) -> usize {
        reference.sent.lock().unwrap().len()
    }

    fn wait_until(what: impl Fn() -> bool) {
        while !what() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_frame_sent_after_the_player_joined_is_timed_from_its_reference_copy() {
        let listen = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let (joined_tx, joined_rx) = std::sync::mpsc::channel::<()>();
        let publisher = std::thread::spawn(move || {
            let mut s = loop {
                if let Ok(s) = std::net::TcpStream::connect(listen) {
                    break s;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            s.write_all(b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00").unwrap();
            s.write_all(&frame(1)).unwrap();
            joined_rx.recv().unwrap();
            s.write_all(&frame(2)).unwrap();
            s
        });
        let reference = Reference::accept(listen).unwrap();
        wait_until(|| recorded(&reference) == 1);
        let mut clock = PlayerClock::new(); // joined after frame 1 was sent, before frame 2
        let released = Instant::now(); // frame 2 is sent after this
        joined_tx.send(()).unwrap();
        wait_until(|| recorded(&reference) == 2);
        std::thread::sleep(Duration::from_millis(20)); // and delivered at least 20 ms after it was read
        reference.delivered(fingerprint(&frame(1)), &mut clock);
        reference.delivered(fingerprint(&frame(2)), &mut clock);
        let most = released.elapsed().as_secs_f64() * 1000.0 + 0.1;
        reference.delivered(fingerprint(&frame(3)), &mut clock);
        drop(publisher.join().unwrap());
        let stats = reference.stats().expect("one frame measured");
        assert_eq!(reference.before_join.load(Ordering::Relaxed), 1, "frame 1 was sent before the player joined");
        assert_eq!((stats.frames, stats.unmatched), (1, 1), "frame 2 measured; frame 3 was never sent");
        assert!((20.0..=most).contains(&stats.max), "frame 2 waited 20 ms to {most} ms: {stats:?}");
    }

    #[test]
    fn a_match_from_an_earlier_loop_is_unmatched_not_a_loop_long_latency() {
        let reference = Reference {
            sent: Mutex::new(HashMap::new()),
            latencies: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap()),
            unmatched: AtomicU64::new(0),
            before_join: AtomicU64::new(0),
        };
        let (a, b) = (fingerprint(&frame(1)), fingerprint(&frame(2)));
        let mut clock = PlayerClock::new();
        let t = Instant::now();
        reference.sent.lock().unwrap().extend([(b, t), (a, t + Duration::from_millis(5))]);
        reference.delivered(a, &mut clock);
        // Frame 2's copy of this loop is not read yet: the table still has the loop before's.
        reference.delivered(b, &mut clock);
        let stats = reference.stats().unwrap();
        assert_eq!((stats.frames, stats.unmatched), (1, 1));
    }
}

//! What one player reports at the end, and the reasons a player can fail.
//!
//! Reasons are coarse on purpose (a stable key each) so a report can count them: 5,000
//! players failing the same way is one line, not 5,000.

use std::io;
use std::time::Duration;

/// Why a player did not stay connected and receiving until the end.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailReason {
    /// The ramp had not reached this player when the run ended.
    NotStarted,
    /// The run ended before the connection or the play was accepted.
    NotConnectedInTime,
    /// EMFILE/ENFILE when opening the socket: the open-files limit is too low.
    TooManyOpenFiles,
    ConnectRefused,
    /// Another connect error, by kind.
    Connect(io::ErrorKind),
    /// The HTTP server answered with this status instead of 200.
    HttpStatus(u16),
    /// The HTTP response head or chunked framing was invalid.
    BadHttp,
    /// The body was not valid FLV.
    BadFlv,
    /// The RTMP session failed (protocol error from the peer's bytes).
    Rtmp,
    /// The WebRTC session failed (SDP, ICE, DTLS or SRTP).
    WebRtc,
    /// The RTMP server sent an error status (e.g. NetStream.Play.StreamNotFound).
    RtmpStatus(String),
    /// The publisher stopped (RTMP StreamEOF) before the end.
    StreamEof,
    /// The server closed the connection before the end.
    ClosedEarly,
    /// Reading or writing the socket failed, by kind (e.g. ConnectionReset).
    Io(io::ErrorKind),
    /// The player task did not stop within the grace period and was aborted.
    Hung,
}

impl FailReason {
    /// The key used to count this reason in reports.
    pub fn key(&self) -> String {
        match self {
            Self::NotStarted => "not_started".into(),
            Self::NotConnectedInTime => "not_connected_in_time".into(),
            Self::TooManyOpenFiles => "too_many_open_files".into(),
            Self::ConnectRefused => "connect_refused".into(),
            Self::Connect(kind) => format!("connect_error:{kind:?}"),
            Self::HttpStatus(code) => format!("http_status_{code}"),
            Self::BadHttp => "bad_http".into(),
            Self::BadFlv => "bad_flv".into(),
            Self::Rtmp => "rtmp_protocol_error".into(),
            Self::WebRtc => "webrtc_error".into(),
            Self::RtmpStatus(code) => format!("rtmp_status:{code}"),
            Self::StreamEof => "stream_eof".into(),
            Self::ClosedEarly => "closed_by_server".into(),
            Self::Io(kind) => format!("io_error:{kind:?}"),
            Self::Hung => "did_not_stop".into(),
        }
    }

    /// Classifies a connect error.
    pub fn from_connect(e: &io::Error) -> Self {
        const EMFILE: i32 = 24;
        const ENFILE: i32 = 23;
        match (e.raw_os_error(), e.kind()) {
            (Some(EMFILE | ENFILE), _) => Self::TooManyOpenFiles,
            (_, io::ErrorKind::ConnectionRefused) => Self::ConnectRefused,
            (_, kind) => Self::Connect(kind),
        }
    }
}

/// One player's result.
#[derive(Clone, Debug, Default)]
pub struct PlayerReport {
    /// The play was accepted (HTTP 200 / RTMP play started or first media).
    pub connected: bool,
    /// `None`: the player stayed until the end of the run.
    pub failure: Option<FailReason>,
    /// The error message behind `failure`, when there is one (reports show one example).
    pub failure_detail: Option<String>,
    /// From connect start to the first media byte.
    pub first_byte: Option<Duration>,
    /// From connect start to the end of the first video keyframe.
    pub first_keyframe: Option<Duration>,
    /// Bytes read from the socket.
    pub bytes: u64,
    /// Audio + video frames (WebRTC viewers: video frames).
    pub frames: u64,
    /// Video frames missing from the gaps in their timestamps (WebRTC viewers only, which can
    /// lose packets; the TCP protocols cannot).
    pub frames_lost: Option<u64>,
    pub keyframes: u64,
    /// Bytes/s from the first media byte to the player's end.
    pub rate: Option<f64>,
}

impl PlayerReport {
    pub fn failed(reason: FailReason) -> Self {
        Self { failure: Some(reason), ..Self::default() }
    }
}

/// A failure with the message that explains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fail {
    pub reason: FailReason,
    pub detail: Option<String>,
}

impl Fail {
    pub fn new(reason: FailReason, detail: impl ToString) -> Self {
        Self { reason, detail: Some(detail.to_string()) }
    }
}

impl From<FailReason> for Fail {
    fn from(reason: FailReason) -> Self {
        Self { reason, detail: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_are_classified() {
        assert_eq!(FailReason::from_connect(&io::Error::from_raw_os_error(24)), FailReason::TooManyOpenFiles);
        assert_eq!(
            FailReason::from_connect(&io::Error::from(io::ErrorKind::ConnectionRefused)),
            FailReason::ConnectRefused
        );
        assert_eq!(FailReason::HttpStatus(404).key(), "http_status_404");
    }
}

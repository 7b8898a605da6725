//! How the client reacts to the server's commands, and the commands it sends.

use super::{ClientEvent, ClientMode, ClientSession, State};
use crate::amf0::Amf0Value;
use crate::error::RtmpError;
use crate::message::{Command, UserControl};
use crate::{CSID_COMMAND, CSID_DATA};

/// flashVer we announce (what FFmpeg and OBS send when publishing).
const FLASH_VER: &str = "FMLE/3.0 (compatible; FMSc/1.0)";
/// Start argument of play: -1000 means "live only" (FFmpeg's `-rtmp_live live`).
const PLAY_START: f64 = -1000.0;
/// Buffer length we announce after play, in milliseconds.
const BUFFER_MS: u32 = 3000;

impl ClientSession {
    pub(super) fn send_connect(&mut self) {
        let txid = self.txid();
        let obj = Amf0Value::object([
            ("app", self.config.app.as_str().into()),
            ("type", "nonprivate".into()),
            ("flashVer", FLASH_VER.into()),
            ("tcUrl", self.config.tc_url.as_str().into()),
            ("fpad", false.into()),
            ("capabilities", 15.0.into()),
            ("audioCodecs", 4071.0.into()),
            ("videoCodecs", 252.0.into()),
            ("videoFunction", 1.0.into()),
        ]);
        self.conn.send_command(CSID_COMMAND, 0, "connect", txid, &obj, &[]);
        self.state = State::Connecting;
    }

    pub(super) fn on_command(&mut self, cmd: Command, events: &mut Vec<ClientEvent>) -> Result<(), RtmpError> {
        match cmd.name.as_str() {
            "_result" => self.on_result(&cmd, events),
            "_error" => {
                events.extend(redirect_event(&cmd));
                events.push(status_event(cmd.arg(0)));
                Ok(())
            }
            "onStatus" => {
                events.extend(redirect_event(&cmd));
                let status = status_event(cmd.arg(0));
                let started = match &status {
                    ClientEvent::Status { code, .. } => match (self.config.mode, code.as_str()) {
                        (ClientMode::Publish, "NetStream.Publish.Start") => Some(ClientEvent::PublishStarted),
                        (ClientMode::Play, "NetStream.Play.Start") => Some(ClientEvent::PlayStarted),
                        _ => None,
                    },
                    _ => None,
                };
                events.push(status);
                if let Some(started) = started
                    && self.state == State::Starting
                {
                    self.state = State::Started;
                    events.push(started);
                }
                Ok(())
            }
            // onBWDone, onFCPublish, |RtmpSampleAccess and friends need nothing.
            _ => Ok(()),
        }
    }

    fn on_result(&mut self, cmd: &Command, events: &mut Vec<ClientEvent>) -> Result<(), RtmpError> {
        match self.state {
            State::Connecting if cmd.transaction_id == 1.0 => {
                let code = cmd.arg(0).and_then(|i| i.get_str("code")).unwrap_or_default();
                if code != "NetConnection.Connect.Success" {
                    events.push(status_event(cmd.arg(0)));
                    return Ok(());
                }
                events.push(ClientEvent::Connected);
                self.conn.send_set_chunk_size(self.config.out_chunk_size);
                let stream = Amf0Value::string(self.config.stream.clone());
                let null = Amf0Value::Null;
                if self.config.mode == ClientMode::Publish {
                    let t = self.txid();
                    self.conn.send_command(CSID_COMMAND, 0, "releaseStream", t, &null, std::slice::from_ref(&stream));
                    let t = self.txid();
                    self.conn.send_command(CSID_COMMAND, 0, "FCPublish", t, &null, &[stream]);
                }
                let txid = self.txid();
                self.conn.send_command(CSID_COMMAND, 0, "createStream", txid, &null, &[]);
                self.state = State::CreatingStream { txid };
                Ok(())
            }
            State::CreatingStream { txid } if cmd.transaction_id == txid => {
                let id = cmd
                    .arg(0)
                    .and_then(Amf0Value::as_f64)
                    .filter(|n| n.is_finite() && *n >= 0.0 && *n <= f64::from(u32::MAX))
                    .ok_or(RtmpError::Malformed("createStream result"))?;
                self.stream_id = id as u32;
                self.start_stream();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// publish or play on the stream createStream gave us.
    fn start_stream(&mut self) {
        let stream = Amf0Value::string(self.config.stream.clone());
        let null = Amf0Value::Null;
        let txid = self.txid();
        let id = self.stream_id;
        match self.config.mode {
            ClientMode::Publish => {
                self.conn.send_command(CSID_DATA, id, "publish", txid, &null, &[stream, "live".into()]);
            }
            ClientMode::Play => {
                self.conn.send_command(CSID_DATA, id, "play", txid, &null, &[stream, PLAY_START.into()]);
                self.conn.send_user_control(UserControl::SetBufferLength { stream_id: id, millis: BUFFER_MS });
            }
        }
        self.state = State::Starting;
    }
}

/// The redirect an error status carries (`ex.redirect2`, else `ex.redirect`), looked for in the
/// info object (the first argument) and, failing that, in the command object.
fn redirect_event(cmd: &Command) -> Option<ClientEvent> {
    let carries = |info: &Amf0Value| {
        if info.get_str("level") != Some("error") {
            return None;
        }
        let ex = info.get("ex")?;
        let url = ex.get_str("redirect2").filter(|u| !u.is_empty()).or_else(|| ex.get_str("redirect"))?;
        (!url.is_empty()).then(|| ClientEvent::Redirect { url: url.to_owned() })
    };
    cmd.arg(0).and_then(carries).or_else(|| carries(&cmd.object))
}

/// A Status event from an onStatus/_error info object (missing fields are "").
fn status_event(info: Option<&Amf0Value>) -> ClientEvent {
    let field = |k: &str| info.and_then(|i| i.get_str(k)).unwrap_or_default().to_owned();
    ClientEvent::Status { level: field("level"), code: field("code"), description: field("description") }
}

//! How the server answers each command a client sends.

use super::{ConnectState, MAX_ROLES, Role, RoleKind, ServerEvent, ServerSession, replies};
use crate::PLAY_STREAM_ID;
use crate::amf0::Amf0Value;
use crate::connection::split_query;
use crate::error::RtmpError;
use crate::message::Command;

impl ServerSession {
    pub(super) fn on_command(
        &mut self,
        stream_id: u32,
        cmd: Command,
        events: &mut Vec<ServerEvent>,
    ) -> Result<(), RtmpError> {
        if cmd.name == "connect" {
            return self.on_connect(cmd, events);
        }
        match self.connect {
            ConnectState::Waiting => return Err(RtmpError::UnexpectedCommand(cmd.name)),
            // Rejected: the node is closing the connection; ignore the rest.
            ConnectState::Rejected => return Ok(()),
            // A pipelining client: the node had no chance to reject, so accept first to
            // keep the replies in order.
            ConnectState::Pending { .. } => self.resolve_pending_connect(),
            ConnectState::Accepted => {}
        }
        let txid = cmd.transaction_id;
        match cmd.name.as_str() {
            "createStream" => {
                replies::result(&mut self.conn, txid, &[f64::from(PLAY_STREAM_ID).into()]);
            }
            "releaseStream" => replies::result(&mut self.conn, txid, &[Amf0Value::Undefined]),
            "FCPublish" => {
                self.fc_publish = true;
                replies::result(&mut self.conn, txid, &[Amf0Value::Undefined]);
            }
            "getStreamLength" => replies::result(&mut self.conn, txid, &[0.0.into()]),
            "publish" => {
                let (stream_name, param) = split_query(cmd.arg_str(0).unwrap_or_default());
                let publish_type = cmd.arg_str(1).filter(|t| !t.is_empty()).unwrap_or("live");
                if self.add_role(stream_id, RoleKind::Publish, &stream_name)? {
                    events.push(ServerEvent::Publish {
                        stream_id,
                        stream_name,
                        param,
                        publish_type: publish_type.to_owned(),
                    });
                }
            }
            "play" | "play2" => {
                let name =
                    if cmd.name == "play" { cmd.arg_str(0) } else { cmd.arg(0).and_then(|o| o.get_str("streamName")) };
                let (stream_name, param) = split_query(name.unwrap_or_default());
                if self.add_role(stream_id, RoleKind::Play, &stream_name)? {
                    events.push(ServerEvent::Play { stream_id, stream_name, param });
                }
            }
            "FCUnpublish" => {
                let publishing = self.roles.iter().find(|(_, r)| r.kind == RoleKind::Publish).map(|(id, _)| *id);
                if let Some(id) = publishing {
                    replies::unpublish(&mut self.conn, id, txid);
                    self.close(id, events);
                }
            }
            "deleteStream" => {
                if let Some(id) = cmd.arg(0).and_then(Amf0Value::as_f64).and_then(stream_id_from) {
                    self.close(id, events);
                }
            }
            "closeStream" => self.close(stream_id, events),
            // Replies from the peer, and stream controls we do not implement.
            "_result" | "_error" | "onStatus" | "pause" | "seek" | "receiveAudio" | "receiveVideo" => {}
            // Anything else (call, _checkbw, ...): answer null when a reply is expected, as SRS.
            _ => {
                if txid > 0.0 {
                    replies::result(&mut self.conn, txid, &[Amf0Value::Null]);
                }
            }
        }
        Ok(())
    }

    fn on_connect(&mut self, cmd: Command, events: &mut Vec<ServerEvent>) -> Result<(), RtmpError> {
        if self.connect != ConnectState::Waiting {
            return Err(RtmpError::UnexpectedCommand(cmd.name));
        }
        let obj = &cmd.object;
        let text = |key: &str| obj.get_str(key).unwrap_or_default().to_owned();
        let tc_url = text("tcUrl");
        let (app, app_query) = split_query(&text("app"));
        let (tc_path, tc_query) = split_query(&tc_url);
        let mut app = app.trim_end_matches('/').to_owned();
        if app.is_empty() {
            app = app_from_tc_url(&tc_path);
        }
        let param = if app_query.is_empty() { tc_query } else { app_query };
        self.connect = ConnectState::Pending {
            txid: cmd.transaction_id,
            object_encoding: obj.get_f64("objectEncoding").unwrap_or(0.0),
        };
        events.push(ServerEvent::Connect {
            app,
            tc_url,
            page_url: text("pageUrl"),
            swf_url: text("swfUrl"),
            param,
            properties: obj.properties().map(<[_]>::to_vec).unwrap_or_default(),
        });
        Ok(())
    }

    /// Gives a stream a role; false (no event) if it already has one.
    fn add_role(&mut self, stream_id: u32, kind: RoleKind, name: &str) -> Result<bool, RtmpError> {
        if self.role(stream_id).is_some() {
            return Ok(false);
        }
        if self.roles.len() >= MAX_ROLES {
            return Err(RtmpError::UnexpectedCommand("too many streams".into()));
        }
        self.roles.push((stream_id, Role { kind, name: name.to_owned() }));
        Ok(true)
    }

    fn close(&mut self, stream_id: u32, events: &mut Vec<ServerEvent>) {
        if self.remove_role(stream_id) {
            events.push(ServerEvent::CloseStream { stream_id });
        }
    }
}

/// A message stream id carried as an AMF0 number.
fn stream_id_from(n: f64) -> Option<u32> {
    (n.is_finite() && n >= 0.0 && n <= f64::from(u32::MAX)).then_some(n as u32)
}

/// The path of "rtmp://host[:port]/app[/more]" ("app/more"), for clients with an empty app.
fn app_from_tc_url(tc_url: &str) -> String {
    let after_scheme = tc_url.split_once("://").map_or(tc_url, |(_, rest)| rest);
    after_scheme.split_once('/').map(|(_, path)| path.trim_matches('/').to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_from_tc_url_paths() {
        assert_eq!(app_from_tc_url("rtmp://h:1935/live"), "live");
        assert_eq!(app_from_tc_url("rtmp://h/live/sub/"), "live/sub");
        assert_eq!(app_from_tc_url("rtmp://h"), "");
        assert_eq!(app_from_tc_url(""), "");
    }

    #[test]
    fn stream_ids_from_numbers() {
        assert_eq!(stream_id_from(1.0), Some(1));
        assert_eq!(stream_id_from(-1.0), None);
        assert_eq!(stream_id_from(f64::NAN), None);
        assert_eq!(stream_id_from(1e20), None);
    }
}

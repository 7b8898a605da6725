//! The messages a server sends, with SRS's exact names, codes and descriptions, so that
//! encoders and players that work against SRS work against us.

use crate::amf0::Amf0Value;
use crate::connection::{Connection, status_info};
use crate::message::UserControl;
use crate::message::control::limit;
use crate::server::ServerConfig;
use crate::{CSID_COMMAND, CSID_DATA};

/// fmsVer in the connect result (what SRS reports).
const FMS_VERSION: &str = "FMS/3,5,3,888";
/// Version in the connect result's data.
const SERVER_VERSION: &str = "3,5,3,888";
/// clientid in onStatus (SRS's constant).
const CLIENT_ID: &str = "ASAICiss";

/// Window Ack Size, Set Peer Bandwidth, Set Chunk Size, `_result` Connect.Success, onBWDone.
pub(super) fn connect_success(conn: &mut Connection, cfg: &ServerConfig, txid: f64, object_encoding: f64) {
    conn.send_window_ack_size(cfg.window_ack_size);
    conn.send_set_peer_bandwidth(cfg.peer_bandwidth, limit::DYNAMIC);
    // Before any reply over 128 bytes, as SRS does (OBS needs it).
    conn.send_set_chunk_size(cfg.out_chunk_size);
    let props =
        Amf0Value::object([("fmsVer", FMS_VERSION.into()), ("capabilities", 127.0.into()), ("mode", 1.0.into())]);
    let mut info = status_info("status", "NetConnection.Connect.Success", "Connection succeeded");
    info.push(("objectEncoding".into(), object_encoding.into()));
    info.push((
        "data".into(),
        Amf0Value::EcmaArray(vec![("version".into(), SERVER_VERSION.into()), ("server".into(), "Ferrocast".into())]),
    ));
    conn.send_command(CSID_COMMAND, 0, "_result", txid, &props, &[Amf0Value::Object(info)]);
    conn.send_command(CSID_COMMAND, 0, "onBWDone", 0.0, &Amf0Value::Null, &[]);
}

/// `_error` NetConnection.Connect.Rejected.
pub(super) fn connect_rejected(conn: &mut Connection, txid: f64, description: &str) {
    let info = status_info("error", "NetConnection.Connect.Rejected", description);
    conn.send_command(CSID_COMMAND, 0, "_error", txid, &Amf0Value::Null, &[Amf0Value::Object(info)]);
}

/// SRS's RTMP 302 (origin cluster): onStatus on the NetConnection, level error,
/// NetConnection.Connect.Rejected, with `ex: {code: 302, redirect: <tcUrl>, redirect2: <url>}`.
pub(super) fn redirect(conn: &mut Connection, url: &str) {
    let without_query = url.split('?').next().unwrap_or(url);
    let tc_url = without_query.rsplit_once('/').map_or(without_query, |(dir, _)| dir);
    let mut info = status_info("error", "NetConnection.Connect.Rejected", "RTMP 302 Redirect");
    let ex = Amf0Value::object([
        ("code", 302.0.into()),
        ("redirect", Amf0Value::string(tc_url)),
        ("redirect2", Amf0Value::string(url)),
    ]);
    info.push(("ex".into(), ex));
    conn.send_command(CSID_COMMAND, 0, "onStatus", 0.0, &Amf0Value::Null, &[Amf0Value::Object(info)]);
}

/// `_result` for a NetConnection command with the given arguments after a null object.
pub(super) fn result(conn: &mut Connection, txid: f64, args: &[Amf0Value]) {
    conn.send_command(CSID_COMMAND, 0, "_result", txid, &Amf0Value::Null, args);
}

/// onStatus on a stream, with clientid as SRS adds it.
pub(super) fn on_status(conn: &mut Connection, stream_id: u32, level: &str, code: &str, description: &str) {
    on_status_with(conn, stream_id, level, code, description, &[]);
}

fn on_status_with(
    conn: &mut Connection,
    stream_id: u32,
    level: &str,
    code: &str,
    description: &str,
    extra: &[(&str, Amf0Value)],
) {
    let mut info = status_info(level, code, description);
    for (k, v) in extra {
        info.push(((*k).to_owned(), v.clone()));
    }
    info.push(("clientid".into(), CLIENT_ID.into()));
    conn.send_command(CSID_DATA, stream_id, "onStatus", 0.0, &Amf0Value::Null, &[Amf0Value::Object(info)]);
}

/// onFCPublish NetStream.Publish.Start (FMLE clients).
pub(super) fn on_fc_publish(conn: &mut Connection, stream_id: u32) {
    let info = Amf0Value::object([
        ("code", "NetStream.Publish.Start".into()),
        ("description", "Started publishing stream.".into()),
    ]);
    conn.send_command(CSID_DATA, stream_id, "onFCPublish", 0.0, &Amf0Value::Null, &[info]);
}

/// onStatus NetStream.Publish.Start.
pub(super) fn publish_start(conn: &mut Connection, stream_id: u32) {
    on_status(conn, stream_id, "status", "NetStream.Publish.Start", "Started publishing stream.");
}

/// The answer to FCUnpublish: onFCUnpublish, `_result`, onStatus Unpublish.Success.
pub(super) fn unpublish(conn: &mut Connection, stream_id: u32, txid: f64) {
    let info = Amf0Value::object([
        ("code", "NetStream.Unpublish.Success".into()),
        ("description", "Stop publishing stream.".into()),
    ]);
    conn.send_command(CSID_DATA, stream_id, "onFCUnpublish", 0.0, &Amf0Value::Null, &[info]);
    conn.send_command(CSID_DATA, stream_id, "_result", txid, &Amf0Value::Null, &[Amf0Value::Undefined]);
    on_status(conn, stream_id, "status", "NetStream.Unpublish.Success", "Stream is now unpublished");
}

/// StreamBegin, Play.Reset, Play.Start, |RtmpSampleAccess, NetStream.Data.Start.
pub(super) fn play_start(conn: &mut Connection, stream_id: u32, name: &str) {
    conn.send_user_control(UserControl::StreamBegin(stream_id));
    let details = [("details", Amf0Value::string(name))];
    on_status_with(conn, stream_id, "status", "NetStream.Play.Reset", "Playing and resetting stream.", &details);
    on_status_with(conn, stream_id, "status", "NetStream.Play.Start", "Started playing stream.", &details);
    conn.send_data(CSID_DATA, stream_id, &["|RtmpSampleAccess".into(), true.into(), true.into()]);
    conn.send_data(
        CSID_DATA,
        stream_id,
        &["onStatus".into(), Amf0Value::object([("code", "NetStream.Data.Start".into())])],
    );
}

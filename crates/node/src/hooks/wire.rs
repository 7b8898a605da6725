//! SRS's hook wire format: the JSON body a node POSTs per event and the rule SRS applies to the
//! answer. Kept apart from the client so the facts users rely on (field order, what counts as
//! "allow") sit in one small place that tests pin against real SRS bodies.

use serde_json::{Map, Value};

use super::{HookAction, HookContext};

/// SRS's answer rule (`SrsHttpHooks::do_post`): status 200 or 201, and a body that is exactly `0`
/// or a JSON object whose `code` is the integer 0. `"0"`, `0.0`, a missing `code`, `"0\n"`, an
/// empty body and anything that is not JSON refuse. Whitespace around a JSON object is accepted,
/// as SRS's JSON parser skips it; extra fields (`msg`, `data`) are ignored.
pub fn answer_allows(status: u16, body: &str) -> Result<(), String> {
    if status != 200 && status != 201 {
        return Err(format!("HTTP status {status} (want 200 or 201)"));
    }
    if body.is_empty() {
        return Err("empty answer (want 0 or {\"code\":0})".to_owned());
    }
    let value: Value = serde_json::from_str(body)
        .map_err(|e| format!("answer {} is not JSON ({e}); want 0 or {{\"code\":0}}", excerpt(body)))?;
    match value {
        Value::Object(fields) => match fields.get("code") {
            None => Err(format!("answer {} has no \"code\"", excerpt(body))),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
                if n.as_i64() == Some(0) {
                    Ok(())
                } else {
                    Err(format!("answer code {n}{}", message(&fields)))
                }
            }
            Some(other) => Err(format!("answer \"code\" {other} is not an integer")),
        },
        _ if body == "0" => Ok(()),
        _ => Err(format!("answer {} is neither 0 nor a JSON object with code 0", excerpt(body))),
    }
}

/// The JSON body of a hook call, fields in SRS's order (serde_json's `preserve_order` keeps the
/// insertion order): the common `server_id, service_id, action, client_id, ip, vhost, app`
/// (`action` first for `on_forward`), then the fields of each action. `stream_id` is omitted when the context has none, as SRS does when
/// no stat entry exists.
pub fn body(action: HookAction, server_id: &str, service_id: &str, ctx: &HookContext) -> Value {
    let mut m = Map::new();
    // SRS's `on_forward_backend` writes `action` first; every other hook writes it third.
    if action == HookAction::Forward {
        put(&mut m, "action", action.name());
    }
    put(&mut m, "server_id", server_id);
    put(&mut m, "service_id", service_id);
    if action != HookAction::Forward {
        put(&mut m, "action", action.name());
    }
    put(&mut m, "client_id", &ctx.client_id);
    put(&mut m, "ip", &ctx.ip);
    put(&mut m, "vhost", &ctx.vhost);
    put(&mut m, "app", &ctx.app);
    match action {
        HookAction::Connect => {
            put(&mut m, "stream", &ctx.stream);
            put(&mut m, "param", &ctx.param);
            put(&mut m, "tcUrl", &ctx.tc_url);
            put(&mut m, "pageUrl", &ctx.page_url);
        }
        HookAction::Close => {
            m.insert("send_bytes".to_owned(), ctx.send_bytes.into());
            m.insert("recv_bytes".to_owned(), ctx.recv_bytes.into());
        }
        HookAction::Publish | HookAction::Unpublish | HookAction::Stop => {
            put(&mut m, "tcUrl", &ctx.tc_url);
            put(&mut m, "stream", &ctx.stream);
            put(&mut m, "param", &ctx.param);
            put(&mut m, "stream_url", &ctx.stream_url);
            put_stream_id(&mut m, ctx);
        }
        HookAction::Forward => {
            put(&mut m, "tcUrl", &ctx.tc_url);
            put(&mut m, "stream", &ctx.stream);
            put(&mut m, "param", &ctx.param);
        }
        HookAction::Play => {
            put(&mut m, "stream", &ctx.stream);
            put(&mut m, "tcUrl", &ctx.tc_url);
            put(&mut m, "param", &ctx.param);
            put(&mut m, "pageUrl", &ctx.page_url);
            put(&mut m, "stream_url", &ctx.stream_url);
            put_stream_id(&mut m, ctx);
        }
    }
    Value::Object(m)
}

/// The destinations in an `on_forward` answer that passed [`answer_allows`]:
/// `{"code":0,"data":{"urls":["rtmp://…", …]}}` (SRS ≥ 5.0.24, #2799). Empty strings are
/// skipped, as SRS does. The bare `0` answer allows but names no destination.
pub fn forward_urls(answer: &str) -> Result<Vec<String>, String> {
    if answer == "0" {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(answer).map_err(|e| format!("answer is not JSON ({e})"))?;
    let urls = value
        .get("data")
        .and_then(|d| d.get("urls"))
        .and_then(Value::as_array)
        .ok_or_else(|| format!("answer {} has no data.urls array", excerpt(answer)))?;
    urls.iter()
        .filter(|u| u.as_str() != Some(""))
        .map(|u| u.as_str().map(str::to_owned).ok_or_else(|| format!("data.urls holds {u}, not a string")))
        .collect()
}

fn put(m: &mut Map<String, Value>, key: &str, value: &str) {
    m.insert(key.to_owned(), Value::String(value.to_owned()));
}

fn put_stream_id(m: &mut Map<String, Value>, ctx: &HookContext) {
    if let Some(id) = &ctx.stream_id {
        put(m, "stream_id", id);
    }
}

/// `: <msg>` when a refusing service explained itself in `msg` (a common convention).
fn message(fields: &Map<String, Value>) -> String {
    match fields.get("msg").or_else(|| fields.get("message")) {
        Some(Value::String(s)) if !s.is_empty() => format!(": {}", excerpt(s)),
        _ => String::new(),
    }
}

/// The start of an answer, quoted, for log lines and errors.
fn excerpt(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

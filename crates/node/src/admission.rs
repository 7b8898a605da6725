//! Where a client enters the node: the one admission function every viewer front end (RTMP,
//! HTTP-FLV, HLS) calls, and the `Viewer` session it returns.
//!
//! It exists so that "where does a viewer enter?" has one answer, and so that a client creates no
//! state before it is admitted. Admitting a viewer is, in order: reserve its ids (the hook body
//! carries the client's and the stream's ids, as SRS's does) without creating anything; run the
//! blocking hooks (`on_connect` then `on_play` for RTMP, `on_play` alone for HTTP players); only
//! then register the client — with its stream and vhost entries, refused if that would exceed the
//! vhost cap; then attach the viewer to its stream — subscribe to the source when the protocol streams frames ([`Delivery::Frames`]:
//! RTMP, HTTP-FLV), not when it is served from the HLS segment window ([`Delivery::Segments`]) —
//! and, on an edge, start the upstream pull. A refused viewer leaves nothing behind.
//!
//! The `Viewer` is the session (MediaMTX's `AddReader` + `defer RemoveReader`): while it lives
//! the client is listed in the API; once its play has [`begun`](Viewer::begin), dropping it fires
//! `on_stop` exactly once, however the play ended (stream end, kick, client gone, HLS session
//! expiry). A viewer dropped before its play began (an HTTP-FLV play of a stream that never came,
//! an HLS playlist with no segments) fires nothing, as before.
//!
//! Publishers pass through the same registration and hook steps ([`admit_client`]); what follows
//! (claiming the source, forwarding) stays with the RTMP front end, their only way in.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::context::NodeContext;
use crate::hooks::{HookAction, HookContext, HookError, Hooks};
use crate::hub::{FeedEnd, FrameFeed, Packet};
use crate::key::StreamKey;
use crate::stats::{ClientGuard, ClientInfo, ClientKind};

/// How a protocol delivers media to its viewers, which decides what admission attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The viewer gets the source's frames through a `FrameFeed` of its own (RTMP, HTTP-FLV).
    Frames,
    /// The viewer fetches from the stream's HLS segment window; it subscribes to nothing.
    Segments,
}

/// Everything a front end knows about a viewer that asks to play.
pub struct ViewerRequest {
    /// The client as the API will list it (its `kind` names the protocol).
    pub info: ClientInfo,
    /// The viewer's query (its token), given to the hooks and, on an edge, to the origin.
    pub param: String,
    /// Cancelling it ends the viewer (API kick, slow-player watchdog).
    pub kick: CancellationToken,
    pub delivery: Delivery,
}

impl ViewerRequest {
    /// The blocking hooks that decide the play, in order. An RTMP viewer has also connected (as
    /// on SRS, `on_connect` runs for it); an HTTP viewer only plays.
    fn hooks(&self) -> &'static [HookAction] {
        match self.info.kind {
            ClientKind::RtmpPlay => &[HookAction::Connect, HookAction::Play],
            _ => &[HookAction::Play],
        }
    }
}

/// A client turned away at admission.
#[derive(Debug)]
pub struct Refused {
    /// The id the client would have had, for the log line.
    pub client: String,
    /// Why: a hook's refusal, or a bound of the node.
    pub reason: String,
}

impl From<(String, HookError)> for Refused {
    fn from((client, e): (String, HookError)) -> Refused {
        Refused { client, reason: e.to_string() }
    }
}

/// Runs the blocking hooks `actions` in order for a client, then registers it: the client,
/// registered, if every hook allows it. Nothing is created for a refused client.
pub async fn admit_client(
    ctx: &Arc<NodeContext>,
    info: ClientInfo,
    param: &str,
    kick: CancellationToken,
    actions: &[HookAction],
) -> Result<ClientGuard, Refused> {
    let (client, stream_id) = ctx.registry.reserve_ids(&info.key);
    let hc = fields(&client, &stream_id, &info, param, 0, 0);
    for action in actions {
        ctx.hooks.check(*action, &hc).await.map_err(|e| Refused::from((client.clone(), e)))?;
    }
    ctx.registry.try_add_client(info, kick, (client.clone(), stream_id)).map_err(|reason| Refused { client, reason })
}

/// Admits a viewer: registration, play hooks, then the stream (see the module doc).
pub async fn admit(ctx: &Arc<NodeContext>, request: ViewerRequest) -> Result<Viewer, Refused> {
    let actions = request.hooks();
    let ViewerRequest { info, param, kick, delivery } = request;
    let key = info.key.clone();
    let guard = admit_client(ctx, info, &param, kick, actions).await?;
    let feed = match delivery {
        Delivery::Frames => Some(FrameFeed::new(ctx.hub.source(&key).subscribe(), feed_policy(ctx, &param))),
        Delivery::Segments => None,
    };
    // After subscribing, so an edge's relay sees this viewer (see `EdgeRelays::ensure`).
    ctx.pull_if_edge(&key, &param, guard.id());
    Ok(Viewer { hooks: ctx.hooks.clone(), guard, param, feed, begun: false })
}

/// How a viewer's frames are batched: by the node's merge window, except for an edge's upstream
/// pull (its query carries `EDGE_PULL_KEY`), an internal hop that gets each frame as it comes —
/// a window there would add to every viewer's delay behind that edge.
pub fn feed_policy(ctx: &NodeContext, param: &str) -> crate::hub::FeedPolicy {
    let policy = ctx.feed_policy();
    if crate::key::query_value(param, ferrocast_cluster::EDGE_PULL_KEY).is_some() {
        crate::hub::FeedPolicy { merge_window: std::time::Duration::ZERO, ..policy }
    } else {
        policy
    }
}

/// An admitted viewer. Dropping it ends the session: the client leaves the API and, once the play
/// has begun, `on_stop` fires.
pub struct Viewer {
    hooks: Hooks,
    guard: ClientGuard,
    param: String,
    feed: Option<FrameFeed>,
    begun: bool,
}

impl Viewer {
    /// The public client id, as the API lists it.
    pub fn id(&self) -> &str {
        self.guard.id()
    }

    pub fn key(&self) -> &StreamKey {
        &self.guard.stat().info.key
    }

    pub fn guard(&self) -> &ClientGuard {
        &self.guard
    }

    /// The viewer's query, as admitted.
    pub fn param(&self) -> &str {
        &self.param
    }

    /// Marks the play started: from now on the session's end fires `on_stop`.
    pub fn begin(&mut self) {
        self.begun = true;
    }

    /// The hook body fields of this viewer, with its current byte counts.
    pub fn hook_context(&self) -> HookContext {
        hook_context(&self.guard, &self.param)
    }

    /// The next packets for a [`Delivery::Frames`] viewer (a segments viewer has none: its feed
    /// reads as closed).
    pub async fn next_batch(&mut self) -> Result<Vec<Arc<Packet>>, FeedEnd> {
        match &mut self.feed {
            Some(feed) => feed.next_batch().await,
            None => Err(FeedEnd::Closed),
        }
    }

    /// Frames skipped to catch up, for logs.
    pub fn skipped(&self) -> u64 {
        self.feed.as_ref().map_or(0, |f| f.skipped)
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        if self.begun {
            self.hooks.notify(HookAction::Stop, self.hook_context());
        }
    }
}

/// The hook body fields of a registered client.
pub fn hook_context(guard: &ClientGuard, param: &str) -> HookContext {
    let c = guard.stat();
    fields(&c.id, &c.stream.id, &c.info, param, c.traffic.send_bytes(), c.traffic.recv_bytes())
}

/// The hook body fields of a client, registered or about to be.
fn fields(client: &str, stream_id: &str, info: &ClientInfo, param: &str, send: u64, recv: u64) -> HookContext {
    let key = &info.key;
    // SRS gives HTTP players' hooks the bare stream name and an rtmp://vhost/app tcUrl (the API
    // keeps what the client sent: `cam1.flv`, `http://host/app`).
    let (stream, tc_url) = match info.kind {
        ClientKind::FlvPlay | ClientKind::HlsPlay | ClientKind::RtcPlay => {
            (key.stream.clone(), format!("rtmp://{}/{}", key.vhost, key.app))
        }
        _ => (info.name.clone(), info.tc_url.clone()),
    };
    HookContext {
        client_id: client.to_string(),
        ip: info.ip.clone(),
        vhost: key.vhost.clone(),
        app: key.app.clone(),
        tc_url,
        stream,
        param: param.to_string(),
        page_url: info.page_url.clone(),
        stream_url: key.url(),
        stream_id: Some(stream_id.to_string()),
        send_bytes: send,
        recv_bytes: recv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;

    #[test]
    fn an_edge_pull_gets_each_frame_and_a_viewer_the_merge_window() {
        let mut config = NodeConfig::default();
        config.media.merge_window_ms = Some(350);
        let ctx = NodeContext::new(config);
        let viewer = feed_policy(&ctx, "?token=a");
        assert_eq!(viewer.merge_window, std::time::Duration::from_millis(350));
        let pull = feed_policy(&ctx, "?token=a&ferrocast_edge_pull=1");
        assert_eq!(pull.merge_window, std::time::Duration::ZERO);
        assert_eq!(pull.play_wait, viewer.play_wait, "only the window differs");
    }
}

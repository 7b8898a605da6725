//! Events as Server-Sent Events: `id:` (the bus id), `event:` (the type), `data:` (the event's
//! JSON), and a keep-alive comment every 15 s so proxies keep the stream open. Browsers'
//! `EventSource` reconnects on its own and sends `Last-Event-ID`.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::feed::Feed;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn respond(feed: Feed) -> Response {
    let events = futures_util::stream::unfold(feed, |mut feed| async move {
        let out = feed.next().await?;
        let mut event = Event::default().event(out.kind).data(&*out.json);
        if let Some(id) = out.id {
            event = event.id(id.to_string());
        }
        Some((Ok::<_, Infallible>(event), feed))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}

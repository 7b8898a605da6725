//! The hook answer a node reads back from its `http_hooks` backend (`on_publish`, `on_play`, …
//! allow or refuse) and the `on_forward` answer whose URLs an origin then pushes to. The backend
//! is a peer like any other: its answer must be judged or refused, never panic the node. Shared
//! by the cargo-fuzz target `hook_answer` and by `crates/node/tests/fuzz_regressions.rs`.

use ferrocast_node::hooks::{answer_allows, forward_urls};
use ferrocast_rtmp::{ClientConfig, ClientMode};

/// The first two bytes are the HTTP status (big-endian); the rest is the body.
pub fn drive_hook_answer(data: &[u8]) {
    let [hi, lo, body @ ..] = data else {
        return;
    };
    let Ok(body) = std::str::from_utf8(body) else {
        return;
    };
    let status = u16::from_be_bytes([*hi, *lo]);
    if let Err(reason) = answer_allows(status, body) {
        assert!(!reason.is_empty(), "a refusal says why");
        return;
    }
    if let Ok(urls) = forward_urls(body) {
        for url in urls {
            let _ = ClientConfig::from_url(&url, ClientMode::Publish);
        }
    }
}

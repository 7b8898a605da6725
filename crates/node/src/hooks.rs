//! The SRS-compatible `http_hooks` client of a media node.
//!
//! Sites that run SRS authorize publishers and players with hook services (`on_publish`,
//! `on_play`, …) and track sessions with the non-blocking ones (`on_close`, `on_stop`, …). A
//! Ferrocast node must call those same services with the same JSON bodies and read their answers
//! by the same rule, so that a node can replace an SRS node without changing the services; the
//! index server's hook receiver relies on it too. The wire format lives in [`wire`]; this file
//! holds the configuration and the HTTP client.
//!
//! Behaviour, as SRS: several URLs per event are called in order and the first refusal wins; the
//! blocking hooks (`on_connect`, `on_publish`, `on_play`) reject the client on refusal; the
//! others only log failures. Unlike SRS, a hook service that cannot be reached (or times out, or
//! does not speak HTTP) may be configured to allow (`allow_on_error`), and the per-call timeout
//! defaults to 3 s rather than 30 s. Redirects are not followed and proxies are not used, as SRS.

mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

pub use wire::{answer_allows, body, forward_urls};

/// Default per-call timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 3000;
/// Answers longer than this are not hook answers; the call fails as if the service sent garbage.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Notifications in flight at once; more wait their turn (a mass disconnect must not open
/// thousands of sockets toward the hook service).
const MAX_NOTIFY_IN_FLIGHT: usize = 64;

/// Hook URLs per event (several per event allowed; called in order, the first refusal wins, as SRS).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksConfig {
    pub on_connect: Vec<String>,
    pub on_close: Vec<String>,
    pub on_publish: Vec<String>,
    pub on_unpublish: Vec<String>,
    pub on_play: Vec<String>,
    pub on_stop: Vec<String>,
    /// Per-call timeout in ms (default 3000; 0 also means the default).
    pub timeout_ms: u64,
    /// What an unreachable/timed-out/garbage-answering hook service means for blocking hooks:
    /// false = refuse (default), true = allow.
    pub allow_on_error: bool,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            on_connect: Vec::new(),
            on_close: Vec::new(),
            on_publish: Vec::new(),
            on_unpublish: Vec::new(),
            on_play: Vec::new(),
            on_stop: Vec::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            allow_on_error: false,
        }
    }
}

impl HooksConfig {
    /// No URL for any event.
    pub fn is_empty(&self) -> bool {
        HookAction::ALL.iter().all(|&a| self.urls(a).is_empty())
    }

    /// `--hooks URL` sets the URL for all six events.
    pub fn all(url: &str) -> Self {
        let one = || vec![url.to_owned()];
        HooksConfig {
            on_connect: one(),
            on_close: one(),
            on_publish: one(),
            on_unpublish: one(),
            on_play: one(),
            on_stop: one(),
            ..HooksConfig::default()
        }
    }

    /// The URLs of one event, in call order.
    pub fn urls(&self, action: HookAction) -> &[String] {
        match action {
            HookAction::Connect => &self.on_connect,
            HookAction::Close => &self.on_close,
            HookAction::Publish => &self.on_publish,
            HookAction::Unpublish => &self.on_unpublish,
            HookAction::Play => &self.on_play,
            HookAction::Stop => &self.on_stop,
            HookAction::Forward => &[],
        }
    }

    /// The per-call timeout (`timeout_ms`, 0 meaning the default).
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(if self.timeout_ms == 0 { DEFAULT_TIMEOUT_MS } else { self.timeout_ms })
    }

    /// Checks every URL, for config loading: a typo must stop the node at startup, not (with
    /// `allow_on_error`) silently let every client in. The error says which key and why.
    pub fn validate(&self) -> Result<(), String> {
        for action in HookAction::ALL {
            for url in self.urls(action) {
                check_http_url(url).map_err(|e| format!("hooks.{}: {e}", action.name()))?;
            }
        }
        Ok(())
    }
}

/// Whether `url` is one this client can call (http only); the error quotes it and says why.
pub fn check_http_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    match parsed.scheme() {
        "http" => Ok(()),
        "https" => Err(format!(
            "{url:?}: https URLs are not supported by this build; use http:// \
             (for example through a local TLS-terminating proxy)"
        )),
        other => Err(format!("{url:?}: scheme {other:?} is not http")),
    }
}

/// Which event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookAction {
    Connect,
    Close,
    Publish,
    Unpublish,
    Play,
    Stop,
    /// SRS's `forward { backend … }` call, asking where to push a new stream. Not one of the
    /// six `http_hooks` events (not in `ALL`): its URL comes from `[forward] backend`.
    Forward,
}

impl HookAction {
    pub const ALL: [HookAction; 6] = [
        HookAction::Connect,
        HookAction::Close,
        HookAction::Publish,
        HookAction::Unpublish,
        HookAction::Play,
        HookAction::Stop,
    ];

    /// The SRS name, also the `action` field of the body: `on_connect`, ….
    pub fn name(self) -> &'static str {
        match self {
            HookAction::Connect => "on_connect",
            HookAction::Close => "on_close",
            HookAction::Publish => "on_publish",
            HookAction::Unpublish => "on_unpublish",
            HookAction::Play => "on_play",
            HookAction::Stop => "on_stop",
            HookAction::Forward => "on_forward",
        }
    }

    /// Whether a refusal rejects the client (connect, publish, play).
    pub fn blocks(self) -> bool {
        matches!(self, HookAction::Connect | HookAction::Publish | HookAction::Play)
    }
}

impl fmt::Display for HookAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything a hook body needs, provided by the connection.
#[derive(Clone, Debug, Default)]
pub struct HookContext {
    pub client_id: String,
    pub ip: String,
    /// The vhost NAME (`__defaultVhost__`), not its API id.
    pub vhost: String,
    pub app: String,
    pub tc_url: String,
    /// As the client gave it, may be `cam1.flv`; no query.
    pub stream: String,
    /// `?token=...` or empty.
    pub param: String,
    pub page_url: String,
    /// `/app/stream` or `vhost/app/stream`.
    pub stream_url: String,
    /// The API stream id; omitted from the body when None.
    pub stream_id: Option<String>,
    /// For on_close only.
    pub send_bytes: u64,
    /// For on_close only.
    pub recv_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The service answered and said no (non-200/201 status, body not `0`, JSON `code`
    /// missing/non-integer/non-zero).
    #[error("{action} refused by {url}: {reason}")]
    Refused { action: &'static str, url: String, reason: String },
    /// The service could not be reached, timed out, or sent garbage; only returned when
    /// allow_on_error is false.
    #[error("{action} hook {url} failed: {reason}")]
    Unreachable { action: &'static str, url: String, reason: String },
}

/// How one call went wrong.
enum Failure {
    /// A complete HTTP answer that does not allow.
    Refused(String),
    /// No usable HTTP answer: connect error, timeout, not HTTP, answer too large.
    Unreachable(String),
}

/// The hooks client of a node. Cheap to clone.
#[derive(Clone)]
pub struct Hooks {
    inner: Arc<Inner>,
}

struct Inner {
    config: HooksConfig,
    server_id: String,
    service_id: String,
    timeout: Duration,
    client: reqwest::Client,
    notify_slots: Arc<Semaphore>,
    notifications: TaskTracker,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Hooks {
    pub fn new(config: HooksConfig, server_id: String, service_id: String) -> Hooks {
        if let Err(e) = config.validate() {
            warn!("{e}; calls to that URL will fail");
        }
        let timeout = config.timeout();
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .user_agent(concat!("Ferrocast/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_else(|e| {
                warn!("cannot build the hooks HTTP client as configured ({e}); using reqwest's defaults");
                reqwest::Client::new()
            });
        Hooks {
            inner: Arc::new(Inner {
                config,
                server_id,
                service_id,
                timeout,
                client,
                notify_slots: Arc::new(Semaphore::new(MAX_NOTIFY_IN_FLIGHT)),
                notifications: TaskTracker::new(),
            }),
        }
    }

    /// Whether any URL is configured for this event.
    pub fn enabled(&self, action: HookAction) -> bool {
        !self.inner.config.urls(action).is_empty()
    }

    /// Calls every URL of a hook in order; Ok(()) when all allow (or none configured). Meant for
    /// the blocking hooks, but works for any: the first refusal wins and later URLs are not
    /// called. With `allow_on_error`, an unreachable URL is logged and skipped.
    pub async fn check(&self, action: HookAction, ctx: &HookContext) -> Result<(), HookError> {
        let inner = &self.inner;
        let urls = inner.config.urls(action);
        if urls.is_empty() {
            return Ok(());
        }
        let body = body(action, &inner.server_id, &inner.service_id, ctx);
        for url in urls {
            let shown = redact(url);
            let (client_id, stream) = (&ctx.client_id, &ctx.stream);
            match self.post(url, &body).await {
                Ok(_) => debug!(action = action.name(), url = %shown, %client_id, %stream, "hook allowed"),
                Err(Failure::Refused(reason)) => {
                    info!(action = action.name(), url = %shown, %client_id, %stream, %reason, "hook refused");
                    return Err(HookError::Refused { action: action.name(), url: shown, reason });
                }
                Err(Failure::Unreachable(reason)) if inner.config.allow_on_error => {
                    warn!(action = action.name(), url = %shown, %client_id, %stream, %reason, "hook failed; allowing (allow_on_error)");
                }
                Err(Failure::Unreachable(reason)) => {
                    warn!(action = action.name(), url = %shown, %client_id, %stream, %reason, "hook failed; refusing");
                    return Err(HookError::Unreachable { action: action.name(), url: shown, reason });
                }
            }
        }
        Ok(())
    }

    /// Fire-and-forget for the non-blocking hooks (close, unpublish, stop): spawns a task that
    /// calls every URL in order (as SRS, a failure does not stop the later ones), logs failures
    /// with `tracing::warn`, and never blocks the caller. Outside a tokio runtime it only logs.
    pub fn notify(&self, action: HookAction, ctx: HookContext) {
        if !self.enabled(action) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!(action = action.name(), client_id = %ctx.client_id, stream = %ctx.stream, "hook not sent: no tokio runtime");
            return;
        };
        let this = self.clone();
        self.inner.notifications.spawn_on(
            async move {
                let inner = &this.inner;
                let Ok(_slot) = inner.notify_slots.clone().acquire_owned().await else { return };
                let body = body(action, &inner.server_id, &inner.service_id, &ctx);
                for url in inner.config.urls(action) {
                    let (shown, client_id, stream) = (redact(url), &ctx.client_id, &ctx.stream);
                    match this.post(url, &body).await {
                        Ok(_) => debug!(action = action.name(), url = %shown, %client_id, %stream, "hook delivered"),
                        Err(Failure::Refused(reason) | Failure::Unreachable(reason)) => {
                            warn!(action = action.name(), url = %shown, %client_id, %stream, %reason, "hook failed");
                        }
                    }
                }
            },
            &runtime,
        );
    }

    /// For shutdown: waits up to `limit` for the notifications in flight (an `on_unpublish` of
    /// the last publisher should reach the service). True when none is left.
    pub async fn flush(&self, limit: Duration) -> bool {
        let tracker = &self.inner.notifications;
        tracker.close();
        let done = tokio::time::timeout(limit, tracker.wait()).await.is_ok();
        tracker.reopen();
        done
    }

    /// SRS's `on_forward` backend call: POSTs the body of `ctx` to `backend` and returns the
    /// `data.urls` of an answer that passes SRS's rule. Bounded by the hooks' timeout; the error
    /// says why no URL came (unreachable, refused, or no `data.urls`).
    pub async fn on_forward(&self, backend: &str, ctx: &HookContext) -> Result<Vec<String>, String> {
        let inner = &self.inner;
        let body = body(HookAction::Forward, &inner.server_id, &inner.service_id, ctx);
        match self.post(backend, &body).await {
            Ok(answer) => forward_urls(&answer),
            Err(Failure::Refused(reason)) => Err(format!("refused by {}: {reason}", redact(backend))),
            Err(Failure::Unreachable(reason)) => Err(format!("{} failed: {reason}", redact(backend))),
        }
    }

    /// One POST, its answer read (bounded) and judged by SRS's rule; the answer when it allows.
    async fn post(&self, url: &str, body: &Value) -> Result<String, Failure> {
        let call = async {
            let mut answer = self
                .inner
                .client
                .post(url)
                .json(body)
                .send()
                .await
                .map_err(|e| Failure::Unreachable(describe(&e.without_url())))?;
            let status = answer.status().as_u16();
            let bytes = read_bounded(&mut answer, MAX_ANSWER_BYTES).await.map_err(Failure::Unreachable)?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            answer_allows(status, &text).map_err(Failure::Refused)?;
            Ok(text)
        };
        match tokio::time::timeout(self.inner.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Unreachable(format!("no answer within {} ms", self.inner.timeout.as_millis()))),
        }
    }
}

/// An error and its causes on one line (reqwest's own message alone says little).
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The URL for logs and errors: a query string or password often holds a shared secret.
pub(crate) fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("redacted"));
            }
            if parsed.query().is_some() {
                parsed.set_query(Some("redacted"));
            }
            parsed.to_string()
        }
        Err(_) => match url.split_once('?') {
            Some((before, _)) => format!("{before}?redacted"),
            None => url.to_owned(),
        },
    }
}

/// A peer's HTTP answer body, refused once it passes `max` bytes (counted as it arrives, whatever
/// Content-Length says): hook services and the servers of `crate::cluster` are peers.
pub(crate) async fn read_bounded(answer: &mut reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| describe(&e.without_url()))? {
        if bytes.len() + chunk.len() > max {
            return Err(format!("answer larger than {max} bytes"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;

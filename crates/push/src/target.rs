//! Where a push goes: fixed RTMP URLs the user gave, or the origin the index server names. The
//! index answers `GET /api/v1/publish/{app}/{stream}` with a primary origin and its backups; asking
//! again before each restart, and passing over the origin that just failed, is how a push moves to
//! a backup origin.

use std::time::Duration;

use serde::Deserialize;

/// How long one question to the index may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// An origin the index offers.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Origin {
    /// The RTMP URL to publish to, with any token the index added.
    pub url: String,
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub region: String,
}

/// The index's answer: the origin to use and the ones to move to when it fails.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PublishAnswer {
    #[serde(flatten)]
    pub primary: Origin,
    #[serde(default)]
    pub backups: Vec<Origin>,
}

impl PublishAnswer {
    /// The origin to publish to: the index's first choice unless it is the node that just
    /// failed, in which case the first backup that is not; the primary when there is no other.
    pub fn pick(&self, avoid: Option<&str>) -> &Origin {
        std::iter::once(&self.primary)
            .chain(&self.backups)
            .find(|o| avoid.is_none_or(|a| o.node != a))
            .unwrap_or(&self.primary)
    }
}

/// Why the index gave no publish URL.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("the stream {0:?} is not APP/STREAM: write it like live/cam1")]
    BadStream(String),
    #[error("the index URL {0:?} is not an http:// URL: write it like http://10.0.0.9:8000")]
    BadIndex(String),
    #[error("cannot reach the index at {url}: {detail}; check the index URL and that `ferrocast index` runs there")]
    Unreachable { url: String, detail: String },
    #[error("the index at {url} gives no publish URL (HTTP {status}): {message}")]
    Refused { url: String, status: u16, message: String },
    #[error("the index at {url} answered something that is not a publish answer: {detail}")]
    BadAnswer { url: String, detail: String },
}

/// Asks one index server for the publish URL of one stream.
#[derive(Clone, Debug)]
pub struct IndexClient {
    endpoint: String,
    bearer: Option<String>,
    http: reqwest::Client,
}

/// What went wrong in a request, in a few words: the innermost cause (e.g. "Connection refused"),
/// as reqwest's own message repeats the URL and hides the reason.
fn reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", ASK_TIMEOUT.as_secs());
    }
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

impl IndexClient {
    /// `index` is the server's base URL, `stream` is `app/stream` (a `?query` goes along, e.g. a vhost).
    pub fn new(index: &str, stream: &str) -> Result<IndexClient, TargetError> {
        let base = index.trim_end_matches('/');
        if !base.starts_with("http://") || base.len() <= "http://".len() {
            return Err(TargetError::BadIndex(index.to_string()));
        }
        let (path, query) = stream.split_once('?').map_or((stream, None), |(p, q)| (p, Some(q)));
        let ok = path.split_once('/').is_some_and(|(app, name)| {
            !app.is_empty() && !name.is_empty() && !name.contains('/') && !path.contains(char::is_whitespace)
        });
        if !ok {
            return Err(TargetError::BadStream(stream.to_string()));
        }
        let endpoint = match query {
            Some(q) => format!("{base}/api/v1/publish/{path}?{q}"),
            None => format!("{base}/api/v1/publish/{path}"),
        };
        let http = reqwest::Client::builder()
            .timeout(ASK_TIMEOUT)
            .build()
            .map_err(|e| TargetError::Unreachable { url: endpoint.clone(), detail: reason(&e) })?;
        Ok(IndexClient { endpoint, bearer: None, http })
    }

    /// Brings a publish token (access control on): the index puts it in the URLs it gives.
    pub fn with_token(mut self, token: &str) -> IndexClient {
        let sep = if self.endpoint.contains('?') { '&' } else { '?' };
        self.endpoint = format!("{}{sep}token={token}", self.endpoint);
        self
    }

    /// Asks with the index's admin bearer token (access control on): the index then puts a fresh
    /// publish token in each URL it gives.
    pub fn with_bearer(mut self, admin_token: &str) -> IndexClient {
        self.bearer = Some(admin_token.to_string());
        self
    }

    /// The URL asked.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Asks the index once.
    pub async fn ask(&self) -> Result<PublishAnswer, TargetError> {
        let url = &self.endpoint;
        let mut req = self.http.get(url);
        if let Some(b) = &self.bearer {
            req = req.bearer_auth(b);
        }
        let resp = req.send().await.map_err(|e| TargetError::Unreachable { url: url.clone(), detail: reason(&e) })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| TargetError::Unreachable { url: url.clone(), detail: reason(&e) })?;
        let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| TargetError::BadAnswer {
            url: url.clone(),
            detail: format!("HTTP {status}, not JSON ({e})"),
        })?;
        if !status.is_success() || json["code"] != 0 {
            let message = json["error"].as_str().map_or_else(|| json.to_string(), str::to_string);
            return Err(TargetError::Refused { url: url.clone(), status: status.as_u16(), message });
        }
        serde_json::from_value(json).map_err(|e| TargetError::BadAnswer { url: url.clone(), detail: e.to_string() })
    }
}

/// Where a push goes.
#[derive(Clone, Debug)]
pub enum Target {
    /// These RTMP URLs, all at once, always.
    Fixed(Vec<String>),
    /// The origin the index names, asked again before each restart.
    Index(IndexClient),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(node: &str) -> Origin {
        Origin { url: format!("rtmp://{node}/live/a"), node: node.into(), region: "eu".into() }
    }

    #[test]
    fn the_answer_parses_and_the_failed_origin_is_passed_over() {
        let a: PublishAnswer = serde_json::from_str(
            r#"{"code":0,"url":"rtmp://o1/live/a","node":"o1","region":"eu","stream":{"key":"k","live":true},
               "backups":[{"url":"rtmp://o2/live/a","node":"o2","region":"eu"},{"url":"rtmp://o3/live/a","node":"o3","region":"eu"}]}"#,
        )
        .unwrap();
        assert_eq!(a.primary, origin("o1"));
        assert_eq!(a.pick(None), &origin("o1"));
        assert_eq!(a.pick(Some("o2")), &origin("o1"));
        assert_eq!(a.pick(Some("o1")), &origin("o2"), "the backup when the primary just failed");
        let alone = PublishAnswer { primary: origin("o1"), backups: vec![] };
        assert_eq!(alone.pick(Some("o1")), &origin("o1"), "no other origin: try it again");
    }

    #[test]
    fn the_endpoint_is_built_from_index_and_stream() {
        let c = IndexClient::new("http://127.0.0.1:8000/", "live/cam1").unwrap();
        assert_eq!(c.endpoint(), "http://127.0.0.1:8000/api/v1/publish/live/cam1");
        let c = IndexClient::new("http://idx", "live/cam1?vhost=news").unwrap();
        assert_eq!(c.endpoint(), "http://idx/api/v1/publish/live/cam1?vhost=news");
        assert_eq!(c.with_token("t0k").endpoint(), "http://idx/api/v1/publish/live/cam1?vhost=news&token=t0k");
        let c = IndexClient::new("http://idx", "live/cam1").unwrap().with_token("t0k");
        assert_eq!(c.endpoint(), "http://idx/api/v1/publish/live/cam1?token=t0k");
        for bad in ["cam1", "live/", "/cam1", "live/a/b", "live/a b"] {
            assert!(matches!(IndexClient::new("http://idx", bad), Err(TargetError::BadStream(_))), "{bad}");
        }
        assert!(matches!(IndexClient::new("idx:8000", "live/a"), Err(TargetError::BadIndex(_))));
        assert!(matches!(IndexClient::new("https://idx", "live/a"), Err(TargetError::BadIndex(_))));
    }

    #[tokio::test]
    async fn an_index_that_is_not_there_is_named_with_the_reason() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let c = IndexClient::new(&format!("http://127.0.0.1:{port}"), "live/a").unwrap();
        let e = c.ask().await.unwrap_err().to_string();
        assert!(e.contains(&format!("http://127.0.0.1:{port}/api/v1/publish/live/a")), "{e}");
        assert!(e.to_lowercase().contains("refused"), "{e}");
    }
}

//! Origin cluster: asking where a stream lives, so a client is sent there instead of waiting on a
//! node that will never have it — SRS's `origin_cluster` / `coworkers`, with the index as the
//! coworker that knows every origin.
//!
//! - An origin with coworkers (`--coworker URL`, or the index of `--index`) that is asked for a
//!   stream it does not have asks them (`/api/v1/clusters`, SRS's API, answered by the index and
//!   by SRS origins alike) and redirects the player: RTMP with SRS's 302 (which SRS's and
//!   Ferrocast's edges follow), HTTP-FLV and HLS with an HTTP 302 when the answer names the
//!   origin's HTTP address (the index's does; SRS's has none).
//! - An edge with `--index` asks it before walking its `--origin` list, for a player's pull and for
//!   a publisher's push up (where the index places the stream).
//!
//! Every lookup is bounded by [`LOOKUP_TIMEOUT`]: an unreachable index costs a player that long
//! once, and the static list is the fallback.

use std::time::Duration;

use reqwest::Url;
use serde_json::Value;
use tracing::debug;

use crate::config::{NodeConfig, Role};
use crate::key::StreamKey;

/// How long one lookup may take before the node goes on without its answer.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_millis(1000);

/// Where a stream lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The origin's RTMP `host:port`.
    pub rtmp: String,
    /// Its HTTP base URL (HTTP-FLV, HLS), when the answer has one.
    pub http: Option<String>,
}

/// How long an answer naming an origin is reused (many players of one stream arriving at once
/// make one lookup); a failure to pull from it forgets it at once.
const CACHE_FOR: Duration = Duration::from_secs(2);

/// Most answers cached; past it the cache starts over.
const CACHE_MAX: usize = 10_000;

/// The servers a node asks: coworkers (an origin) or the index (an edge).
pub struct Locator {
    bases: Vec<Url>,
    client: reqwest::Client,
    /// Recent answers naming an origin, by stream.
    cache: std::sync::Mutex<std::collections::HashMap<StreamKey, (Location, std::time::Instant)>>,
}

impl Locator {
    /// An origin's coworkers: `--coworker`s, else the index of `--index`. None on an edge or
    /// when neither is configured.
    pub fn coworkers(config: &NodeConfig) -> Option<Locator> {
        if config.role != Role::Origin {
            return None;
        }
        let mut bases: Vec<Url> = config.coworkers.iter().filter_map(|c| Url::parse(c).ok()).collect();
        if bases.is_empty() {
            bases.extend(config.index.as_deref().and_then(index_base));
        }
        Locator::new(bases)
    }

    /// An edge's index (`--index`). None on an origin or without one.
    pub fn index(config: &NodeConfig) -> Option<Locator> {
        if config.role != Role::Edge {
            return None;
        }
        Locator::new(config.index.as_deref().and_then(index_base).into_iter().collect())
    }

    fn new(bases: Vec<Url>) -> Option<Locator> {
        if bases.is_empty() {
            return None;
        }
        let client = reqwest::Client::builder()
            .timeout(LOOKUP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Some(Locator { bases, client, cache: Default::default() })
    }

    /// The origin holding `key`, by the first server that knows. `param` (the client's query,
    /// with its token) goes along: the index tells where a protected stream is only to a caller
    /// who may play it.
    pub async fn locate(&self, key: &StreamKey, param: &str) -> Option<Location> {
        if let Some((found, at)) = self.cache().get(key)
            && at.elapsed() < CACHE_FOR
        {
            return Some(found.clone());
        }
        let found = self.ask(key, param).await?;
        let mut cache = self.cache();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key.clone(), (found.clone(), std::time::Instant::now()));
        Some(found)
    }

    /// Drops the cached answer for `key` (pulling from the origin it named failed).
    pub fn forget(&self, key: &StreamKey) {
        self.cache().remove(key);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<StreamKey, (Location, std::time::Instant)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn ask(&self, key: &StreamKey, param: &str) -> Option<Location> {
        for base in &self.bases {
            let mut url = base.clone();
            url.set_path("/api/v1/clusters");
            let coworker = format!("{}:{}", base.host_str().unwrap_or(""), base.port_or_known_default().unwrap_or(80));
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("vhost", &key.vhost).append_pair("app", &key.app).append_pair("stream", &key.stream);
                q.append_pair("coworker", &coworker);
                for (k, v) in query_pairs(param) {
                    q.append_pair(&k, &v);
                }
            }
            match self.get_json(url).await {
                Some(v) => {
                    if let Some(found) = location(&v["data"]["origin"]) {
                        return Some(found);
                    }
                }
                None => continue,
            }
        }
        None
    }

    /// Where the index places a publisher of `key` (`/api/v1/publish`): the origin's RTMP
    /// `host:port`. `param` carries the publisher's token.
    pub async fn placement(&self, key: &StreamKey, param: &str) -> Option<String> {
        let base = self.bases.first()?;
        let mut url = base.clone();
        url.set_path(&format!("/api/v1/publish/{}/{}", key.app, key.stream));
        {
            let mut q = url.query_pairs_mut();
            if key.vhost != crate::key::DEFAULT_VHOST {
                q.append_pair("vhost", &key.vhost);
            }
            for (k, v) in query_pairs(param) {
                q.append_pair(&k, &v);
            }
        }
        let v = self.get_json(url).await?;
        let rtmp = Url::parse(v["url"].as_str()?).ok()?;
        Some(format!("{}:{}", rtmp.host_str()?, rtmp.port().unwrap_or(1935)))
    }

    async fn get_json(&self, url: Url) -> Option<Value> {
        let answer = async {
            let mut resp = self.client.get(url.clone()).send().await.ok()?;
            if !resp.status().is_success() {
                debug!(%url, status = %resp.status(), "cluster lookup refused");
                return None;
            }
            // The same bound as hook answers (SRS's answer is a few hundred bytes).
            match crate::hooks::read_bounded(&mut resp, crate::hooks::MAX_ANSWER_BYTES).await {
                Ok(body) => serde_json::from_slice(&body).ok(),
                Err(e) => {
                    tracing::warn!(%url, "cluster lookup answer refused: {e}");
                    None
                }
            }
        };
        match tokio::time::timeout(LOOKUP_TIMEOUT, answer).await {
            Ok(v) => v,
            Err(_) => {
                debug!(%url, "cluster lookup timed out");
                None
            }
        }
    }
}

/// The base URL (scheme, host, port) of the `--index` setting, which may name the register path.
fn index_base(index: &str) -> Option<Url> {
    let mut url = Url::parse(index).ok()?;
    url.set_path("/");
    url.set_query(None);
    Some(url)
}

/// `data.origin` of a `/api/v1/clusters` answer, when it names one.
fn location(origin: &Value) -> Option<Location> {
    let ip = origin["ip"].as_str().filter(|ip| !ip.is_empty())?;
    let port = origin["port"].as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0)?;
    let host = if ip.contains(':') && !ip.starts_with('[') { format!("[{ip}]") } else { ip.to_string() };
    let http = origin["http"].as_str().filter(|h| h.starts_with("http://") || h.starts_with("https://"));
    Some(Location { rtmp: format!("{host}:{port}"), http: http.map(|h| h.trim_end_matches('/').to_string()) })
}

/// `?a=1&b=2` (or `a=1&b=2`) as decoded pairs, without the keys a lookup sets itself.
fn query_pairs(param: &str) -> Vec<(String, String)> {
    let q = param.strip_prefix('?').unwrap_or(param);
    let Ok(parsed) = Url::parse(&format!("http://query/?{q}")) else { return Vec::new() };
    parsed
        .query_pairs()
        .filter(|(k, _)| !matches!(&**k, "vhost" | "app" | "stream" | "coworker" | "ip"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_read_as_srs_and_the_index_write_them() {
        let srs = json!({"ip": "10.0.0.3", "port": 1935, "vhost": "__defaultVhost__", "api": "10.0.0.3:1985"});
        assert_eq!(location(&srs), Some(Location { rtmp: "10.0.0.3:1935".into(), http: None }));
        let ours = json!({"ip": "10.0.0.3", "port": 19350, "http": "http://10.0.0.3:8080/"});
        assert_eq!(location(&ours).unwrap().http.as_deref(), Some("http://10.0.0.3:8080"));
        assert_eq!(location(&json!({"ip": "::1", "port": 1935})).unwrap().rtmp, "[::1]:1935");
        for nobody in [Value::Null, json!({"ip": "", "port": 1935}), json!({"ip": "h", "port": 0}), json!({"ip": "h"})]
        {
            assert_eq!(location(&nobody), None, "{nobody}");
        }
    }

    #[test]
    fn the_clients_query_goes_along_without_the_lookup_keys() {
        assert_eq!(
            query_pairs("?token=a%2Bb&vhost=x&app=y&n=1"),
            [("token".to_string(), "a+b".to_string()), ("n".to_string(), "1".to_string())]
        );
        assert!(query_pairs("").is_empty());
    }

    /// A coworker that answers 10 MB of JSON (or garbage) is no answer: the lookup returns none,
    /// within its bound, and holds no more than the cap.
    #[tokio::test]
    async fn a_hostile_coworker_is_no_answer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut answers = [
                format!(
                    "{{\"code\":0,\"data\":{{\"origin\":{{\"ip\":\"10.0.0.3\",\"port\":1935,\"pad\":\"{}\"}}}}}}",
                    "x".repeat(10 << 20)
                ),
                "<html>502</html>".to_string(),
            ]
            .into_iter();
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let Some(body) = answers.next() else { return };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            }
        });
        let locator = Locator::new(vec![Url::parse(&format!("http://{addr}")).unwrap()]).unwrap();
        let key = StreamKey::new("", "live", "cam1");
        assert_eq!(locator.locate(&key, "").await, None, "10 MB answer");
        assert_eq!(locator.locate(&key, "").await, None, "not JSON");
    }

    #[test]
    fn the_index_base_drops_the_register_path_and_secret() {
        assert_eq!(
            index_base("http://10.0.0.9:8000/api/v1/srs/register?secret=s").unwrap().as_str(),
            "http://10.0.0.9:8000/"
        );
    }
}

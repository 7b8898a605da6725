//! A node started with `--api-token` answers its API only to callers with the token; the index
//! polls it with the token its node spec carries (`api_token=`), and never shows that token.

mod common;

use std::time::Duration;

use common::{IndexProcess, NodeProcess, eventually, get_json};

const TOKEN: &str = "node-api-token-7f3a";

#[tokio::test]
async fn the_index_polls_a_token_protected_node_with_its_token_and_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&["--name", "o1", "--api-token", TOKEN]).await;
    let api = format!("http://{}", node.api);
    // Without the token the node's API refuses a reader.
    let refused = reqwest::get(format!("{api}/api/v1/streams/")).await.unwrap();
    assert_eq!(refused.status(), 401);

    let with = format!("name=with,role=origin,api={api},rtmp=rtmp://{},api_token={TOKEN}", node.rtmp);
    let without = format!("name=without,role=origin,api={api},rtmp=rtmp://{}", node.rtmp);
    let index = IndexProcess::start(&dir.path().join("index.db"), &["--node", &with, "--node", &without]).await;
    let idx = format!("http://{}", index.addr);
    let nodes = eventually(Duration::from_secs(15), || async {
        let v = get_json(&format!("{idx}/api/v1/nodes")).await;
        let health = |name: &str| {
            v["nodes"]
                .as_array()?
                .iter()
                .find(|n| n["name"] == name)
                .map(|n| n["health"].as_str().unwrap_or("").to_string())
        };
        (health("with")? == "up" && health("without")? == "down").then_some(v)
    })
    .await
    .expect("the node with its token is up, the one without is down");
    let without = nodes["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "without").unwrap();
    let error = without["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("401"), "the poll says why it failed: {error}");

    for path in ["/api/v1/nodes", "/api/v1/streams", "/metrics", "/api/v1/history"] {
        let body = reqwest::get(format!("{idx}{path}")).await.unwrap().text().await.unwrap();
        assert!(!body.contains(TOKEN), "{path} shows the node's API token");
    }
}

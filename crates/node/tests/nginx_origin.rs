//! A foreign origin: the edge pulls from nginx-rtmp (Debian's libnginx-mod-rtmp, installed by
//! scripts/test) and serves HTTP-FLV that ffprobe reads as h264 + aac.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use tokio::process::Command;

/// nginx with the RTMP module on a free loopback port, in its own temp dir; killed on drop.
struct Nginx {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    port: u16,
}

async fn start_nginx() -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let d = dir.path().display();
    let conf = format!(
        "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n\
         daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 256; }}\n\
         rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096; application live {{ live on; }} }} }}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-p")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nginx with libnginx-mod-rtmp is installed (scripts/test installs it)");
    eventually(Duration::from_secs(10), || async { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok() })
        .await
        .expect("nginx listens");
    Nginx { _child: child, _dir: dir, port }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_pulls_from_nginx_rtmp() {
    let nginx = start_nginx().await;
    let _publisher = publish_fixture(&format!("rtmp://127.0.0.1:{}/live/demo", nginx.port));
    let mut config = edge_config(&[format!("127.0.0.1:{}", nginx.port)]);
    config.media.play_wait_ms = 10_000;
    let edge = start_with(config).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // let nginx receive the publish

    let probe = ffprobe(&format!("http://{}/live/demo.flv", edge.http_addr)).await;
    assert!(probe.contains("h264,video,640,360") && probe.contains("aac,audio"), "{probe}");
    let rec = wait_published(edge.api_addr, "/live/demo").await;
    assert_eq!(rec["audio"]["codec"], "AAC");
    edge.shutdown().await;
}

//! Benchmark: how fast hook-driven events reach many WebSocket listeners. Connects `--listeners`
//! clients to a running index's `/api/v1/events`, then posts `on_publish` hooks for fresh streams
//! (`live/fanout-N`) at `--rate` per second; each listener notes when it sees that stream's
//! `stream_published`. Latency = receipt − the moment the hook was posted, over every listener
//! and event. Loopback only (the index must be on 127.0.0.1). With `--listen-index URL` the
//! listeners connect to another replica of a shared-mode cluster than the one hooks go to: the
//! latency across replicas (through Redis). `--app NAME` (default `live`) puts the hooked streams
//! in another app, and the listeners' `?app=` filter with them: in a big cluster every new listener
//! first gets a snapshot of the streams it may see, which costs far more than the events.
//!
//! cargo run --release -p ferrocast-index --example events_fanout -- \
//!     --index http://127.0.0.1:8000 --secret S --listeners 1000 --events 200 --rate 20

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;

struct Args {
    index: String,
    /// Where the listeners connect [default: --index].
    listen_index: Option<String>,
    /// App of the hooked streams and of the listeners' filter.
    app: String,
    secret: String,
    listeners: usize,
    events: usize,
    rate: f64,
}

fn args() -> Args {
    let mut a = Args {
        index: String::new(),
        listen_index: None,
        app: "live".into(),
        secret: String::new(),
        listeners: 1000,
        events: 200,
        rate: 20.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--index" => a.index = val(),
            "--listen-index" => a.listen_index = Some(val()),
            "--app" => a.app = val(),
            "--secret" => a.secret = val(),
            "--listeners" => a.listeners = val().parse().expect("--listeners N"),
            "--events" => a.events = val().parse().expect("--events N"),
            "--rate" => a.rate = val().parse().expect("--rate PER_S"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(a.index.starts_with("http://127.0.0.1:"), "--index must be http://127.0.0.1:PORT (loopback only)");
    assert!(
        a.listen_index.as_deref().is_none_or(|l| l.starts_with("http://127.0.0.1:")),
        "--listen-index must be http://127.0.0.1:PORT (loopback only)"
    );
    a
}

#[tokio::main]
async fn main() {
    let a = args();
    let listen = a.listen_index.as_deref().unwrap_or(&a.index);
    let ws_url = format!("{}/api/v1/events?app={}", listen.replacen("http://", "ws://", 1), a.app);
    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; a.events]));
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap()));
    let mut tasks = Vec::new();
    let connected = Arc::new(tokio::sync::Semaphore::new(0));
    for _ in 0..a.listeners {
        let (url, sent, hist, connected, events) =
            (ws_url.clone(), sent.clone(), hist.clone(), connected.clone(), a.events);
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("WebSocket connects");
            connected.add_permits(1);
            let mut seen = 0;
            while seen < events {
                let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(30), ws.next()).await else { break };
                let now = Instant::now();
                let Ok(text) = msg.into_text() else { continue };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                if v["type"] != "stream_published" {
                    continue;
                }
                let Some(n) = v["stream"].as_str().and_then(|s| s.rsplit("fanout-").next()?.parse::<usize>().ok())
                else {
                    continue;
                };
                let Some(t0) = sent.lock().unwrap().get(n).copied().flatten() else { continue };
                hist.lock().unwrap().record(now.duration_since(t0).as_micros().max(1) as u64).unwrap();
                seen += 1;
            }
            seen
        }));
    }
    let started = Instant::now();
    let _ = connected.acquire_many(a.listeners as u32).await.expect("all listeners connect");
    eprintln!("{} listeners connected in {:?}", a.listeners, started.elapsed());
    let client = reqwest::Client::new();
    let hook = format!("{}/api/v1/hooks?secret={}", a.index, a.secret);
    let gap = Duration::from_secs_f64(1.0 / a.rate);
    let run = Instant::now();
    for n in 0..a.events {
        tokio::time::sleep_until((run + gap * n as u32).into()).await;
        let body = serde_json::json!({
            "server_id": "bench", "service_id": "bench", "action": "on_publish", "client_id": format!("c{n}"),
            "ip": "127.0.0.1", "vhost": "__defaultVhost__", "app": a.app, "tcUrl": format!("rtmp://127.0.0.1/{}", a.app),
            "stream": format!("fanout-{n}"), "param": "", "stream_url": format!("/{}/fanout-{n}", a.app), "stream_id": "vid-1",
        });
        sent.lock().unwrap()[n] = Some(Instant::now());
        let resp = client.post(&hook).json(&body).send().await.expect("hook POST");
        assert!(resp.status().is_success(), "hook answered {}", resp.status());
    }
    let mut received = 0;
    for t in tasks {
        received += t.await.unwrap_or(0);
    }
    let h = hist.lock().unwrap();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "listeners={} events={} rate={}/s deliveries={}/{} latency_ms p50={:.2} p90={:.2} p99={:.2} max={:.2}",
        a.listeners,
        a.events,
        a.rate,
        received,
        a.listeners * a.events,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        h.max() as f64 / 1000.0
    );
}

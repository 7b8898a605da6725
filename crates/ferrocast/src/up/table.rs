//! The table `ferrocast up` prints once the cluster is ready. One `name  url` row per line, so a
//! person copies a URL from it and a script (or the test) reads the rows back; every other line
//! starts with `#`.

use std::fmt::Write;
use std::time::Duration;

/// An edge's public addresses, `host:port`.
pub struct EdgeUrls {
    pub name: &'static str,
    pub rtmp: String,
    pub http: String,
}

/// What the table shows.
pub struct Cluster {
    /// The index server, `host:port`.
    pub index: String,
    pub edges: Vec<EdgeUrls>,
    /// The origin's RTMP address, `host:port`.
    pub origin_rtmp: String,
    /// A play token for `live/*`.
    pub play_token: String,
    /// A publish token for `live/mine`.
    pub publish_token: String,
    pub token_ttl: Duration,
}

/// The rows, in print order.
pub fn rows(c: &Cluster) -> Vec<(String, String)> {
    let play = format!("?token={}", c.play_token);
    let index = &c.index;
    let mut rows = vec![
        ("dashboard".to_string(), format!("http://{index}/{play}")),
        ("index".to_string(), format!("http://{index}/")),
        // With access control on, the directory lists the streams of `live` only to a play token.
        ("directory".to_string(), format!("http://{index}/api/v1/streams{play}")),
        ("play-flv".to_string(), format!("http://{index}/play/live/demo.flv{play}")),
        ("play-hls".to_string(), format!("http://{index}/play/live/demo.m3u8{play}")),
        ("play-rtmp".to_string(), format!("http://{index}/play/live/demo{play}")),
        // WebRTC: a WHEP player POSTs its offer here and follows the 307 to an edge.
        ("play-whep".to_string(), format!("http://{index}/play/live/demo/whep{play}")),
    ];
    for e in &c.edges {
        rows.push((format!("{}-flv", e.name), format!("http://{}/live/demo.flv{play}", e.http)));
        rows.push((format!("{}-hls", e.name), format!("http://{}/live/demo.m3u8{play}", e.http)));
        rows.push((format!("{}-rtmp", e.name), format!("rtmp://{}/live/demo{play}", e.rtmp)));
    }
    rows.push(("publish".to_string(), format!("rtmp://{}/live/mine?token={}", c.origin_rtmp, c.publish_token)));
    rows
}

/// The whole text: a heading, the rows, and how to use them.
pub fn render(c: &Cluster, took: Duration) -> String {
    let rows = rows(c);
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# ferrocast up: origin, edge-eu, edge-us and the index server are running (ready in {:.1} s).",
        took.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "# Access control is on: play tokens cover live/*, the publish token live/mine; valid for {}.",
        human(c.token_ttl)
    );
    for (name, url) in &rows {
        let _ = writeln!(out, "{name:<width$}{url}");
    }
    let _ = writeln!(out, "# play-* go through the index: FLV and HLS redirect to an edge, play-rtmp answers JSON");
    let _ = writeln!(out, "# with the RTMP URL of the chosen edge. The demo stream live/demo loops the fixture clip.");
    let _ = writeln!(out, "# Publish your own: ffmpeg -re -i FILE -c copy -f flv \"<publish URL>\" (OBS: server");
    let _ = writeln!(out, "# rtmp://{}/live, stream key mine?token=...). Ctrl-C stops the cluster.", c.origin_rtmp);
    out
}

/// `24h`, `90m`, `45s`: the largest unit that divides the duration.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s >= 3600 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s >= 60 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_name_and_url() {
        let c = Cluster {
            index: "127.0.0.1:17000".into(),
            edges: vec![EdgeUrls { name: "edge-eu", rtmp: "127.0.0.1:17011".into(), http: "127.0.0.1:17012".into() }],
            origin_rtmp: "127.0.0.1:17001".into(),
            play_token: "P".into(),
            publish_token: "W".into(),
            token_ttl: Duration::from_secs(86_400),
        };
        let text = render(&c, Duration::from_millis(1500));
        let table: Vec<Vec<&str>> =
            text.lines().filter(|l| !l.starts_with('#')).map(|l| l.split_whitespace().collect()).collect();
        assert!(table.iter().all(|r| r.len() == 2), "{text}");
        let url = |name: &str| table.iter().find(|r| r[0] == name).map(|r| r[1]).unwrap();
        assert_eq!(url("play-flv"), "http://127.0.0.1:17000/play/live/demo.flv?token=P");
        assert_eq!(url("edge-eu-rtmp"), "rtmp://127.0.0.1:17011/live/demo?token=P");
        assert_eq!(url("play-whep"), "http://127.0.0.1:17000/play/live/demo/whep?token=P");
        assert_eq!(url("publish"), "rtmp://127.0.0.1:17001/live/mine?token=W");
        assert_eq!((human(Duration::from_secs(7200)), human(Duration::from_secs(90))), ("2h".into(), "90s".into()));
        assert!(text.contains("valid for 24h") && text.contains("1.5 s"), "{text}");
    }
}

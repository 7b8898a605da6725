//! What a push tells its user: events (publishing to an origin, FFmpeg failed, waiting to
//! restart, the index could not be asked) and a one-line summary built from them — fps, bitrate,
//! speed, dropped frames, the current origin and the restarts so far. The supervisor sends the
//! events; how they reach a screen is the caller's choice.

use std::time::Duration;

use crate::progress::Progress;

/// Something that happened to a push.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// FFmpeg starts publishing to `urls`; `label` names the origin node (or the addresses).
    Publishing { label: String, urls: Vec<String>, moved_from: Option<String>, restarts: u32 },
    /// A progress block from FFmpeg.
    Progress(Progress),
    /// FFmpeg stopped by itself or was killed for making no progress; a restart follows.
    Failed { reason: String, last_error: Option<String> },
    /// The wait before the next restart.
    Waiting { delay: Duration },
    /// The index could not be asked; `then` says what the push does instead.
    IndexTrouble { error: String, then: String },
}

/// A URL fit for a log: the query (where a token lives) is left out.
pub fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Event {
    /// The event as a log line; `None` for progress, which only feeds the status line.
    pub fn message(&self) -> Option<String> {
        Some(match self {
            Event::Progress(_) => return None,
            Event::Publishing { label, urls, moved_from, restarts } => {
                let urls: Vec<String> = urls.iter().map(|u| redact(u)).collect();
                let mut m = format!("publishing to {label}: {}", urls.join(", "));
                if let Some(from) = moved_from {
                    m.push_str(&format!(" (moved from {from})"));
                }
                if *restarts > 0 {
                    m.push_str(&format!(" [restart {restarts}]"));
                }
                m
            }
            Event::Failed { reason, last_error: Some(e) } => format!("{reason}: {e}"),
            Event::Failed { reason, last_error: None } => reason.clone(),
            Event::Waiting { delay } => format!("restarting FFmpeg in {}", secs(*delay)),
            Event::IndexTrouble { error, then } => format!("{error}; {then}"),
        })
    }
}

/// The state of a push as the status line shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    pub progress: Option<Progress>,
    pub origin: Option<String>,
    pub restarts: u32,
    pub waiting: Option<Duration>,
}

fn or_dash<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map_or_else(|| "-".to_string(), f)
}

impl Status {
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Publishing { label, restarts, .. } => {
                self.origin = Some(label.clone());
                self.restarts = *restarts;
                self.progress = None;
                self.waiting = None;
            }
            Event::Progress(p) => self.progress = Some(p.clone()),
            Event::Waiting { delay } => self.waiting = Some(*delay),
            Event::Failed { .. } | Event::IndexTrouble { .. } => {}
        }
    }

    /// e.g. `fps=25.0 bitrate=842.3kbit/s speed=1.00x dropped=0 time=00:01:05 origin=o1 restarts=0`.
    pub fn line(&self) -> String {
        let p = self.progress.clone().unwrap_or_default();
        let mut s = format!(
            "fps={} bitrate={} speed={} dropped={} time={} origin={} restarts={}",
            or_dash(p.fps, |v| format!("{v:.1}")),
            or_dash(p.bitrate_kbps, |v| format!("{v:.1}kbit/s")),
            or_dash(p.speed, |v| format!("{v:.2}x")),
            or_dash(p.drop_frames, |v| v.to_string()),
            or_dash(p.out_time_us.filter(|t| *t >= 0), |t| {
                let s = t / 1_000_000;
                format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            }),
            self.origin.as_deref().unwrap_or("-"),
            self.restarts,
        );
        if let Some(d) = self.waiting {
            s.push_str(&format!(" (restarting in {})", secs(d)));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_follows_the_events() {
        let mut st = Status::default();
        assert_eq!(st.line(), "fps=- bitrate=- speed=- dropped=- time=- origin=- restarts=0");
        st.apply(&Event::Publishing {
            label: "o1".into(),
            urls: vec!["rtmp://o1/live/a".into()],
            moved_from: None,
            restarts: 0,
        });
        st.apply(&Event::Progress(Progress {
            fps: Some(25.02),
            bitrate_kbps: Some(842.34),
            speed: Some(1.0),
            drop_frames: Some(2),
            out_time_us: Some(3_725_000_000),
            ..Default::default()
        }));
        assert_eq!(st.line(), "fps=25.0 bitrate=842.3kbit/s speed=1.00x dropped=2 time=01:02:05 origin=o1 restarts=0");
        st.apply(&Event::Waiting { delay: Duration::from_millis(500) });
        assert!(st.line().ends_with("restarts=0 (restarting in 0.5s)"), "{}", st.line());
        st.apply(&Event::Publishing {
            label: "o2".into(),
            urls: vec!["rtmp://o2/live/a".into()],
            moved_from: Some("o1".into()),
            restarts: 1,
        });
        assert_eq!(st.line(), "fps=- bitrate=- speed=- dropped=- time=- origin=o2 restarts=1");
    }

    #[test]
    fn messages_name_the_origin_and_hide_tokens() {
        let e = Event::Publishing {
            label: "o2".into(),
            urls: vec!["rtmp://h:1935/live/a?token=secret".into()],
            moved_from: Some("o1".into()),
            restarts: 3,
        };
        assert_eq!(e.message().unwrap(), "publishing to o2: rtmp://h:1935/live/a?… (moved from o1) [restart 3]");
        assert_eq!(Event::Progress(Progress::default()).message(), None);
        let f =
            Event::Failed { reason: "FFmpeg exited (exit status: 1)".into(), last_error: Some("Broken pipe".into()) };
        assert_eq!(f.message().unwrap(), "FFmpeg exited (exit status: 1): Broken pipe");
    }
}

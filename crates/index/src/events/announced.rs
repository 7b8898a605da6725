//! Which streams listeners were told are live. Two sources announce streams — the hook receiver at
//! once, the directory merge after polls — and a listener must hear each publish and unpublish
//! once: whichever source comes first announces it, the other finds it already said.
//!
//! A hook is fresher than a poll: for a grace period after a hook changed a stream, the merge does
//! not contradict it (a snapshot read before an `on_unpublish` still lists the stream). After that
//! the directory is the truth again: a hook-announced stream that never shows up in polls is
//! announced gone, one that polls still list after its unpublish hook is announced live again.
//! Marks are changed and the event published under one lock, so the two sources never interleave.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Bus, Event, EventKind};

/// The announced state of every stream that is live or ended within a grace period.
#[derive(Default)]
pub(crate) struct Announced {
    marks: Mutex<HashMap<Arc<str>, Mark>>,
}

#[derive(Clone, Copy, Debug)]
struct Mark {
    live: bool,
    /// When a hook last changed it; polls do not contradict a hook within the grace period.
    hook_at: Option<Instant>,
}

impl Mark {
    fn hook_fresh(&self, now: Instant, grace: Duration) -> bool {
        self.hook_at.is_some_and(|t| now.saturating_duration_since(t) < grace)
    }
}

impl Announced {
    pub(crate) fn lock(&self) -> Marks<'_> {
        Marks(self.marks.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The marks, locked: hold this while publishing what a change of mark announces.
pub(crate) struct Marks<'a>(MutexGuard<'a, HashMap<Arc<str>, Mark>>);

impl Marks<'_> {
    /// A hook said `key` is live. True when it was not announced live yet.
    pub(crate) fn hook_live(&mut self, key: &str, now: Instant) -> bool {
        self.hook_set(key, true, now)
    }

    /// A hook said `key` ended. True when it was announced live.
    pub(crate) fn hook_gone(&mut self, key: &str, now: Instant) -> bool {
        self.hook_set(key, false, now)
    }

    fn hook_set(&mut self, key: &str, live: bool, now: Instant) -> bool {
        let mark = Mark { live, hook_at: Some(now) };
        match self.0.get_mut(key) {
            Some(m) => std::mem::replace(m, mark).live != live,
            None => {
                self.0.insert(key.into(), mark);
                live
            }
        }
    }

    pub(crate) fn is_live(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|m| m.live)
    }

    /// The directory lists `key`. True when it is to be announced live now: it is not yet, and no
    /// hook said it ended within `grace`.
    pub(crate) fn poll_listed(&mut self, key: &Arc<str>, now: Instant, grace: Duration) -> bool {
        match self.0.get_mut(key) {
            Some(m) if m.live || m.hook_fresh(now, grace) => false,
            Some(m) => {
                *m = Mark { live: true, hook_at: None };
                true
            }
            None => {
                self.0.insert(key.clone(), Mark { live: true, hook_at: None });
                true
            }
        }
    }

    /// Streams announced live that the directory no longer lists (`listed` false), unless a hook
    /// announced them within `grace`: marked gone and returned, in key order. Also forgets the
    /// ended streams whose grace has passed.
    pub(crate) fn poll_unlisted(
        &mut self,
        listed: impl Fn(&str) -> bool,
        now: Instant,
        grace: Duration,
    ) -> Vec<Arc<str>> {
        let mut gone = Vec::new();
        self.0.retain(|key, m| {
            if m.live && !m.hook_fresh(now, grace) && !listed(key) {
                gone.push(key.clone());
                return false;
            }
            m.live || m.hook_fresh(now, grace)
        });
        gone.sort_unstable();
        gone
    }
}

/// What the hook receiver calls. `data` (the stream record: `producer::stream_data`) is built
/// only when an event goes out.
impl Bus {
    /// A node's `on_publish` was accepted: announces `stream_published` for `key`
    /// (`vhost/app/stream`) unless a hook or a poll already did. Returns the event sent.
    pub fn hook_published(&self, key: &str, data: impl FnOnce() -> Value) -> Option<Arc<Event>> {
        let mut marks = self.announced.lock();
        marks.hook_live(key, Instant::now()).then(|| self.publish(EventKind::StreamPublished, Some(key), data()))
    }

    /// A node's `on_unpublish`: announces `stream_unpublished` for `key` if it was announced live.
    /// Returns the event sent.
    pub fn hook_unpublished(&self, key: &str, data: impl FnOnce() -> Value) -> Option<Arc<Event>> {
        let mut marks = self.announced.lock();
        if !marks.hook_gone(key, Instant::now()) {
            return None;
        }
        self.forget_viewers(key);
        Some(self.publish(EventKind::StreamUnpublished, Some(key), data()))
    }

    /// Whether listeners were told `key` is live.
    pub fn announced_live(&self, key: &str) -> bool {
        self.announced.lock().is_live(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(3);

    #[test]
    fn whichever_source_comes_first_announces_once() {
        let a = Announced::default();
        let key: Arc<str> = "v/live/a".into();
        let t0 = Instant::now();
        let mut m = a.lock();
        assert!(m.hook_live(&key, t0), "the hook comes first");
        assert!(!m.poll_listed(&key, t0, GRACE), "the poll finds it said");
        assert!(!m.hook_live(&key, t0), "a repeated hook too");
        assert!(m.hook_gone(&key, t0));
        assert!(!m.hook_gone(&key, t0));
        assert!(m.poll_unlisted(|_| false, t0, GRACE).is_empty(), "the poll finds it said");
        assert!(!m.hook_gone("v/live/never", t0), "never announced, nothing to retract");
        assert!(m.poll_listed(&"v/live/b".into(), t0, GRACE), "the poll comes first");
        assert!(!m.hook_live("v/live/b", t0));
    }

    #[test]
    fn polls_do_not_contradict_a_fresh_hook_but_win_after_the_grace() {
        let a = Announced::default();
        let key: Arc<str> = "v/live/a".into();
        let t0 = Instant::now();
        let mut m = a.lock();
        m.hook_live(&key, t0);
        assert!(m.poll_unlisted(|_| false, t0 + GRACE / 2, GRACE).is_empty(), "not polled yet");
        assert_eq!(m.poll_unlisted(|_| false, t0 + GRACE, GRACE), std::slice::from_ref(&key), "never showed up");
        m.hook_live(&key, t0);
        m.hook_gone(&key, t0);
        assert!(!m.poll_listed(&key, t0 + GRACE / 2, GRACE), "a stale snapshot still lists it");
        assert!(m.poll_listed(&key, t0 + GRACE, GRACE), "still listed after the grace: live after all");
        m.hook_gone(&key, t0);
        m.poll_unlisted(|_| true, t0 + GRACE, GRACE);
        assert!(m.0.is_empty(), "ended marks are forgotten after the grace: {:?}", m.0);
    }
}

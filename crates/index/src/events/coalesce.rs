//! `viewers_changed` at most once per stream per second. Viewer counts move with every poll of
//! every edge; a dashboard wants the current number, not each step. The first change of a quiet
//! stream goes out at once; later ones within the window are only noted, and the flush tick sends
//! the stream's then-current record once the window has passed, so the final value always
//! arrives even when no further change comes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Bus, Event, EventKind};

pub(crate) struct Coalescer {
    window: Duration,
    /// Streams with a `viewers_changed` sent within the window.
    slots: Mutex<HashMap<Arc<str>, Slot>>,
}

struct Slot {
    sent: Instant,
    /// A change came after `sent`.
    pending: bool,
}

impl Coalescer {
    pub(crate) fn new(window: Duration) -> Coalescer {
        Coalescer { window, slots: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Bus {
    /// The viewers of `key` changed: publishes `viewers_changed` with `data` (the stream record)
    /// now if none went out for it within the window; otherwise `flush_viewers` sends it later.
    pub fn viewers_changed(&self, key: &str, data: impl FnOnce() -> Value) -> Option<Arc<Event>> {
        self.viewers_changed_at(key, Instant::now(), data)
    }

    fn viewers_changed_at(&self, key: &str, now: Instant, data: impl FnOnce() -> Value) -> Option<Arc<Event>> {
        let mut slots = self.viewers.lock();
        match slots.get_mut(key) {
            Some(slot) if now.saturating_duration_since(slot.sent) < self.viewers.window => {
                slot.pending = true;
                return None;
            }
            Some(slot) => *slot = Slot { sent: now, pending: false },
            None => {
                slots.insert(key.into(), Slot { sent: now, pending: false });
            }
        }
        Some(self.publish(EventKind::ViewersChanged, Some(key), data()))
    }

    /// Sends the noted changes whose window has passed, each with its current record from
    /// `current` (`None`: the stream is gone, nothing is sent). Returns how many went out.
    pub fn flush_viewers(&self, current: impl Fn(&str) -> Option<Value>) -> usize {
        self.flush_viewers_at(Instant::now(), current)
    }

    fn flush_viewers_at(&self, now: Instant, current: impl Fn(&str) -> Option<Value>) -> usize {
        let window = self.viewers.window;
        let mut sent = 0;
        let mut slots = self.viewers.lock();
        slots.retain(|key, slot| {
            if now.saturating_duration_since(slot.sent) < window {
                return true;
            }
            if !slot.pending {
                // Quiet for a window: the next change goes out at once, as for a new stream.
                return false;
            }
            let Some(data) = current(key) else { return false };
            self.publish(EventKind::ViewersChanged, Some(key), data);
            *slot = Slot { sent: now, pending: false };
            sent += 1;
            true
        });
        sent
    }

    /// The stream ended: a noted change is dropped.
    pub(crate) fn forget_viewers(&self, key: &str) {
        self.viewers.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_per_window_and_the_last_value_follows() {
        let bus = Bus::new(64);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let viewers = |n: u64| move || json!({ "viewers": n });
        assert!(bus.viewers_changed_at("k", at(0), viewers(1)).is_some(), "a quiet stream's change goes out");
        assert!(bus.viewers_changed_at("k", at(300), viewers(2)).is_none());
        assert!(bus.viewers_changed_at("k", at(600), viewers(3)).is_none());
        assert!(bus.viewers_changed_at("other", at(600), viewers(9)).is_some(), "per stream");
        let current = |_: &str| Some(json!({ "viewers": 3 }));
        assert_eq!(bus.flush_viewers_at(at(900), current), 0, "within the window");
        assert_eq!(bus.flush_viewers_at(at(1000), current), 1, "the last value once the window passed");
        let (held, _) = bus.resume(0).unwrap();
        let seen: Vec<_> =
            held.iter().map(|e| (e.stream.as_deref().unwrap().to_string(), e.data()["viewers"].clone())).collect();
        assert_eq!(seen, [("k".into(), json!(1)), ("other".into(), json!(9)), ("k".into(), json!(3))]);
        assert!(bus.viewers_changed_at("k", at(1500), viewers(4)).is_none(), "the flush opened a window");
        bus.forget_viewers("k");
        assert_eq!(bus.flush_viewers_at(at(3000), current), 0, "an ended stream's change is dropped");
        assert!(bus.viewers.lock().is_empty(), "quiet streams are forgotten");
    }
}

//! Connection caps per listener and per client address.
//!
//! It exists because every listener faces the internet and a connection costs a task, buffers and
//! a file descriptor before it has said anything: without a cap, one address that opens thousands
//! of connections and never completes a handshake (or never reads) takes the node's descriptors
//! and memory from everyone else. Each listener has a `ConnLimiter`; its accept loop takes a
//! `ConnPermit` per connection and closes the connections over either cap at once, with a log
//! line (at most one a second per listener, so an attack does not flood the log).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::warn;

/// The open connections of one listener.
pub struct ConnLimiter {
    name: &'static str,
    max_total: usize,
    max_per_ip: usize,
    /// The settings that set the two caps, named in the refusal's log line.
    settings: [&'static str; 2],
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    total: usize,
    /// Open connections per address; an address leaves with its last connection.
    per_ip: HashMap<IpAddr, usize>,
    last_warning: Option<Instant>,
    refused_since_warning: u64,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnPermit {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
}

impl ConnLimiter {
    /// A limiter for the listener `name`; 0 means no cap.
    pub fn new(name: &'static str, max_total: usize, max_per_ip: usize) -> Arc<ConnLimiter> {
        Self::with_settings(name, max_total, max_per_ip, ["--max-connections", "--max-connections-per-ip"])
    }

    /// A limiter whose caps come from other `settings` (or are fixed), named in its log lines.
    pub fn with_settings(
        name: &'static str,
        max_total: usize,
        max_per_ip: usize,
        settings: [&'static str; 2],
    ) -> Arc<ConnLimiter> {
        let cap = |n: usize| if n == 0 { usize::MAX } else { n };
        Arc::new(ConnLimiter {
            name,
            max_total: cap(max_total),
            max_per_ip: cap(max_per_ip),
            settings,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a connection from `ip`, or None (logged) when a cap is reached.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ConnPermit> {
        let ip = ip.to_canonical();
        let mut state = self.lock();
        let from_ip = state.per_ip.get(&ip).copied().unwrap_or(0);
        let refusal = if state.total >= self.max_total {
            Some(format!("{} connections open ({})", self.max_total, self.settings[0]))
        } else if from_ip >= self.max_per_ip {
            Some(format!("{} connections open from {ip} ({})", self.max_per_ip, self.settings[1]))
        } else {
            None
        };
        if let Some(reason) = refusal {
            state.refused_since_warning += 1;
            if state.last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                let refused = std::mem::take(&mut state.refused_since_warning);
                state.last_warning = Some(Instant::now());
                warn!(listener = self.name, %ip, refused, "connection refused: {reason}");
            }
            return None;
        }
        state.total += 1;
        *state.per_ip.entry(ip).or_insert(0) += 1;
        Some(ConnPermit { limiter: self.clone(), ip })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut state = self.limiter.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(n) = state.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_per_listener() {
        let l = ConnLimiter::new("test", 3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = l.try_acquire(a).unwrap();
        let _a2 = l.try_acquire(a).unwrap();
        assert!(l.try_acquire(a).is_none(), "per address");
        let _b1 = l.try_acquire(b).unwrap();
        assert!(l.try_acquire(b).is_none(), "per listener");
        drop(a1);
        let b2 = l.try_acquire(b);
        assert!(b2.is_some(), "a closed connection frees its place");
        assert_eq!(l.open(), 3);
        let unlimited = ConnLimiter::new("test", 0, 0);
        let many: Vec<_> = (0..100).filter_map(|_| unlimited.try_acquire(a)).collect();
        assert_eq!(many.len(), 100);
    }
}

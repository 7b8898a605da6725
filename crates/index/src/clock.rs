//! Wall-clock time helpers. A leaf module: everything that stamps a record, an event or a token
//! asks here, so no module needs the index state only to know the time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock ms since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Wall-clock seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

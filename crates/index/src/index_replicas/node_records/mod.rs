//! Node records: how the leader's node table reaches the followers.
//!
//! The leader, after each merge, writes one record per node whose state changed into the hash
//! `<prefix>:nodes` (spec, health, failures, last error, last poll, and the hash of its stream
//! list) and the stream list itself into `<prefix>:bodies` — only when its content changed, so a
//! node whose streams did not change costs its small record, not its list. Both go in one fenced
//! script that also publishes the changed names on `<prefix>:ch:nodes`. A follower fetches the
//! announced records (HMGET), and the stream lists whose hash differs from the one it holds, and
//! puts them in its node table; its merge then builds the same directory the leader has. After a
//! reconnect, on becoming a follower and every 10 s it reads all records (HGETALL of the small
//! ones only), which also repairs a missed announcement.
//!
//! Encoding is JSON with streams as arrays (`[key, active, clients, kbps_in, kbps_out, video,
//! audio]`, codecs by index into per-node lists): about 60 bytes per stream.

//!
//! [`wire`] is the format of the records, [`writer`] the leader's side, [`reader`] the followers'.

pub mod reader;
pub mod wire;
pub mod writer;

pub use writer::{Batch, write};

#[cfg(test)]
mod tests;

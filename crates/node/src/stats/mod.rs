//! Statistics the SRS HTTP API reports: the client/stream/vhost registry, byte counters with
//! 30-second rates, process/system figures read from /proc, and delivery counters for `/metrics`.

pub mod delivery;
pub mod process;
pub mod registry;
pub mod traffic;

pub use registry::{ClientGuard, ClientInfo, ClientKind, ClientStat, PullGuard, Registry, StreamStat, VhostStat};

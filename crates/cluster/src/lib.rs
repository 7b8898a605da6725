//! The words a media node and the index server must agree on.
//!
//! `ferrocast-node` and `ferrocast-index` never import each other: they meet only on the wire,
//! as an SRS node and the index do. What both sides must spell the same way — a node's role, the
//! mark an origin puts on a stream it forwards, the text of `/metrics` — lives here once, so the
//! two cannot drift apart.

pub mod prometheus;

use serde::{Deserialize, Serialize};

/// What a node does with streams: an origin accepts publishers, an edge pulls from an origin when
/// its first viewer arrives. Which one a node is when nobody says differs by side (a node starts
/// as an origin; a node listed in the index without a role is an edge), so there is no `Default`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Accepts publishers; its players see only streams published to it.
    Origin,
    /// Pulls streams from an origin when the first viewer arrives, and serves viewers.
    Edge,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "origin" => Ok(Role::Origin),
            "edge" => Ok(Role::Edge),
            other => Err(format!("unknown role {other:?}: expected \"origin\" or \"edge\"")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Origin => "origin",
            Role::Edge => "edge",
        })
    }
}

/// A credential from a config file or flag (a node's API token, as the index keeps it to poll
/// with). Its `Debug` is redacted, so a config or node spec logged with `{:?}` shows no secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The client behind proxies: walking `X-Forwarded-For`'s hops (`hops`, in header order) from the
/// right, the first one no trusted proxy wrote. Each proxy appends the address it saw, so hops
/// further left are whatever the client wrote and are ignored. `peer` (the TCP peer) must itself
/// be trusted for the header to count at all; an unparsable hop ends the walk at the last good
/// one. `ip:port` hops are accepted; IPv4-mapped IPv6 comes back as IPv4. Node and index both
/// decide a request's address this way, so a token bound to an address means the same on both.
pub fn rightmost_untrusted_hop<'a>(
    peer: std::net::IpAddr,
    hops: impl DoubleEndedIterator<Item = &'a str>,
    trusted: impl Fn(std::net::IpAddr) -> bool,
) -> std::net::IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in hops.rev() {
        let hop = hop.trim();
        let parsed = hop.parse::<std::net::IpAddr>().or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip()));
        let Ok(ip) = parsed.map(|ip| ip.to_canonical()) else { break };
        client = ip;
        if !trusted(ip) {
            break;
        }
    }
    client
}

/// The query key (`…?ferrocast_forwarded=1`) a Ferrocast origin adds to each stream it forwards,
/// so the destination does not forward it again and the index's `on_forward` answers no
/// replicas for it.
pub const FORWARDED_KEY: &str = "ferrocast_forwarded";

/// The query key (`…?ferrocast_edge_pull=1`) a Ferrocast edge adds to its upstream play, so the
/// origin sends that internal hop each frame as it comes instead of batching it as for a viewer.
pub const EDGE_PULL_KEY: &str = "ferrocast_edge_pull";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print_as_srs_configs_and_the_api_spell_them() {
        for role in [Role::Origin, Role::Edge] {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
        }
        assert!("Origin".parse::<Role>().is_err());
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let s = Secret::new("hunter2");
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}

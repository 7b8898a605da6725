//! Identifiers in SRS's format, so tools written for SRS parse ours: client ids are 8 characters
//! of `[0-9a-z]`, vhost and stream ids are `vid-` plus 7 such characters.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn random_chars(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

/// A connection's id, as SRS's `client_id` / `cid`.
pub fn client_id() -> String {
    random_chars(8)
}

/// An HLS session's `hls_ctx`: a credential, so 24 characters of `[0-9a-z]` (~124 bits) from the
/// thread-local CSPRNG, and never a client id (those the API lists to anyone who can read it).
pub fn session_token() -> String {
    random_chars(24)
}

/// A vhost or stream id, as SRS's `vid-xxxxxxx`.
pub fn object_id() -> String {
    format!("vid-{}", random_chars(7))
}

/// The `service` id: new on every process start, so pollers can see a restart.
pub fn service_id() -> String {
    random_chars(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_srs_shapes() {
        let c = client_id();
        assert_eq!(c.len(), 8);
        assert!(c.bytes().all(|b| ALPHABET.contains(&b)));
        let o = object_id();
        assert!(o.starts_with("vid-") && o.len() == 11);
        assert_ne!(client_id(), client_id());
        assert_eq!(session_token().len(), 24);
    }
}

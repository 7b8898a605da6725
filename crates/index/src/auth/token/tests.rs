use std::net::{IpAddr, Ipv4Addr};

use super::*;

const SECRET1: &[u8] = b"first secret, 32 bytes long....!";
const SECRET2: &[u8] = b"second secret, also long enough!";
const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));

fn ring(keys: &[(&'static str, &'static [u8])]) -> Keyring {
    Keyring::new(keys.iter().copied()).unwrap()
}

fn claims(scope: Action, pattern: &str, expires: u64, ip: Option<&str>) -> Claims {
    Claims { scope, pattern: pattern.parse().unwrap(), expires, ip: ip.map(|i| parse_ip_or_cidr(i).unwrap()) }
}

#[test]
fn a_token_round_trips_and_allows_what_it_says() {
    let keys = ring(&[("k1", SECRET1)]);
    let c = claims(Action::Play, "live/cam1", NOW + 3600, None);
    let token = keys.sign("k1", &c).unwrap();
    assert!(token.starts_with("k1."), "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "URL-safe as is: {token}");
    assert_eq!(keys.verify(&token).unwrap(), c);
    assert_eq!(c.allows(Action::Play, "live", "cam1", HOME, NOW), Ok(()));
}

#[test]
fn an_expired_token_says_when_it_expired() {
    let c = claims(Action::Publish, "live/cam1", NOW, None);
    let e = c.allows(Action::Publish, "live", "cam1", HOME, NOW).unwrap_err();
    assert_eq!(e, TokenError::Expired { at: NOW, now: NOW });
    assert!(e.to_string().contains("expired at 2026-01-01T00:00:00Z"), "{e}");
    assert_eq!(c.allows(Action::Publish, "live", "cam1", HOME, NOW - 1), Ok(()), "valid until its last second");
}

#[test]
fn a_play_token_cannot_publish() {
    let c = claims(Action::Play, "live/cam1", NOW + 60, None);
    let e = c.allows(Action::Publish, "live", "cam1", HOME, NOW).unwrap_err();
    assert_eq!(e, TokenError::WrongScope { token: Action::Play, wanted: Action::Publish });
    assert!(e.to_string().contains("a play token cannot publish"), "{e}");
    let p = claims(Action::Publish, "live/cam1", NOW + 60, None);
    assert!(matches!(p.allows(Action::Play, "live", "cam1", HOME, NOW), Err(TokenError::WrongScope { .. })));
}

#[test]
fn patterns_cover_one_stream_or_a_whole_app() {
    let one = claims(Action::Play, "live/a", NOW + 60, None);
    assert_eq!(one.allows(Action::Play, "live", "a", HOME, NOW), Ok(()));
    let e = one.allows(Action::Play, "live", "b", HOME, NOW).unwrap_err();
    assert_eq!(e, TokenError::NotCovered { pattern: "live/a".into(), stream: "live/b".into() });
    assert!(e.to_string().contains("not live/b"), "{e}");
    assert!(one.allows(Action::Play, "other", "a", HOME, NOW).is_err());
    let app = claims(Action::Play, "live/*", NOW + 60, None);
    assert_eq!(app.allows(Action::Play, "live", "a", HOME, NOW), Ok(()));
    assert_eq!(app.allows(Action::Play, "live", "anything", HOME, NOW), Ok(()));
    assert!(app.allows(Action::Play, "vod", "a", HOME, NOW).is_err());
    assert!(!"live/a*".parse::<Pattern>().is_ok_and(|p| p.covers("live", "ab")));
}

#[test]
fn bad_patterns_say_how_to_write_one() {
    for bad in ["live", "/cam1", "live/", "live/a/b", "*/cam1", "live/a*", "live/a b", "live/a?x=1"] {
        let e = bad.parse::<Pattern>().unwrap_err();
        assert!(e.contains("app/stream or app/*"), "{bad}: {e}");
    }
    assert_eq!("live/*".parse::<Pattern>().unwrap().to_string(), "live/*");
}

#[test]
fn an_address_bound_token_checks_the_client() {
    let net = claims(Action::Play, "live/cam1", NOW + 60, Some("10.0.0.0/8"));
    assert_eq!(net.allows(Action::Play, "live", "cam1", HOME, NOW), Ok(()));
    let mapped: IpAddr = "::ffff:10.9.9.9".parse().unwrap();
    assert_eq!(net.allows(Action::Play, "live", "cam1", mapped, NOW), Ok(()), "IPv4-mapped IPv6 is IPv4");
    let away: IpAddr = "192.168.1.1".parse().unwrap();
    let e = net.allows(Action::Play, "live", "cam1", away, NOW).unwrap_err();
    assert!(e.to_string().contains("clients in 10.0.0.0/8, not 192.168.1.1"), "{e}");
    let one = claims(Action::Play, "live/cam1", NOW + 60, Some("10.1.2.3"));
    assert_eq!(one.ip, Some("10.1.2.3/32".parse().unwrap()));
    assert!(one.allows(Action::Play, "live", "cam1", "10.1.2.4".parse().unwrap(), NOW).is_err());
    let v6 = claims(Action::Play, "live/cam1", NOW + 60, Some("2001:db8::/32"));
    assert!(v6.allows(Action::Play, "live", "cam1", "2001:db8::7".parse().unwrap(), NOW).is_ok());
    assert!(v6.allows(Action::Play, "live", "cam1", HOME, NOW).is_err());
    // The address survives signing.
    let keys = ring(&[("k1", SECRET1)]);
    assert_eq!(keys.verify(&keys.sign("k1", &net).unwrap()).unwrap(), net);
    assert_eq!(keys.verify(&keys.sign("k1", &one).unwrap()).unwrap(), one);
    assert!(parse_ip_or_cidr("10.0.0.0/33").unwrap_err().contains("CIDR"));
}

/// Replaces the part `i` of a token.
fn with_part(token: &str, i: usize, part: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[i] = part;
    parts.join(".")
}

#[test]
fn a_tampered_token_is_refused() {
    let keys = ring(&[("k1", SECRET1)]);
    let token = keys.sign("k1", &claims(Action::Play, "live/a", NOW + 60, None)).unwrap();
    // Other claims, re-encoded, under the old signature.
    let forged = B64.encode(claims(Action::Publish, "live/*", NOW + 60, None).encode());
    assert_eq!(keys.verify(&with_part(&token, 1, &forged)), Err(TokenError::BadSignature("k1".into())));
    // One character of the signature changed.
    let sig = token.rsplit('.').next().unwrap();
    let flipped: String =
        sig.chars().enumerate().map(|(i, c)| if i == 3 { if c == 'A' { 'B' } else { 'A' } } else { c }).collect();
    assert_eq!(keys.verify(&with_part(&token, 2, &flipped)), Err(TokenError::BadSignature("k1".into())));
    // A short signature is not compared on its prefix only.
    assert!(matches!(keys.verify(&with_part(&token, 2, &sig[..4])), Err(TokenError::Malformed(_))));
    assert!(matches!(keys.verify(&with_part(&token, 2, "")), Err(TokenError::Malformed(_))));
    // Another secret under the same key id.
    let other = ring(&[("k1", SECRET2)]);
    assert_eq!(other.verify(&token), Err(TokenError::BadSignature("k1".into())));
    for junk in ["", "k1", "k1.abc", "k1.a.b.c", ".x.y", &"x".repeat(2000)] {
        assert!(matches!(keys.verify(junk), Err(TokenError::Malformed(_) | TokenError::UnknownKey(_))), "{junk:?}");
    }
}

#[test]
fn an_unknown_key_id_is_refused() {
    let token = ring(&[("k1", SECRET1)]).sign("k1", &claims(Action::Play, "live/a", NOW + 60, None)).unwrap();
    let e = ring(&[("k2", SECRET2)]).verify(&token).unwrap_err();
    assert_eq!(e, TokenError::UnknownKey("k1".into()));
    assert!(e.to_string().contains("add the key back"), "{e}");
}

#[test]
fn keys_rotate_without_downtime() {
    let c = claims(Action::Publish, "live/cam1", NOW + 60, None);
    let old = ring(&[("k1", SECRET1)]).sign("k1", &c).unwrap();
    // Step 1: the new key is listed beside the old one and signs; old tokens still verify.
    let both = ring(&[("k1", SECRET1), ("k2", SECRET2)]);
    let new = both.sign("k2", &c).unwrap();
    assert!(new.starts_with("k2."));
    assert_eq!(both.verify(&old).unwrap(), c);
    assert_eq!(both.verify(&new).unwrap(), c);
    // Step 2: the old key is removed; its tokens stop working, new ones keep working.
    let only_new = ring(&[("k2", SECRET2)]);
    assert_eq!(only_new.verify(&old), Err(TokenError::UnknownKey("k1".into())));
    assert_eq!(only_new.verify(&new).unwrap(), c);
}

#[test]
fn tokens_are_short_enough_for_a_query_string() {
    let keys = ring(&[("k1", SECRET1)]);
    let play = keys.sign("k1", &claims(Action::Play, "live/cam1", NOW + 3600, None)).unwrap();
    assert!(play.len() < 100, "{} characters: {play}", play.len());
    assert_eq!(play.len(), 61, "{play}");
    let bound = keys.sign("k1", &claims(Action::Publish, "live/cam1", NOW + 3600, Some("10.0.0.0/8"))).unwrap();
    assert!(bound.len() < 100, "{} characters: {bound}", bound.len());
}

#[test]
fn keys_are_checked() {
    assert!(Keyring::new([("k1", &b"short"[..])]).unwrap_err().contains("at least 16"));
    assert!(Keyring::new([("k.1", SECRET1)]).unwrap_err().contains("key id"));
    assert!(Keyring::new([("k1", SECRET1), ("k1", SECRET2)]).unwrap_err().contains("twice"));
    assert_eq!(ring(&[("k1", SECRET1)]).sign("k2", &claims(Action::Play, "a/b", NOW, None)), Err(MintError::NoKey));
}

#[test]
fn times_print_as_utc() {
    assert_eq!(utc(0), "1970-01-01T00:00:00Z");
    assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(utc(NOW - 1), "2025-12-31T23:59:59Z");
    assert_eq!(utc(4_107_542_400), "2100-03-01T00:00:00Z");
    assert!(utc(u64::MAX).contains("unix seconds"));
}

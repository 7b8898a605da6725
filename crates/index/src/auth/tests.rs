use std::net::IpAddr;
use std::time::Duration;

use super::*;

const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3));

fn config() -> AuthConfig {
    AuthConfig {
        enabled: true,
        keys: vec![KeyConfig { id: "k1".into(), secret: "0123456789abcdef0123".into() }],
        apps: vec!["tv=play:token".parse().unwrap(), "open=publish:open".parse().unwrap()],
        ..Default::default()
    }
}

#[test]
fn the_token_is_found_among_other_keys() {
    assert_eq!(token_in("?token=x"), Some("x"));
    assert_eq!(token_in("token=x"), Some("x"));
    assert_eq!(token_in("a=1&token=x&b=2"), Some("x"));
    assert_eq!(token_in("?vhost=news&token=k1.a.b"), Some("k1.a.b"));
    assert_eq!(token_in(""), None);
    assert_eq!(token_in("?"), None);
    assert_eq!(token_in("?a=1&b=2"), None);
    assert_eq!(token_in("?mytoken=x&token="), None, "neither a prefix of another key nor an empty value");
    assert_eq!(token_in("?token=&token=y"), Some("y"));
}

#[test]
fn rules_decide_where_a_token_is_needed() {
    let auth = Auth::new(&config()).unwrap();
    let now = now_secs();
    // Publishing needs a token by default; playing is open unless the app says otherwise.
    let e = auth.check(Action::Publish, "live", "cam1", "", HOME, now).unwrap_err();
    assert!(matches!(e, Denied::NoToken { .. }));
    assert!(e.to_string().contains("--scope publish --stream live/cam1"), "{e}");
    assert_eq!(auth.check(Action::Play, "live", "cam1", "", HOME, now), Ok(()));
    assert!(auth.check(Action::Play, "tv", "news", "?a=1", HOME, now).is_err());
    assert_eq!(auth.check(Action::Publish, "open", "x", "", HOME, now), Ok(()));
    // With tokens.
    let publish = auth.mint(Action::Publish, "live/cam1", Duration::from_secs(60), None).unwrap();
    assert_eq!(auth.check(Action::Publish, "live", "cam1", &format!("?token={publish}"), HOME, now), Ok(()));
    let play = auth.mint(Action::Play, "tv/*", Duration::from_secs(60), None).unwrap();
    assert_eq!(auth.check(Action::Play, "tv", "news", &format!("a=1&token={play}&b=2"), HOME, now), Ok(()));
    let e = auth.check(Action::Publish, "live", "cam1", &format!("?token={play}"), HOME, now).unwrap_err();
    assert!(matches!(e, Denied::Token(TokenError::WrongScope { .. })), "{e}");
    let e = auth.check(Action::Publish, "live", "cam1", &format!("?token={publish}"), HOME, now + 60).unwrap_err();
    assert!(matches!(e, Denied::Token(TokenError::Expired { .. })), "{e}");
}

#[test]
fn with_auth_off_everything_is_allowed() {
    let auth = Auth::new(&AuthConfig { enabled: false, ..config() }).unwrap();
    assert!(!auth.needs_token(Action::Publish, "live"));
    assert_eq!(auth.check(Action::Publish, "live", "cam1", "?token=garbage", HOME, now_secs()), Ok(()));
    // Minting still works, so tokens can be handed out before the rules are switched on.
    assert!(auth.mint(Action::Play, "live/cam1", Duration::from_secs(60), None).is_ok());
    assert_eq!(Auth::default().mint(Action::Play, "live/cam1", Duration::from_secs(60), None), Err(MintError::NoKey));
}

#[test]
fn minting_checks_its_input() {
    let auth = Auth::new(&config()).unwrap();
    assert_eq!(auth.mint(Action::Play, "live/a", Duration::ZERO, None), Err(MintError::BadTtl));
    assert!(matches!(auth.mint(Action::Play, "live", Duration::from_secs(1), None), Err(MintError::BadPattern(_))));
    let t = auth.mint(Action::Play, "live/a", Duration::from_secs(60), Some("10.1.2.3/8".parse().unwrap())).unwrap();
    assert_eq!(auth.verify(&t).unwrap().ip, Some("10.0.0.0/8".parse().unwrap()), "host bits dropped");
}

#[test]
fn admin_and_hook_callers_are_checked() {
    let open = Auth::new(&config()).unwrap();
    assert!(!open.is_admin_token("anything"), "no admin token configured");
    assert_eq!(open.hook_caller(None, HOME), Ok(()), "nothing configured: every caller");
    let auth = Auth::new(&AuthConfig {
        admin_token: Some("admin-0123456789abc".into()),
        hook_secret: Some("hook-0123456789abc".into()),
        hook_allow: vec!["10.0.0.0/8".parse().unwrap()],
        ..config()
    })
    .unwrap();
    assert!(auth.is_admin_token("admin-0123456789abc"));
    assert!(!auth.is_admin_token("admin-0123456789abd"));
    assert!(!auth.is_admin_token(""));
    assert_eq!(auth.hook_caller(Some("hook-0123456789abc"), HOME), Ok(()));
    assert!(auth.hook_caller(None, HOME).unwrap_err().contains("no ?secret="));
    assert!(auth.hook_caller(Some("nope"), HOME).unwrap_err().contains("wrong"));
    let far: IpAddr = "192.168.0.9".parse().unwrap();
    assert!(auth.hook_caller(Some("hook-0123456789abc"), far).unwrap_err().contains("hook_allow"));
}

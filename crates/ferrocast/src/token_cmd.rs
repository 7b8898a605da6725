//! `ferrocast token`: mint one signed token offline, with the index's keys (from its config file)
//! or a key given on the command line, and print it. For scripts and operators who hand a
//! publisher its URL, or test a player, without calling the index's API.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use ferrocast_index::IndexConfig;
use ferrocast_index::auth::token::parse_ip_or_cidr;
use ferrocast_index::auth::{Action, Auth, AuthConfig, KeyConfig};

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// What the token allows: publish or play.
    #[arg(long, value_name = "SCOPE")]
    pub scope: Action,
    /// The streams it covers: app/stream, or app/* for every stream of an app.
    #[arg(long, value_name = "APP/STREAM")]
    pub stream: String,
    /// How long it stays valid: 30s, 15m, 1h, 2d (a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// Only clients from this address or network may use it, e.g. 10.0.0.0/8.
    #[arg(long, value_name = "IP|CIDR")]
    pub ip: Option<String>,
    /// The index's TOML config file: its [auth] keys and sign_with sign the token.
    #[arg(long, value_name = "FILE", conflicts_with = "key")]
    pub config: Option<PathBuf>,
    /// Sign with this key instead of a config file (the same id and secret as the index's).
    #[arg(long, value_name = "ID=SECRET", env = "FERROCAST_TOKEN_KEY", hide_env_values = true)]
    pub key: Option<KeyConfig>,
    /// With --config: sign with this key of the file instead of its sign_with.
    #[arg(long, value_name = "ID", requires = "config")]
    pub sign_with: Option<String>,
}

/// `30s`, `15m`, `1h`, `2d`, or whole seconds.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a duration like 30s, 15m, 1h or 2d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("unknown unit {other:?} in {s:?}: use s, m, h or d (e.g. 1h)")),
    };
    let secs = n.checked_mul(scale).ok_or_else(|| format!("{s:?} is too long"))?;
    if secs == 0 {
        return Err("the lifetime must be at least 1 second".into());
    }
    Ok(Duration::from_secs(secs))
}

fn auth_config(args: &TokenArgs) -> anyhow::Result<AuthConfig> {
    if let Some(key) = &args.key {
        return Ok(AuthConfig { keys: vec![key.clone()], ..AuthConfig::default() });
    }
    let Some(path) = &args.config else {
        bail!("no key to sign with: pass --config <the index's config file> or --key ID=SECRET");
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut auth =
        toml::from_str::<IndexConfig>(&text).with_context(|| format!("invalid config file {}", path.display()))?.auth;
    if args.sign_with.is_some() {
        auth.sign_with = args.sign_with.clone();
    }
    if auth.keys.is_empty() {
        bail!(
            "{} has no [auth] keys to sign with: add keys = [{{ id, secret }}] or pass --key ID=SECRET",
            path.display()
        );
    }
    Ok(auth)
}

/// The token `args` describe.
pub fn mint(args: &TokenArgs) -> anyhow::Result<String> {
    let ip = args.ip.as_deref().map(parse_ip_or_cidr).transpose().map_err(|e| anyhow::anyhow!("--ip: {e}"))?;
    let auth = Auth::new(&auth_config(args)?).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(auth.mint(args.scope, &args.stream, args.ttl, ip)?)
}

pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    println!("{}", mint(&args)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: impl FnOnce(&mut TokenArgs)) -> TokenArgs {
        let mut a = TokenArgs {
            scope: Action::Play,
            stream: "live/cam1".into(),
            ttl: Duration::from_secs(3600),
            ip: None,
            config: None,
            key: Some("k1=0123456789abcdef".parse().unwrap()),
            sign_with: None,
        };
        extra(&mut a);
        a
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_ttl("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert!(parse_ttl("1w").unwrap_err().contains("unit"));
        assert!(parse_ttl("h").unwrap_err().contains("30s"));
        assert!(parse_ttl("0s").is_err());
    }

    #[test]
    fn a_key_on_the_command_line_signs() {
        let token = mint(&args(|_| {})).unwrap();
        let auth = Auth::new(&AuthConfig { keys: vec!["k1=0123456789abcdef".parse().unwrap()], ..Default::default() })
            .unwrap();
        let claims = auth.verify(&token).unwrap();
        assert_eq!((claims.scope, claims.pattern.to_string()), (Action::Play, "live/cam1".to_string()));
        let bound = mint(&args(|a| a.ip = Some("10.0.0.0/8".into()))).unwrap();
        assert_eq!(auth.verify(&bound).unwrap().ip, Some("10.0.0.0/8".parse().unwrap()));
        assert!(format!("{:#}", mint(&args(|a| a.ip = Some("ten".into()))).unwrap_err()).contains("--ip"));
        assert!(format!("{:#}", mint(&args(|a| a.stream = "cam1".into())).unwrap_err()).contains("app/stream"));
    }

    #[test]
    fn the_config_file_signs_with_its_sign_with_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.toml");
        std::fs::write(
            &path,
            "[auth]\nsign_with = \"k2\"\nkeys = [{ id = \"k1\", secret = \"0123456789abcdef\" }, \
             { id = \"k2\", secret = \"fedcba9876543210\" }]\n",
        )
        .unwrap();
        let token = mint(&args(|a| (a.key, a.config) = (None, Some(path.clone())))).unwrap();
        assert!(token.starts_with("k2."), "{token}");
        let token = mint(&args(|a| (a.key, a.config, a.sign_with) = (None, Some(path), Some("k1".into())))).unwrap();
        assert!(token.starts_with("k1."), "{token}");
        let e = mint(&args(|a| a.key = None)).unwrap_err();
        assert!(format!("{e:#}").contains("--config"), "{e:#}");
    }
}

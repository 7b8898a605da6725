//! Access rules per app: whether playing or publishing an app's streams needs a token. Apps not
//! listed may be played freely, and need a token to publish to: viewers are the public, publishers
//! are not.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::token::Action;

/// Open to anyone, or only with a valid token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Open,
    Token,
}

impl std::str::FromStr for Access {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(Access::Open),
            "token" => Ok(Access::Token),
            other => Err(format!("unknown access {other:?}: expected \"open\" or \"token\"")),
        }
    }
}

fn open() -> Access {
    Access::Open
}

fn token() -> Access {
    Access::Token
}

/// One `[[auth.apps]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRule {
    pub app: String,
    /// [default: open]
    #[serde(default = "open")]
    pub play: Access,
    /// [default: token]
    #[serde(default = "token")]
    pub publish: Access,
}

impl std::str::FromStr for AppRule {
    type Err = String;
    /// `live=play:token,publish:open`; a part left out keeps its default (play open, publish token).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let form = "expected APP=play:open|token,publish:open|token (e.g. live=play:token)";
        let (app, rest) = s.split_once('=').ok_or_else(|| format!("{s:?}: {form}"))?;
        let app = app.trim();
        if app.is_empty() {
            return Err(format!("{s:?}: the app name is empty; {form}"));
        }
        let mut rule = AppRule { app: app.to_string(), play: Access::Open, publish: Access::Token };
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (what, access) =
                part.split_once(':').ok_or_else(|| format!("{s:?}: {part:?} is not ACTION:ACCESS; {form}"))?;
            let access = access.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
            match what.trim() {
                "play" => rule.play = access,
                "publish" => rule.publish = access,
                other => return Err(format!("{s:?}: unknown action {other:?}; {form}")),
            }
        }
        Ok(rule)
    }
}

/// The rules of every listed app, for lookups on the request path.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    apps: HashMap<Box<str>, (Access, Access)>,
}

impl Rules {
    /// Later entries for the same app win (checked for duplicates by the config).
    pub fn new(rules: &[AppRule]) -> Rules {
        Rules { apps: rules.iter().map(|r| (r.app.as_str().into(), (r.play, r.publish))).collect() }
    }

    /// What `action` on `app` needs.
    pub fn access(&self, action: Action, app: &str) -> Access {
        let (play, publish) = self.apps.get(app).copied().unwrap_or((Access::Open, Access::Token));
        match action {
            Action::Play => play,
            Action::Publish => publish,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlisted_apps_play_open_and_publish_with_a_token() {
        let rules = Rules::new(&[
            "live=play:token".parse().unwrap(),
            "open=publish:open".parse().unwrap(),
            "closed=play:token,publish:token".parse().unwrap(),
        ]);
        assert_eq!(rules.access(Action::Play, "live"), Access::Token);
        assert_eq!(rules.access(Action::Publish, "live"), Access::Token, "left out: the default");
        assert_eq!(rules.access(Action::Play, "open"), Access::Open);
        assert_eq!(rules.access(Action::Publish, "open"), Access::Open);
        assert_eq!(rules.access(Action::Play, "closed"), Access::Token);
        assert_eq!(rules.access(Action::Play, "other"), Access::Open);
        assert_eq!(rules.access(Action::Publish, "other"), Access::Token);
    }

    #[test]
    fn rule_flags_say_what_is_wrong() {
        let e = "live".parse::<AppRule>().unwrap_err();
        assert!(e.contains("APP=play"), "{e}");
        let e = "live=play:closed".parse::<AppRule>().unwrap_err();
        assert!(e.contains("\"closed\""), "{e}");
        let e = "live=watch:open".parse::<AppRule>().unwrap_err();
        assert!(e.contains("\"watch\""), "{e}");
        let r: AppRule = "live=".parse().unwrap();
        assert_eq!((r.play, r.publish), (Access::Open, Access::Token));
    }

    #[test]
    fn toml_rules_have_defaults() {
        #[derive(Deserialize)]
        struct T {
            apps: Vec<AppRule>,
        }
        let t: T = toml::from_str("[[apps]]\napp = \"live\"\nplay = \"token\"\n").unwrap();
        assert_eq!(t.apps[0], AppRule { app: "live".into(), play: Access::Token, publish: Access::Token });
    }
}

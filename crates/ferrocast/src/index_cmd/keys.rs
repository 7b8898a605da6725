//! `ferrocast index keys create|list|revoke`: the admin API keys in the index database, managed on
//! the index host. The full key is printed once, at creation (alone on stdout, so scripts can take
//! it); the database keeps only its argon2 hash.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ferrocast_index::auth::token::utc;
use ferrocast_index::store::{KeyInfo, Store};

/// What `ferrocast index keys` does.
#[derive(Subcommand, Debug, Clone)]
pub enum KeysCommand {
    /// Create an admin API key and print it once: it cannot be shown again.
    Create {
        /// What the key is for, shown by `list` (e.g. "ci deploy"; up to 64 characters).
        #[arg(long, value_name = "NAME")]
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the keys: id, name, when created, last used and revoked; never a secret.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a key by its id (from `list`); admin routes refuse it from then on.
    Revoke {
        /// The key's id: the hex part after `fc_` (e.g. 3f9a2c1b7d4e).
        #[arg(value_name = "ID")]
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Which index database holds the keys.
#[derive(Args, Debug, Clone, Default)]
#[group(multiple = false)]
pub struct DbArgs {
    /// The index's database: its SQLite file or PostgreSQL URL [default: ferrocast-index.db, as
    /// `ferrocast index`].
    #[arg(long, value_name = "FILE|URL", env = "FERROCAST_DB", hide_env_values = true)]
    pub db: Option<PathBuf>,
    /// The index's TOML config: its `db` key names the database.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl DbArgs {
    fn path(&self) -> anyhow::Result<PathBuf> {
        match (&self.db, &self.config) {
            (Some(db), _) => Ok(db.clone()),
            (None, Some(config)) => {
                let args = super::IndexArgs { config: Some(config.clone()), ..Default::default() };
                Ok(args.to_config()?.db)
            }
            (None, None) => Ok(ferrocast_index::IndexConfig::default().db),
        }
    }
}

/// The database as messages name it: a file's path, or a PostgreSQL URL without its password.
fn shown(path: &Path) -> String {
    ferrocast_index::store::postgres::shown(&path.display().to_string())
}

/// Opens the database; `list` and `revoke` never create one where none is.
fn open(path: &Path, create: bool) -> anyhow::Result<Store> {
    let is_url = path.to_str().is_some_and(ferrocast_index::store::postgres::is_url);
    if !create && !is_url && !path.exists() {
        bail!("there is no index database at {}: pass the index's --db FILE or --config index.toml", shown(path));
    }
    Ok(Store::open(path)?)
}

pub fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cmd {
            KeysCommand::Create { name, db } => create(&db.path()?, &name).await,
            KeysCommand::List { db } => list(&db.path()?).await,
            KeysCommand::Revoke { id, db } => revoke(&db.path()?, &id).await,
        }
    })
}

async fn create(path: &Path, name: &str) -> anyhow::Result<()> {
    let store = open(path, true)?;
    let (id, key) = store.create_key(name).await?;
    store.flush().await?;
    println!("{key}");
    eprintln!(
        "Created admin API key {id} ({name:?}) in {}.\n\
         Copy it now: it cannot be shown again (only an argon2 hash of it is stored).\n\
         Admin clients send it as `Authorization: Bearer <key>` or `X-Api-Key: <key>`.",
        shown(path)
    );
    Ok(())
}

fn when(ms: Option<i64>, none: &str) -> String {
    ms.map_or_else(|| none.to_string(), |ms| utc(u64::try_from(ms / 1000).unwrap_or(0)))
}

/// The table `list` prints.
fn table(keys: &[KeyInfo]) -> String {
    let name_width = keys.iter().map(|k| k.name.chars().count()).max().unwrap_or(0).max(4);
    let mut out = format!("{:<12}  {:<name_width$}  {:<20}  {:<20}  REVOKED\n", "ID", "NAME", "CREATED", "LAST USED");
    for k in keys {
        out.push_str(&format!(
            "{:<12}  {:<name_width$}  {:<20}  {:<20}  {}\n",
            k.id,
            k.name,
            when(Some(k.created_ms), "-"),
            when(k.last_used_ms, "never"),
            when(k.revoked_ms, "-"),
        ));
    }
    out
}

async fn list(path: &Path) -> anyhow::Result<()> {
    let keys = open(path, false)?.list_keys().await?;
    if keys.is_empty() {
        eprintln!("No API keys in {} yet: create one with `ferrocast index keys create --name NAME`.", shown(path));
        return Ok(());
    }
    print!("{}", table(&keys));
    Ok(())
}

async fn revoke(path: &Path, id: &str) -> anyhow::Result<()> {
    let store = open(path, false)?;
    let before = store.list_keys().await?;
    let Some(info) = store.revoke_key(id).await? else {
        bail!("no API key with id {id:?} in {}: `ferrocast index keys list` shows the ids", shown(path));
    };
    store.flush().await?;
    let revoked_at = when(info.revoked_ms, "-");
    if before.iter().any(|k| k.id == id && k.revoked_ms.is_some()) {
        println!("API key {id} ({:?}) was already revoked at {revoked_at}.", info.name);
    } else {
        println!(
            "Revoked API key {id} ({:?}) at {revoked_at}. Index servers on this database refuse it within {} ms.",
            info.name,
            2 * ferrocast_index::store::REVOCATION_CHECK.as_millis()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_no_secret_and_every_state() {
        let keys = [
            KeyInfo {
                id: "0123456789ab".into(),
                name: "ops".into(),
                created_ms: 0,
                revoked_ms: None,
                last_used_ms: None,
            },
            KeyInfo {
                id: "ba9876543210".into(),
                name: "a longer name".into(),
                created_ms: 86_400_000,
                revoked_ms: Some(86_401_000),
                last_used_ms: Some(86_400_500),
            },
        ];
        let t = table(&keys);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID") && lines[0].contains("LAST USED"), "{t}");
        assert!(lines[1].contains("1970-01-01T00:00:00Z") && lines[1].contains("never"), "{t}");
        assert!(lines[2].ends_with("1970-01-02T00:00:01Z"), "{t}");
        assert_eq!(lines[1].find("1970"), lines[2].find("1970"), "columns line up:\n{t}");
    }

    #[test]
    fn the_database_comes_from_db_or_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("index.toml");
        std::fs::write(&config, "db = \"/var/lib/ferrocast/index.db\"\n").unwrap();
        let from_config = DbArgs { config: Some(config), db: None };
        assert_eq!(from_config.path().unwrap(), PathBuf::from("/var/lib/ferrocast/index.db"));
        let direct = DbArgs { db: Some("x.db".into()), config: None };
        assert_eq!(direct.path().unwrap(), PathBuf::from("x.db"));
        assert_eq!(DbArgs::default().path().unwrap(), PathBuf::from("ferrocast-index.db"));
        let missing = dir.path().join("missing.db");
        let e = open(&missing, false).unwrap_err().to_string();
        assert!(e.contains("--db") && e.contains("missing.db"), "{e}");
        assert!(!missing.exists(), "list and revoke create no database");
    }
}

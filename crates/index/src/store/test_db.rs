//! The store's tests run on both backends: a fresh SQLite file, and a fresh database on the test
//! process's PostgreSQL server ([`crate::testing::PostgresServer`]).

use std::path::{Path, PathBuf};

use super::Store;

/// Where a test's store lives; [`Db::open`] opens it (again).
pub(super) enum Db {
    Sqlite { _dir: tempfile::TempDir, path: PathBuf },
    Postgres(String),
}

impl Db {
    pub(super) fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.db");
        Db::Sqlite { _dir: dir, path }
    }

    pub(super) fn postgres() -> Db {
        Db::Postgres(crate::testing::PostgresServer::shared().new_database())
    }

    pub(super) fn open(&self) -> Store {
        let at = match self {
            Db::Sqlite { path, .. } => path.clone(),
            Db::Postgres(url) => PathBuf::from(url),
        };
        Store::open(Path::new(&at)).expect("open store")
    }
}

/// For each `async fn name(db: Db)` listed, a module `name` with the tests `sqlite` and `postgres`.
macro_rules! on_both {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$test(crate::store::test_db::Db::sqlite()).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$test(crate::store::test_db::Db::postgres()).await
                }
            }
        )*
    };
}
pub(super) use on_both;

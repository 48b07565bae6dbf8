//! The database: one [`Db`] over SQLite (default, a file in the data dir) or PostgreSQL
//! (`--database-url postgres://…`), through sqlx's `Any` driver so every query is written once.
//!
//! Portable SQL rules used throughout: `$1` placeholders (SQLite accepts them too), BIGINT
//! integers, 0/1 flags, unix-millisecond times, `CAST(SUM(..) AS BIGINT)` for sums.
//! On SQLite all writes go through a one-connection pool so writers queue in-process instead of
//! failing with `SQLITE_BUSY`; reads use a separate pool. PostgreSQL uses one pool for both.

pub mod files;
pub mod staging;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

/// Which engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Database errors the services care about.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url (use sqlite:… or postgres://…)")]
    UnsupportedUrl,
    /// From the chat path's own SQLite connection (`billing::group_commit`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot start a database thread: {0}")]
    Thread(std::io::Error),
    /// A stored row that does not decode (a bug or a hand edit): an error naming the row, never
    /// a made-up value in its place.
    #[error("{table} row {id}: {problem}")]
    BadRow {
        table: &'static str,
        id: String,
        problem: String,
    },
}

impl StoreError {
    /// Whether the error means the row already exists (a unique constraint).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Sql(sqlx::Error::Database(e)) => e.is_unique_violation(),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
            }
            _ => false,
        }
    }

    /// A row of `table` (its id `id`) that does not decode, and why.
    pub fn bad_row(
        table: &'static str,
        id: impl std::fmt::Display,
        problem: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::BadRow {
            table,
            id: id.to_string(),
            problem: problem.to_string(),
        }
    }

    /// Whether the database is out of reach or too busy right now (worth a 503, not a 500).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Sql(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::SystemIoFailure
            ),
            _ => false,
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A nullable JSON text column of `table`'s row `id`: NULL is `None`; text that does not decode
/// is [`StoreError::BadRow`].
pub fn json_column<T: serde::de::DeserializeOwned>(
    row: &sqlx::any::AnyRow,
    column: &str,
    table: &'static str,
    id: impl std::fmt::Display,
) -> Result<Option<T>, StoreError> {
    use sqlx::Row;
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| StoreError::bad_row(table, id, format_args!("column {column}: {e}")))
    })
    .transpose()
}

/// A 0/1 flag column (an integer on both backends: sqlx's `Any` driver decodes `bool` only from
/// a real boolean, which SQLite has not), nonzero being `true`. For row structs:
/// `#[sqlx(try_from = "Flag")] disabled: bool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl sqlx::Type<sqlx::Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<sqlx::Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Flag, sqlx::error::BoxDynError> {
        Ok(Flag(
            <i64 as sqlx::Decode<'r, sqlx::Any>>::decode(value)? != 0,
        ))
    }
}

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0
    }
}

/// Connection pools and the backend they talk to.
#[derive(Clone, Debug)]
pub struct Db {
    backend: Backend,
    reader: AnyPool,
    writer: AnyPool,
    /// The database file, on SQLite.
    sqlite_path: Option<PathBuf>,
}

/// The database URL in effect: `database_url` when set, else SQLite in the data dir.
pub fn database_url(config: &crate::config::Config) -> String {
    match config.database_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => url.to_owned(),
        None => sqlite_url_for(&config.data_dir),
    }
}

/// The SQLite URL for a data directory.
pub fn sqlite_url_for(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("llmage.db").display())
}

impl Db {
    /// Connect and apply migrations.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let options =
            AnyConnectOptions::from_str(url)?.log_statements(tracing::log::LevelFilter::Trace);
        let db = match backend {
            Backend::Sqlite => {
                let path = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                    .get_filename()
                    .to_owned();
                let writer = sqlite_pool(options.clone(), 1).await?;
                let reader = sqlite_pool(options, 8).await?;
                Db {
                    backend,
                    reader,
                    writer,
                    sqlite_path: Some(path),
                }
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(32)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Db {
                    backend,
                    reader: pool.clone(),
                    writer: pool,
                    sqlite_path: None,
                }
            }
        };
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&db.writer).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&db.writer).await?,
        }
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Pool for reads.
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// Pool for writes and read-then-write transactions.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): the
    /// process has a second writer (the chat path's, see `billing::group_commit`), and a deferred
    /// transaction that read first could not write after that writer committed.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        })
    }

    /// The database file, on SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite_path.as_deref()
    }

    /// Close both pools (end of process).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

async fn sqlite_pool(options: AnyConnectOptions, max: u32) -> Result<AnyPool, StoreError> {
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
                    .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Make everything this process creates private, whatever umask it was started with: umask
/// 0077 (new files 0600, directories 0700 — the SQLite file and its -wal/-shm, stored files, the
/// secret key), then the data directory created or tightened to 0700.
pub fn private_files(data_dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        std::fs::create_dir_all(data_dir)?;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(data_dir)?;
    Ok(())
}

/// The SQLite file and its companions made 0600 (they may predate [`private_files`]); SQLite
/// creates -wal and -shm with the database file's mode.
pub fn tighten_database_files(db: &Db) {
    #[cfg(unix)]
    if let Some(path) = db.sqlite_path() {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            if file.exists()
                && let Err(e) =
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(error = %e, file = %file.display(), "cannot make a database file private");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flag_is_an_integer_and_nonzero_is_true() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&sqlite_url_for(dir.path())).await.unwrap();
        let flags: Vec<Flag> = sqlx::query_scalar("SELECT 0 UNION ALL SELECT 1 UNION ALL SELECT 2")
            .fetch_all(db.reader())
            .await
            .unwrap();
        assert_eq!(flags, [Flag(false), Flag(true), Flag(true)]);
        let text = sqlx::query_scalar::<_, Flag>("SELECT 'yes'")
            .fetch_one(db.reader())
            .await;
        assert!(text.is_err(), "{text:?}");
    }
}

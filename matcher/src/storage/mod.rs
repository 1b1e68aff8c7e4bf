//! The registry's storage: one module of portable SQL on sqlx's `Any` driver,
//! over SQLite (a file, the default) or PostgreSQL (when the URL says so).
//!
//! The queries are written once: `$N` placeholders (both engines take them),
//! 0/1 integers for booleans and Unix times as integers. Only the migrations
//! differ per engine (identity columns), and they live side by side in
//! `migrations/sqlite` and `migrations/postgres`.

mod calls;
mod contacts;
mod keys;
mod route_inputs;
mod servers;
mod sqlite_file;
mod talkers;
mod tokens;
mod users;

pub use calls::{CallEvent, CallRecord};
pub use contacts::ContactView;
pub use keys::{Revocation, SigningKey};
pub use route_inputs::RouteInputs;
pub use talkers::{AccountReport, NewAccount, NewSipPhone, NewTalker};
pub use tokens::{ApiTokenInfo, TokenSelector};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database URL names no engine we support.
    #[error("unsupported database URL {0:?}: use sqlite:PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A row that must be unique already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A row a request refers to does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A stored value could not be read back (a word the code does not know).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The SQLite file (it holds the signing seeds) is not private, or could not
    /// be made so.
    #[error("database file {path}: {problem}")]
    SecretFile {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// Applying the migrations failed.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database itself failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Shorthand for storage results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Which engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// An SQLite file (WAL mode).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The registry's database: a connection pool plus the engine it runs on.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The default database: `$XDG_DATA_HOME/splitdial/matcher.db` (or
/// `~/.local/share/...`), as an `sqlite:` URL.
pub fn default_url() -> String {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    format!("sqlite:{}", base.join("splitdial/matcher.db").display())
}

impl Store {
    /// Opens (creating when needed) the database at `url` — `sqlite:PATH`,
    /// `sqlite::memory:` or `postgres://...` — and brings its schema up to date.
    /// An SQLite file is created 0600 in a 0700 directory, and refused when its
    /// group or others may access it (it holds the signing seeds).
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (engine, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            if path != ":memory:" {
                // The path without URL parameters (`?mode=...`).
                let file = path.split_once('?').map_or(path, |(file, _)| file);
                sqlite_file::make_private(Path::new(file))?;
            }
            let sep = if path.contains('?') { '&' } else { '?' };
            (Engine::Sqlite, format!("sqlite://{path}{sep}mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Engine::Postgres, url.to_owned())
        } else {
            return Err(StorageError::UnsupportedUrl(url.to_owned()));
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            // An in-memory SQLite database lives in one connection.
            .max_connections(if url.contains(":memory:") { 1 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            // A ping before every statement costs a round trip through the pool on each API
            // request; an SQLite file cannot drop a connection, a PostgreSQL server can.
            .test_before_acquire(engine == Engine::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        if engine == Engine::Sqlite {
            // WAL is a property of the file: readers never wait for the writer.
            pool.execute("PRAGMA journal_mode = WAL").await?;
            SQLITE_MIGRATIONS.run(&pool).await?;
        } else {
            POSTGRES_MIGRATIONS.run(&pool).await?;
        }
        Ok(Self { pool, engine })
    }

    /// The engine underneath.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool, for the modules of this folder.
    fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Maps a unique-constraint violation to [`StorageError::Conflict`] naming `what`.
fn conflict_or(error: sqlx::Error, what: impl FnOnce() -> String) -> StorageError {
    if let sqlx::Error::Database(db) = &error {
        if db.is_unique_violation() {
            return StorageError::Conflict(what());
        }
        if db.is_foreign_key_violation() {
            return StorageError::NotFound(what());
        }
    }
    StorageError::Database(error)
}

/// Current Unix time in seconds.
pub fn now_secs() -> i64 {
    i64::try_from(splitdial_sip::call_token::unix_now()).unwrap_or(i64::MAX)
}

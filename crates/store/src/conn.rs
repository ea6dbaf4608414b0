//! One connection type for PostgreSQL and SQLite, and the pool that hands it out.
//!
//! The backend is chosen from the URL scheme (never by trying one driver after the other), and
//! every pooled connection is prepared the same way: SQLite gets WAL, a busy timeout and foreign
//! keys; PostgreSQL gets a statement timeout. Pool checkout and connection attempts are short,
//! so a dead database gives a fast error instead of a hung request.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{
    CustomizeConnection, Error as ConnError, HandleError, ManageConnection, Pool, R2D2Connection,
};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};

use crate::error::StoreSetupError;

/// How long a request waits for a pooled connection (and a new connection may take).
pub(crate) const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a PostgreSQL statement may run on a pooled connection.
const PG_STATEMENT_TIMEOUT: &str = "5s";
/// How long SQLite waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5000;
/// libpq's connection timeout, in whole seconds (libpq's minimum is 2).
const PG_CONNECT_TIMEOUT_SECS: u32 = 2;

/// A connection to either backend. Queries are written once against this type.
#[derive(diesel::MultiConnection)]
pub(crate) enum DbConnection {
    /// PostgreSQL.
    Postgresql(PgConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

impl DbConnection {
    /// Runs `f` in a transaction that, on SQLite, holds the write lock from its first statement.
    ///
    /// SQLite's default transaction is deferred: it reads on a snapshot and asks for the write
    /// lock at its first write. If another connection committed in between, that upgrade fails
    /// at once with "database is locked" (the busy timeout does not apply: waiting cannot make
    /// the snapshot current), so a block racing logins failed instead of waiting its turn.
    /// `BEGIN IMMEDIATE` waits for the lock, within the busy timeout, before reading anything.
    /// PostgreSQL's transactions need no such care and are unchanged.
    pub(crate) fn write_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        let Self::Sqlite(lite) = self else {
            return self.transaction(f);
        };
        AnsiTransactionManager::begin_transaction_sql(lite, "BEGIN IMMEDIATE")?;
        // The derived connection's transaction manager delegates to the SQLite connection's,
        // which now knows of the open transaction: commit and roll back through it, as
        // diesel's own `transaction` does.
        match f(self) {
            Ok(value) => {
                <Self as Connection>::TransactionManager::commit_transaction(self)?;
                Ok(value)
            }
            Err(error) => {
                match <Self as Connection>::TransactionManager::rollback_transaction(self) {
                    Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
                    Err(rollback) => Err(rollback.into()),
                }
            }
        }
    }
}

/// Which SQL database a [`crate::Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseBackend {
    /// PostgreSQL (`postgres://` or `postgresql://`).
    Postgresql,
    /// SQLite (`sqlite://<path>`).
    Sqlite,
}

impl DatabaseBackend {
    /// The backend's name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgresql => "postgresql",
            Self::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for DatabaseBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where to connect: the backend and what its driver needs (a libpq URL or a file path).
#[derive(Clone)]
pub(crate) enum Target {
    /// A libpq connection URL (may hold a password: never printed).
    Postgresql(String),
    /// The SQLite database file.
    Sqlite(PathBuf),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgresql(_) => f.write_str("Postgresql(<url>)"),
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
        }
    }
}

impl Target {
    /// Reads a database URL: `postgres://…`, `postgresql://…` or `sqlite://<path>` (a relative
    /// path after `sqlite://` is relative to the working directory; `sqlite:///abs/path.db` is
    /// absolute).
    pub(crate) fn parse(url: &str) -> Result<Self, StoreSetupError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgresql(with_connect_timeout(url)));
        }
        match url.strip_prefix("sqlite://") {
            Some(path) if !path.is_empty() && path != ":memory:" => {
                Ok(Self::Sqlite(PathBuf::from(path)))
            }
            _ => Err(StoreSetupError::UnsupportedUrl),
        }
    }

    /// The backend.
    pub(crate) fn backend(&self) -> DatabaseBackend {
        match self {
            Self::Postgresql(_) => DatabaseBackend::Postgresql,
            Self::Sqlite(_) => DatabaseBackend::Sqlite,
        }
    }

    /// Opens one unpooled connection (not yet prepared, see [`prepare`]).
    pub(crate) fn establish(&self) -> Result<DbConnection, ConnectionError> {
        match self {
            Self::Postgresql(url) => {
                init_openssl_without_exit_cleanup();
                PgConnection::establish(url).map(DbConnection::Postgresql)
            }
            Self::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    ConnectionError::InvalidConnectionUrl(
                        "the SQLite path is not valid UTF-8".to_owned(),
                    )
                })?;
                SqliteConnection::establish(path).map(DbConnection::Sqlite)
            }
        }
    }

    /// Creates the directory of a SQLite file if it is missing.
    pub(crate) fn create_parent_dir(&self) -> Result<(), StoreSetupError> {
        let Self::Sqlite(path) = self else {
            return Ok(());
        };
        match path.parent() {
            Some(dir) if dir != Path::new("") => {
                std::fs::create_dir_all(dir).map_err(|error| StoreSetupError::CreateDir {
                    path: dir.to_owned(),
                    error,
                })
            }
            _ => Ok(()),
        }
    }
}

/// Adds `connect_timeout` (and an `application_name`) to a PostgreSQL URL unless it sets them,
/// so an unreachable server fails the connection attempt quickly.
fn with_connect_timeout(url: &str) -> String {
    let mut url = url.to_owned();
    for (key, value) in [
        ("connect_timeout", PG_CONNECT_TIMEOUT_SECS.to_string()),
        ("application_name", "sesame".to_owned()),
    ] {
        if !url.contains(&format!("{key}=")) {
            let separator = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{separator}{key}={value}");
        }
    }
    url
}

/// Prepares a fresh connection: SQLite pragmas, or the PostgreSQL statement timeout.
pub(crate) fn prepare(conn: &mut DbConnection, statement_timeout: bool) -> diesel::QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => c.batch_execute(&format!(
            "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;"
        )),
        DbConnection::Postgresql(c) => {
            let timeout = if statement_timeout {
                PG_STATEMENT_TIMEOUT
            } else {
                "0"
            };
            c.batch_execute(&format!("SET statement_timeout = '{timeout}'"))
        }
    }
}

/// Opens connections for the pool, choosing the driver from the [`Target`].
#[derive(Debug)]
pub(crate) struct DbManager {
    target: Target,
}

impl ManageConnection for DbManager {
    type Connection = DbConnection;
    type Error = ConnError;

    fn connect(&self) -> Result<DbConnection, ConnError> {
        self.target.establish().map_err(ConnError::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnError> {
        conn.ping().map_err(ConnError::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Runs [`prepare`] on every connection the pool opens.
#[derive(Debug, Clone, Copy)]
struct Prepare;

impl CustomizeConnection<DbConnection, ConnError> for Prepare {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), ConnError> {
        prepare(conn, true).map_err(ConnError::QueryError)
    }
}

/// Reports connection failures through `tracing` (r2d2 would use the `log` crate).
#[derive(Debug, Clone, Copy)]
struct TracingErrors;

impl HandleError<ConnError> for TracingErrors {
    fn handle_error(&self, error: ConnError) {
        tracing::warn!(error = %error, "database connection failed");
    }
}

/// The pool type.
pub(crate) type DbPool = Pool<DbManager>;

/// Builds the pool and opens its first connection (blocking: call from `spawn_blocking`).
///
/// `max_connections` is raised to 1 if 0.
pub(crate) fn build_pool(target: Target, max_connections: u32) -> Result<DbPool, StoreSetupError> {
    target.create_parent_dir()?;
    Pool::builder()
        .max_size(max_connections.max(1))
        .min_idle(Some(1))
        .connection_timeout(CHECKOUT_TIMEOUT)
        .connection_customizer(Box::new(Prepare))
        .error_handler(Box::new(TracingErrors))
        .build(DbManager { target })
        .map_err(|e| StoreSetupError::Connect(Box::new(e)))
}

/// Initialises OpenSSL (which libpq uses for TLS) before libpq does, telling it not to
/// register its `atexit` cleanup.
///
/// That cleanup frees OpenSSL's global state when the process exits while other threads
/// (the async runtime's blocking threads, still winding down) free their per-thread OpenSSL
/// state: a double free, seen as a crash at exit after a run that did everything right. With
/// no cleanup at exit, the kernel reclaims that memory instead. Idempotent and cheap.
pub(crate) fn init_openssl_without_exit_cleanup() {
    // openssl-sys' `init` passes OPENSSL_INIT_NO_ATEXIT on OpenSSL ≥ 1.1.1b; it must run
    // before libpq's first call into OpenSSL, which is why every libpq connect goes here.
    openssl_sys::init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_the_backend_by_scheme() {
        assert!(matches!(
            Target::parse("postgres://u@h/db"),
            Ok(Target::Postgresql(_))
        ));
        assert!(matches!(
            Target::parse("postgresql://u@h/db"),
            Ok(Target::Postgresql(_))
        ));
        match Target::parse("sqlite://data/sesame.db") {
            Ok(Target::Sqlite(p)) => assert_eq!(p, PathBuf::from("data/sesame.db")),
            other => panic!("{other:?}"),
        }
        match Target::parse("sqlite:///var/lib/sesame/sesame.db") {
            Ok(Target::Sqlite(p)) => assert_eq!(p, PathBuf::from("/var/lib/sesame/sesame.db")),
            other => panic!("{other:?}"),
        }
        for bad in [
            "mysql://x",
            "sqlite://",
            "sqlite://:memory:",
            "",
            "data/sesame.db",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn postgres_urls_get_a_connect_timeout_unless_they_set_one() {
        assert_eq!(
            with_connect_timeout("postgres://h/db"),
            "postgres://h/db?connect_timeout=2&application_name=sesame"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/db?sslmode=require&connect_timeout=9"),
            "postgres://h/db?sslmode=require&connect_timeout=9&application_name=sesame"
        );
    }

    #[test]
    fn debug_output_hides_the_postgres_url() {
        let target = Target::parse("postgres://user:secret@h/db").unwrap();
        assert!(!format!("{target:?}").contains("secret"));
    }

    #[test]
    fn a_sqlite_write_transaction_waits_for_a_writer_that_commits_after_its_first_read() {
        let dir = std::env::temp_dir().join(format!("sesame-conn-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = Target::Sqlite(dir.join("race.db"));
        let open = || {
            let mut conn = target.establish().unwrap();
            prepare(&mut conn, true).unwrap();
            conn
        };
        let mut first = open();
        first
            .batch_execute("CREATE TABLE events (who TEXT NOT NULL)")
            .unwrap();
        let mut second = open();
        let read_done = std::sync::Arc::new(std::sync::Barrier::new(2));
        let other_writer = {
            let read_done = read_done.clone();
            std::thread::spawn(move || {
                read_done.wait();
                second.batch_execute("INSERT INTO events VALUES ('second')")
            })
        };
        // Read, let the other connection try to write, then write: in a deferred transaction
        // the other write commits at once and this one's upgrade fails with "database is
        // locked"; here the other write waits for this transaction to commit.
        let outcome = first.write_transaction(|conn| {
            conn.batch_execute("SELECT count(*) FROM events")?;
            read_done.wait();
            std::thread::sleep(Duration::from_millis(300));
            conn.batch_execute("INSERT INTO events VALUES ('first')")
        });
        let other = other_writer.join().unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(outcome.is_ok(), "the transaction failed: {outcome:?}");
        assert!(other.is_ok(), "the other writer failed: {other:?}");
    }
}

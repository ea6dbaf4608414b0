//! The SQL database: [`Database`], and the core's durable ports implemented on it.
//!
//! Diesel is synchronous; every query runs on tokio's blocking pool (with the caller's tracing
//! span) so the async ports never block a worker thread. Each query is written once with the
//! DSL against [`DbConnection`] and serves both backends.

/// `INSERT INTO $table VALUES` the rows `$rows` (a slice of insertables), `$per_statement`
/// rows to a statement on PostgreSQL (inside the caller's transaction); a `QueryResult<()>`.
/// Diesel's connection over both backends has no multi-row insert, so this is written once
/// per backend: PostgreSQL gets one statement per chunk, SQLite diesel's row-by-row loop (in
/// process: there is no round trip to save).
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr, $per_statement:expr) => {{
        let mut inserted: diesel::QueryResult<()> = Ok(());
        for chunk in $rows.chunks($per_statement) {
            inserted = match &mut *$conn {
                $crate::conn::DbConnection::Postgresql(pg) => {
                    diesel::insert_into($table).values(chunk).execute(pg)
                }
                $crate::conn::DbConnection::Sqlite(lite) => {
                    diesel::insert_into($table).values(chunk).execute(lite)
                }
            }
            .map(drop);
            if inserted.is_err() {
                break;
            }
        }
        inserted
    }};
}

mod accounts;
mod activation;
mod api_keys;
mod audit;
mod devices;
mod helpdesk;
mod mail;
mod oidc;
mod profiles;
mod remembered_browsers;
mod second_factors;

use std::fmt;
use std::sync::Arc;

use diesel::prelude::*;
use sesame_core::error::RepoError;
use sesame_core::ids::AccountId;
use sesame_core::ports::AccountChangeObserver;
use time::OffsetDateTime;

use crate::conn::{self, DatabaseBackend, DbConnection, DbPool, Target};
use crate::error::{repo_error, StoreSetupError};
use crate::migrations;
use crate::models::to_unix;
use crate::schema::login_locks;

/// Longest a caller waits for one PostgreSQL call (pool checkout, statements, round trips),
/// after which the request fails with [`RepoError::Unavailable`] (a 503) instead of hanging on
/// a slow link (security spec F09). `statement_timeout` is measured by the server and does not
/// count network latency; the checkout timeout only counts waiting for a free connection.
/// Past this budget the call goes on in its blocking thread and its outcome is dropped: a write
/// may still commit, as when an answer is lost on the network. Every write Sesame makes is one
/// short transaction (an import writes at most a few hundred people in one), far below this
/// budget on a healthy server.
const PG_CALL_BUDGET: std::time::Duration = std::time::Duration::from_millis(2500);

/// The account database (PostgreSQL or SQLite) behind a connection pool.
///
/// Cheap to clone: clones share the pool. Implements
/// [`AccountRepo`](sesame_core::ports::AccountRepo), [`AuditLog`](sesame_core::ports::AuditLog),
/// [`SigningKeyRepo`](sesame_core::ports::SigningKeyRepo),
/// [`ConsentRepo`](sesame_core::ports::ConsentRepo) and
/// [`ProfileRepo`](sesame_core::ports::ProfileRepo).
/// It is also the durable [`MailQueue`](sesame_core::ports::MailQueue) and holds the admin
/// API's keys ([`ApiKeyRepo`](sesame_core::ports::ApiKeyRepo)).
#[derive(Clone)]
pub struct Database {
    pool: DbPool,
    target: Arc<Target>,
    account_changes: Option<Arc<dyn AccountChangeObserver>>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.pool.state();
        f.debug_struct("Database")
            .field("backend", &self.target.backend())
            .field("connections", &state.connections)
            .field("idle_connections", &state.idle_connections)
            .finish()
    }
}

impl Database {
    /// Opens a pool of at most `max_connections` (at least 1) to the database at `url`:
    /// `postgres://…` / `postgresql://…` (libpq URL) or `sqlite://<path>` (the file and its
    /// directory are created if missing).
    ///
    /// One connection is opened at once, so a wrong URL or password fails here. Later, a
    /// request waits at most 2 s for a connection before failing with
    /// [`RepoError::Unavailable`].
    ///
    /// # Errors
    /// [`StoreSetupError::UnsupportedUrl`], [`StoreSetupError::CreateDir`] or
    /// [`StoreSetupError::Connect`].
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreSetupError> {
        let target = Target::parse(url)?;
        let for_pool = target.clone();
        let pool = tokio::task::spawn_blocking(move || conn::build_pool(for_pool, max_connections))
            .await
            .map_err(|e| StoreSetupError::Task(Box::new(e)))??;
        Ok(Self {
            pool,
            target: Arc::new(target),
            account_changes: None,
        })
    }

    /// Tells `observer` of every change to an account this database commits (state, e-mail,
    /// password, names, affiliation, profile), after the commit.
    #[must_use]
    pub fn observing_account_changes(mut self, observer: Arc<dyn AccountChangeObserver>) -> Self {
        self.account_changes = Some(observer);
        self
    }

    /// `result`, after telling the observer that account `id` changed if it is a success.
    async fn account_written<T>(
        &self,
        id: AccountId,
        result: Result<T, RepoError>,
    ) -> Result<T, RepoError> {
        if result.is_ok() {
            if let Some(observer) = &self.account_changes {
                observer.account_changed(id).await;
            }
        }
        result
    }

    /// Which backend this is.
    pub fn backend(&self) -> DatabaseBackend {
        self.target.backend()
    }

    /// Applies the pending schema migrations and returns their names (empty when the schema is
    /// current). Runs on a dedicated connection without statement timeout; on PostgreSQL an
    /// advisory lock makes concurrent callers (several instances booting) wait for each other.
    ///
    /// # Errors
    /// [`StoreSetupError::Connect`] or [`StoreSetupError::Migrate`].
    pub async fn run_migrations(&self) -> Result<Vec<String>, StoreSetupError> {
        let target = Arc::clone(&self.target);
        tokio::task::spawn_blocking(move || {
            let mut conn = target
                .establish()
                .map_err(|e| StoreSetupError::Connect(Box::new(e)))?;
            conn::prepare(&mut conn, false).map_err(|e| StoreSetupError::Connect(Box::new(e)))?;
            migrations::run_pending(&mut conn)
        })
        .await
        .map_err(|e| StoreSetupError::Task(Box::new(e)))?
    }

    /// Deletes the durable login locks that ended before `now` and returns how many there were.
    ///
    /// A lock row stays after it ends (until an operator lifts it), and any login string can be
    /// locked, so a periodic purge keeps the table small.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] if the database fails.
    pub async fn purge_expired_login_locks(&self, now: OffsetDateTime) -> Result<usize, RepoError> {
        let now = to_unix(now);
        self.run(move |conn| {
            diesel::delete(login_locks::table.filter(login_locks::locked_until.le(now)))
                .execute(conn)
                .map_err(repo_error)
        })
        .await
    }

    /// Waits up to 2 s until every connection of the pool is idle (none being opened by the
    /// pool's worker threads, none checked out), then a little longer for those workers to
    /// let go of the pool, so that dropping it closes the connections on this thread.
    pub async fn quiesce(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let state = self.pool.state();
            if state.connections == state.idle_connections || std::time::Instant::now() >= deadline
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    /// Runs `op` with a pooled connection on the blocking pool, in the caller's span, within
    /// [`PG_CALL_BUDGET`] on PostgreSQL. SQLite has no budget: it is a local file, and its
    /// writers wait for each other by design (busy timeout).
    async fn run<T, F>(&self, op: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, RepoError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        let started = std::time::Instant::now();
        let call = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = pool
                .get()
                .map_err(|e| RepoError::Unavailable(format!("no database connection: {e}")))?;
            op(&mut conn)
        });
        let joined = match self.backend() {
            DatabaseBackend::Postgresql => match tokio::time::timeout(PG_CALL_BUDGET, call).await {
                Ok(joined) => joined,
                Err(_) => Ok(Err(RepoError::Unavailable(format!(
                    "the database did not answer within {PG_CALL_BUDGET:?}"
                )))),
            },
            DatabaseBackend::Sqlite => call.await,
        };
        let outcome = match joined {
            Ok(outcome) => outcome,
            Err(e) => Err(RepoError::Unavailable(format!("database task failed: {e}"))),
        };
        // Conflicts and missing rows are answers, not database failures.
        let failed = matches!(
            outcome,
            Err(RepoError::Unavailable(_) | RepoError::Corrupt(_))
        );
        sesame_metrics::db_op(started.elapsed(), failed);
        outcome
    }
}

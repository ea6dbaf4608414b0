//! Test support: a throw-away database per test and a key prefix per test.
//!
//! Used by this crate's tests and by the end-to-end tests. The rule for services: tests run on
//! SQLite and the in-process store always, and on PostgreSQL (`TEST_DATABASE_URL`) and Redis
//! (`TEST_REDIS_URL`) when those answer. When one does not answer, a test is skipped with a
//! message, unless `CI=true`, where it fails ([`skip_or_fail`]).

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use uuid::Uuid;

use crate::error::StoreSetupError;

/// PostgreSQL used when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Redis used when `TEST_REDIS_URL` is not set.
pub const DEFAULT_TEST_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Prefix of the schemas [`fresh_postgres`] creates.
const SCHEMA_PREFIX: &str = "t_";

/// `TEST_DATABASE_URL`, or [`DEFAULT_TEST_DATABASE_URL`].
pub fn test_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// `TEST_REDIS_URL`, or [`DEFAULT_TEST_REDIS_URL`].
pub fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_TEST_REDIS_URL.to_owned())
}

/// Reports that `service` (e.g. "PostgreSQL") could not be reached: a skip message on stderr
/// with the error and its causes, or a panic when the environment variable `CI` is `true`,
/// where every backend must run.
///
/// # Panics
/// When `CI=true`.
pub fn skip_or_fail(service: &str, error: &dyn std::error::Error) {
    let mut message = format!("{service} not reachable: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{message} (CI=true: every backend must be tested)"
    );
    eprintln!("skipped: {message}");
}

/// A random key prefix for one test's Redis keys: `sesame-test:<hex>:`.
pub fn random_prefix() -> String {
    format!("sesame-test:{}:", Uuid::new_v4().simple())
}

/// Creates an empty schema on the PostgreSQL server at `base_url` and returns a URL whose
/// connections use it (`options=-csearch_path=<schema>`), with a guard that drops the schema
/// when dropped. Run [`crate::Database::run_migrations`] on the URL to get the tables.
///
/// Schemas are named `t_<unix seconds>_<random hex>` so [`sweep_stale_schemas`] can tell old
/// leftovers (from killed test runs) from those of tests running now.
///
/// # Errors
/// [`StoreSetupError::Connect`] if the server cannot be reached or refuses the schema.
pub async fn fresh_postgres(base_url: &str) -> Result<(String, PgSchemaGuard), StoreSetupError> {
    let schema = format!(
        "{SCHEMA_PREFIX}{}_{}",
        unix_now().as_secs(),
        &Uuid::new_v4().simple().to_string()[..12]
    );
    let base = base_url.to_owned();
    let name = schema.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pg_establish(&with_query(&base, "connect_timeout=2"))
            .map_err(|e| StoreSetupError::Connect(Box::new(e)))?;
        conn.batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .map_err(|e| StoreSetupError::Connect(Box::new(e)))
    })
    .await
    .map_err(|e| StoreSetupError::Task(Box::new(e)))??;
    let url = with_query(base_url, &format!("options=-csearch_path%3D{schema}"));
    Ok((
        url,
        PgSchemaGuard {
            base_url: base_url.to_owned(),
            schema,
        },
    ))
}

/// Drops its PostgreSQL schema (with everything in it) when dropped.
#[derive(Debug)]
pub struct PgSchemaGuard {
    base_url: String,
    schema: String,
}

impl PgSchemaGuard {
    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

impl Drop for PgSchemaGuard {
    fn drop(&mut self) {
        // Best effort, synchronous: a leftover is removed by `sweep_stale_schemas` later.
        let dropped = pg_establish(&with_query(&self.base_url, "connect_timeout=2"))
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                conn.batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                    self.schema
                ))
                .map_err(|e| e.to_string())
            });
        if let Err(e) = dropped {
            eprintln!("warning: could not drop test schema {}: {e}", self.schema);
        }
    }
}

/// Drops the test schemas made by [`fresh_postgres`] more than `older_than` ago (left behind by
/// killed test runs) and returns how many it dropped. Blocking.
///
/// # Errors
/// [`StoreSetupError::Connect`] if the server cannot be reached.
pub fn sweep_stale_schemas(base_url: &str, older_than: Duration) -> Result<usize, StoreSetupError> {
    #[derive(QueryableByName)]
    struct Schema {
        #[diesel(sql_type = diesel::sql_types::Text)]
        nspname: String,
    }
    let connect = |e: &dyn std::fmt::Display| StoreSetupError::Connect(e.to_string().into());
    let mut conn =
        pg_establish(&with_query(base_url, "connect_timeout=2")).map_err(|e| connect(&e))?;
    let schemas: Vec<Schema> =
        diesel::sql_query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'")
            .load(&mut conn)
            .map_err(|e| connect(&e))?;
    let cutoff = unix_now().saturating_sub(older_than).as_secs();
    let mut dropped = 0;
    for Schema { nspname } in schemas {
        let created = nspname
            .strip_prefix(SCHEMA_PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .and_then(|(secs, _)| secs.parse::<u64>().ok());
        if created.is_some_and(|created| created < cutoff) {
            conn.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{nspname}\" CASCADE"))
                .map_err(|e| connect(&e))?;
            dropped += 1;
        }
    }
    Ok(dropped)
}

/// A new SQLite database URL in a fresh temporary directory, with a guard that deletes the
/// directory (database, WAL and shared-memory files) when dropped. The file is created by
/// [`crate::Database::connect`].
pub fn fresh_sqlite() -> (String, SqliteFileGuard) {
    let dir = std::env::temp_dir().join(format!("sesame-test-{}", Uuid::new_v4().simple()));
    let url = format!("sqlite://{}", dir.join("sesame.db").display());
    (url, SqliteFileGuard { dir })
}

/// Deletes a test database's directory when dropped.
#[derive(Debug)]
pub struct SqliteFileGuard {
    dir: PathBuf,
}

impl Drop for SqliteFileGuard {
    fn drop(&mut self) {
        // Best effort: the directory may not exist if the database was never opened.
        let _ignored = std::fs::remove_dir_all(&self.dir);
    }
}

/// Appends `param` (`key=value`) to the query of a URL.
fn with_query(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

/// Wall-clock time since the epoch, for naming test schemas.
#[expect(
    clippy::disallowed_methods,
    reason = "test schema names carry their creation time so stale ones can be swept; no policy decision depends on it"
)]
fn unix_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// A direct libpq connection (OpenSSL initialised first, see `conn.rs`).
fn pg_establish(url: &str) -> diesel::ConnectionResult<PgConnection> {
    crate::conn::init_openssl_without_exit_cleanup();
    PgConnection::establish(url)
}

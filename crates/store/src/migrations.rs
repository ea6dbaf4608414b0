//! The schema migrations of both dialects, embedded in the binary, and how they are applied.
//!
//! `migrations/postgres/` and `migrations/sqlite/` hold the same directory names (see
//! `migrations/README.md`); the backend of the connection picks the directory.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::conn::DbConnection;
use crate::error::{BoxError, StoreSetupError};

/// The PostgreSQL migrations.
const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
/// The SQLite migrations.
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Advisory-lock key that serialises migrations when several instances start at once
/// (ASCII "sesame" as a number).
const PG_MIGRATION_LOCK: i64 = 0x7365_7361_6d65;

/// Applies every pending migration in order, each in its own transaction, and returns the names
/// of those applied (empty when the schema is current). Blocking.
pub(crate) fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, StoreSetupError> {
    let migrate = |e: BoxError| StoreSetupError::Migrate(e);
    match conn {
        DbConnection::Postgresql(c) => {
            // Two instances booting together would otherwise race on the same migration.
            c.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
                .map_err(|e| migrate(Box::new(e)))?;
            let applied = apply(c, POSTGRES);
            let unlocked = c
                .batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
                .map_err(|e| migrate(Box::new(e)));
            let applied = applied.map_err(migrate)?;
            unlocked?;
            Ok(applied)
        }
        DbConnection::Sqlite(c) => apply(c, SQLITE).map_err(migrate),
    }
}

/// Runs the pending migrations of `source` on `conn`.
fn apply<C, DB>(conn: &mut C, source: EmbeddedMigrations) -> Result<Vec<String>, BoxError>
where
    C: MigrationHarness<DB>,
    DB: diesel::backend::Backend,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let pending = conn.pending_migrations(source)?;
    let names = pending.iter().map(|m| m.name().to_string()).collect();
    conn.run_migrations(&pending)?;
    Ok(names)
}

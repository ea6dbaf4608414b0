//! `[database]`: the account database.

use serde::{Deserialize, Serialize};

use super::Secret;

/// `[database]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` or `postgres://user:password@host/db`. Secret.
    pub url: Secret,
    /// Pool size.
    pub max_connections: u32,
    /// Apply pending migrations at start.
    pub migrate_on_start: bool,
}

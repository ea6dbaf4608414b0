//! `[store]`: the ephemeral store (tickets, sessions, counters).

use serde::{Deserialize, Serialize};

use super::Secret;

/// `[store]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `memory://` (in-process, one instance only) or `redis://…`. Secret when it holds a password.
    pub url: Secret,
    /// Prefix of every Redis key (several deployments can share one Redis).
    pub key_prefix: String,
    /// Budget of one store operation, in milliseconds; past it the request gets a 503.
    pub timeout_ms: u64,
    /// Whether tickets, codes and sessions Redis held before it restarted still count. `false`:
    /// a Redis restart ends them all, so a Redis restored from an older snapshot cannot bring a
    /// consumed ticket or an ended session back (security spec F03). `true` only with a Redis
    /// that cannot lose a write (`appendfsync always`, never restored from an older snapshot).
    pub keep_records_across_restarts: bool,
}

impl StoreSettings {
    /// Whether the store is shared by several processes (Redis), rather than inside this one.
    /// With the in-process store, what another process (the CLI) does to an account cannot
    /// reach this process's sessions, so the database is asked instead.
    pub fn is_shared(&self) -> bool {
        self.url.expose() != "memory://"
    }
}

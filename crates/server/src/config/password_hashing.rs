//! `[password_hashing]`: argon2id parameters and the hashing pool.

use serde::{Deserialize, Serialize};
use sesame_core::credentials::hasher::Argon2Params;

/// `[password_hashing]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashingSettings {
    /// argon2 memory, KiB.
    pub memory_kib: u32,
    /// argon2 passes.
    pub iterations: u32,
    /// argon2 lanes.
    pub parallelism: u32,
    /// Logins allowed to wait per hashing thread before 503.
    pub queue_per_worker: usize,
}

impl HashingSettings {
    /// The argon2 parameters.
    pub fn argon2(&self) -> Argon2Params {
        Argon2Params {
            memory_kib: self.memory_kib,
            iterations: self.iterations,
            parallelism: self.parallelism,
        }
    }
}

//! `[admin_api]`: the admin HTTP API.

use serde::{Deserialize, Serialize};

/// `[admin_api]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminApiSettings {
    /// Serve `/admin/api/v1/…` (API keys still required on every call).
    pub enabled: bool,
    /// A separate address for the admin API (e.g. `127.0.0.1:8081`, reachable from the
    /// internal network only); then the public listener answers 404 there. Empty: the API is
    /// on the public listener, behind its API keys.
    pub listen: String,
}

impl Default for AdminApiSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: String::new(),
        }
    }
}

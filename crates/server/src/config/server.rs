//! `[server]`: the HTTP listener and public address.

use serde::{Deserialize, Serialize};

/// `[server]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: String,
    /// The URL people and applications use to reach Sesame (the CAS base is `<public_url>/cas`).
    pub public_url: String,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    /// Reverse proxies whose `X-Forwarded-For` is believed (IP addresses or CIDR blocks).
    pub trusted_proxies: Vec<String>,
    /// Grace period for in-flight requests on SIGTERM.
    pub shutdown_timeout_secs: u64,
}

//! `[log]`: logging.

use serde::{Deserialize, Serialize};

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `sesame=debug,info`.
    pub level: String,
    /// Lines waiting to be written to standard error at most: when it blocks (a stalled log
    /// shipper), requests go on, further lines are dropped and counted.
    #[serde(default = "default_max_buffered_lines")]
    pub max_buffered_lines: usize,
}

fn default_max_buffered_lines() -> usize {
    10_000
}

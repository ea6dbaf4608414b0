//! `[metrics]`: the Prometheus listener.

use serde::{Deserialize, Serialize};

/// `[metrics]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address of the separate listener serving `/metrics` (never the public one); empty: no
    /// metrics.
    pub listen: String,
}

//! A viewer's egress settings: the merge budget and window, and the stall timeout.

use std::time::Duration;

use sluice_hub::Budget;

use crate::config::Config;

/// Egress settings of one viewer.
#[derive(Debug, Clone, Copy)]
pub struct ViewerLimits {
    pub budget: Budget,
    /// Merge window (0 = write whatever is ready).
    pub merge: Duration,
    /// A write that makes no progress for this long cuts the viewer off.
    pub slow_timeout: Duration,
}

/// A viewer's egress settings from `[egress]` and `hub.slow_timeout_ms`.
pub fn limits(config: &Config) -> ViewerLimits {
    let e = &config.egress;
    ViewerLimits {
        budget: Budget {
            max_bytes: e.merge_max_bytes,
            max_frames: e.merge_max_frames,
        },
        merge: Duration::from_millis(e.merge_ms),
        slow_timeout: Duration::from_millis(config.hub.slow_timeout_ms),
    }
}

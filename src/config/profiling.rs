//! `[profiling]`: heap and CPU profiles from a running server (src/control/pprof.rs).

use serde::Deserialize;

/// Profiles over HTTP: `GET /debug/pprof/heap` and `GET /debug/pprof/profile?seconds=N`,
/// both behind `api.token` (refused while it is empty).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfilingConfig {
    /// jemalloc's allocation sampling (one sample per 512 KiB allocated on average), on from
    /// the start; the heap profile needs it. Off by default: its cost is in docs/BENCHMARKS.md.
    pub heap_sampling: bool,
    /// Serve CPU profiles at all. Off by default: pprof-rs's sample table (4,096 × 4 stacks of
    /// up to 128 frames) is allocated at the first profile and kept for the life of the process,
    /// ~270 MiB of RSS (measured at S1, release build).
    pub cpu_profiles: bool,
    /// Longest CPU profile a request may ask for; longer requests are cut to it.
    pub max_cpu_seconds: u64,
    /// CPU samples per second while a CPU profile runs.
    pub cpu_frequency: u32,
}

impl Default for ProfilingConfig {
    fn default() -> Self {
        ProfilingConfig {
            heap_sampling: false,
            cpu_profiles: false,
            max_cpu_seconds: 60,
            cpu_frequency: 99,
        }
    }
}

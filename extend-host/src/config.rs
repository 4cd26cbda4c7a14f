//! Limits and settings of a host.

use std::time::Duration;

/// The limits a host enforces. Every limit answers with a JSON error that names it.
///
/// The defaults follow the original webtask platform where it had one (30 s
/// run time, 100 KB code, 120 KiB management bodies) and measurements of a
/// QuickJS prototype elsewhere (64 MiB heaps, 256 KiB stacks).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Wall-clock time one run (compilation included) may take. Default 30 s.
    pub run_time: Duration,
    /// Heap of one container's JavaScript runtime, in bytes. Default 64 MiB.
    pub memory: usize,
    /// JavaScript stack of one run, in bytes; deep recursion fails with a
    /// `RangeError` instead of crashing the thread. Default 256 KiB.
    pub stack: usize,
    /// Size of a webtask's code, in bytes. Default 100,000 (the original's 100 KB).
    pub code_size: usize,
    /// Body of a management request, in bytes. Default 122,880 (the original's 120 KiB).
    pub management_body: usize,
    /// Body of a run request, in bytes. Default 1 MiB.
    pub run_body: usize,
    /// Runs of one container admitted at once (running or queued); the excess
    /// is answered 429 at once. Default 32.
    pub in_flight_per_container: usize,
    /// `console` lines one run may write to the log stream; later lines are
    /// dropped and one line says so. Default 100.
    pub log_lines_per_run: usize,
    /// A run still going after `run_time * overrun_factor` is declared stuck:
    /// its container is quarantined and its executor thread replaced. Default 2.
    pub overrun_factor: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            run_time: Duration::from_secs(30),
            memory: 64 << 20,
            stack: 256 << 10,
            code_size: 100_000,
            management_body: 122_880,
            run_body: 1 << 20,
            in_flight_per_container: 32,
            log_lines_per_run: 100,
            overrun_factor: 2,
        }
    }
}

/// The number of executor threads when none is configured: four per core,
/// at least eight, because a thread busy in a tenant's endless loop is gone
/// until the time limit stops it, and the other tenants need threads the OS
/// can still schedule (see the noisy-neighbour section of the README).
pub(crate) fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 4).max(8)
}

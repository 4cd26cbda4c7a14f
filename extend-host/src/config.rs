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
    /// How long past its time limit a run that does not stop (a builtin that
    /// never polls the interrupt) may go on: it is killed at its limit plus
    /// half of it, at most plus this. With worker processes the process is
    /// SIGKILLed; in-process, the thread is written off and the container
    /// quarantined until the run ends. Default 1 s.
    pub kill_grace: Duration,
    /// The CPU budget of one container: CPU seconds it earns per second.
    /// Default 0.5 (half a core, sustained). A container past half of what
    /// it can save up runs in low-priority (niced) workers, so tenants
    /// within their budget keep theirs even when others spin.
    pub cpu_per_second: f64,
    /// The most CPU time a container can save up. A run may start while the
    /// budget is positive and is charged what it used, so a long run leaves a
    /// debt; until it is paid runs get 429 with `Retry-After`. Default 10 s.
    pub cpu_burst: Duration,
    /// Bytes of JavaScript runtimes kept in memory across containers; the
    /// least recently used are dropped beyond it and rebuilt on their next
    /// run. With worker processes each worker gets an equal share. Default 512 MiB.
    pub resident_memory: usize,
    /// Writes (PUT, DELETE) per second one container may make, sustained.
    /// Default 5.
    pub writes_per_second: f64,
    /// Writes one container may make in a burst. Default 20.
    pub write_burst: u32,
    /// Management requests of one container (reads and writes, log and
    /// change streams not counted) served at once; more get 429 at once.
    /// Default 8.
    pub management_in_flight_per_container: usize,
    /// Webtasks in one container. Default 1,000.
    pub webtasks_per_container: usize,
    /// Bytes of code across the webtasks of one container. Default 10 MB.
    pub code_per_container: usize,
    /// Drafts in one container (one per webtask name at most). Default 100.
    pub drafts_per_container: usize,
    /// Bytes of code across the drafts of one container, counted apart
    /// from the live webtasks' [`code_per_container`](Self::code_per_container).
    /// Default 10 MB.
    pub draft_code_per_container: usize,
    /// Bytes of one webtask's metadata (keys and values). Default 16 KiB.
    pub meta_size: usize,
    /// `meta=key:value` filters in one list call. Default 10.
    pub meta_filters: usize,
    /// Bytes of a published catalog (`PUT /api/catalog`). Default 4 MiB.
    pub catalog_size: usize,
    /// Bytes of one run's response body. Default 1 MiB.
    pub response_size: usize,
    /// Bytes of one `console.*` line; longer lines are cut and marked. Default 8 KiB.
    pub log_line: usize,
    /// Log-stream subscribers of one container. Default 10.
    pub log_subscribers_per_container: usize,
    /// Open `GET /api/changes` streams watching one container (the
    /// master's streams of every container count as one more). Default 10.
    pub change_subscribers_per_container: usize,
    /// Log-stream subscribers across the host. Default 1,000.
    pub log_subscribers: usize,
    /// Request headers, by count. Default 100.
    pub header_count: usize,
    /// Request headers, in bytes (names and values). Default 16 KiB.
    pub header_bytes: usize,
    /// Bytes of a request's path and query. Default 8 KiB.
    pub uri_length: usize,
    /// Open connections; more are closed at once. Lowered at start to what
    /// the process's file-descriptor limit allows. Default 10,000.
    pub connections: usize,
    /// Time a client has to send a request's headers, and that an idle
    /// keep-alive connection is kept. Default 10 s.
    pub header_timeout: Duration,
    /// While at most one request waits on a run, how long an idle executor
    /// thread (or worker process) and the waiting request look for their
    /// next message before they sleep. Waking a sleeping thread takes tens
    /// of microseconds on a VM, as long as a small run, so this nearly
    /// halves the latency of one caller at a time; the price is up to one
    /// core kept busy for this long after each run while traffic is that
    /// light. Under load nothing spins. Zero turns it off. Default 100 µs.
    pub idle_spin: Duration,
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
            kill_grace: Duration::from_secs(1),
            cpu_per_second: 0.5,
            cpu_burst: Duration::from_secs(10),
            resident_memory: 512 << 20,
            writes_per_second: 5.0,
            write_burst: 20,
            management_in_flight_per_container: 8,
            webtasks_per_container: 1000,
            code_per_container: 10_000_000,
            drafts_per_container: 100,
            draft_code_per_container: 10_000_000,
            meta_size: 16 << 10,
            meta_filters: 10,
            catalog_size: 4 << 20,
            response_size: 1 << 20,
            log_line: 8 << 10,
            log_subscribers_per_container: 10,
            log_subscribers: 1000,
            change_subscribers_per_container: 10,
            header_count: 100,
            header_bytes: 16 << 10,
            uri_length: 8 << 10,
            connections: 10_000,
            header_timeout: Duration::from_secs(10),
            idle_spin: Duration::from_micros(100),
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

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
    /// two fifths of it, at most plus this. With worker processes the
    /// process is SIGKILLed; in-process, the thread is written off and the
    /// container quarantined until the run ends. Default 1 s.
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
    /// Bytes of code across the version histories of one container's
    /// webtasks: past it, a write drops the container's oldest versions
    /// (never a webtask's live one). Default 50 MB.
    pub history_per_container: usize,
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
    /// Outbound requests (`fetch`) one run may make; later ones are refused
    /// with a `TypeError` naming this limit. Default 50.
    pub subrequests_per_run: usize,
    /// Outbound requests of one run in flight at once; more wait their
    /// turn. Default 6.
    pub subrequests_at_once: usize,
    /// Bytes of one outbound response's body. Default 5 MiB.
    pub subrequest_response_size: usize,
    /// Bytes of one outbound request's body. Default 1 MiB.
    pub subrequest_body_size: usize,
    /// Bytes of outbound request and response bodies one container may move
    /// per minute, on each host. Default 100 MiB.
    pub subrequest_bytes_per_minute: usize,
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
            history_per_container: 50_000_000,
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
            subrequests_per_run: 50,
            subrequests_at_once: 6,
            subrequest_response_size: 5 << 20,
            subrequest_body_size: 1 << 20,
            subrequest_bytes_per_minute: 100 << 20,
        }
    }
}

/// How a limit's value is written, for [`Limits::set`].
enum Kind {
    Count,
    Bytes,
    Rate,
    Time,
}

impl Limits {
    /// Every limit [`Limits::set`] takes, with how its value is written:
    /// `count`, `bytes` (a whole number, optionally with `KiB`, `MiB` or
    /// `GiB`), `rate` (a decimal number) or `time` (a whole number with `ms`,
    /// `s` or `m`).
    pub fn settings() -> Vec<(&'static str, &'static str)> {
        Self::table()
            .iter()
            .map(|(name, kind)| {
                let kind = match kind {
                    Kind::Count => "count",
                    Kind::Bytes => "bytes",
                    Kind::Rate => "rate",
                    Kind::Time => "time",
                };
                (*name, kind)
            })
            .collect()
    }

    fn table() -> &'static [(&'static str, Kind)] {
        &[
            ("run_time", Kind::Time),
            ("memory", Kind::Bytes),
            ("stack", Kind::Bytes),
            ("code_size", Kind::Bytes),
            ("management_body", Kind::Bytes),
            ("run_body", Kind::Bytes),
            ("in_flight_per_container", Kind::Count),
            ("log_lines_per_run", Kind::Count),
            ("kill_grace", Kind::Time),
            ("cpu_per_second", Kind::Rate),
            ("cpu_burst", Kind::Time),
            ("resident_memory", Kind::Bytes),
            ("writes_per_second", Kind::Rate),
            ("write_burst", Kind::Count),
            ("management_in_flight_per_container", Kind::Count),
            ("webtasks_per_container", Kind::Count),
            ("code_per_container", Kind::Bytes),
            ("history_per_container", Kind::Bytes),
            ("drafts_per_container", Kind::Count),
            ("draft_code_per_container", Kind::Bytes),
            ("meta_size", Kind::Bytes),
            ("meta_filters", Kind::Count),
            ("catalog_size", Kind::Bytes),
            ("response_size", Kind::Bytes),
            ("log_line", Kind::Bytes),
            ("log_subscribers_per_container", Kind::Count),
            ("log_subscribers", Kind::Count),
            ("change_subscribers_per_container", Kind::Count),
            ("header_count", Kind::Count),
            ("header_bytes", Kind::Bytes),
            ("uri_length", Kind::Bytes),
            ("connections", Kind::Count),
            ("header_timeout", Kind::Time),
            ("idle_spin", Kind::Time),
            ("subrequests_per_run", Kind::Count),
            ("subrequests_at_once", Kind::Count),
            ("subrequest_response_size", Kind::Bytes),
            ("subrequest_body_size", Kind::Bytes),
            ("subrequest_bytes_per_minute", Kind::Bytes),
        ]
    }

    /// Sets the limit called `name` (a field of this struct) from text, as
    /// `extend-host serve --limit name=value` does: `run_time=5s`,
    /// `code_size=200KiB`, `writes_per_second=2.5`, `webtasks_per_container=50`.
    /// The error names the limit and what its value must look like, or lists
    /// the limits when `name` is none of them.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let Some((_, kind)) = Self::table().iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = Self::table().iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "`{name}` is not a limit; the limits are {}",
                names.join(", ")
            ));
        };
        let v = value.trim();
        let bad = |what: &str| format!("limit `{name}`: `{value}` is not {what}");
        match kind {
            Kind::Count | Kind::Bytes => {
                let n = match kind {
                    Kind::Bytes => parse_bytes(v),
                    _ => v.parse::<usize>().ok(),
                }
                .ok_or_else(|| {
                    bad(if matches!(kind, Kind::Bytes) {
                        "a byte size (a whole number, optionally with KiB, MiB or GiB)"
                    } else {
                        "a whole number"
                    })
                })?;
                let slot = match name {
                    "memory" => &mut self.memory,
                    "stack" => &mut self.stack,
                    "code_size" => &mut self.code_size,
                    "management_body" => &mut self.management_body,
                    "run_body" => &mut self.run_body,
                    "in_flight_per_container" => &mut self.in_flight_per_container,
                    "log_lines_per_run" => &mut self.log_lines_per_run,
                    "resident_memory" => &mut self.resident_memory,
                    "management_in_flight_per_container" => {
                        &mut self.management_in_flight_per_container
                    }
                    "webtasks_per_container" => &mut self.webtasks_per_container,
                    "code_per_container" => &mut self.code_per_container,
                    "history_per_container" => &mut self.history_per_container,
                    "drafts_per_container" => &mut self.drafts_per_container,
                    "draft_code_per_container" => &mut self.draft_code_per_container,
                    "meta_size" => &mut self.meta_size,
                    "meta_filters" => &mut self.meta_filters,
                    "catalog_size" => &mut self.catalog_size,
                    "response_size" => &mut self.response_size,
                    "log_line" => &mut self.log_line,
                    "log_subscribers_per_container" => &mut self.log_subscribers_per_container,
                    "log_subscribers" => &mut self.log_subscribers,
                    "change_subscribers_per_container" => {
                        &mut self.change_subscribers_per_container
                    }
                    "header_count" => &mut self.header_count,
                    "header_bytes" => &mut self.header_bytes,
                    "uri_length" => &mut self.uri_length,
                    "connections" => &mut self.connections,
                    "subrequests_per_run" => &mut self.subrequests_per_run,
                    "subrequests_at_once" => &mut self.subrequests_at_once,
                    "subrequest_response_size" => &mut self.subrequest_response_size,
                    "subrequest_body_size" => &mut self.subrequest_body_size,
                    "subrequest_bytes_per_minute" => &mut self.subrequest_bytes_per_minute,
                    "write_burst" => {
                        self.write_burst =
                            u32::try_from(n).map_err(|_| bad("a whole number below 2^32"))?;
                        return Ok(());
                    }
                    _ => return Err(format!("limit `{name}` cannot be set")),
                };
                *slot = n;
            }
            Kind::Rate => {
                let r = v
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .ok_or_else(|| bad("a number above zero"))?;
                match name {
                    "cpu_per_second" => self.cpu_per_second = r,
                    "writes_per_second" => self.writes_per_second = r,
                    _ => return Err(format!("limit `{name}` cannot be set")),
                }
            }
            Kind::Time => {
                let d =
                    parse_time(v).ok_or_else(|| bad("a time (a whole number with ms, s or m)"))?;
                match name {
                    "run_time" => self.run_time = d,
                    "kill_grace" => self.kill_grace = d,
                    "cpu_burst" => self.cpu_burst = d,
                    "header_timeout" => self.header_timeout = d,
                    "idle_spin" => self.idle_spin = d,
                    _ => return Err(format!("limit `{name}` cannot be set")),
                }
            }
        }
        Ok(())
    }
}

fn parse_bytes(v: &str) -> Option<usize> {
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, ""),
    };
    let n: usize = digits.parse().ok()?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

fn parse_time(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_set_by_name_from_text_and_bad_text_is_named() {
        let mut l = Limits::default();
        l.set("run_time", "5s").unwrap();
        l.set("code_size", "200KiB").unwrap();
        l.set("writes_per_second", "2.5").unwrap();
        l.set("write_burst", "40").unwrap();
        l.set("idle_spin", "0ms").unwrap();
        l.set("webtasks_per_container", "50").unwrap();
        assert_eq!(l.run_time, Duration::from_secs(5));
        assert_eq!(l.code_size, 200 << 10);
        assert_eq!(l.writes_per_second, 2.5);
        assert_eq!(l.write_burst, 40);
        assert_eq!(l.idle_spin, Duration::ZERO);
        assert_eq!(l.webtasks_per_container, 50);
        let e = l.set("run_tme", "5s").unwrap_err();
        assert!(
            e.contains("`run_tme` is not a limit") && e.contains("run_time"),
            "{e}"
        );
        let e = l.set("run_time", "5").unwrap_err();
        assert!(e.contains("a time (a whole number with ms, s or m)"), "{e}");
        assert!(
            l.set("writes_per_second", "-1")
                .unwrap_err()
                .contains("above zero")
        );
        assert!(
            l.set("code_size", "1 TB")
                .unwrap_err()
                .contains("byte size")
        );
        // Every listed limit can be set.
        for (name, kind) in Limits::settings() {
            let value = match kind {
                "time" => "1s",
                "rate" => "1.5",
                _ => "7",
            };
            l.set(name, value).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

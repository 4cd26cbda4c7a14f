//! The JavaScript sandbox: QuickJS runtimes per container, run on a pool of
//! executor threads with a watchdog.

mod bytecode;
mod cpu;
mod engine;
mod executor;
mod frame;
pub(crate) mod io;
pub(crate) mod limit;
mod marshal;
mod outbound;
mod pipe;
mod prelude;
mod process;
mod resident;
mod web;
mod worker;

pub use executor::ExecutorStats;
pub(crate) use executor::{Executor, Isolation, Rejected, quarantine_reply};
pub(crate) use process::WORKER_ENV;
pub(crate) use worker::main as worker_main;

use crate::error::Source;
use std::sync::Arc;
use std::time::Duration;

/// Waits for a run's reply. It first polls for up to `spin` (nonzero on the
/// in-process backend when the host is otherwise idle, `Caller::reply_spin`),
/// yielding to the runtime and the CPU between polls, so
/// the tokio worker keeps serving other tasks and never sleeps: waking a
/// sleeping worker takes tens of microseconds on a VM, as long as a small
/// run. Under load the runtime has other work and no caller spins.
pub(crate) async fn reply(
    mut rx: tokio::sync::oneshot::Receiver<Reply>,
    spin: std::time::Duration,
) -> Result<Reply, tokio::sync::oneshot::error::RecvError> {
    use tokio::sync::oneshot::error::TryRecvError;
    if !spin.is_zero() {
        let until = std::time::Instant::now() + spin;
        loop {
            match rx.try_recv() {
                Ok(reply) => return Ok(reply),
                Err(TryRecvError::Closed) => break,
                Err(TryRecvError::Empty) if std::time::Instant::now() >= until => break,
                Err(TryRecvError::Empty) => {
                    // The CPU too: the executor thread that is to answer
                    // may be waiting for this one, as the worker process
                    // was in the `perf sched` trace (measured in-process:
                    // c=1 p50 59 -> 49.5 µs; docs/benchmarks.md).
                    std::thread::yield_now();
                    tokio::task::yield_now().await
                }
            }
        }
    }
    rx.await
}

/// The id of a piece of code: the first 8 bytes of its SHA-256.
pub(crate) fn code_id(code: &str) -> u64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(code.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// What a run needs to know about its webtask: kept decrypted in memory by the
/// host's run cache, never written anywhere.
#[derive(Clone)]
pub(crate) struct Webtask {
    pub(crate) container: String,
    pub(crate) name: String,
    pub(crate) code: Arc<str>,
    /// Identifies the code (a hash): a runtime compiled from the same id
    /// needs no recompile, and a worker process asks for the code only when
    /// it lacks it.
    pub(crate) code_id: u64,
    /// The secrets as a JSON object, ready to splice into `ctx`.
    pub(crate) secrets_json: String,
    pub(crate) meta_json: String,
    /// The `auth0-extension-secret` secret, when set: runs must present it.
    pub(crate) extension_secret: Option<String>,
    /// The extension point it extends (`auth0-extension-type`), if any.
    pub(crate) point: Option<String>,
}

impl std::fmt::Debug for Webtask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webtask")
            .field("container", &self.container)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// One run's input, prepared off the executor threads.
#[derive(Debug)]
pub(crate) struct RunInput {
    pub(crate) webtask: Arc<Webtask>,
    pub(crate) request_id: String,
    /// The W3C trace id the caller sent (`traceparent`), or empty: put on
    /// the run's log records.
    pub(crate) trace_id: String,
    /// The `ctx` object as JSON.
    pub(crate) ctx_json: String,
    /// The `req` object of `(ctx, req, res)` extensions as JSON.
    pub(crate) req_json: String,
    /// Only compile the code (after a create or update), so that the first
    /// real run finds it ready.
    pub(crate) compile_only: bool,
    /// Wall-clock time the run (compilation included) may take: the host's
    /// limit, or less when the caller said it will not wait that long.
    pub(crate) time_limit: Duration,
    /// On replay: the recorded run's outbound requests, which the run's
    /// `fetch` calls are answered from instead of the network.
    pub(crate) replay: Option<Arc<Vec<io::Subrequest>>>,
}

impl RunInput {
    pub(crate) fn compile(webtask: Arc<Webtask>, time_limit: Duration) -> Self {
        RunInput {
            webtask,
            request_id: String::new(),
            trace_id: String::new(),
            ctx_json: String::new(),
            req_json: String::new(),
            compile_only: true,
            time_limit,
            replay: None,
        }
    }
}

/// A run's answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) source: Source,
    pub(crate) body: String,
    /// Headers set by a `(ctx, req, res)` extension.
    pub(crate) headers: Vec<(String, String)>,
    /// Whether the body is JSON (everything but raw `res.end` output).
    pub(crate) json: bool,
    /// CPU time the run used (zero when it did not run).
    pub(crate) cpu: Duration,
    /// Bytes of the container's heap after the run (zero when unknown).
    pub(crate) heap: i64,
    /// The outbound requests the run made (see [`io::Subrequest`]).
    pub(crate) subrequests: Vec<io::Subrequest>,
    /// On replay: the run asked for a request the recording lacks.
    pub(crate) needs_network: bool,
}

impl Reply {
    pub(crate) fn json(status: u16, source: Source, body: String) -> Self {
        Reply {
            status,
            source,
            body,
            headers: Vec::new(),
            json: true,
            cpu: Duration::ZERO,
            heap: 0,
            subrequests: Vec::new(),
            needs_network: false,
        }
    }

    /// Takes in what the run's requests came to.
    pub(crate) fn with_made(mut self, made: outbound::Made) -> Self {
        self.subrequests = made.subrequests;
        self.needs_network = made.needs_network;
        self
    }

    /// The error shape of the Extend error table: `{code, error, message}`.
    pub(crate) fn error(status: u16, source: Source, error: &str, message: &str) -> Self {
        let body = extend_wire::error::ErrorBody::new(status, message).with_error(error);
        let body = serde_json::to_string(&body).unwrap_or_default();
        Reply::json(status, source, body)
    }

    /// 429 for a run whose container used up its CPU budget before it
    /// started, with `Retry-After`: the one place this answer is made.
    pub(crate) fn cpu_exhausted(container: &str, retry_after: u64) -> Self {
        let mut r = Reply::error(
            429,
            Source::Proxy,
            "CPU budget exhausted.",
            &format!(
                "container `{container}` used up its CPU budget; it refills in about {retry_after} s"
            ),
        );
        r.headers
            .push(("retry-after".to_owned(), retry_after.to_string()));
        r
    }
}

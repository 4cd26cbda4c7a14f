//! What the executor's parts share: containers' slots and queues, the
//! workers, the backend, the counters, and the replies every part may give.

use crate::config::Limits;
use crate::error::Source;
use crate::logs::{LogHub, LogSink};
use crate::sandbox::resident::Resident;
use crate::sandbox::{Reply, RunInput};
use flume::{Receiver, Sender};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a run was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// The container already has its limit of runs in flight.
    Busy,
    /// A run of the container is stuck past its time limit (in-process backend).
    Quarantined,
    /// The container used up its CPU budget; it refills in `retry_after` seconds.
    CpuExhausted { retry_after: u64 },
    /// The host is shutting down.
    ShuttingDown,
}

/// Where runs execute.
#[derive(Debug, Clone)]
pub(crate) enum Isolation {
    /// In worker processes started from this program (`program worker`).
    Processes(PathBuf),
    /// On threads of this process.
    InProcess,
}

pub(super) struct Job {
    pub(super) input: RunInput,
    pub(super) reply: oneshot::Sender<Reply>,
}

/// A container's CPU budget: a token bucket of CPU seconds. A run may start
/// while the bucket is positive and is charged what it used afterwards, so a
/// long run leaves a debt the container waits out.
#[derive(Debug)]
pub(super) struct CpuBucket {
    pub(super) seconds: f64,
    pub(super) at: Instant,
}

pub(super) struct Slot {
    pub(super) container: String,
    pub(super) state: Mutex<SlotState>,
    pub(super) in_flight: AtomicUsize,
    pub(super) quarantined: AtomicBool,
    pub(super) cpu: Mutex<CpuBucket>,
    /// Bumped when a webtask of the container is deleted: runtimes built
    /// before are dropped instead of reused.
    pub(super) generation: AtomicU64,
    /// The heap after the container's last run.
    pub(super) heap: AtomicI64,
    pub(super) log: LogSink,
    /// The thread that ran the container last.
    pub(super) home: Mutex<Option<Arc<Worker>>>,
}

pub(super) struct SlotState {
    pub(super) queue: VecDeque<Job>,
    /// On the ready queue or taken by a thread.
    pub(super) scheduled: bool,
    /// The worker that holds the container while runs of it wait on the
    /// host in its process (worker-process backend): the container stays
    /// scheduled to it, and a new job wakes it.
    pub(super) holder: Option<Arc<Worker>>,
}

pub(super) enum Msg {
    Run(Arc<Slot>),
    Stop,
}

pub(super) struct Busy {
    pub(super) slot: Arc<Slot>,
    pub(super) since: Instant,
    /// When the run is killed (or, in-process, written off).
    pub(super) hard_limit: Duration,
}

pub(super) struct Worker {
    /// Waiting for work; a dispatcher that flips it to `false` owes the
    /// thread a container through `inbox`.
    pub(super) idle: AtomicBool,
    pub(super) inbox: Sender<Arc<Slot>>,
    /// Containers this worker holds that got work (see [`SlotState::holder`]).
    pub(super) wake: Sender<Arc<Slot>>,
    pub(super) busy: Mutex<Option<Busy>>,
    pub(super) written_off: AtomicBool,
    /// Runtimes resident in the worker process, as it last reported.
    pub(super) resident: AtomicUsize,
    /// A low-priority worker: it runs only containers low on CPU budget.
    pub(super) low: bool,
}

pub(super) enum Backend {
    Processes { program: PathBuf, budget: usize },
    InProcess(Mutex<Resident>),
}

pub(super) struct Shared {
    pub(super) limits: Limits,
    /// Where parked runs' requests go out.
    pub(super) egress: crate::egress::Egress,
    /// The host's runtime: executor threads wait on parked runs in it.
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) logs: LogHub,
    pub(super) backend: Backend,
    pub(super) tx: Sender<Msg>,
    pub(super) rx: Receiver<Msg>,
    /// The ready queue of containers low on CPU budget, served by the
    /// low-priority workers (when there are any).
    pub(super) low_tx: Sender<Msg>,
    pub(super) low_rx: Receiver<Msg>,
    pub(super) low_workers: usize,
    pub(super) slots: Mutex<HashMap<String, Arc<Slot>>>,
    pub(super) workers: Mutex<Vec<Arc<Worker>>>,
    pub(super) replaced: AtomicU64,
    pub(super) killed: AtomicU64,
    pub(super) penalized: AtomicU64,
    /// Containers quarantined for a stuck run, since start.
    pub(super) quarantines: AtomicU64,
    /// Runtimes dropped to keep resident memory under its limit, since start.
    pub(super) evictions: AtomicU64,
    pub(super) stopping: AtomicBool,
    /// In-process backend: whether an idle thread is spinning for work, and
    /// how many threads are in a run.
    pub(super) spinning: AtomicBool,
    pub(super) running: AtomicUsize,
    /// Requests waiting on a run (see [`Executor::caller`]).
    pub(super) callers: AtomicUsize,
    /// Generations of new slots start here, so that a slot dropped while idle
    /// and made again never matches a runtime built for the old one.
    pub(super) generations: AtomicU64,
}

/// Counters of the executor, for operators and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutorStats {
    /// Threads that take runs (stuck threads written off are not counted).
    pub workers: usize,
    /// In-process backend: threads written off as stuck and replaced since start.
    pub replaced: u64,
    /// Worker-process backend: workers killed because a run passed its hard limit.
    pub killed: u64,
    /// Containers with a JavaScript runtime in memory.
    pub resident_containers: usize,
    /// Threads in a run right now.
    pub busy: usize,
    /// Worker-process backend: runs made by the low-priority workers, for
    /// containers that had used more than half of their CPU budget.
    pub penalized_runs: u64,
    /// Containers quarantined for a run stuck past its hard limit, since start.
    pub quarantines: u64,
    /// Runtimes dropped to stay under the resident memory limit, since
    /// start (both backends).
    pub evictions: u64,
    /// QuickJS heap bytes of every container after its last measured run.
    pub heap_bytes: u64,
}

/// A request waiting on a run, counted while it lives.
pub(crate) struct Caller(pub(super) Arc<Shared>);

impl Caller {
    /// How long this request waits for its reply without sleeping
    /// ([`crate::sandbox::reply`]): [`Limits::idle_spin`] when it is the only
    /// request waiting on a run on the in-process backend, where the reply
    /// comes from an executor thread. Zero on the worker-process backend:
    /// there the worker task waits for the answer on the pipe without
    /// sleeping instead (`sandbox::pipe`), and a second spinning task only
    /// made tokio wake its other threads (measured, docs/benchmarks.md).
    pub(crate) fn reply_spin(&self) -> Duration {
        match self.0.backend {
            Backend::InProcess(_) => idle_spin(&self.0),
            Backend::Processes { .. } => Duration::ZERO,
        }
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        self.0.callers.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) fn died_reply() -> Reply {
    Reply::error(
        500,
        Source::Webtask,
        "Script could not be run.",
        "the worker process running the extension died",
    )
}

/// Gives back the run slot `job` took when it was admitted.
pub(super) fn release(slot: &Slot, job: &Job) {
    if !job.input.compile_only {
        slot.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) fn stopping_reply() -> Reply {
    Reply::error(
        503,
        Source::Proxy,
        "Host shutting down.",
        "the host is shutting down; the run was not started",
    )
}

pub(crate) fn quarantine_reply() -> Reply {
    Reply::error(
        429,
        Source::Proxy,
        "Container quarantined.",
        "a run of this container is stuck past its time limit; runs are refused until it ends",
    )
}

/// Answers every queued job of `slot` with `reply()`.
pub(super) fn refuse_queued(slot: &Slot, reply: fn() -> Reply) {
    let queued: Vec<Job> = lock(&slot.state).queue.drain(..).collect();
    for job in queued {
        release(slot, &job);
        let _ = job.reply.send(reply());
    }
}

/// Whether at most one request waits on a run: the host is not busy, so
/// the CPU a spinning thread or caller uses is idle anyway. Under load,
/// spinning would take CPU from the requests themselves.
pub(super) fn quiet(shared: &Shared) -> bool {
    shared.callers.load(Ordering::Acquire) <= 1
}

/// How long to wait for the other side without sleeping: [`Limits::idle_spin`]
/// when the host is [`quiet`], else zero (under load some thread is always
/// running, and spinning would only take its CPU).
pub(super) fn idle_spin(shared: &Shared) -> Duration {
    if quiet(shared) {
        shared.limits.idle_spin
    } else {
        Duration::ZERO
    }
}

/// The host's side of a run (`input`) of `slot` that parked, started at `since`.
pub(super) fn outbound(
    shared: &Shared,
    slot: &Slot,
    since: Instant,
    input: &crate::sandbox::RunInput,
) -> crate::sandbox::outbound::Outbound {
    let l = &shared.limits;
    crate::sandbox::outbound::Outbound::new(
        shared.egress.clone(),
        crate::sandbox::outbound::RunLimits {
            per_run: l.subrequests_per_run,
            at_once: l.subrequests_at_once.max(1),
            budget: crate::egress::Budget {
                response_size: l.subrequest_response_size,
                request_size: l.subrequest_body_size,
                per_minute: l.subrequest_bytes_per_minute as u64,
            },
        },
        since + input.time_limit,
        &slot.container,
        &input.trace_id,
        slot.log.clone(),
        input.replay.clone(),
    )
}

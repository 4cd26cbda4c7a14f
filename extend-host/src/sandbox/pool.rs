//! The executor: OS threads (more than cores) that run containers, one run of
//! a container at a time, per-container CPU budgets, and a watchdog for runs
//! past their limit.
//!
//! Design notes: JS never runs on tokio workers, and containers are not
//! pinned to threads; a prototype measured that either lets two spinning
//! tenants stall everyone. A container with work goes to the thread that
//! ran it last (its *home*, where its runtime is resident) if that thread is
//! idle, and otherwise onto one ready queue that every thread takes from; a
//! thread runs one job and puts the container back at the end if more are
//! waiting. So no thread ever waits on a busy container, one container never
//! holds more than one thread, and a container mostly stays where its
//! runtime is.
//!
//! Where the JavaScript runs is the [`Backend`]: in worker processes, each
//! owned by an async worker task that kills it when a run passes its hard
//! limit; or on threads of this process, where a watchdog can only write a
//! stuck thread off and quarantine the container until the run ends.

use super::engine::{Health, JsContainer, Logger, timeout_message};
use super::process::{Answer, PIPELINE, Routing, WorkerProcess};
use super::resident::Resident;
use super::{Reply, RunInput};
use crate::config::Limits;
use crate::error::Source;
use crate::logs::{LogHub, LogSink};
use flume::{Receiver, Sender};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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

struct Job {
    input: RunInput,
    reply: oneshot::Sender<Reply>,
}

/// A container's CPU budget: a token bucket of CPU seconds. A run may start
/// while the bucket is positive and is charged what it used afterwards, so a
/// long run leaves a debt the container waits out.
#[derive(Debug)]
struct CpuBucket {
    seconds: f64,
    at: Instant,
}

struct Slot {
    container: String,
    state: Mutex<SlotState>,
    in_flight: AtomicUsize,
    quarantined: AtomicBool,
    cpu: Mutex<CpuBucket>,
    /// Bumped when a webtask of the container is deleted: runtimes built
    /// before are dropped instead of reused.
    generation: AtomicU64,
    /// The heap after the container's last run.
    heap: AtomicI64,
    log: LogSink,
    /// The thread that ran the container last.
    home: Mutex<Option<Arc<Worker>>>,
}

struct SlotState {
    queue: VecDeque<Job>,
    /// On the ready queue or taken by a thread.
    scheduled: bool,
}

enum Msg {
    Run(Arc<Slot>),
    Stop,
}

struct Busy {
    slot: Arc<Slot>,
    since: Instant,
    /// When the run is killed (or, in-process, written off).
    hard_limit: Duration,
}

struct Worker {
    /// Waiting for work; a dispatcher that flips it to `false` owes the
    /// thread a container through `inbox`.
    idle: AtomicBool,
    inbox: Sender<Arc<Slot>>,
    busy: Mutex<Option<Busy>>,
    written_off: AtomicBool,
    /// Runtimes resident in the worker process, as it last reported.
    resident: AtomicUsize,
    /// A low-priority worker: it runs only containers low on CPU budget.
    low: bool,
}

enum Backend {
    Processes { program: PathBuf, budget: usize },
    InProcess(Mutex<Resident>),
}

struct Shared {
    limits: Limits,
    logs: LogHub,
    backend: Backend,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    /// The ready queue of containers low on CPU budget, served by the
    /// low-priority workers (when there are any).
    low_tx: Sender<Msg>,
    low_rx: Receiver<Msg>,
    low_workers: usize,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    workers: Mutex<Vec<Arc<Worker>>>,
    replaced: AtomicU64,
    killed: AtomicU64,
    penalized: AtomicU64,
    /// Containers quarantined for a stuck run, since start.
    quarantines: AtomicU64,
    /// Runtimes dropped to keep resident memory under its limit, since start.
    evictions: AtomicU64,
    stopping: AtomicBool,
    /// In-process backend: whether an idle thread is spinning for work, and
    /// how many threads are in a run.
    spinning: AtomicBool,
    running: AtomicUsize,
    /// Requests waiting on a run (see [`Executor::caller`]).
    callers: AtomicUsize,
    /// Generations of new slots start here, so that a slot dropped while idle
    /// and made again never matches a runtime built for the old one.
    generations: AtomicU64,
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
pub(crate) struct Caller(Arc<Shared>);

impl Caller {
    /// Whether this is the only request waiting on a run.
    pub(crate) fn quiet(&self) -> bool {
        quiet(&self.0)
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        self.0.callers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The executor of one host.
#[derive(Clone)]
pub(crate) struct Executor(Arc<Shared>);

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("stats", &self.stats())
            .finish()
    }
}

/// When a run that started with `limit` is killed: half its limit later, at
/// most [`Limits::kill_grace`] and at least 50 ms later (the interrupt of a
/// very short run needs a moment to be answered).
fn hard_limit(limits: &Limits, limit: Duration) -> Duration {
    limit
        + (limit / 2).clamp(
            Duration::from_millis(50),
            limits.kill_grace.max(Duration::from_millis(50)),
        )
}

impl Executor {
    pub(crate) fn start(
        limits: Limits,
        logs: LogHub,
        workers: usize,
        isolation: Isolation,
    ) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let backend = match isolation {
            Isolation::Processes(program) => Backend::Processes {
                program,
                budget: limits.resident_memory / workers,
            },
            Isolation::InProcess => {
                Backend::InProcess(Mutex::new(Resident::new(limits.resident_memory)))
            }
        };
        let (tx, rx) = flume::unbounded();
        let (low_tx, low_rx) = flume::unbounded();
        // A quarter of the worker processes, niced, form a penalty box for
        // containers that have used most of their CPU budget: spinning
        // tenants then compete with each other, not with everyone.
        let low_workers = match backend {
            Backend::Processes { .. } if workers >= 4 => workers / 4,
            _ => 0,
        };
        let shared = Arc::new(Shared {
            limits,
            logs,
            backend,
            tx,
            rx,
            low_tx,
            low_rx,
            low_workers,
            slots: Mutex::default(),
            workers: Mutex::default(),
            replaced: AtomicU64::new(0),
            killed: AtomicU64::new(0),
            penalized: AtomicU64::new(0),
            quarantines: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            spinning: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            callers: AtomicUsize::new(0),
            generations: AtomicU64::new(0),
        });
        for i in 0..workers {
            spawn_worker(&shared, i < low_workers)?;
        }
        if matches!(shared.backend, Backend::InProcess(_)) {
            let watchdog = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("extend-host-watchdog".into())
                .spawn(move || watch(&watchdog))?;
        }
        Ok(Executor(shared))
    }

    fn slot(&self, container: &str) -> Arc<Slot> {
        let mut slots = lock(&self.0.slots);
        if let Some(s) = slots.get(container) {
            return Arc::clone(s);
        }
        if slots.len() >= PRUNE_SLOTS_AT && slots.len().is_power_of_two() {
            prune(&mut slots, &self.0.limits);
        }
        let s = Arc::new(Slot {
            container: container.to_owned(),
            state: Mutex::new(SlotState {
                queue: VecDeque::new(),
                scheduled: false,
            }),
            in_flight: AtomicUsize::new(0),
            quarantined: AtomicBool::new(false),
            cpu: Mutex::new(CpuBucket {
                seconds: self.0.limits.cpu_burst.as_secs_f64(),
                at: Instant::now(),
            }),
            generation: AtomicU64::new(self.0.generations.fetch_add(1, Ordering::Relaxed) << 32),
            heap: AtomicI64::new(0),
            log: self.0.logs.sink(container),
            home: Mutex::new(None),
        });
        slots.insert(container.to_owned(), Arc::clone(&s));
        s
    }

    /// Admits a run of `input.webtask` or refuses it at once.
    pub(crate) fn submit(&self, input: RunInput) -> Result<oneshot::Receiver<Reply>, Rejected> {
        let slot = self.slot(&input.webtask.container);
        if self.0.stopping.load(Ordering::Acquire) {
            return Err(Rejected::ShuttingDown);
        }
        if slot.quarantined.load(Ordering::Acquire) {
            return Err(Rejected::Quarantined);
        }
        if let Some(retry_after) = cpu_debt(&slot, &self.0.limits) {
            return Err(Rejected::CpuExhausted { retry_after });
        }
        // The host's own compile-ahead jobs neither take nor count against a
        // tenant's run slots.
        if !input.compile_only
            && slot.in_flight.fetch_add(1, Ordering::AcqRel)
                >= self.0.limits.in_flight_per_container
        {
            slot.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejected::Busy);
        }
        let (reply, rx) = oneshot::channel();
        let mut st = lock(&slot.state);
        if input.compile_only {
            // At most one pending compile per webtask: the newest code wins.
            st.queue
                .retain(|j| !(j.input.compile_only && j.input.webtask.name == input.webtask.name));
        }
        st.queue.push_back(Job { input, reply });
        if !st.scheduled {
            st.scheduled = true;
            drop(st);
            dispatch(&self.0, slot);
        }
        Ok(rx)
    }

    /// Counts a request that will wait on a run until the guard drops, so
    /// the executor knows whether it is busy (see [`Caller::quiet`]).
    pub(crate) fn caller(&self) -> Caller {
        self.0.callers.fetch_add(1, Ordering::AcqRel);
        Caller(Arc::clone(&self.0))
    }

    /// Forgets what the executor keeps of `container`'s webtasks (one was
    /// deleted): its runtimes are rebuilt on their next run.
    pub(crate) fn forget(&self, container: &str) {
        let slot = lock(&self.0.slots).get(container).cloned();
        if let Some(slot) = slot {
            let generation = slot.generation.fetch_add(1, Ordering::AcqRel) + 1;
            slot.heap.store(0, Ordering::Relaxed);
            if let Backend::InProcess(resident) = &self.0.backend {
                let (_, stale) = lock(resident).take(container, generation);
                drop(stale);
            }
        }
    }

    pub(crate) fn stats(&self) -> ExecutorStats {
        let workers = lock(&self.0.workers);
        let resident = match &self.0.backend {
            Backend::InProcess(r) => lock(r).len(),
            Backend::Processes { .. } => workers
                .iter()
                .map(|w| w.resident.load(Ordering::Relaxed))
                .sum(),
        };
        let busy = workers.iter().filter(|w| lock(&w.busy).is_some()).count();
        let worker_count = workers.len();
        drop(workers);
        let heap_bytes = lock(&self.0.slots)
            .values()
            .map(|s| u64::try_from(s.heap.load(Ordering::Relaxed)).unwrap_or(0))
            .sum();
        ExecutorStats {
            quarantines: self.0.quarantines.load(Ordering::Relaxed),
            evictions: self.0.evictions.load(Ordering::Relaxed),
            heap_bytes,
            busy,
            workers: worker_count,
            replaced: self.0.replaced.load(Ordering::Relaxed),
            killed: self.0.killed.load(Ordering::Relaxed),
            penalized_runs: self.0.penalized.load(Ordering::Relaxed),
            resident_containers: resident,
        }
    }

    /// Why the executor no longer makes progress, if it does not: a worker
    /// has been in one run [`WEDGED_AFTER`] past that run's hard limit.
    /// Every wait on a run is bounded by its hard limit (a worker process
    /// is killed then, an in-process thread written off), so this means a
    /// defect of the host, and `/readyz` reports it.
    pub(crate) fn wedged(&self) -> Option<String> {
        let workers = lock(&self.0.workers).clone();
        workers.iter().find_map(|w| {
            let busy = lock(&w.busy);
            let b = busy.as_ref()?;
            let elapsed = b.since.elapsed();
            (elapsed > b.hard_limit + WEDGED_AFTER).then(|| {
                format!(
                    "the executor is wedged: a run of container `{}` has held a worker for {} ms, past its hard limit of {} ms",
                    b.slot.container,
                    elapsed.as_millis(),
                    b.hard_limit.as_millis()
                )
            })
        })
    }

    /// Runs of `container` admitted and not yet answered (running or queued).
    pub(crate) fn in_flight(&self, container: &str) -> usize {
        lock(&self.0.slots)
            .get(container)
            .map_or(0, |s| s.in_flight.load(Ordering::Acquire))
    }

    /// Heap bytes QuickJS reported for `container`'s runtime after its last run.
    pub(crate) fn heap_bytes(&self, container: &str) -> Option<i64> {
        let slot = lock(&self.0.slots).get(container).cloned()?;
        let heap = slot.heap.load(Ordering::Relaxed);
        (heap > 0).then_some(heap)
    }

    /// Stops the threads once their current run ends; threads stuck in a run
    /// are left to finish on their own.
    pub(crate) fn stop(&self) {
        self.0.stopping.store(true, Ordering::Release);
        for w in lock(&self.0.workers).iter() {
            let _ = queue(&self.0, w.low).send(Msg::Stop);
        }
        let slots: Vec<Arc<Slot>> = lock(&self.0.slots).drain().map(|(_, s)| s).collect();
        for slot in slots {
            refuse_queued(&slot, stopping_reply);
        }
        if let Backend::InProcess(resident) = &self.0.backend {
            let dropped = lock(resident).clear();
            drop(dropped);
        }
    }
}

/// How long past its hard limit a run may hold a worker before the
/// executor counts as wedged: the kill and its answer take a moment.
const WEDGED_AFTER: Duration = Duration::from_secs(2);

/// Slots kept before idle ones with a full CPU budget are dropped (they
/// hold nothing a new slot would not).
const PRUNE_SLOTS_AT: usize = 4096;

fn prune(slots: &mut HashMap<String, Arc<Slot>>, limits: &Limits) {
    slots.retain(|_, s| {
        Arc::strong_count(s) > 1
            || s.in_flight.load(Ordering::Acquire) > 0
            || lock(&s.state).scheduled
            || cpu_left(s, limits).map_or(true, |left| left < limits.cpu_burst)
    });
}

/// The ready queue of normal (`low == false`) or low-priority workers.
fn queue(shared: &Shared, low: bool) -> &Sender<Msg> {
    if low { &shared.low_tx } else { &shared.tx }
}

/// Whether `slot` belongs in the low-priority workers: it has used more than
/// half of what it can save up.
fn penalized(shared: &Shared, slot: &Slot) -> bool {
    shared.low_workers > 0
        && cpu_left(slot, &shared.limits).map_or(true, |left| left < shared.limits.cpu_burst / 2)
}

/// Hands a container with work to its home worker if that one is idle and of
/// the right priority, else to the ready queue of its priority.
fn dispatch(shared: &Shared, slot: Arc<Slot>) {
    let low = penalized(shared, &slot);
    let home = lock(&slot.home).clone();
    if let Some(home) = home
        && home.low == low
        && home
            .idle
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        let _ = home.inbox.send(slot);
        return;
    }
    let _ = queue(shared, low).send(Msg::Run(slot));
}

/// What a worker took from the ready queue, given that a dispatcher may have
/// claimed it at the same moment.
fn took(shared: &Shared, me: &Worker, msg: Result<Msg, flume::RecvError>) -> Option<Next> {
    match msg {
        Ok(Msg::Run(slot)) => {
            if me
                .idle
                .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                Some(Next::Slot(slot))
            } else {
                // A dispatcher claimed this worker and is sending to its
                // inbox: that one is ours; this one goes back for another.
                let _ = queue(shared, me.low).send(Msg::Run(slot));
                Some(Next::Inbox)
            }
        }
        Ok(Msg::Stop) | Err(_) => {
            me.idle.store(false, Ordering::Release);
            None
        }
    }
}

enum Next {
    Slot(Arc<Slot>),
    /// The container is on its way to the inbox.
    Inbox,
}

/// Looks for work without sleeping for up to [`Limits::idle_spin`], when no
/// other thread does, none is in a run and at most one request waits: on a
/// VM, waking a sleeping thread takes tens of microseconds, more than a
/// small run, and at low load that is most of a run's latency. Under load
/// some thread is always running, so no CPU is spent here; when idle, one
/// thread spins once per run.
fn spin(shared: &Shared, me: &Worker, inbox: &Receiver<Arc<Slot>>) -> Option<Next> {
    if shared.limits.idle_spin.is_zero()
        || !quiet(shared)
        || shared.running.load(Ordering::Acquire) > 0
        || shared
            .spinning
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return None;
    }
    let until = Instant::now() + shared.limits.idle_spin;
    let mut found = None;
    let mut i = 0u32;
    while found.is_none() {
        if let Ok(slot) = inbox.try_recv() {
            found = Some(Next::Slot(slot));
        } else if let Ok(msg) = shared.rx.try_recv() {
            if let Msg::Stop = msg {
                // Back for the blocking wait below, which ends the thread.
                let _ = shared.tx.send(Msg::Stop);
                break;
            }
            found = took(shared, me, Ok(msg));
        } else {
            std::hint::spin_loop();
            i += 1;
            // Reading the clock every 64 turns keeps the loop cheap.
            if i.is_multiple_of(64)
                && (Instant::now() >= until || shared.running.load(Ordering::Acquire) > 0)
            {
                break;
            }
        }
    }
    shared.spinning.store(false, Ordering::Release);
    found
}

/// Whether at most one request waits on a run: the host is not busy, so
/// the CPU a spinning thread or caller uses is idle anyway. Under load,
/// spinning would take CPU from the requests themselves.
fn quiet(shared: &Shared) -> bool {
    shared.callers.load(Ordering::Acquire) <= 1
}

/// The next container for an executor thread; `None` when it should stop.
fn next(shared: &Shared, me: &Worker, inbox: &Receiver<Arc<Slot>>) -> Option<Arc<Slot>> {
    me.idle.store(true, Ordering::Release);
    if let Some(picked) = spin(shared, me, inbox) {
        return match picked {
            Next::Slot(slot) => Some(slot),
            Next::Inbox => inbox.recv().ok(),
        };
    }
    let picked = flume::Selector::new()
        .recv(inbox, |slot| slot.ok().map(Next::Slot))
        .recv(&shared.rx, |msg| took(shared, me, msg))
        .wait()?;
    match picked {
        Next::Slot(slot) => Some(slot),
        Next::Inbox => inbox.recv().ok(),
    }
}

/// The next container for a worker task; `None` when it should stop.
async fn next_async(
    shared: &Shared,
    me: &Worker,
    inbox: &Receiver<Arc<Slot>>,
) -> Option<Arc<Slot>> {
    me.idle.store(true, Ordering::Release);
    let picked = tokio::select! {
        slot = inbox.recv_async() => slot.ok().map(Next::Slot),
        msg = if me.low { shared.low_rx.recv_async() } else { shared.rx.recv_async() } => took(shared, me, msg),
    }?;
    match picked {
        Next::Slot(slot) => Some(slot),
        Next::Inbox => inbox.recv_async().await.ok(),
    }
}

/// Seconds until the container's CPU bucket is positive again, if it is
/// empty now.
fn cpu_debt(slot: &Slot, limits: &Limits) -> Option<u64> {
    cpu_left(slot, limits).err()
}

/// Less CPU than this left is none: a run given a few microseconds would
/// only be stopped (or its worker killed) before it did anything.
const MIN_RUN_BUDGET: f64 = 0.01;

/// The CPU time the container has left, or the seconds until it has some.
fn cpu_left(slot: &Slot, limits: &Limits) -> Result<Duration, u64> {
    let mut b = lock(&slot.cpu);
    refill(&mut b, limits);
    if b.seconds >= MIN_RUN_BUDGET {
        return Ok(Duration::from_secs_f64(b.seconds));
    }
    let rate = limits.cpu_per_second.max(1e-3);
    Err((((MIN_RUN_BUDGET - b.seconds) / rate).ceil() as u64).max(1))
}

/// The answer to a queued job of a container that went into CPU debt while
/// it waited: runs get 429; a compile-ahead job is dropped (no head start).
fn cpu_refusal(slot: &Slot, retry_after: u64) -> Reply {
    Reply::cpu_exhausted(&slot.container, retry_after)
}

fn refill(b: &mut CpuBucket, limits: &Limits) {
    let now = Instant::now();
    let earned = now.duration_since(b.at).as_secs_f64() * limits.cpu_per_second;
    b.seconds = (b.seconds + earned).min(limits.cpu_burst.as_secs_f64());
    b.at = now;
}

fn charge(slot: &Slot, limits: &Limits, cpu: Duration) {
    let mut b = lock(&slot.cpu);
    refill(&mut b, limits);
    b.seconds -= cpu.as_secs_f64();
}

fn spawn_worker(shared: &Arc<Shared>, low: bool) -> std::io::Result<()> {
    let (inbox, inbox_rx) = flume::unbounded();
    let me = Arc::new(Worker {
        idle: AtomicBool::new(false),
        inbox,
        busy: Mutex::new(None),
        written_off: AtomicBool::new(false),
        resident: AtomicUsize::new(0),
        low,
    });
    let (s, w) = (Arc::clone(shared), Arc::clone(&me));
    match &shared.backend {
        Backend::Processes { .. } => {
            tokio::spawn(async move { work_async(&s, &w, &inbox_rx).await });
        }
        Backend::InProcess(_) => {
            // A large stack keeps QuickJS's own stack limit, not the thread's, the one that trips.
            std::thread::Builder::new()
                .name("extend-host-js".into())
                .stack_size(8 << 20)
                .spawn(move || work(&s, &w, &inbox_rx))?;
        }
    }
    lock(&shared.workers).push(me);
    Ok(())
}

/// Takes the next job of `slot`, or marks the slot unscheduled when it has
/// none. Refuses it at once when the container has no CPU budget left, and
/// otherwise cuts its time limit to the budget, which it returns too.
fn take_job(shared: &Shared, slot: &Arc<Slot>) -> Option<(Job, Duration)> {
    let taken = take_more(shared, slot);
    if taken.is_none() {
        hand_on(shared, slot);
    }
    taken
}

/// [`take_job`] for a worker that keeps the slot scheduled (it is running
/// the slot's jobs): `None` when there is no job it can run now.
fn take_more(shared: &Shared, slot: &Arc<Slot>) -> Option<(Job, Duration)> {
    let mut job = lock(&slot.state).queue.pop_front()?;
    match cpu_left(slot, &shared.limits) {
        Err(retry_after) => {
            release(slot, &job);
            let _ = job.reply.send(cpu_refusal(slot, retry_after));
            None
        }
        // A run cannot use more CPU than its container has left: it is
        // stopped when the budget runs out, not charged afterwards.
        Ok(left) => {
            job.input.time_limit = job.input.time_limit.min(left);
            Some((job, left))
        }
    }
}

/// After a job ran: charges its CPU and gives back its run slot. The caller
/// answers the job.
fn complete(
    shared: &Shared,
    me: &Arc<Worker>,
    slot: &Arc<Slot>,
    job: &Job,
    reply: &Reply,
    since: Instant,
) {
    slot.log.end();
    let cpu = if reply.cpu.is_zero() {
        since.elapsed()
    } else {
        reply.cpu
    };
    charge(slot, &shared.limits, cpu);
    if reply.heap > 0 {
        slot.heap.store(reply.heap, Ordering::Relaxed);
    }
    release(slot, job);
    *lock(&slot.home) = Some(Arc::clone(me));
}

/// When a worker is done with a slot for now: hands it on if more jobs wait,
/// or marks it unscheduled.
fn hand_on(shared: &Shared, slot: &Arc<Slot>) {
    let mut st = lock(&slot.state);
    if shared.stopping.load(Ordering::Acquire) {
        drop(st);
        refuse_queued(slot, stopping_reply);
        lock(&slot.state).scheduled = false;
    } else if st.queue.is_empty() {
        st.scheduled = false;
    } else {
        drop(st);
        // To the back of the ready queue: other containers go first.
        let _ = queue(shared, penalized(shared, slot)).send(Msg::Run(Arc::clone(slot)));
    }
}

/// After an in-process job ran: completes it and answers. Returns the
/// slot's next job when this thread should run it too (the session goes on),
/// or hands the slot on. `Err(())` when this thread was written off and must end.
fn finish(
    shared: &Shared,
    me: &Arc<Worker>,
    slot: &Arc<Slot>,
    job: Job,
    reply: Reply,
    since: Instant,
    more: bool,
) -> Result<Option<(Job, Duration)>, ()> {
    complete(shared, me, slot, &job, &reply, since);
    *lock(&me.busy) = None;
    let written_off = me.written_off.load(Ordering::Acquire);
    if written_off {
        slot.quarantined.store(false, Ordering::Release);
        tracing::warn!(container = %slot.container, "the stuck run ended; the container is out of quarantine");
    }
    // Staying on the container saves the ready queue and a thread wakeup
    // per run; the session's cap keeps busy containers taking turns.
    let next = if more && !written_off && !shared.stopping.load(Ordering::Acquire) {
        take_more(shared, slot)
    } else {
        None
    };
    if next.is_none() {
        hand_on(shared, slot);
    }
    // The reply goes last, so that a caller's next request finds the
    // container back in place and out of quarantine.
    let _ = job.reply.send(reply);
    if written_off { Err(()) } else { Ok(next) }
}

fn begin(shared: &Shared, me: &Worker, slot: &Arc<Slot>, job: &Job) -> Instant {
    let since = Instant::now();
    *lock(&me.busy) = Some(Busy {
        slot: Arc::clone(slot),
        since,
        hard_limit: hard_limit(&shared.limits, job.input.time_limit),
    });
    let lines = shared.limits.log_lines_per_run;
    slot.log.begin(
        &job.input.webtask.name,
        &job.input.request_id,
        &job.input.trace_id,
        lines,
    );
    since
}

/// An executor thread (in-process backend): runs up to [`SESSION_RUNS`]
/// jobs of a container in a row, then puts it at the back of the ready queue.
fn work(shared: &Shared, me: &Arc<Worker>, inbox: &Receiver<Arc<Slot>>) {
    let Backend::InProcess(resident) = &shared.backend else {
        return;
    };
    while let Some(slot) = next(shared, me, inbox) {
        let mut job = take_job(shared, &slot);
        let mut runs = 0;
        while let Some((j, _)) = job {
            let since = begin(shared, me, &slot, &j);
            shared.running.fetch_add(1, Ordering::AcqRel);
            let reply = run_here(shared, resident, &slot, &j.input);
            shared.running.fetch_sub(1, Ordering::AcqRel);
            runs += 1;
            match finish(shared, me, &slot, j, reply, since, runs < SESSION_RUNS) {
                Ok(next) => job = next,
                Err(()) => return,
            }
        }
    }
}

/// A worker task (worker-process backend): it owns one process, started on
/// its first job and again after one was killed.
async fn work_async(shared: &Shared, me: &Arc<Worker>, inbox: &Receiver<Arc<Slot>>) {
    let Backend::Processes { program, budget } = &shared.backend else {
        return;
    };
    let mut process: Option<WorkerProcess> = None;
    let mut seq = 0;
    while let Some(slot) = next_async(shared, me, inbox).await {
        let Some(first) = take_job(shared, &slot) else {
            continue;
        };
        if process.is_none() {
            match WorkerProcess::spawn(program, &shared.limits, *budget, me.low) {
                Ok(p) => process = Some(p),
                Err(e) => {
                    tracing::error!(program = %program.display(), error = %e, "cannot start a worker process");
                    let (job, _) = first;
                    release(&slot, &job);
                    let _ = job.reply.send(Reply::error(
                        500,
                        Source::Proxy,
                        "Runtime unavailable.",
                        &format!("the host could not start a worker process: {e}"),
                    ));
                    hand_on(shared, &slot);
                    continue;
                }
            }
        }
        if let Some(p) = process.as_mut()
            && !session(shared, me, p, &slot, first, &mut seq).await
        {
            // Killed or dead: the next job starts a new process.
            process = None;
            me.resident.store(0, Ordering::Relaxed);
        }
        *lock(&me.busy) = None;
        hand_on(shared, &slot);
    }
}

/// Runs one worker makes for a container before the container goes to the
/// back of the ready queue, so that busy containers take turns.
const SESSION_RUNS: usize = 32;

/// A sent, unanswered run.
struct Sent {
    seq: u64,
    job: Job,
}

/// Runs `slot`'s jobs in the worker process, up to [`PIPELINE`] at a time:
/// while one runs, the next are already in the pipe, so the process does
/// not sleep between them. Returns `false` when the process was killed or died.
async fn session(
    shared: &Shared,
    me: &Arc<Worker>,
    p: &mut WorkerProcess,
    slot: &Arc<Slot>,
    (first, left): (Job, Duration),
    seq: &mut u64,
) -> bool {
    let generation = slot.generation.load(Ordering::Acquire);
    let lines = shared.limits.log_lines_per_run;
    let mut pipe: VecDeque<Sent> = VecDeque::with_capacity(2);
    let mut send = async |p: &mut WorkerProcess,
                          pipe: &mut VecDeque<Sent>,
                          job: Job,
                          left: Duration,
                          with_code: bool| {
        *seq += 1;
        let routing = Routing {
            seq: *seq,
            after: pipe.front().map_or(0, |s| s.seq),
            cpu_left: left,
            spin: if quiet(shared) {
                shared.limits.idle_spin
            } else {
                Duration::ZERO
            },
        };
        let sent = p
            .send(&job.input, generation, lines, with_code, routing)
            .await;
        pipe.push_back(Sent { seq: *seq, job });
        sent
    };
    let mut alive = send(p, &mut pipe, first, left, false).await.is_ok();
    let mut sent_runs = 1;
    let mut since = match pipe.front() {
        Some(front) => begin(shared, me, slot, &front.job),
        None => return true,
    };
    while alive {
        // The next run: when the pipe is empty, or behind the running ones
        // unless the container is low on budget (runs sent ahead could not
        // be stopped by it); never past the session's share or when stopping.
        let room = pipe.is_empty() || (pipe.len() < PIPELINE && !penalized(shared, slot));
        if room
            && sent_runs < SESSION_RUNS
            && !shared.stopping.load(Ordering::Acquire)
            && let Some((job, left)) = take_more(shared, slot)
        {
            let was_empty = pipe.is_empty();
            alive = send(p, &mut pipe, job, left, false).await.is_ok();
            sent_runs += 1;
            if was_empty && let Some(front) = pipe.front() {
                since = begin(shared, me, slot, &front.job);
            }
            continue;
        }
        let Some(front) = pipe.front() else { break };
        let deadline = since + hard_limit(&shared.limits, front.job.input.time_limit);
        match tokio::time::timeout_at(deadline.into(), p.answer(&slot.log)).await {
            Ok(Ok(Answer::NeedCode)) => {
                let Some(sent) = pipe.pop_front() else { break };
                match cpu_left(slot, &shared.limits) {
                    Ok(left) => alive = send(p, &mut pipe, sent.job, left, true).await.is_ok(),
                    Err(retry_after) => {
                        slot.log.end();
                        release(slot, &sent.job);
                        let _ = sent.job.reply.send(cpu_refusal(slot, retry_after));
                    }
                }
                if let Some(next) = pipe.front() {
                    since = begin(shared, me, slot, &next.job);
                }
            }
            Ok(Ok(Answer::Done {
                reply,
                resident,
                evicted,
            })) => {
                me.resident.store(resident, Ordering::Relaxed);
                shared.evictions.fetch_add(evicted, Ordering::Relaxed);
                let Some(sent) = pipe.pop_front() else { break };
                complete(shared, me, slot, &sent.job, &reply, since);
                if me.low {
                    shared.penalized.fetch_add(1, Ordering::Relaxed);
                }
                match pipe.front() {
                    Some(next) => since = begin(shared, me, slot, &next.job),
                    // Idle before the answer goes out, for whoever reads the stats.
                    None => *lock(&me.busy) = None,
                }
                let _ = sent.job.reply.send(reply);
            }
            Ok(Err(e)) => {
                tracing::error!(container = %slot.container, error = %e, "a worker process died during a run");
                fail_pipe(shared, me, slot, &mut pipe, since, died_reply);
                return false;
            }
            Err(_elapsed) => {
                // SIGKILL (kill_on_drop, by the caller): the run never polled its interrupt.
                shared.killed.fetch_add(1, Ordering::Relaxed);
                let limit = front.job.input.time_limit;
                tracing::warn!(
                    container = %slot.container,
                    limit_ms = limit.as_millis() as u64,
                    "a run passed its hard time limit; its worker process was killed"
                );
                fail_pipe(shared, me, slot, &mut pipe, since, || {
                    Reply::error(
                        500,
                        Source::Webtask,
                        "Script exceeded the time limit.",
                        &format!(
                            "{}; it did not stop in time and its worker process was killed",
                            timeout_message(limit)
                        ),
                    )
                });
                return false;
            }
        }
    }
    if !alive {
        tracing::error!(container = %slot.container, "a worker process's pipe broke");
        fail_pipe(shared, me, slot, &mut pipe, since, died_reply);
        return false;
    }
    true
}

fn died_reply() -> Reply {
    Reply::error(
        500,
        Source::Webtask,
        "Script could not be run.",
        "the worker process running the extension died",
    )
}

/// The process is gone: the running job gets `reply()`; the ones sent after
/// it never ran and go back to the front of the slot's queue.
fn fail_pipe(
    shared: &Shared,
    me: &Arc<Worker>,
    slot: &Arc<Slot>,
    pipe: &mut VecDeque<Sent>,
    since: Instant,
    reply: impl Fn() -> Reply,
) {
    let front = pipe.pop_front();
    {
        let mut st = lock(&slot.state);
        while let Some(sent) = pipe.pop_back() {
            st.queue.push_front(sent.job);
        }
    }
    *lock(&me.busy) = None;
    if let Some(front) = front {
        let r = reply();
        complete(shared, me, slot, &front.job, &r, since);
        let _ = front.job.reply.send(r);
    }
}

/// Runs a job on this thread, in a runtime of the shared resident set.
fn run_here(shared: &Shared, resident: &Mutex<Resident>, slot: &Slot, input: &RunInput) -> Reply {
    let generation = slot.generation.load(Ordering::Acquire);
    let (js, stale) = lock(resident).take(&slot.container, generation);
    drop(stale);
    let js = match js {
        Some(js) => Ok(js),
        None => {
            let sink = slot.log.clone();
            let logger: Logger = Arc::new(move |level, msg| sink.emit(level, msg));
            JsContainer::new(&shared.limits, logger)
        }
    };
    let mut js = match js {
        Ok(js) => js,
        Err(e) => {
            tracing::error!(container = %slot.container, error = %e, "cannot create a JavaScript runtime");
            return Reply::error(500, Source::Proxy, "Runtime unavailable.", &e);
        }
    };
    let (reply, health) = js.run(input);
    let keep = health == Health::Reusable
        && !shared.stopping.load(Ordering::Acquire)
        && slot.generation.load(Ordering::Acquire) == generation;
    if keep {
        let evicted = lock(resident).put(&slot.container, generation, js, reply.heap);
        shared
            .evictions
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        // Dropping runtimes takes tens of microseconds each: not under the lock.
        drop(evicted);
    }
    reply
}

/// Every tick, writes off executor threads whose run is past its hard
/// limit (in-process backend): the container is quarantined (its queued and
/// new runs get 429) and a new thread takes the stuck one's place.
fn watch(shared: &Arc<Shared>) {
    let tick =
        (shared.limits.run_time / 20).clamp(Duration::from_millis(5), Duration::from_millis(50));
    while !shared.stopping.load(Ordering::Acquire) {
        std::thread::sleep(tick);
        let workers: Vec<Arc<Worker>> = lock(&shared.workers).clone();
        for worker in workers {
            let stuck = lock(&worker.busy).as_ref().and_then(|b| {
                let elapsed = b.since.elapsed();
                (elapsed > b.hard_limit).then(|| (Arc::clone(&b.slot), elapsed))
            });
            if let Some((slot, elapsed)) = stuck {
                write_off(shared, &worker, &slot, elapsed);
            }
        }
    }
}

fn write_off(shared: &Arc<Shared>, worker: &Arc<Worker>, slot: &Arc<Slot>, elapsed: Duration) {
    if worker.written_off.swap(true, Ordering::AcqRel) {
        return;
    }
    slot.quarantined.store(true, Ordering::Release);
    shared.quarantines.fetch_add(1, Ordering::Relaxed);
    lock(&shared.workers).retain(|w| !Arc::ptr_eq(w, worker));
    refuse_queued(slot, quarantine_reply);
    tracing::warn!(
        container = %slot.container,
        elapsed_ms = elapsed.as_millis() as u64,
        "a run passed its hard time limit and holds its thread; container quarantined, thread replaced"
    );
    if let Err(e) = spawn_worker(shared, false) {
        tracing::error!(error = %e, "cannot start a replacement executor thread");
    }
    // Counted after the replacement exists, so readers see capacity restored.
    shared.replaced.fetch_add(1, Ordering::Release);
}

/// Answers every queued job of `slot` with `reply()`.
fn refuse_queued(slot: &Slot, reply: fn() -> Reply) {
    let queued: Vec<Job> = lock(&slot.state).queue.drain(..).collect();
    for job in queued {
        release(slot, &job);
        let _ = job.reply.send(reply());
    }
}

/// Gives back the run slot `job` took when it was admitted.
fn release(slot: &Slot, job: &Job) {
    if !job.input.compile_only {
        slot.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn stopping_reply() -> Reply {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_worker_held_past_its_hard_limit_is_reported_as_wedged() {
        let limits = Limits::default();
        let logs = LogHub::new(&limits, None);
        // The program is never started: no job is submitted.
        let ex = Executor::start(
            limits,
            logs,
            1,
            Isolation::Processes(PathBuf::from("/nonexistent")),
        )
        .unwrap();
        assert_eq!(ex.wedged(), None);
        let worker = Arc::clone(&lock(&ex.0.workers)[0]);
        let hard = Duration::from_secs(1);
        *lock(&worker.busy) = Some(Busy {
            slot: ex.slot("acme"),
            since: Instant::now() - hard - WEDGED_AFTER / 2,
            hard_limit: hard,
        });
        assert_eq!(ex.wedged(), None, "within the grace after the hard limit");
        lock(&worker.busy).as_mut().unwrap().since = Instant::now() - hard - WEDGED_AFTER * 2;
        let why = ex.wedged().expect("wedged");
        assert!(
            why.contains("container `acme`") && why.contains("hard limit of 1000 ms"),
            "{why}"
        );
        ex.stop();
    }
}

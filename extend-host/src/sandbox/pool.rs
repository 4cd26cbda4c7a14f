//! The executor: OS threads (more than cores) that run containers, one run of
//! a container at a time, and a watchdog that writes off threads stuck past
//! the time limit.
//!
//! Design notes: JS never runs on tokio workers, and containers are not
//! pinned to threads; a prototype measured that either lets two spinning
//! tenants stall everyone. A container with work is put
//! on one ready queue; a thread takes it, runs one job and puts it back at the
//! end if more are waiting, so no thread ever waits on a busy container and
//! one container never holds more than one thread.

use super::engine::{Health, JsContainer};
use super::{Reply, RunInput};
use crate::config::Limits;
use crate::error::Source;
use crate::logs::LogHub;
use crossbeam_channel::{Receiver, Sender};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    /// A run of the container is stuck past its time limit.
    Quarantined,
    /// The host is shutting down.
    ShuttingDown,
}

struct Job {
    input: RunInput,
    reply: oneshot::Sender<Reply>,
}

struct Slot {
    container: String,
    state: Mutex<SlotState>,
    in_flight: AtomicUsize,
    quarantined: AtomicBool,
}

struct SlotState {
    queue: VecDeque<Job>,
    /// On the ready queue or taken by a thread.
    scheduled: bool,
    js: Option<JsContainer>,
}

enum Msg {
    Run(Arc<Slot>),
    Stop,
}

struct Worker {
    busy: Mutex<Option<(Arc<Slot>, Instant)>>,
    written_off: AtomicBool,
}

struct Shared {
    limits: Limits,
    logs: LogHub,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    workers: Mutex<Vec<Arc<Worker>>>,
    replaced: AtomicU64,
    stopping: AtomicBool,
}

/// Counters of the executor, for operators and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutorStats {
    /// Threads that take runs (stuck threads written off are not counted).
    pub workers: usize,
    /// Threads written off as stuck and replaced since start.
    pub replaced: u64,
    /// Containers with a JavaScript runtime in memory.
    pub resident_containers: usize,
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

impl Executor {
    pub(crate) fn start(limits: Limits, logs: LogHub, workers: usize) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            limits,
            logs,
            tx,
            rx,
            slots: Mutex::default(),
            workers: Mutex::default(),
            replaced: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        for _ in 0..workers.max(1) {
            spawn_worker(&shared)?;
        }
        let watchdog = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("extend-host-watchdog".into())
            .spawn(move || watch(&watchdog))?;
        Ok(Executor(shared))
    }

    /// Admits a run of `input.webtask` or refuses it at once.
    pub(crate) fn submit(&self, input: RunInput) -> Result<oneshot::Receiver<Reply>, Rejected> {
        let slot = {
            let mut slots = lock(&self.0.slots);
            let c = &input.webtask.container;
            match slots.get(c) {
                Some(s) => Arc::clone(s),
                None => {
                    let s = Arc::new(Slot {
                        container: c.clone(),
                        state: Mutex::new(SlotState {
                            queue: VecDeque::new(),
                            scheduled: false,
                            js: None,
                        }),
                        in_flight: AtomicUsize::new(0),
                        quarantined: AtomicBool::new(false),
                    });
                    slots.insert(c.clone(), Arc::clone(&s));
                    s
                }
            }
        };
        if self.0.stopping.load(Ordering::Acquire) {
            return Err(Rejected::ShuttingDown);
        }
        if slot.quarantined.load(Ordering::Acquire) {
            return Err(Rejected::Quarantined);
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
        st.queue.push_back(Job { input, reply });
        if !st.scheduled {
            st.scheduled = true;
            drop(st);
            let _ = self.0.tx.send(Msg::Run(slot));
        }
        Ok(rx)
    }

    pub(crate) fn stats(&self) -> ExecutorStats {
        let workers = lock(&self.0.workers).len();
        let resident = lock(&self.0.slots)
            .values()
            .filter(|s| lock(&s.state).js.is_some())
            .count();
        ExecutorStats {
            workers,
            replaced: self.0.replaced.load(Ordering::Relaxed),
            resident_containers: resident,
        }
    }

    /// Heap bytes QuickJS reports for `container`'s runtime, when it is idle in memory.
    pub(crate) fn heap_bytes(&self, container: &str) -> Option<i64> {
        let slot = lock(&self.0.slots).get(container).cloned()?;
        let st = lock(&slot.state);
        st.js.as_ref().map(JsContainer::heap_bytes)
    }

    /// Stops the threads once their current run ends; threads stuck in a run
    /// are left to finish on their own.
    pub(crate) fn stop(&self) {
        self.0.stopping.store(true, Ordering::Release);
        for _ in 0..lock(&self.0.workers).len() {
            let _ = self.0.tx.send(Msg::Stop);
        }
        let slots: Vec<Arc<Slot>> = lock(&self.0.slots).drain().map(|(_, s)| s).collect();
        for slot in slots {
            refuse_queued(&slot, stopping_reply);
        }
    }
}

fn spawn_worker(shared: &Arc<Shared>) -> std::io::Result<()> {
    let me = Arc::new(Worker {
        busy: Mutex::new(None),
        written_off: AtomicBool::new(false),
    });
    let (s, w) = (Arc::clone(shared), Arc::clone(&me));
    // A large stack keeps QuickJS's own stack limit, not the thread's, the one that trips.
    std::thread::Builder::new()
        .name("extend-host-js".into())
        .stack_size(8 << 20)
        .spawn(move || work(&s, &w))?;
    lock(&shared.workers).push(me);
    Ok(())
}

fn work(shared: &Shared, me: &Worker) {
    while let Ok(Msg::Run(slot)) = shared.rx.recv() {
        let (job, js) = {
            let mut st = lock(&slot.state);
            match st.queue.pop_front() {
                Some(job) => (job, st.js.take()),
                None => {
                    st.scheduled = false;
                    continue;
                }
            }
        };
        *lock(&me.busy) = Some((Arc::clone(&slot), Instant::now()));
        let js = match js {
            Some(js) => Ok(js),
            None => JsContainer::new(&shared.limits, shared.logs.sink(&slot.container)),
        };
        let (reply, js) = match js {
            Ok(mut js) => {
                let (reply, health) = js.run(&job.input);
                (reply, (health == Health::Reusable).then_some(js))
            }
            Err(e) => {
                tracing::error!(container = %slot.container, error = %e, "cannot create a JavaScript runtime");
                (
                    Reply::error(500, Source::Proxy, "Runtime unavailable.", &e),
                    None,
                )
            }
        };
        *lock(&me.busy) = None;
        release(&slot, &job);
        let written_off = me.written_off.load(Ordering::Acquire);
        let discarded = {
            let mut st = lock(&slot.state);
            let keep = !written_off && !shared.stopping.load(Ordering::Acquire);
            let discarded = if keep {
                st.js = js;
                None
            } else {
                js
            };
            if written_off {
                slot.quarantined.store(false, Ordering::Release);
                tracing::warn!(container = %slot.container, "the stuck run ended; the container is out of quarantine");
            }
            if shared.stopping.load(Ordering::Acquire) {
                drop(st);
                refuse_queued(&slot, stopping_reply);
                lock(&slot.state).scheduled = false;
            } else if st.queue.is_empty() {
                st.scheduled = false;
            } else {
                let _ = shared.tx.send(Msg::Run(Arc::clone(&slot)));
            }
            discarded
        };
        // The reply goes last, so that a caller's next request finds the
        // container back in place and out of quarantine.
        let _ = job.reply.send(reply);
        // Dropping a runtime takes tens of microseconds: not under the lock.
        drop(discarded);
        if written_off {
            return;
        }
    }
}

/// Every tick, writes off threads whose run is past `run_time * overrun_factor`:
/// the container is quarantined (its queued and new runs get 429) and a new
/// thread takes the stuck one's place, so capacity stays.
fn watch(shared: &Arc<Shared>) {
    let limit = shared.limits.run_time * shared.limits.overrun_factor.max(1);
    let tick =
        (shared.limits.run_time / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
    while !shared.stopping.load(Ordering::Acquire) {
        std::thread::sleep(tick);
        let stuck: Vec<(Arc<Worker>, Arc<Slot>, Duration)> = lock(&shared.workers)
            .iter()
            .filter_map(|w| {
                let busy = lock(&w.busy);
                let (slot, since) = busy.as_ref()?;
                (since.elapsed() > limit)
                    .then(|| (Arc::clone(w), Arc::clone(slot), since.elapsed()))
            })
            .collect();
        for (worker, slot, elapsed) in stuck {
            worker.written_off.store(true, Ordering::Release);
            slot.quarantined.store(true, Ordering::Release);
            lock(&shared.workers).retain(|w| !Arc::ptr_eq(w, &worker));
            refuse_queued(&slot, quarantine_reply);
            tracing::warn!(
                container = %slot.container,
                elapsed_ms = elapsed.as_millis() as u64,
                limit_ms = shared.limits.run_time.as_millis() as u64,
                "a run overran its time limit and holds its thread; container quarantined, thread replaced"
            );
            if let Err(e) = spawn_worker(shared) {
                tracing::error!(error = %e, "cannot start a replacement executor thread");
            }
            // Counted after the replacement exists, so readers see capacity restored.
            shared.replaced.fetch_add(1, Ordering::Release);
        }
    }
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

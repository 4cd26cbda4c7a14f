//! [`Executor`]: starting the executor, admitting runs, its counters and its
//! health.

use super::budget::*;
use super::scheduler::*;
use super::spawn::*;
use super::state::*;
use super::watchdog::*;
use crate::config::Limits;
use crate::logs::LogHub;
use crate::sandbox::resident::Resident;
use crate::sandbox::{Reply, RunInput};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The executor of one host.
#[derive(Clone)]
pub(crate) struct Executor(pub(super) Arc<Shared>);

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Executor {
    pub(crate) fn start(
        limits: Limits,
        logs: LogHub,
        workers: usize,
        isolation: Isolation,
        egress: crate::egress::Egress,
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
            egress,
            runtime: tokio::runtime::Handle::current(),
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

    /// The host's outbound client, for its counters.
    pub(crate) fn egress(&self) -> &crate::egress::Egress {
        &self.0.egress
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
                holder: None,
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
        } else if let Some(holder) = st.holder.clone() {
            // Runs of the container wait on the host in the holder's
            // process: it runs this one beside them.
            drop(st);
            let _ = holder.wake.send(slot);
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
pub(super) const WEDGED_AFTER: Duration = Duration::from_secs(2);

/// Slots kept before idle ones with a full CPU budget are dropped (they
/// hold nothing a new slot would not).
pub(super) const PRUNE_SLOTS_AT: usize = 4096;

pub(super) fn prune(slots: &mut HashMap<String, Arc<Slot>>, limits: &Limits) {
    slots.retain(|_, s| {
        Arc::strong_count(s) > 1
            || s.in_flight.load(Ordering::Acquire) > 0
            || lock(&s.state).scheduled
            || cpu_left(s, limits).map_or(true, |left| left < limits.cpu_burst)
    });
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
            Isolation::Processes(std::path::PathBuf::from("/nonexistent")),
            crate::egress::Egress::new(crate::egress::EgressPolicy::default()),
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

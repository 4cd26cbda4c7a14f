//! The delivery engine of async invocations: lease what is due from the
//! backend, deliver it with the client's invoker, and record the outcome.
//! One engine for every backend; a durable one (an outbox) and the in-memory
//! queue differ only in what a failure and a shutdown mean (the places that
//! ask `self.memory`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::Opened;
use super::flow::{COMPACT_EVERY, Flow, Known};
use super::memory::MemoryOutbox;
use super::{OutboxConfig, OutboxError, Store, delivery_id, ms, now_ms};
use crate::outcome::OutcomeFn;

use crate::invoke::Invoker;
use crate::point::PointDescriptor;

/// The delivery engine of one client, over its outbox or its in-memory
/// queue. Its jobs are split by file: `intake` (taking an invocation),
/// this file (the lease loop, leases, shutdown), `attempt` (one delivery and
/// its verdict), `flow` (per-container holds).
pub(crate) struct Worker {
    pub(crate) store: Arc<dyn Store>,
    /// The same as `store` when it is the in-memory queue: failures are
    /// then retried only when transient, nothing is kept dead, and shutdown
    /// drops (and reports) what is left.
    pub(super) memory: Option<Arc<MemoryOutbox>>,
    pub(super) invoker: Arc<Invoker>,
    pub(super) config: OutboxConfig,
    /// This replica's name on its leases.
    pub(super) owner: String,
    pub(super) points: HashMap<&'static str, &'static PointDescriptor>,
    pub(super) on_outcome: Option<OutcomeFn>,
    pub(super) notify: Notify,
    /// Stops taking new work.
    pub(super) stop: CancellationToken,
    /// Abandons deliveries in flight (after the shutdown grace).
    pub(super) abort: CancellationToken,
    pub(super) tracker: TaskTracker,
    pub(super) slots: Arc<Semaphore>,
    /// Per container: deliveries in flight, and whether the host holds it back.
    pub(super) flows: std::sync::Mutex<HashMap<Arc<str>, Flow>>,
    /// Why the last attempt to take due invocations failed, while it does:
    /// new invocations are refused rather than acknowledged into an
    /// outbox that cannot deliver them.
    pub(super) unreadable: std::sync::Mutex<Option<String>>,
    /// Invocations this replica is delivering, whose leases it renews.
    pub(super) delivering: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Disabled extensions by (container, point), and when that was asked.
    pub(super) disabled: std::sync::Mutex<HashMap<(String, &'static str), Known>>,
}

/// Gives a container's place back when a delivery ends, and wakes the loop
/// when the container had been at its limit.
struct Place<'a> {
    worker: &'a Worker,
    container: Arc<str>,
    /// The invocation, whose lease stops being renewed.
    id: String,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.worker
            .delivering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
        let mut flows = self.worker.flows();
        if let Some(f) = flows.get_mut(&self.container) {
            let was_full = f.in_flight >= self.worker.config.per_container;
            f.in_flight = f.in_flight.saturating_sub(1);
            if f.in_flight == 0 && f.backoff.is_zero() && f.paused_until_ms <= now_ms() {
                flows.remove(&self.container);
            }
            drop(flows);
            if was_full {
                self.worker.wake();
            }
        }
    }
}

impl Worker {
    /// Opens `config`'s backend and starts delivering from it on `runtime`.
    pub(crate) fn start(
        mut config: OutboxConfig,
        invoker: Arc<Invoker>,
        on_outcome: Option<OutcomeFn>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Arc<Worker>, OutboxError> {
        let Opened { store, memory } = config.open()?;
        let points: HashMap<&'static str, &'static PointDescriptor> =
            inventory::iter::<crate::__private::Registration>
                .into_iter()
                .map(|r| (r.0.name(), r.0))
                .collect();
        // Leases are renewed while their deliveries run (see `renew`), so
        // an attempt may outlast one; too short a lease would only make
        // the renewals busy.
        config.lease = config.lease.max(Duration::from_millis(400));
        let worker = Arc::new(Worker {
            store,
            memory,
            invoker,
            slots: Arc::new(Semaphore::new(config.concurrency)),
            config,
            owner: delivery_id(),
            points,
            on_outcome,
            notify: Notify::new(),
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            tracker: TaskTracker::new(),
            flows: std::sync::Mutex::default(),
            unreadable: std::sync::Mutex::default(),
            disabled: std::sync::Mutex::default(),
            delivering: std::sync::Mutex::default(),
        });
        let run = Arc::clone(&worker);
        worker.tracker.spawn_on(run.run(), runtime);
        if worker.memory.is_none() {
            // Leases in memory never run out: nobody else could take them.
            let renew = Arc::clone(&worker);
            worker.tracker.spawn_on(renew.renew(), runtime);
        }
        Ok(worker)
    }

    /// Async invocations held in this process: for the in-memory queue,
    /// every one not yet ended; with an outbox, those this replica is
    /// delivering (the rest wait in the database: [`super::Outbox::depth`]).
    pub(crate) fn pending(&self) -> usize {
        match &self.memory {
            Some(memory) => memory.len(),
            None => self
                .delivering
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len(),
        }
    }

    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    /// Keeps the leases of what is being delivered, every quarter lease,
    /// until the worker stops: a dead replica's run out within one lease.
    async fn renew(self: Arc<Self>) {
        let every = self.config.lease / 4;
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            let ids: Vec<String> = self
                .delivering
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .cloned()
                .collect();
            if ids.is_empty() {
                continue;
            }
            let until = now_ms() + ms(self.config.lease);
            if let Err(e) = self.store.renew(&self.owner, &ids, until).await {
                tracing::warn!(error = %e, "outbox: could not renew leases; another replica may deliver them again");
            }
        }
    }

    pub(super) fn flows(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Flow>> {
        self.flows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Containers not to lease now: at their limit of deliveries in flight,
    /// or held back by the host; and when the first hold ends.
    fn skipped(&self, now: i64) -> (Vec<String>, Option<i64>) {
        let flows = self.flows();
        let mut resume = None::<i64>;
        let skip = flows
            .iter()
            .filter(|(_, f)| {
                if f.paused_until_ms > now {
                    resume = Some(resume.map_or(f.paused_until_ms, |r| r.min(f.paused_until_ms)));
                    return true;
                }
                f.in_flight >= self.config.per_container
            })
            .map(|(c, _)| c.to_string())
            .collect();
        (skip, resume)
    }

    async fn run(self: Arc<Self>) {
        let lease_ms = ms(self.config.lease);
        let mut compacted = std::time::Instant::now() - COMPACT_EVERY;
        let mut held_since_compact = true;
        loop {
            if self.stop.is_cancelled() {
                return;
            }
            let free = self.slots.available_permits().min(self.config.batch);
            if free == 0 {
                // Wait for a delivery to end.
                tokio::select! {
                    () = self.stop.cancelled() => return,
                    permit = self.slots.acquire() => drop(permit),
                }
                continue;
            }
            let now = now_ms();
            let (skip, resume) = self.skipped(now);
            let leased = self
                .store
                .lease(&self.owner, now, now + lease_ms, free, &skip)
                .await;
            *self
                .unreadable
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                leased.as_ref().err().map(ToString::to_string);
            match leased {
                Ok(records) if !records.is_empty() => {
                    held_since_compact = true;
                    for record in records {
                        let Ok(permit) = Arc::clone(&self.slots).acquire_owned().await else {
                            return;
                        };
                        let container: Arc<str> = record.container.as_str().into();
                        // One batch may hold more of a container than its
                        // places: the rest go back, due, and are skipped
                        // until a place is free.
                        let placed = {
                            let mut flows = self.flows();
                            let f = flows.entry(Arc::clone(&container)).or_default();
                            let fits =
                                f.in_flight < self.config.per_container && f.paused_until_ms <= now;
                            if fits {
                                f.in_flight += 1;
                            }
                            fits
                        };
                        if !placed {
                            drop(permit);
                            let at = self
                                .flows()
                                .get(&container)
                                .map_or(now, |f| f.paused_until_ms.max(now));
                            self.save(self.store.postpone(&record.id, at), &record.id)
                                .await;
                            continue;
                        }
                        let this = Arc::clone(&self);
                        self.delivering
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(record.id.clone());
                        self.tracker.spawn(async move {
                            let _permit = permit;
                            let _place = Place {
                                worker: &this,
                                container,
                                id: record.id.clone(),
                            };
                            let abort = this.abort.clone();
                            abort.run_until_cancelled(this.deliver(record)).await;
                        });
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    metrics::counter!("extend_outbox_errors_total", "operation" => "lease")
                        .increment(1);
                    tracing::warn!(error = %e, "outbox: could not take due invocations");
                }
            }
            if self.memory.is_some() {
                // Not an outbox: no depth to publish, no space to give back.
            } else if let Ok(depth) = self.store.depth().await {
                metrics::gauge!("extend_outbox_depth").set(depth as f64);
                // Emptied since it last held something: give the space back
                // (at most once per COMPACT_EVERY).
                if depth == 0 && held_since_compact && compacted.elapsed() >= COMPACT_EVERY {
                    if let Err(e) = self.store.compact().await {
                        tracing::warn!(error = %e, "outbox: could not compact");
                    }
                    compacted = std::time::Instant::now();
                    held_since_compact = false;
                } else if depth > 0 {
                    held_since_compact = true;
                }
            }
            let now = now_ms();
            let until =
                |at: i64| Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0));
            let wait = match self.store.next_due().await {
                // Due, but of containers held back: wait for the first hold
                // to end, or a place to free (which wakes this loop).
                Ok(Some(due)) if due <= now => resume.map_or(self.config.poll, until),
                Ok(Some(due)) => until(due),
                _ => self.config.poll,
            }
            .min(self.config.poll);
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = self.notify.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Stops taking invocations and waits up to `grace`. An outbox stops
    /// taking due ones at once, lets deliveries in flight finish, then
    /// abandons the rest and hands their leases back: nothing is lost. The
    /// in-memory queue goes on delivering what it holds (retries included)
    /// until it is empty or the grace ends; what is left then is dropped,
    /// reported as such, and counted in the returned number.
    pub(crate) async fn shutdown(&self, grace: Duration) -> usize {
        if let Some(memory) = &self.memory {
            memory.close();
            let emptied = tokio::time::timeout(grace, memory.emptied()).await.is_ok();
            self.stop.cancel();
            self.tracker.close();
            if !emptied {
                self.abort.cancel();
            }
            self.tracker.wait().await;
            let left = memory.drain();
            for record in &left {
                self.dropped(record);
            }
            return left.len();
        }
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            self.abort.cancel();
            self.tracker.wait().await;
        }
        if let Err(e) = self.store.release(&self.owner).await {
            tracing::warn!(error = %e, "outbox: could not hand back leases at shutdown; they run out by themselves");
        }
        0
    }
}

//! The delivery loop of an outbox: lease what is due, deliver it with the
//! client's invoker, and record the outcome.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use super::flow::{
    COMPACT_EVERY, DISABLED_FRESH, FIRST_PAUSE, Flow, Known, LONGEST_PAUSE, held_back,
};
use super::{Attempt, OutboxConfig, Record, Store, delivery_id, ms, now_ms};
use crate::deliver::{Outcome, OutcomeFn, OutcomeStatus, report};

use crate::invoke::{Attempted, Invoker};
use crate::point::PointDescriptor;

pub(crate) struct Worker {
    pub(super) store: Arc<dyn Store>,
    pub(super) invoker: Arc<Invoker>,
    config: OutboxConfig,
    /// This replica's name on its leases.
    owner: String,
    points: HashMap<&'static str, &'static PointDescriptor>,
    on_outcome: Option<OutcomeFn>,
    notify: Notify,
    /// Stops taking new work.
    pub(super) stop: CancellationToken,
    /// Abandons deliveries in flight (after the shutdown grace).
    abort: CancellationToken,
    tracker: TaskTracker,
    slots: Arc<Semaphore>,
    /// Per container: deliveries in flight, and whether the host holds it back.
    flows: std::sync::Mutex<HashMap<Arc<str>, Flow>>,
    /// Why the last attempt to take due invocations failed, while it does:
    /// new invocations are refused rather than acknowledged into an
    /// outbox that cannot deliver them.
    pub(super) unreadable: std::sync::Mutex<Option<String>>,
    /// Invocations this replica is delivering, whose leases it renews.
    delivering: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Disabled extensions by (container, point), and when that was asked.
    disabled: std::sync::Mutex<HashMap<(String, &'static str), Known>>,
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
    /// Starts delivering from `store` on `runtime`.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        invoker: Arc<Invoker>,
        mut config: OutboxConfig,
        on_outcome: Option<OutcomeFn>,
        runtime: &tokio::runtime::Handle,
    ) -> Arc<Worker> {
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
        let renew = Arc::clone(&worker);
        worker.tracker.spawn_on(renew.renew(), runtime);
        worker
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

    fn flows(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Flow>> {
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
            if let Ok(depth) = self.store.depth().await {
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

    /// The host held `container`'s delivery back: nothing of it is
    /// delivered before the returned time.
    fn hold_back(&self, container: &Arc<str>, retry_after: Option<Duration>) -> i64 {
        let mut flows = self.flows();
        let f = flows.entry(Arc::clone(container)).or_default();
        let wait = retry_after
            .unwrap_or(f.backoff.max(FIRST_PAUSE))
            .clamp(Duration::from_millis(100), LONGEST_PAUSE);
        f.backoff = (f.backoff.max(FIRST_PAUSE) * 2).min(LONGEST_PAUSE);
        f.paused_until_ms = f.paused_until_ms.max(now_ms() + ms(wait));
        f.paused_until_ms
    }

    /// The names of `container`'s disabled extensions for `point`, asked
    /// of discovery at most every [`DISABLED_FRESH`] per (container, point),
    /// since most containers without an extension have none disabled either.
    async fn disabled(&self, point: &PointDescriptor, container: &Arc<str>) -> Vec<String> {
        let key = (container.to_string(), point.name());
        let now = std::time::Instant::now();
        {
            let known = self
                .disabled
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, names)) = known.get(&key)
                && now.duration_since(*at) < DISABLED_FRESH
            {
                return names.clone();
            }
        }
        let names = self
            .invoker
            .discovery
            .disabled(container, point.name())
            .await
            .unwrap_or_default();
        let mut known = self
            .disabled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() >= 10_000 {
            known.clear();
        }
        known.insert(key, (now, names.clone()));
        names
    }

    /// The host took one of `container`'s deliveries: no more backing off.
    fn flowing(&self, container: &Arc<str>) {
        if let Some(f) = self.flows().get_mut(container) {
            f.backoff = Duration::ZERO;
        }
    }

    async fn deliver(&self, record: Record) {
        let trace_id = if record.trace_id.is_empty() {
            self.invoker.trace_id()
        } else {
            record.trace_id.clone()
        };
        let span = crate::observe::span(&record.point, &record.container, "async", &trace_id);
        self.deliver_in(record, &trace_id, &span)
            .instrument(span.clone())
            .await;
    }

    async fn deliver_in(&self, mut record: Record, trace_id: &str, span: &tracing::Span) {
        let started = std::time::Instant::now();
        let container: Arc<str> = record.container.as_str().into();
        let Some(point) = self.points.get(record.point.as_str()).copied() else {
            let error = format!(
                "point `{}` is not declared in this binary: nothing can deliver it",
                record.point
            );
            record.history.push(Attempt {
                at_ms: now_ms(),
                status: None,
                error: error.clone(),
            });
            tracing::warn!(point = %record.point, container = %record.container, id = %record.id, "{error}");
            self.save(
                self.store.bury(&record.id, now_ms(), &record.history),
                &record.id,
            )
            .await;
            return;
        };
        let attempted = self
            .invoker
            .attempt_async(
                point,
                &container,
                Bytes::from(std::mem::take(&mut record.body)),
                &record.id,
                trace_id,
            )
            .await;
        let elapsed = Duration::from_millis(
            u64::try_from(now_ms().saturating_sub(record.created_ms)).unwrap_or(0),
        );
        let failed = match attempted {
            Attempted::NoExtension if !self.disabled(point, &container).await.is_empty() => {
                // Disabled, not removed: kept as a dead letter to replay
                // once the tenant enables it again, instead of dropped.
                self.flowing(&container);
                let names = self.disabled(point, &container).await;
                record.history.push(Attempt {
                    at_ms: now_ms(),
                    status: None,
                    error: format!(
                        "the extension for \"{}\" in container \"{container}\" is disabled ({}): replay this invocation once it is enabled again",
                        point.name(),
                        names.join(", ")
                    ),
                });
                self.save(
                    self.store.bury(&record.id, now_ms(), &record.history),
                    &record.id,
                )
                .await;
                metrics::counter!("extend_dead_letters_total", "point" => point.name())
                    .increment(1);
                let attempts = u32::try_from(record.history.len()).unwrap_or(u32::MAX);
                crate::deliver::observe_outcome(
                    span,
                    point,
                    started,
                    &OutcomeStatus::NoExtension,
                    attempts,
                );
                self.report(
                    point,
                    container,
                    OutcomeStatus::NoExtension,
                    attempts,
                    elapsed,
                    &record.id,
                );
                return;
            }
            Attempted::Delivered { .. } | Attempted::NoExtension => {
                self.flowing(&container);
                self.save(self.store.done(&record.id), &record.id).await;
                let status = match attempted {
                    Attempted::Delivered { status } => OutcomeStatus::Delivered { status },
                    _ => OutcomeStatus::NoExtension,
                };
                // Every attempt the invocation had, those before a replay
                // included (its history keeps them), and this one.
                let attempts = u32::try_from(record.history.len()).unwrap_or(u32::MAX)
                    + u32::from(matches!(status, OutcomeStatus::Delivered { .. }));
                crate::deliver::observe_outcome(span, point, started, &status, attempts);
                self.report(point, container, status, attempts, elapsed, &record.id);
                return;
            }
            Attempted::Failed(failed) => failed,
        };
        if held_back(&failed.error) {
            // Back-pressure, not a failed attempt: the invocation waits
            // with its attempts unchanged, and so does the container.
            let at = self.hold_back(&container, failed.retry_after);
            tracing::debug!(point = point.name(), container = %container, id = %record.id,
                error = %failed.error, retry_in_ms = at - now_ms(), "outbox: the host holds deliveries back; waiting");
            self.save(self.store.postpone(&record.id, at), &record.id)
                .await;
            return;
        }
        record.attempts += 1;
        record.history.push(Attempt {
            at_ms: now_ms(),
            status: failed.error.status(),
            error: failed.error.to_string(),
        });
        // Every failure is retried on the schedule, as webhook systems do:
        // over hours, the tenant may well fix a failing extension.
        let next = self
            .config
            .schedule
            .next(record.attempts, failed.retry_after);
        match next {
            Some(wait) => {
                tracing::debug!(point = point.name(), container = %container, id = %record.id,
                    attempts = record.attempts, error = %failed.error, retry_in_ms = ms(wait), "outbox: attempt failed; retrying");
                self.save(
                    self.store
                        .retry(&record.id, now_ms() + ms(wait), &record.history),
                    &record.id,
                )
                .await;
            }
            None => {
                self.save(
                    self.store.bury(&record.id, now_ms(), &record.history),
                    &record.id,
                )
                .await;
                metrics::counter!("extend_dead_letters_total", "point" => point.name())
                    .increment(1);
                let status = OutcomeStatus::Failed(failed.error);
                let attempts = u32::try_from(record.history.len()).unwrap_or(u32::MAX);
                crate::deliver::observe_outcome(span, point, started, &status, attempts);
                self.report(point, container, status, attempts, elapsed, &record.id);
            }
        }
    }

    /// Writes an outcome; a failure leaves the lease to run out, after
    /// which the invocation is delivered again (at least once).
    async fn save(&self, write: super::BoxFuture<'_, Result<(), super::OutboxError>>, id: &str) {
        if let Err(e) = write.await {
            tracing::warn!(id, error = %e, "outbox: could not record a delivery outcome; it will be delivered again");
        }
    }

    fn report(
        &self,
        point: &'static PointDescriptor,
        container: Arc<str>,
        status: OutcomeStatus,
        attempts: u32,
        elapsed: Duration,
        id: &str,
    ) {
        let outcome = Outcome {
            point: point.name(),
            container,
            status,
            attempts,
            elapsed,
            delivery_id: Some(id.into()),
        };
        report(&outcome, self.on_outcome.as_ref());
    }

    /// Stops taking work, lets deliveries in flight finish for up to
    /// `grace`, then abandons the rest and hands their leases back.
    pub(crate) async fn shutdown(&self, grace: Duration) {
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
    }
}

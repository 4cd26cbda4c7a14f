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

use super::{Attempt, OutboxConfig, Record, Store, delivery_id, ms, now_ms};
use crate::deliver::{Outcome, OutcomeFn, OutcomeStatus, report};
use crate::error::{Error, ErrorKind};
use crate::invoke::{self, Invoker};
use crate::point::PointDescriptor;

pub(crate) struct Worker {
    store: Arc<dyn Store>,
    invoker: Arc<Invoker>,
    config: OutboxConfig,
    /// This replica's name on its leases.
    owner: String,
    points: HashMap<&'static str, &'static PointDescriptor>,
    on_outcome: Option<OutcomeFn>,
    notify: Notify,
    /// Stops taking new work.
    stop: CancellationToken,
    /// Abandons deliveries in flight (after the shutdown grace).
    abort: CancellationToken,
    tracker: TaskTracker,
    slots: Arc<Semaphore>,
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
        // A lease shorter than an attempt would let another replica start
        // the same invocation while this one still delivers it.
        let longest = points
            .values()
            .map(|p| p.timeout())
            .max()
            .unwrap_or_default();
        config.lease = config.lease.max(longest * 2);
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
        });
        let run = Arc::clone(&worker);
        worker.tracker.spawn_on(run.run(), runtime);
        worker
    }

    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    /// Records an invocation; `Ok` once it is committed.
    pub(crate) fn enqueue(
        &self,
        point: &'static PointDescriptor,
        container: &Arc<str>,
        body: &Bytes,
    ) -> Result<(), Error> {
        if self.stop.is_cancelled() {
            return Err(Error::new(
                point.name(),
                container.clone(),
                ErrorKind::ShutDown,
            ));
        }
        self.store
            .enqueue(
                delivery_id(),
                point.name(),
                container,
                body.to_vec(),
                self.invoker.trace_id(),
            )
            .map_err(|e| {
                Error::new(
                    point.name(),
                    container.clone(),
                    ErrorKind::Outbox {
                        message: e.to_string(),
                    },
                )
            })?;
        self.wake();
        Ok(())
    }

    async fn run(self: Arc<Self>) {
        let lease_ms = ms(self.config.lease);
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
            match self
                .store
                .lease(&self.owner, now, now + lease_ms, free)
                .await
            {
                Ok(records) if !records.is_empty() => {
                    for record in records {
                        let Ok(permit) = Arc::clone(&self.slots).acquire_owned().await else {
                            return;
                        };
                        let this = Arc::clone(&self);
                        self.tracker.spawn(async move {
                            let _permit = permit;
                            let abort = this.abort.clone();
                            abort.run_until_cancelled(this.deliver(record)).await;
                        });
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox: could not take due invocations"),
            }
            if let Ok(depth) = self.store.depth().await {
                metrics::gauge!("extend_outbox_depth").set(depth as f64);
            }
            let wait = match self.store.next_due().await {
                Ok(Some(due)) => {
                    Duration::from_millis(u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0))
                        .min(self.config.poll)
                }
                _ => self.config.poll,
            };
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = self.notify.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
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
        let deadline = tokio::time::Instant::now() + point.timeout();
        let result = tokio::time::timeout_at(
            deadline,
            self.invoker.attempt(
                point.name(),
                &container,
                Bytes::from(std::mem::take(&mut record.body)),
                deadline,
                Some(&record.id),
                trace_id,
            ),
        )
        .await;
        let elapsed = Duration::from_millis(
            u64::try_from(now_ms().saturating_sub(record.created_ms)).unwrap_or(0),
        );
        let failed = match result {
            Ok(Ok(answer)) => {
                self.save(self.store.done(&record.id), &record.id).await;
                let status = match answer {
                    Some(d) => OutcomeStatus::Delivered { status: d.status },
                    None => OutcomeStatus::NoExtension,
                };
                let attempts =
                    record.attempts + u32::from(matches!(status, OutcomeStatus::Delivered { .. }));
                crate::deliver::observe_outcome(span, point, started, &status, attempts);
                self.report(point, container, status, attempts, elapsed, &record.id);
                return;
            }
            Ok(Err(failed)) => failed,
            Err(_elapsed) => invoke::Failed::from(invoke::timeout_error(point, &container)),
        };
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
                crate::deliver::observe_outcome(span, point, started, &status, record.attempts);
                self.report(
                    point,
                    container,
                    status,
                    record.attempts,
                    elapsed,
                    &record.id,
                );
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

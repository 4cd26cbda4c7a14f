//! One leased invocation through the engine: its attempt, the verdict
//! (delivered, no extension, failed, held back), what the backend records of
//! it, and the outcome the application is told.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument as _;

use super::flow::{DISABLED_FRESH, FIRST_PAUSE, LONGEST_PAUSE, held_back};
use super::worker::Worker;
use super::{Attempt, Record, ms, now_ms};
use crate::invoke::Attempted;
use crate::outcome::{Outcome, OutcomeStatus, observe_outcome, report};
use crate::point::PointDescriptor;

impl Worker {
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

    pub(super) async fn deliver(&self, record: Record) {
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
            .attempt_async(point, &container, record.body.clone(), &record.id, trace_id)
            .await;
        let elapsed = Duration::from_millis(
            u64::try_from(now_ms().saturating_sub(record.created_ms)).unwrap_or(0),
        );
        let failed = match attempted {
            Attempted::NoExtension
                if self.memory.is_none() && !self.disabled(point, &container).await.is_empty() =>
            {
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
                observe_outcome(span, point, started, &OutcomeStatus::NoExtension, attempts);
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
                observe_outcome(span, point, started, &status, attempts);
                self.report(point, container, status, attempts, elapsed, &record.id);
                return;
            }
            Attempted::Failed(failed) => failed,
        };
        // In memory, holding back for a host that is away would hold the
        // queue's places for as long: there, it is a failed attempt.
        if self.memory.is_none() && held_back(&failed.error) {
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
        // over hours, the tenant may well fix a failing extension. A queue
        // lost with the process can't wait for a fix: it retries only
        // transient failures.
        let next = (self.memory.is_none() || failed.error.is_transient())
            .then(|| {
                self.config
                    .schedule
                    .next(record.attempts, failed.retry_after)
            })
            .flatten();
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
                if self.memory.is_none() {
                    metrics::counter!("extend_dead_letters_total", "point" => point.name())
                        .increment(1);
                }
                let status = OutcomeStatus::Failed(failed.error);
                let attempts = u32::try_from(record.history.len()).unwrap_or(u32::MAX);
                observe_outcome(span, point, started, &status, attempts);
                self.report(point, container, status, attempts, elapsed, &record.id);
            }
        }
    }

    /// Writes an outcome; a failure leaves the lease to run out, after
    /// which the invocation is delivered again (at least once).
    pub(super) async fn save(
        &self,
        write: super::BoxFuture<'_, Result<(), super::OutboxError>>,
        id: &str,
    ) {
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

    /// Reports an invocation the in-memory queue dropped at shutdown.
    pub(super) fn dropped(&self, record: &Record) {
        let Some(point) = self.points.get(record.point.as_str()).copied() else {
            return;
        };
        let span =
            crate::observe::span(&record.point, &record.container, "async", &record.trace_id);
        let attempts = u32::try_from(record.history.len()).unwrap_or(u32::MAX);
        let elapsed = Duration::from_millis(
            u64::try_from(now_ms().saturating_sub(record.created_ms)).unwrap_or(0),
        );
        let queued = std::time::Instant::now()
            .checked_sub(elapsed)
            .unwrap_or_else(std::time::Instant::now);
        observe_outcome(&span, point, queued, &OutcomeStatus::Dropped, attempts);
        self.report(
            point,
            record.container.as_str().into(),
            OutcomeStatus::Dropped,
            attempts,
            elapsed,
            &record.id,
        );
    }
}

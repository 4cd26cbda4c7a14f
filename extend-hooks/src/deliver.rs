//! Async invocations: a bounded queue of tracked background tasks, retries of
//! transient failures with backoff and jitter, one logged outcome each, and a
//! graceful shutdown.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::error::{Error, ErrorKind};
use crate::invoke::{Attempted, Invoker};
use crate::outbox::RetrySchedule;
use crate::point::PointDescriptor;

/// A callback that receives every async outcome.
pub(crate) type OutcomeFn = Arc<dyn Fn(&Outcome) + Send + Sync>;

/// How an async invocation ended. Each one is logged once with `tracing` and,
/// when set, passed to the builder's [`on_outcome`](crate::ExtendBuilder::on_outcome) callback.
#[derive(Debug)]
#[non_exhaustive]
pub struct Outcome {
    /// The point's name.
    pub point: &'static str,
    /// The container it ran for.
    pub container: Arc<str>,
    /// What happened.
    pub status: OutcomeStatus,
    /// HTTP attempts made (0 when no extension was installed or it was dropped before trying).
    pub attempts: u32,
    /// From queuing to the end.
    pub elapsed: Duration,
    /// The invocation's delivery id, sent as
    /// [`DELIVERY_ID_HEADER`](crate::outbox::DELIVERY_ID_HEADER) on each attempt.
    pub delivery_id: Option<Arc<str>>,
}

/// What happened to an async invocation.
#[derive(Debug)]
#[non_exhaustive]
pub enum OutcomeStatus {
    /// The extension answered 2xx.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// The container has no extension for the point: nothing to deliver.
    NoExtension,
    /// Delivery failed for good: a permanent error, or the last retry's.
    Failed(Error),
    /// The client shut down and the grace period ended before delivery.
    Dropped,
}

/// What [`Extend::shutdown`](crate::Extend::shutdown) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Invocations that were queued or in flight when the grace period ended,
    /// and so were never delivered.
    pub dropped: usize,
}

/// The async queue. Its state is shared with the delivery tasks it spawns,
/// which need nothing else: the [`Invoker`] does the HTTP.
pub(crate) struct Queue(Arc<QueueState>);

struct QueueState {
    invoker: Arc<Invoker>,
    /// One permit per invocation queued or in flight: the memory bound.
    places: Arc<Semaphore>,
    capacity: usize,
    /// One permit per HTTP exchange in flight.
    in_flight: Semaphore,
    tracker: TaskTracker,
    cancel: CancellationToken,
    /// Admission: `enqueue` spawns under the read lock, `shutdown` flips it
    /// under the write lock, so no task is spawned after shutdown started
    /// waiting.
    closed: RwLock<bool>,
    dropped: AtomicUsize,
    retry: RetrySchedule,
    on_outcome: Option<OutcomeFn>,
    runtime: Handle,
}

pub(crate) struct QueueConfig {
    pub capacity: usize,
    pub concurrency: usize,
    pub retry: RetrySchedule,
    pub on_outcome: Option<OutcomeFn>,
    pub runtime: Handle,
}

impl Queue {
    pub(crate) fn new(invoker: Arc<Invoker>, config: QueueConfig) -> Self {
        Queue(Arc::new(QueueState {
            invoker,
            places: Arc::new(Semaphore::new(config.capacity)),
            capacity: config.capacity,
            in_flight: Semaphore::new(config.concurrency),
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
            closed: RwLock::new(false),
            dropped: AtomicUsize::new(0),
            retry: config.retry,
            on_outcome: config.on_outcome,
            runtime: config.runtime,
        }))
    }

    pub(crate) fn enqueue(
        &self,
        point: &'static PointDescriptor,
        container: Arc<str>,
        body: Bytes,
    ) -> Result<(), Error> {
        let q = &self.0;
        let refuse = |kind| Error::new(point.name(), container.clone(), kind);
        let closed = q.closed.read().unwrap_or_else(PoisonError::into_inner);
        if *closed {
            return Err(refuse(ErrorKind::ShutDown));
        }
        let place = q.places.clone().try_acquire_owned().map_err(|_| {
            refuse(ErrorKind::QueueFull {
                capacity: q.capacity,
            })
        })?;
        let state = Arc::clone(q);
        let queued_at = Instant::now();
        let id: Arc<str> = crate::outbox::delivery_id().into();
        // The caller's trace, taken now: the delivery runs elsewhere.
        let trace_id = q.invoker.trace_id();
        let span = crate::observe::span(point.name(), &container, "async", &trace_id);
        q.tracker.spawn_on(
            async move {
                let _place = place;
                let (status, attempts) = match state
                    .cancel
                    .run_until_cancelled(
                        state
                            .deliver(point, &container, body, &id, &trace_id)
                            .instrument(span.clone()),
                    )
                    .await
                {
                    Some(done) => done,
                    None => {
                        state.dropped.fetch_add(1, Ordering::Relaxed);
                        (OutcomeStatus::Dropped, 0)
                    }
                };
                observe_outcome(&span, point, queued_at, &status, attempts);
                report(
                    &Outcome {
                        point: point.name(),
                        container,
                        status,
                        attempts,
                        elapsed: queued_at.elapsed(),
                        delivery_id: Some(id),
                    },
                    state.on_outcome.as_ref(),
                );
            },
            &q.runtime,
        );
        drop(closed);
        Ok(())
    }

    pub(crate) async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let q = &self.0;
        *q.closed.write().unwrap_or_else(PoisonError::into_inner) = true;
        q.tracker.close();
        if tokio::time::timeout(grace, q.tracker.wait()).await.is_err() {
            q.cancel.cancel();
            q.tracker.wait().await;
        }
        ShutdownReport {
            dropped: q.dropped.load(Ordering::Relaxed),
        }
    }

    /// Invocations queued or in flight right now.
    pub(crate) fn pending(&self) -> usize {
        self.0.capacity - self.0.places.available_permits()
    }
}

impl QueueState {
    /// Discovery and delivery, retrying transient failures. Each attempt is
    /// bounded by the point's timeout.
    async fn deliver(
        &self,
        point: &'static PointDescriptor,
        container: &Arc<str>,
        body: Bytes,
        id: &str,
        trace_id: &str,
    ) -> (OutcomeStatus, u32) {
        let mut attempts = 0;
        loop {
            let permit = self.in_flight.acquire().await;
            let attempted = self
                .invoker
                .attempt_async(point, container, body.clone(), id, trace_id)
                .await;
            drop(permit);
            let failed = match attempted {
                Attempted::Delivered { status } => {
                    return (OutcomeStatus::Delivered { status }, attempts + 1);
                }
                Attempted::NoExtension => return (OutcomeStatus::NoExtension, attempts),
                Attempted::Failed(failed) => failed,
            };
            attempts += 1;
            // In memory only transient failures are retried, over seconds:
            // a queue that is lost with the process can't wait for a fix.
            let wait = failed
                .error
                .is_transient()
                .then(|| self.retry.next(attempts, failed.retry_after))
                .flatten();
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return (OutcomeStatus::Failed(failed.error), attempts),
            }
        }
    }
}

/// Records an async invocation's end on its span and in the metrics.
pub(crate) fn observe_outcome(
    span: &tracing::Span,
    point: &'static PointDescriptor,
    started: Instant,
    status: &OutcomeStatus,
    attempts: u32,
) {
    let (outcome, code) = match status {
        OutcomeStatus::Delivered { status } => ("extension", Some(*status)),
        OutcomeStatus::NoExtension => ("no_extension", None),
        OutcomeStatus::Failed(e) => (crate::observe::outcome_name(Err(e)), e.status()),
        OutcomeStatus::Dropped => ("dropped", None),
    };
    crate::observe::finish(
        span,
        point.name(),
        "async",
        started,
        outcome,
        code,
        attempts,
    );
}

/// Logs an async outcome once, and hands it to the builder's callback.
pub(crate) fn report(outcome: &Outcome, on_outcome: Option<&OutcomeFn>) {
    let elapsed_ms = u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX);
    let (point, container, attempts) = (outcome.point, &*outcome.container, outcome.attempts);
    match &outcome.status {
        OutcomeStatus::Delivered { status } => tracing::info!(
            point,
            container,
            status,
            attempts,
            elapsed_ms,
            "async extension delivered"
        ),
        OutcomeStatus::NoExtension => tracing::debug!(
            point,
            container,
            attempts,
            elapsed_ms,
            "async point has no extension in this container"
        ),
        OutcomeStatus::Failed(error) => tracing::warn!(
            point, container, attempts, elapsed_ms, error = %error, "async extension failed"
        ),
        OutcomeStatus::Dropped => tracing::warn!(
            point,
            container,
            attempts,
            elapsed_ms,
            "async invocation dropped at shutdown"
        ),
    }
    if let Some(callback) = on_outcome {
        callback(outcome);
    }
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let closed = *self.0.closed.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Queue")
            .field("capacity", &self.0.capacity)
            .field("pending", &self.pending())
            .field("closed", &closed)
            .finish_non_exhaustive()
    }
}
